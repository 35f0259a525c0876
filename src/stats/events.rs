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
    /// A stored file removed by an admin from the dashboard.
    FileDeleted {
        service: ServiceId,
        user: String,
        name: String,
    },
    /// A failed sign-in to the dashboard: an `auth_failed` event whose
    /// service is `web`, with the user only when that account exists (a
    /// password typed into the name field is never repeated).
    #[serde(rename = "auth_failed")]
    SignInFailed {
        /// Always `web`.
        service: &'static str,
        peer: String,
        user: Option<String>,
        reason: String,
    },
}

impl EventKind {
    /// The service instance the event is about (`None`: the dashboard).
    pub fn service(&self) -> Option<&ServiceId> {
        match self {
            EventKind::Opened { service, .. }
            | EventKind::Closed { service, .. }
            | EventKind::Refused { service, .. }
            | EventKind::ServiceState { service, .. }
            | EventKind::AuthFailed { service, .. }
            | EventKind::CommandRun { service, .. }
            | EventKind::FileStored { service, .. }
            | EventKind::FileDeleted { service, .. } => Some(service),
            EventKind::SignInFailed { .. } => None,
        }
    }

    /// The name in its `service` field (`web` for the dashboard).
    pub fn service_name(&self) -> &str {
        self.service().map_or("web", ServiceId::name)
    }

    /// The `type` field of its JSON form.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::Opened { .. } => "opened",
            EventKind::Closed { .. } => "closed",
            EventKind::Refused { .. } => "refused",
            EventKind::ServiceState { .. } => "service_state",
            EventKind::AuthFailed { .. } | EventKind::SignInFailed { .. } => "auth_failed",
            EventKind::CommandRun { .. } => "command_run",
            EventKind::FileStored { .. } => "file_stored",
            EventKind::FileDeleted { .. } => "file_deleted",
        }
    }
}
