//! What an audit line says: one variant per kind of record, serialised to
//! the JSON object each line has always held (`"event"` names the variant,
//! `"action"` the step for tokens).
//!
//! A field that a record sometimes carries and sometimes lacks is skipped
//! when `None`; one that has always been written as `null` is a plain
//! `Option`. `tests/audit_format.rs` holds lines written before this enum
//! existed and checks each is read and written back byte for byte.
//!
//! Not here: the timestamp (`at`, taken when the event is recorded and
//! written in front of it) and the
//! escaping of control characters (see [`super`]).

use serde::{Deserialize, Serialize};

use crate::users::Role;

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuditEvent {
    /// A command run by `exec` or a program run by `stdio`.
    Command {
        service: String,
        peer: String,
        argv: Vec<String>,
        outcome: String,
        duration_ms: u64,
        bytes_out: u64,
        /// What a stdio program wrote to stderr (stdio only).
        #[serde(skip_serializing_if = "Option::is_none")]
        stderr: Option<String>,
    },
    /// A file stored by the `files` service.
    FileStored {
        service: String,
        peer: String,
        name: String,
        size: u64,
        sha256: String,
        duration_ms: u64,
    },
    /// A sign-in, at the `login` service (`service: "login"`) or the
    /// dashboard (`"web"`). `user` is `None` for a name with no account: a
    /// password typed into the name field must not reach the log.
    Login {
        service: String,
        peer: String,
        user: Option<String>,
        /// The role signed in as, on success.
        #[serde(skip_serializing_if = "Option::is_none")]
        role: Option<Role>,
        ok: bool,
    },
    /// An API token made, revoked or used.
    Token(TokenEvent),
    /// A reload (`user` is who asked: `signal`, `cli`, a dashboard user).
    Reload {
        user: String,
        /// The client's address, for an action from the dashboard (absent
        /// in lines written before it was kept, and from the command line, a
        /// signal or the Toxiproxy API).
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        ok: bool,
        /// What it did, as `reload::Report` serialises (a higher floor).
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<serde_json::Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The wire inspector switched on or off for an instance.
    Capture {
        service: String,
        capture: bool,
        user: String,
        /// The client's address, for an action from the dashboard (absent
        /// in lines written before it was kept, and from the command line, a
        /// signal or the Toxiproxy API).
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        ok: bool,
    },
    /// A captured conversation replayed from the dashboard.
    Replay {
        connection: u64,
        target: String,
        user: String,
        /// The client's address, for an action from the dashboard (absent
        /// in lines written before it was kept, and from the command line, a
        /// signal or the Toxiproxy API).
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        outcome: String,
    },
    /// A command run from the dashboard: an argv, or a shell line.
    WebExec {
        user: String,
        /// The client's address (absent in lines written before it was kept).
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        argv: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<String>,
    },
    /// A file uploaded through the dashboard.
    WebUpload {
        user: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        name: String,
        size: u64,
        sha256: String,
    },
    /// A file deleted through the dashboard.
    WebDelete {
        user: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        name: String,
    },
    /// The sticky-packet lab run from the dashboard.
    WebStickyExec {
        user: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        instances: Vec<String>,
        commands: Vec<String>,
        /// The toxic of the temporary proxy each side went through, as
        /// the lab describes it (`slicer on downstream (average_size=1, …)`).
        #[serde(skip_serializing_if = "Option::is_none")]
        through: Option<String>,
    },
    /// A resumable (tus) upload: created, ended, expired (`length`), or
    /// completed (`size`, `sha256`).
    Upload {
        action: String,
        user: String,
        /// The client's address, when a request caused the line (not an
        /// expiry; absent in lines written before it was kept).
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        id: String,
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        length: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
    },
    /// An instance added, changed or removed from the dashboard.
    ServiceConfig {
        action: String,
        service: String,
        user: String,
        /// The client's address, for an action from the dashboard (absent
        /// in lines written before it was kept, and from the command line, a
        /// signal or the Toxiproxy API).
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        ok: bool,
        error: Option<String>,
    },
    /// An operator's answer in a chat.
    ChatReply {
        user: String,
        service: String,
        peer: String,
        bytes: usize,
        ok: bool,
    },
    /// An instance started, stopped or restarted from the dashboard.
    Service {
        service: String,
        action: String,
        user: String,
        /// The client's address, for an action from the dashboard (absent
        /// in lines written before it was kept, and from the command line, a
        /// signal or the Toxiproxy API).
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        ok: bool,
        error: Option<String>,
    },
    /// A connection closed from the dashboard.
    CloseConnection {
        id: u64,
        user: String,
        /// The client's address, for an action from the dashboard (absent
        /// in lines written before it was kept, and from the command line, a
        /// signal or the Toxiproxy API).
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
    },
    /// A toxic added, changed or removed (`via`: `api` or `toxiproxy`).
    Toxic {
        action: String,
        service: String,
        user: String,
        /// The client's address, for an action from the dashboard (absent
        /// in lines written before it was kept, and from the command line, a
        /// signal or the Toxiproxy API).
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        via: String,
        ok: bool,
        toxic: Option<String>,
        error: Option<String>,
    },
}

/// The steps of an API token's life (`"action"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum TokenEvent {
    /// Made, from the dashboard (`service: "web"`, with `user`) or the
    /// command line (`"cli"`).
    Create {
        service: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        /// The client's address, for an action from the dashboard (absent
        /// in lines written before it was kept, and from the command line, a
        /// signal or the Toxiproxy API).
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        token: String,
        role: Role,
        expires_unix: Option<u64>,
    },
    /// Revoked, from the dashboard or the command line.
    Revoke {
        service: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        /// The client's address, for an action from the dashboard (absent
        /// in lines written before it was kept, and from the command line, a
        /// signal or the Toxiproxy API).
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        token: String,
    },
    /// Used for a change (or refused: `token` is `None` when unknown, and
    /// `reason` says why).
    Use {
        service: String,
        peer: String,
        token: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        role: Option<Role>,
        method: String,
        path: String,
        ok: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}
