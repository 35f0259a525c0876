//! What a proxy instance last learned of its upstream, as typed data: up or
//! down (and why), since when, and when it was last probed. The proxy's
//! health check ([`crate::service::upstream::Health`]) writes it; the
//! dashboard's instance view reads it, so no page parses event text to know
//! an upstream's state.
//!
//! Not here: the probing itself, or the `service_state` events a change
//! also becomes (those stay the history; this is the current state).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

use super::{Stats, unix_ms};
use crate::kind::ServiceId;
use crate::sync::lock;

/// An upstream's state as last seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamState {
    /// The upstream's address as configured (`127.0.0.1:6379`,
    /// `redis.internal:6379`, `unix:/run/a.sock`).
    pub upstream: String,
    /// Whether the last connect to it (a client's or the probe's) worked.
    pub up: bool,
    /// Why it is down (`connection refused`); `None` while up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it last went up or down (Unix milliseconds).
    pub since_unix_ms: u64,
    /// When the health probe last connected to it (Unix milliseconds);
    /// `None` before the first probe.
    pub probed_unix_ms: Option<u64>,
}

/// Every proxy instance's upstream state, by instance. One entry per proxy
/// instance that ever ran (bounded by the instances), replaced whole.
#[derive(Default)]
pub(super) struct Upstreams(Mutex<HashMap<ServiceId, UpstreamState>>);

impl Stats {
    /// Records that `service`'s upstream went up (`reason` `None`) or down.
    pub fn upstream_changed(&self, service: &ServiceId, upstream: String, reason: Option<String>) {
        let now = unix_ms(SystemTime::now());
        let mut table = lock(&self.inner.upstreams.0);
        let probed = table.get(service).and_then(|s| s.probed_unix_ms);
        table.insert(
            service.clone(),
            UpstreamState {
                upstream,
                up: reason.is_none(),
                reason,
                since_unix_ms: now,
                probed_unix_ms: probed,
            },
        );
    }

    /// Records that `service`'s health probe just connected (or tried) to
    /// its upstream; the outcome is [`Stats::upstream_changed`]'s.
    pub fn upstream_probed(&self, service: &ServiceId) {
        let now = unix_ms(SystemTime::now());
        if let Some(state) = lock(&self.inner.upstreams.0).get_mut(service) {
            state.probed_unix_ms = Some(now);
        }
    }

    /// Forgets `service`'s upstream (a proxy starting afresh, say with
    /// another upstream).
    pub fn upstream_forget(&self, service: &ServiceId) {
        lock(&self.inner.upstreams.0).remove(service);
    }

    /// `service`'s upstream as last seen; `None` for an instance that is
    /// not a proxy, or before its first connect.
    pub fn upstream(&self, service: &ServiceId) -> Option<UpstreamState> {
        lock(&self.inner.upstreams.0).get(service).cloned()
    }
}
