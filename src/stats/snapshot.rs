//! What a snapshot holds: plain serde data, all the web layer ever sees of
//! the registry.

use super::*;

/// Per-service totals since the process started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceTotals {
    /// Not serialised: where totals are shown, the service is named beside.
    #[serde(skip)]
    pub service: ServiceId,
    /// Connections (TCP) or distinct peers (UDP) accepted.
    pub accepted: u64,
    pub active: u64,
    /// Connections or datagrams turned away by a limit.
    pub refused: u64,
    pub errors: u64,
    /// Failed HMAC handshakes and failed logins.
    pub auth_failures: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// One open connection, copied out of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnInfo {
    pub id: u64,
    pub service: ServiceId,
    pub proto: Proto,
    pub peer: String,
    pub opened_at_unix_ms: u64,
    pub age_ms: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub last_activity_unix_ms: u64,
    pub idle_ms: u64,
}

/// Everything live, as plain data.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub at_unix_ms: u64,
    pub services: Vec<ServiceTotals>,
    pub connections: Vec<ConnInfo>,
}

impl Snapshot {
    /// The totals of the instance `name`.
    ///
    /// # Panics
    /// When no such instance was ever registered: a caller's bug.
    pub fn totals(&self, name: impl AsRef<str>) -> &ServiceTotals {
        let name = name.as_ref();
        self.services
            .iter()
            .find(|t| t.service.name() == name)
            .unwrap_or_else(|| panic!("no service named {name} in the snapshot"))
    }

    pub fn connections_of(&self, name: impl AsRef<str>) -> impl Iterator<Item = &ConnInfo> {
        self.connections
            .iter()
            .filter(move |c| c.service.name() == name.as_ref())
    }
}

/// One second of one service's traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub at_unix_s: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub accepted: u64,
    pub active: u64,
}
