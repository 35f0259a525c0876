//! Applying a reloaded configuration to the running instances: only the
//! differences. An instance whose settings did not change is not touched
//! (its listener and every connection go on); a changed one is started
//! anew on the very socket it had (when its address did not change: no
//! connect is refused meanwhile) while the old one stops accepting and its
//! connections drain within the grace period; added and removed ones start
//! and stop.
//!
//! Reading and checking the configuration is [`crate::reload`]'s job; this
//! module applies one that is known to be good, and never reads a file.

use std::sync::Arc;

use serde::Serialize;

use super::{Running, ServiceState, Slot, Supervisor};
use crate::config::ServiceConfig;
use crate::kind::Proto;
use crate::service::ServiceError;
use crate::sync::lock;

/// What a reload did, instance by instance.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Applied {
    /// Unchanged: not touched.
    pub kept: Vec<String>,
    /// Changed and started anew (the old one drains).
    pub restarted: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Changed to disabled, and stopped.
    pub stopped: Vec<String>,
    /// `name: why` for each change that could not be made (a port taken):
    /// the instance keeps running as it was where it could.
    pub failed: Vec<String>,
}

impl Supervisor {
    /// Held by whoever changes the set of instances from a source of
    /// settings (a reload, from reading its files to applying them; a
    /// dashboard edit, from reading an instance to writing
    /// `services.toml`): one at a time, so neither applies a copy the
    /// other made stale.
    pub fn config_writes(&self) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(&self.inner.config_writes)
    }

    /// Every instance's settings now, in order.
    pub fn configs(&self) -> Vec<ServiceConfig> {
        self.slots()
            .iter()
            .map(|s| lock(&s.state).config.clone())
            .collect()
    }

    /// Loads the certificate each of `wanted`'s new or changed TLS
    /// instances would use, without changing anything.
    ///
    /// # Errors
    /// The first instance whose certificate cannot be loaded.
    pub fn check_tls(&self, wanted: &[ServiceConfig]) -> Result<(), ServiceError> {
        for config in wanted {
            let same = self
                .config_of(config.id.name())
                .is_some_and(|now| now.tls == config.tls);
            if !same {
                self.inner
                    .tls
                    .for_added(&config.tls)
                    .map_err(|e| ServiceError::Tls(config.id.clone(), e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Makes the running set what `wanted` says, changing only what
    /// differs. Certificates whose files changed are re-read too.
    pub async fn apply(&self, wanted: Vec<ServiceConfig>) -> Applied {
        let mut applied = Applied::default();
        for tls in self.inner.tls.web().into_iter().cloned().chain(
            self.slots()
                .iter()
                .filter_map(|s| s.tls.clone())
                .collect::<Vec<_>>(),
        ) {
            if tls.reload_if_changed() {
                tracing::info!("re-read {}", tls.files().cert.display());
            }
        }
        for slot in self.slots() {
            if !wanted.iter().any(|w| w.id == slot.id) {
                let name = slot.id.name().to_owned();
                if let Err(e) = self.remove(&name).await {
                    applied.failed.push(format!("{name}: {e}"));
                }
                applied.removed.push(name);
            }
        }
        for config in wanted {
            let name = config.id.name().to_owned();
            let Ok(slot) = self.slot(&name) else {
                match self.add(config).await {
                    Ok(()) => applied.added.push(name),
                    Err(e) => applied.failed.push(format!("{name}: {e}")),
                }
                continue;
            };
            if lock(&slot.state).config == config {
                applied.kept.push(name);
                continue;
            }
            let enabled = config.enabled;
            match self.replace(&slot, config).await {
                Ok(()) if enabled => applied.restarted.push(name),
                Ok(()) => applied.stopped.push(name),
                Err(e) => applied.failed.push(format!("{name}: {e}")),
            }
        }
        applied
    }

    /// Puts a new slot with `config` in `old`'s place and starts it on
    /// `old`'s socket when the address is the same; `old` stops accepting
    /// and drains. If the new one cannot start, `old` stays as it was.
    async fn replace(&self, old: &Arc<Slot>, config: ServiceConfig) -> Result<(), ServiceError> {
        let tls = self
            .inner
            .tls
            .for_added(&config.tls)
            .map_err(|e| ServiceError::Tls(config.id.clone(), e.to_string()))?;
        let _op = old.op.lock().await;
        let (same_addr, local, generation) = {
            let st = lock(&old.state);
            (
                // The same address as written, or the one it was given
                // (port 0 in the file, then the port it got written in).
                st.config.listen == config.listen || st.local.as_ref() == Some(&config.listen),
                st.local.clone(),
                st.generation,
            )
        };
        let enabled = config.enabled;
        let new = Arc::new(Slot::new(config, tls));
        lock(&new.state).generation = generation;
        self.swap_slot(old, &new);
        if !enabled {
            // Stopped, as a stop by hand would: connections close now.
            let running = lock(&old.state).running.take();
            if let Some(r) = running {
                self.drain(&old.id, r, true);
            }
            self.inner.own_udp_ports.set(&old.id, None);
            self.set_state(&new, &mut lock(&new.state), ServiceState::Stopped);
            return Ok(());
        }
        // The running socket, for the new instance's bind.
        let sock = match (same_addr, &local) {
            (true, Some(local)) => {
                let key = crate::handoff::Key::of(old.id.proto(), local);
                crate::handoff::live(old.id.name(), &key)
            }
            _ => None,
        };
        let _new_op = new.op.lock().await;
        match crate::handoff::with_next(sock, || self.start_locked(&new)) {
            Ok(addr) => {
                let running = lock(&old.state).running.take();
                if let Some(r) = running {
                    tracing::info!(service = %old.id, "restarted on {addr} (reload); the old one drains");
                    self.drain(&old.id, r, old.id.proto() == Proto::Udp);
                }
                Ok(())
            }
            Err(e) => {
                // Back to how it was: the old one never stopped.
                self.swap_slot(&new, old);
                let st = lock(&old.state);
                if let (Some(_), Some(addr), Proto::Udp) = (
                    &st.running,
                    st.local.as_ref().and_then(|l| l.inet()),
                    old.id.proto(),
                ) {
                    self.inner.own_udp_ports.set(&old.id, Some(addr));
                }
                Err(e)
            }
        }
    }

    /// Puts `new` where `old` is in the list of slots.
    fn swap_slot(&self, old: &Arc<Slot>, new: &Arc<Slot>) {
        let mut slots = crate::sync::write(&self.inner.slots);
        if let Some(at) = slots.iter().position(|s| Arc::ptr_eq(s, old)) {
            slots[at] = Arc::clone(new);
        }
    }

    /// Stops a replaced instance: accepting now, its connections when they
    /// end or the grace period runs out (at once when `now`).
    fn drain(&self, id: &crate::kind::ServiceId, running: Running, now: bool) {
        running.accept.cancel();
        running.conns.close();
        if now {
            running.cancel.cancel();
        }
        let grace = self.inner.grace;
        let id = id.clone();
        self.inner.root.tasks.spawn(async move {
            let drained = tokio::time::timeout(grace, async {
                let _ = running.handle.await;
                running.conns.wait().await;
            })
            .await;
            if drained.is_err() {
                tracing::warn!(service = %id, "connections still open after {grace:?} closed (reload)");
            }
            running.cancel.cancel();
        });
    }
}
