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
use crate::kind::{Proto, ServiceId};
use crate::service::registry::Launch;
use crate::service::{OwnPorts, Resources, ServiceCtx, ServiceError, bind_failure};
use crate::settings::ListenAddr;
use crate::shutdown::Shutdown;
use crate::stats::Stats;
use crate::sync::lock;
use crate::users::Users;

mod budget;
mod deps;
mod loops;
mod reload;
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
        self.inner
            .slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn slot(&self, name: &str) -> Result<Arc<Slot>, ServiceError> {
        self.inner
            .slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
            let mut slots = self
                .inner
                .slots
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
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
            self.inner
                .slots
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .retain(|s| !Arc::ptr_eq(s, &slot));
            stopped
        };
        tracing::info!(service = %name, "removed");
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

    fn set_state(&self, slot: &Slot, st: &mut SlotState, state: ServiceState) {
        if st.state != state {
            st.state = state;
            st.since = SystemTime::now();
            self.inner
                .stats
                .service_state(&slot.id, st.state.to_string());
        }
    }

    fn fail(&self, slot: &Slot, reason: String) {
        self.set_state(slot, &mut lock(&slot.state), ServiceState::Failed(reason));
    }

    fn start_locked(&self, slot: &Slot) -> Result<ListenAddr, ServiceError> {
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
        let needs_key = crate::service::exec::needs_key(&config.settings);
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
        let launched = config.settings.launch(Launch {
            listen: &config.listen,
            tls: slot.tls.clone(),
            limits: &config.limits,
            ctx,
        });
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
        let inner_handle = self.inner.root.tasks.spawn(fut);
        let me = self.clone();
        let watched = id.clone();
        let handle = self.inner.root.tasks.spawn(async move {
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
        });
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

    /// A running service's task ended by itself: records why, and restarts
    /// it after a panic (with a backoff) unless it panics too often.
    async fn ended(&self, id: &ServiceId, generation: u64, outcome: String, panicked: bool) {
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
    fn note_panic(&self, st: &mut SlotState) -> Option<Duration> {
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
    async fn restart_after_panic(&self, slot: &Slot, generation: u64, delay: Duration) {
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

    async fn stop_locked(&self, slot: &Slot) -> Result<(), ServiceError> {
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
