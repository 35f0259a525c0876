//! Events: what happened, numbered in order, as the event log and the live
//! stream send them.

use super::*;

/// Something that happened, numbered in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub seq: u64,
    pub at_unix_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    Opened {
        id: u64,
        service: ServiceId,
        peer: String,
    },
    Closed {
        id: u64,
        service: ServiceId,
        peer: String,
        bytes_in: u64,
        bytes_out: u64,
        duration_ms: u64,
    },
    Refused {
        service: ServiceId,
        peer: String,
        reason: String,
    },
    ServiceState {
        service: ServiceId,
        state: String,
    },
    /// A wrong HMAC answer, or a failed login.
    AuthFailed {
        service: ServiceId,
        peer: String,
        reason: String,
    },
    /// A remote command ended (`outcome`: `exit 0`, `signal 9`, `error: ...`).
    CommandRun {
        service: ServiceId,
        peer: String,
        argv: Vec<String>,
        outcome: String,
        duration_ms: u64,
        bytes_out: u64,
    },
    /// An upload landed under its final name.
    FileStored {
        service: ServiceId,
        peer: String,
        name: String,
        size: u64,
        sha256: String,
    },
}

impl EventKind {
    /// The service the event is about.
    pub fn service(&self) -> &ServiceId {
        match self {
            EventKind::Opened { service, .. }
            | EventKind::Closed { service, .. }
            | EventKind::Refused { service, .. }
            | EventKind::ServiceState { service, .. }
            | EventKind::AuthFailed { service, .. }
            | EventKind::CommandRun { service, .. }
            | EventKind::FileStored { service, .. } => service,
        }
    }

    /// The `type` field of its JSON form.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::Opened { .. } => "opened",
            EventKind::Closed { .. } => "closed",
            EventKind::Refused { .. } => "refused",
            EventKind::ServiceState { .. } => "service_state",
            EventKind::AuthFailed { .. } => "auth_failed",
            EventKind::CommandRun { .. } => "command_run",
            EventKind::FileStored { .. } => "file_stored",
        }
    }
}
