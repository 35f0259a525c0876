//! Starting one instance and seeing it end: the checks before a start,
//! launching it through the registry, the task that watches it (restarting
//! it after a panic, with a backoff) and stopping it within the grace
//! period.
//!
//! Not here: which instances exist or what the dashboard asks for (in
//! `supervisor/mod.rs`), or how a kind binds and serves (`service`).

use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use super::{MAX_PANICS, PANIC_WINDOW, Running, ServiceState, Slot, SlotState, Supervisor};
use crate::kind::{Proto, ServiceId};
use crate::service::registry::{Launch, Served};
use crate::service::{ServiceCtx, ServiceError, bind_failure};
use crate::settings::ListenAddr;
use crate::sync::lock;

impl Supervisor {
    pub(super) fn set_state(&self, slot: &Slot, st: &mut SlotState, state: ServiceState) {
        if st.state != state {
            st.state = state;
            st.since = SystemTime::now();
            self.inner
                .stats
                .service_state(&slot.id, st.state.to_string());
        }
    }

    pub(super) fn fail(&self, slot: &Slot, reason: String) {
        self.set_state(slot, &mut lock(&slot.state), ServiceState::Failed(reason));
    }

    pub(super) fn start_locked(&self, slot: &Slot) -> Result<ListenAddr, ServiceError> {
        let id = slot.id.clone();
        let (config, generation) = {
            let mut st = lock(&slot.state);
            if let (Some(_), Some(local)) = (&st.running, &st.local) {
                return Ok(local.clone());
            }
            st.generation += 1;
            (st.config.clone(), st.generation)
        };
        // exec's tutorial framings check clients their own way (`auth_key`).
        let needs_key = crate::service::exec::needs_key(id.kind(), &config.settings);
        if needs_key && self.inner.resources.key.is_none() {
            self.fail(slot, "no HMAC key configured".to_owned());
            return Err(ServiceError::NoKey(id));
        }
        self.check_loop(&id, &config)
            .inspect_err(|e| self.fail(slot, e.to_string()))?;
        let _admitting = self
            .admit_fds(&id, &config)
            .inspect_err(|e| self.fail(slot, e.to_string()))?;
        // The capture switch follows the config at each start (a live
        // switch also changes the slot's config, so it survives a restart).
        self.inner
            .stats
            .set_capture(&id, config.capture.on, Some(config.capture.bytes));
        let cancel = self.inner.root.token.child_token();
        let accept = cancel.child_token();
        let ctx = ServiceCtx {
            id: id.clone(),
            cancel: cancel.clone(),
            accept: accept.clone(),
            process: self.inner.root.token.clone(),
            tasks: TaskTracker::new(),
            stats: self.inner.stats.clone(),
            limits: (),
            own_udp_ports: self.inner.own_udp_ports.clone(),
            resources: self.inner.resources.clone(),
        };
        let conns = ctx.tasks.clone();
        let launched = crate::service::registry::launch(
            id.kind(),
            &config.settings,
            Launch {
                listen: &config.listen,
                tls: slot.tls.clone(),
                limits: &config.limits,
                ctx,
            },
        );
        let (fut, local) = match launched {
            Ok(launched) => launched,
            Err(source) => {
                let reason = bind_failure(&source);
                self.fail(slot, reason.clone());
                let err = ServiceError::Bind {
                    service: id,
                    addr: config.listen,
                    reason,
                    source,
                };
                tracing::warn!("{err}");
                return Err(err);
            }
        };
        let handle = self.watch(id.clone(), generation, fut);
        let mut st = lock(&slot.state);
        st.running = Some(Running {
            generation,
            cancel,
            accept,
            conns,
            handle,
        });
        if let (Proto::Udp, Some(addr)) = (id.proto(), local.inet()) {
            self.inner.own_udp_ports.set(&id, Some(addr));
        }
        st.local = Some(local.clone());
        self.set_state(slot, &mut st, ServiceState::Running);
        tracing::info!(service = %id, "listening on {local}");
        Ok(local)
    }

    /// A running service's task ended by itself: records why, and restarts
    /// it after a panic (with a backoff) unless it panics too often.
    pub(super) async fn ended(
        &self,
        id: &ServiceId,
        generation: u64,
        outcome: String,
        panicked: bool,
    ) {
        let Ok(slot) = self.slot(id.name()) else {
            return; // removed meanwhile
        };
        let slot = &*slot;
        let restart_in = {
            let mut st = lock(&slot.state);
            if st
                .running
                .as_ref()
                .is_none_or(|r| r.generation != generation)
            {
                return; // stopped or restarted meanwhile
            }
            if let Some(old) = st.running.take() {
                // Its connections go with it: the restart starts clean.
                old.cancel.cancel();
            }
            st.local = None;
            let restart_in = if panicked {
                self.note_panic(&mut st)
            } else {
                None
            };
            let state = match (panicked, restart_in) {
                (true, None) => format!(
                    "panicked {MAX_PANICS} times in {} minutes; not restarted (start it by hand)",
                    PANIC_WINDOW.as_secs() / 60
                ),
                _ => outcome,
            };
            self.set_state(slot, &mut st, ServiceState::Failed(state));
            restart_in
        };
        if let Some(delay) = restart_in {
            self.restart_after_panic(slot, generation, delay).await;
        }
    }

    /// Counts a panic; the wait before the restart, or `None` when the
    /// service panicked too often to be restarted.
    pub(super) fn note_panic(&self, st: &mut SlotState) -> Option<Duration> {
        let now = std::time::Instant::now();
        st.panics.push_back(now);
        while st
            .panics
            .front()
            .is_some_and(|t| now.duration_since(*t) > PANIC_WINDOW)
        {
            st.panics.pop_front();
        }
        let n = st.panics.len();
        if n >= MAX_PANICS {
            return None;
        }
        let (first, longest) = self.inner.backoff;
        let doublings = u32::try_from(n - 1).unwrap_or(u32::MAX).min(16);
        Some(first.saturating_mul(1 << doublings).min(longest))
    }

    /// Starts a panicked service again after `delay`, unless it was started,
    /// stopped or restarted by someone meanwhile, or the process stops.
    pub(super) async fn restart_after_panic(&self, slot: &Slot, generation: u64, delay: Duration) {
        let root = self.inner.root.token.clone();
        if root
            .run_until_cancelled(tokio::time::sleep(delay))
            .await
            .is_none()
        {
            return;
        }
        let _op = slot.op.lock().await;
        {
            let st = lock(&slot.state);
            if st.generation != generation || st.running.is_some() {
                return;
            }
            if !matches!(&st.state, ServiceState::Failed(why) if why == "panicked") {
                return;
            }
        }
        tracing::info!(service = %slot.id, "restarting after a panic");
        let _ = self.start_locked(slot);
    }

    pub(super) async fn stop_locked(&self, slot: &Slot) -> Result<(), ServiceError> {
        let running = lock(&slot.state).running.take();
        let Some(running) = running else {
            // Not running (never started, or failed): stopping acknowledges it.
            self.set_state(slot, &mut lock(&slot.state), ServiceState::Stopped);
            return Ok(());
        };
        running.cancel.cancel();
        running.conns.close();
        let grace = self.inner.grace;
        let finished = tokio::time::timeout(grace, async {
            // The listener is dropped when `run` returns: after this the port is free.
            let _ = running.handle.await;
            running.conns.wait().await;
        })
        .await;
        self.inner.own_udp_ports.set(&slot.id, None);
        let mut st = lock(&slot.state);
        st.local = None;
        self.set_state(slot, &mut st, ServiceState::Stopped);
        tracing::info!(service = %slot.id, "stopped");
        finished.map_err(|_| ServiceError::StopTimeout {
            service: slot.id.clone(),
            after: grace,
        })
    }

    /// Runs a launched service's future, and a watcher that reports how it
    /// ended ([`Supervisor::ended`]): an error, a panic (caught by the task,
    /// so it takes down nothing else) or a crash.
    fn watch(&self, watched: ServiceId, generation: u64, fut: Served) -> JoinHandle<()> {
        let inner_handle = self.inner.root.tasks.spawn(fut);
        let me = self.clone();
        self.inner.root.tasks.spawn(async move {
            let (outcome, panicked) = match inner_handle.await {
                Ok(Ok(())) => return,
                Ok(Err(e)) => (e.to_string(), false),
                Err(join) if join.is_panic() => {
                    let payload = join.into_panic();
                    let why = crate::service::accept::panic_message(payload.as_ref())
                        .escape_debug()
                        .to_string();
                    tracing::error!(service = %watched, "the service panicked (a bug): {why}");
                    ("panicked".to_owned(), true)
                }
                Err(join) => (format!("crashed: {join}"), false),
            };
            tracing::error!(service = %watched, "service ended: {outcome}");
            me.ended(&watched, generation, outcome, panicked).await;
        })
    }
}
