//! Reloading the configuration of a running server (`SIGHUP`, `switchboard
//! reload`, the dashboard's Reload button): read the config file and
//! `services.toml` again, check them, and hand the instances' settings to
//! [`Supervisor::apply`], which changes only what differs.
//!
//! A configuration with an error changes nothing: the reason is logged,
//! audited and returned. Settings outside the instances (the dashboard's
//! address and limits, the data folder, the key, the grace period) are
//! read by parts that were built once at start; a reload reports them as
//! needing a restart (or `switchboard upgrade`) instead of half-applying
//! them. How the configuration is read is the caller's (`main` reads the
//! environment and flags); this module never reads the environment.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::audit::AuditEvent;
use crate::config::{Config, ServiceConfig};
use crate::supervisor::{Applied, Supervisor};
use crate::sync::lock;

/// Reads the configuration as `serve` did at start (file, environment,
/// flags), or says why it cannot.
pub type LoadConfig = dyn Fn() -> Result<Config, String> + Send + Sync;

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the configuration has an error; nothing was changed: {0}")]
    Config(String),
    #[error("services.toml has an error; nothing was changed: {0}")]
    Overlay(String),
    #[error("nothing was changed: {0}")]
    Tls(String),
}

/// What a reload did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub applied: Applied,
    /// Settings that changed but apply only at the next start (restart or
    /// `switchboard upgrade`).
    pub needs_restart: Vec<String>,
}

/// Reloads a running server's configuration. Cheap to clone.
#[derive(Clone)]
pub struct Reloader {
    inner: Arc<Inner>,
}

struct Inner {
    supervisor: Supervisor,
    load: Box<LoadConfig>,
    /// The configuration as last read (files only; what the dashboard
    /// switched live is in the supervisor), to tell what a file changed.
    last: Mutex<Config>,
    /// One reload at a time.
    busy: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// A reloader for `supervisor`, whose configuration was `started`
    /// (the overlay applied) and is read again by `load`.
    pub fn new(supervisor: Supervisor, started: Config, load: Box<LoadConfig>) -> Reloader {
        Reloader {
            inner: Arc::new(Inner {
                supervisor,
                load,
                last: Mutex::new(started),
                busy: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Reads and applies the configuration; `who` is audited (`signal`,
    /// `control`, or an account's name), with `peer`, the client's address
    /// when the dashboard asked.
    ///
    /// # Errors
    /// The configuration (or `services.toml`, or a certificate it names)
    /// has an error: nothing was changed.
    pub async fn reload(
        &self,
        who: &str,
        peer: Option<std::net::IpAddr>,
    ) -> Result<Report, ReloadError> {
        let peer = peer.map(|ip| ip.to_string());
        let _one = self.inner.busy.lock().await;
        let result = self.reload_locked().await;
        let audit = self.inner.supervisor.audit();
        match &result {
            Ok(report) => {
                tracing::info!(
                    "reloaded: {} kept, {} restarted, {} added, {} removed, {} stopped{}",
                    report.applied.kept.len(),
                    report.applied.restarted.len(),
                    report.applied.added.len(),
                    report.applied.removed.len(),
                    report.applied.stopped.len(),
                    match report.applied.failed.is_empty() {
                        true => String::new(),
                        false => format!("; failed: {}", report.applied.failed.join("; ")),
                    }
                );
                for setting in &report.needs_restart {
                    tracing::warn!("reload: `{setting}` changed; it applies at the next start");
                }
                audit
                    .record(AuditEvent::Reload {
                        user: who.to_owned(),
                        peer,
                        ok: true,
                        result: serde_json::to_value(report).ok(),
                        error: None,
                    })
                    .await;
            }
            Err(e) => {
                tracing::error!("reload refused: {e}");
                audit
                    .record(AuditEvent::Reload {
                        user: who.to_owned(),
                        peer,
                        ok: false,
                        result: None,
                        error: Some(e.to_string()),
                    })
                    .await;
            }
        }
        result
    }

    async fn reload_locked(&self) -> Result<Report, ReloadError> {
        // From reading services.toml to applying it: a dashboard edit
        // meanwhile would be undone by this copy of the file.
        let writes = self.inner.supervisor.config_writes();
        let _no_edits = writes.lock().await;
        let mut config = (self.inner.load)().map_err(ReloadError::Config)?;
        let old = lock(&self.inner.last).clone();
        crate::config::overlay::Overlay::read(&old.data_dir)
            .and_then(|overlay| overlay.apply(&mut config))
            .map_err(|e| ReloadError::Overlay(e.to_string()))?;
        let supervisor = &self.inner.supervisor;
        let wanted = keep_live_switches(&old.services, config.services.clone(), supervisor);
        supervisor
            .check_tls(&wanted)
            .map_err(|e| ReloadError::Tls(e.to_string()))?;
        let needs_restart = needs_restart(&old, &config);
        crate::failpoint::pause(crate::failpoint::Pause::ReloadApply).await;
        let applied = supervisor.apply(wanted).await;
        *lock(&self.inner.last) = config;
        Ok(Report {
            applied,
            needs_restart,
        })
    }
}

/// `wanted` with the capture switch an admin set live kept, unless the
/// file's own value changed since it was last read.
fn keep_live_switches(
    last: &[ServiceConfig],
    mut wanted: Vec<ServiceConfig>,
    supervisor: &Supervisor,
) -> Vec<ServiceConfig> {
    for w in &mut wanted {
        let before = last.iter().find(|l| l.id == w.id);
        let file_changed = before.is_none_or(|b| b.capture.on != w.capture.on);
        if let (false, Some(now)) = (file_changed, supervisor.config_of(w.id.name())) {
            w.capture.on = now.capture.on;
        }
    }
    wanted
}

/// The settings outside the instances that differ: they apply at the next
/// start only.
fn needs_restart(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |name: &str, same: bool| {
        if !same {
            out.push(name.to_owned());
        }
    };
    check("data_dir", old.data_dir == new.data_dir);
    // A key kept in the data folder reads as none here.
    check("key", new.key.is_none() || old.key == new.key);
    check("web", old.web == new.web);
    check(
        "shutdown_grace_ms",
        old.shutdown_grace == new.shutdown_grace,
    );
    check(
        "capture_total_bytes",
        old.capture_total_bytes == new.capture_total_bytes,
    );
    check(
        "restart_backoff_ms",
        old.restart_backoff == new.restart_backoff
            && old.restart_backoff_max == new.restart_backoff_max,
    );
    out
}
