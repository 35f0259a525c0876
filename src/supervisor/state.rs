//! An instance's state and status, as plain data for the API and pages.

use serde::Serialize;

use crate::kind::{Proto, ServiceId, ServiceKind};

/// A service's state, as shown everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceState {
    Running,
    Stopped,
    Failed(String),
}

impl std::fmt::Display for ServiceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServiceState::Running => f.write_str("running"),
            ServiceState::Stopped => f.write_str("stopped"),
            ServiceState::Failed(reason) => write!(f, "failed: {reason}"),
        }
    }
}

impl ServiceState {
    /// `running`, `stopped` or `failed`, without the reason.
    pub fn name(&self) -> &'static str {
        match self {
            ServiceState::Running => "running",
            ServiceState::Stopped => "stopped",
            ServiceState::Failed(_) => "failed",
        }
    }

    /// Why it failed, if it did.
    pub fn reason(&self) -> Option<&str> {
        match self {
            ServiceState::Failed(reason) => Some(reason),
            _ => None,
        }
    }
}

/// One instance's status, as plain data.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub name: ServiceId,
    pub kind: ServiceKind,
    pub proto: Proto,
    /// The configured address.
    pub listen: String,
    /// The address actually bound while running (differs for port 0).
    pub local_addr: Option<String>,
    /// `running`, `stopped` or `failed: <reason>`, as one line of text.
    pub state: String,
    /// `running`, `stopped` or `failed`: the state without its reason.
    pub phase: &'static str,
    /// Why it failed, when it did.
    pub reason: Option<String>,
    /// The state, typed.
    #[serde(skip)]
    pub status: ServiceState,
    pub enabled: bool,
    /// Whether it takes connections through a trusted proxy only
    /// (`accept_proxy`): the dashboard's "same from a shell" says so.
    pub accept_proxy: bool,
    /// Where it is defined: `builtin`, `config` (the file, environment or
    /// flags) or `dashboard` (`services.toml`).
    pub source: crate::config::Source,
    /// When the state last changed.
    pub since_unix_ms: u64,
}
