//! The [`Supervisor`]: starts, stops and watches every configured instance.
//!
//! It binds an instance's socket before its kind's `run` is called (so
//! nothing connects before a service listens), turns a bind failure into
//! that instance's `failed: <reason>` state without touching the others,
//! restarts an instance that panicked (with a backoff, up to a limit), and
//! on stop cancels its token and waits, within the grace period, for its
//! connections' tasks. It is generic over kinds: it hands each instance's
//! settings to `service::registry`, which knows how to launch them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::AuditLog;
use crate::config::{Config, ServiceConfig};
use crate::kind::ServiceId;
use crate::service::{OwnPorts, Resources, ServiceError};
use crate::settings::ListenAddr;
use crate::shutdown::Shutdown;
use crate::stats::Stats;
use crate::sync::lock;
use crate::users::Users;

mod budget;
mod deps;
mod loops;
mod reload;
mod run;
mod state;

pub use budget::{Needs, RESERVE_MARGIN, needs, reserve};
pub use deps::{Deps, DepsError};
pub use reload::Applied;
pub use state::{ServiceState, ServiceStatus};

/// Starts, stops and watches every instance. Cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<SupInner>,
}

struct SupInner {
    stats: Stats,
    root: Shutdown,
    resources: Resources,
    grace: Duration,
    /// The first and the longest wait before restarting a panicked service.
    backoff: (Duration, Duration),
    /// One per instance, in config order, then in the order added. Read
    /// for a moment to find a slot, written only to add or remove one.
    slots: std::sync::RwLock<Vec<Arc<Slot>>>,
    own_udp_ports: OwnPorts,
    tls: crate::tls::Certs,
    stdio_allow: Vec<String>, // see `Supervisor::stdio_allow`
    budget: budget::Budget,
    /// See [`Supervisor::config_writes`].
    config_writes: Arc<tokio::sync::Mutex<()>>,
}

struct Slot {
    id: ServiceId,
    /// Its certificate, when it speaks TLS.
    tls: Option<Arc<crate::tls::ServerTls>>,
    /// Serialises start/stop/restart of this one service.
    op: tokio::sync::Mutex<()>,
    /// Held only for a few instructions, never across an `.await`.
    state: Mutex<SlotState>,
}

struct SlotState {
    config: ServiceConfig,
    state: ServiceState,
    since: SystemTime,
    local: Option<ListenAddr>,
    running: Option<Running>,
    generation: u64,
    /// When the service panicked within the last [`PANIC_WINDOW`].
    panics: std::collections::VecDeque<std::time::Instant>,
}

impl Slot {
    fn new(config: ServiceConfig, tls: Option<Arc<crate::tls::ServerTls>>) -> Slot {
        Slot {
            id: config.id.clone(),
            tls,
            op: tokio::sync::Mutex::new(()),
            state: Mutex::new(SlotState {
                config,
                state: ServiceState::Stopped,
                since: SystemTime::now(),
                local: None,
                running: None,
                generation: 0,
                panics: std::collections::VecDeque::new(),
            }),
        }
    }
}

/// A service that panics [`MAX_PANICS`] times within this window is not
/// restarted again until someone starts it by hand.
const PANIC_WINDOW: Duration = Duration::from_secs(600);
const MAX_PANICS: usize = 10;

struct Running {
    generation: u64,
    cancel: CancellationToken,
    /// Stops its accepting only (see [`reload`]).
    accept: CancellationToken,
    conns: TaskTracker,
    handle: JoinHandle<()>,
}

impl Supervisor {
    /// A supervisor for `config`'s instances; nothing starts until asked.
    pub fn new(config: &Config, deps: Deps) -> Self {
        let slots = config
            .services
            .iter()
            .map(|service| {
                deps.stats.register(&service.id);
                Arc::new(Slot::new(service.clone(), deps.tls.service(&service.id)))
            })
            .collect();
        Supervisor {
            inner: Arc::new(SupInner {
                resources: deps.resources(),
                stats: deps.stats,
                root: deps.root,
                grace: config.shutdown_grace,
                backoff: (config.restart_backoff, config.restart_backoff_max),
                slots: std::sync::RwLock::new(slots),
                own_udp_ports: OwnPorts::default(),
                tls: deps.tls,
                stdio_allow: config.stdio_allow.clone(),
                budget: budget::Budget::new(config.web.max_connections),
                config_writes: Arc::default(),
            }),
        }
    }

    fn slots(&self) -> Vec<Arc<Slot>> {
        crate::sync::read(&self.inner.slots).clone()
    }

    fn slot(&self, name: &str) -> Result<Arc<Slot>, ServiceError> {
        crate::sync::read(&self.inner.slots)
            .iter()
            .find(|s| s.id.name() == name)
            .cloned()
            .ok_or_else(|| ServiceError::Unknown(name.to_owned()))
    }

    /// The instance named `name`, if there is one.
    pub fn id(&self, name: &str) -> Option<ServiceId> {
        self.slot(name).ok().map(|s| s.id.clone())
    }

    /// Every instance, in config order, then in the order added.
    pub fn ids(&self) -> Vec<ServiceId> {
        self.slots().iter().map(|s| s.id.clone()).collect()
    }

    /// The settings an instance runs with.
    pub fn config_of(&self, name: &str) -> Option<ServiceConfig> {
        self.slot(name).ok().map(|s| lock(&s.state).config.clone())
    }

    /// The certificate an instance speaks TLS with, if it does.
    pub fn tls_of(&self, name: impl AsRef<str>) -> Option<Arc<crate::tls::ServerTls>> {
        self.slot(name.as_ref()).ok().and_then(|s| s.tls.clone())
    }

    /// Adds an instance while running, and starts it if it is enabled.
    /// TLS shares the dashboard's certificate or loads its own files.
    ///
    /// # Errors
    /// The name is taken, its certificate cannot be loaded, or (enabled)
    /// it cannot start: it is then added and shows as failed.
    pub async fn add(&self, config: ServiceConfig) -> Result<(), ServiceError> {
        let tls = self
            .inner
            .tls
            .for_added(&config.tls)
            .map_err(|e| ServiceError::Tls(config.id.clone(), e.to_string()))?;
        let name = config.id.name().to_owned();
        let enabled = config.enabled;
        {
            let mut slots = crate::sync::write(&self.inner.slots);
            if slots.iter().any(|s| s.id == config.id) {
                return Err(ServiceError::Exists(name));
            }
            self.inner.stats.register(&config.id);
            slots.push(Arc::new(Slot::new(config, tls)));
        }
        tracing::info!(service = %name, "added");
        if enabled {
            self.start(&name).await?;
        }
        Ok(())
    }

    /// Turns an instance on (started) or off (stopped), as its `enabled`
    /// setting says from now on.
    ///
    /// # Errors
    /// No such instance, or it cannot start or stop.
    pub async fn set_enabled(&self, name: &str, on: bool) -> Result<(), ServiceError> {
        let slot = self.slot(name)?;
        let _op = slot.op.lock().await;
        lock(&slot.state).config.enabled = on;
        match on {
            true => {
                lock(&slot.state).panics.clear();
                self.start_locked(&slot).map(drop)
            }
            false => self.stop_locked(&slot).await,
        }
    }

    /// Stops an instance and forgets it.
    ///
    /// # Errors
    /// No such instance, or it did not stop in time (it is removed anyway).
    pub async fn remove(&self, name: &str) -> Result<(), ServiceError> {
        let slot = self.slot(name)?;
        let stopped = {
            let _op = slot.op.lock().await;
            let stopped = self.stop_locked(&slot).await;
            crate::sync::write(&self.inner.slots).retain(|s| !Arc::ptr_eq(s, &slot));
            // Its traffic history and log lines go with it.
            self.inner.stats.retire(&slot.id);
            stopped
        };
        tracing::info!(service = %name, "removed");
        crate::stats::log_lines::forget(name);
        stopped
    }

    /// Starts every enabled service. One failing (a port taken) does not
    /// stop the others; the failures are returned for the caller to report.
    pub async fn start_enabled(&self) -> Vec<ServiceError> {
        let mut failures = Vec::new();
        for slot in self.slots() {
            if !lock(&slot.state).config.enabled {
                continue;
            }
            if let Err(e) = self.start(slot.id.name()).await {
                failures.push(e);
            }
        }
        failures
    }

    /// Starts a service (a no-op if it runs). Returns the address it listens on.
    ///
    /// # Errors
    /// [`ServiceError::Bind`] when the socket cannot be bound; the service's
    /// state becomes `failed: <reason>`. [`ServiceError::Unknown`] for a
    /// name that is not configured.
    pub async fn start(&self, name: impl AsRef<str>) -> Result<ListenAddr, ServiceError> {
        let slot = self.slot(name.as_ref())?;
        let _op = slot.op.lock().await;
        // Started by a person: past panics no longer count against it.
        lock(&slot.state).panics.clear();
        self.start_locked(&slot)
    }

    /// Stops a service: stops accepting, closes its connections and waits
    /// (up to the shutdown grace period) for their tasks to end.
    ///
    /// # Errors
    /// [`ServiceError::StopTimeout`] when its tasks outlived the grace period.
    pub async fn stop(&self, name: impl AsRef<str>) -> Result<(), ServiceError> {
        let slot = self.slot(name.as_ref())?;
        let _op = slot.op.lock().await;
        self.stop_locked(&slot).await
    }

    /// Stops then starts a service, with no other start or stop in between.
    ///
    /// # Errors
    /// As [`Supervisor::stop`] and [`Supervisor::start`].
    pub async fn restart(&self, name: impl AsRef<str>) -> Result<ListenAddr, ServiceError> {
        let slot = self.slot(name.as_ref())?;
        let _op = slot.op.lock().await;
        self.stop_locked(&slot).await?;
        self.start_locked(&slot)
    }

    /// Switches capturing of instance `name` on or off, live: its new
    /// connections follow at once, and the instance keeps the setting
    /// through a restart (not in any file: the config says what a fresh
    /// start does).
    ///
    /// # Errors
    /// No such instance.
    pub fn set_capture(&self, name: &str, on: bool) -> Result<(), ServiceError> {
        let slot = self.slot(name)?;
        let mut st = lock(&slot.state);
        st.config.capture.on = on;
        self.inner
            .stats
            .set_capture(&slot.id, on, Some(st.config.capture.bytes));
        Ok(())
    }

    /// Stops every running service (used at shutdown, before draining).
    pub async fn stop_all(&self) {
        for slot in self.slots() {
            if let Err(e) = self.stop(slot.id.name()).await {
                tracing::warn!("{e}");
            }
        }
    }

    /// The current state of one service (`Stopped` for an unknown name).
    pub fn state(&self, name: impl AsRef<str>) -> ServiceState {
        self.slot(name.as_ref())
            .map_or(ServiceState::Stopped, |s| lock(&s.state).state.clone())
    }

    /// The address a running service is bound to.
    pub fn local_addr(&self, name: impl AsRef<str>) -> Option<ListenAddr> {
        self.slot(name.as_ref())
            .ok()
            .and_then(|s| lock(&s.state).local.clone())
    }

    /// Every service's status, in config order.
    pub fn statuses(&self) -> Vec<ServiceStatus> {
        self.slots()
            .iter()
            .map(|slot| {
                let st = lock(&slot.state);
                ServiceStatus {
                    name: slot.id.clone(),
                    kind: slot.id.kind(),
                    proto: slot.id.proto(),
                    listen: st.config.listen.to_string(),
                    local_addr: st.local.as_ref().map(ToString::to_string),
                    state: st.state.to_string(),
                    phase: st.state.name(),
                    reason: st.state.reason().map(str::to_owned),
                    status: st.state.clone(),
                    enabled: st.config.enabled,
                    accept_proxy: st.config.behind_proxy(),
                    source: st.config.source,
                    since_unix_ms: st
                        .since
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64),
                }
            })
            .collect()
    }

    /// The certificates of the dashboard and the TLS services.
    pub fn certs(&self) -> &crate::tls::Certs {
        &self.inner.tls
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    pub fn users(&self) -> &Users {
        &self.inner.resources.users
    }

    pub fn audit(&self) -> &AuditLog {
        &self.inner.resources.audit
    }

    pub fn store(&self) -> &crate::store::Store {
        &self.inner.resources.store
    }

    /// The proxies' toxics.
    pub fn toxics(&self) -> &crate::toxic::Toxics {
        &self.inner.resources.toxics
    }

    /// The chat kinds' conversations.
    pub fn chats(&self) -> &crate::service::chat_hub::ChatHub {
        &self.inner.resources.chats
    }
}
