//! `exec` (TCP): remote commands after the HMAC handshake (seeds/001's
//! remote-command server, with its sticky-packet and authentication lessons
//! applied), speaking the message protocol.
//!
//! Requests: `{"op":"run","argv":[...]}` runs a program on the allowlist
//! (matched by exact name, resolved to an absolute path when the service
//! starts) with the argv as given, no shell anywhere; `{"op":"shell",
//! "line":"..."}` runs `/bin/sh -c` only when the operator set `shell = true`.
//! Output streams back as `stdout`/`stderr` messages while it is produced,
//! then exactly one final `exit` or `error` message; the connection stays
//! open for the next request.
//!
//! Each command runs in its own process group with a cleared environment;
//! on timeout, output cap or client disconnect the whole group gets
//! SIGKILL, so a child that ignores SIGTERM and forks is gone too (one that
//! leaves the group with `setsid` is beyond what a process group can hold).
//!
//! `framing = "raw" | "length-ready" | "struct"` speaks the tutorial's own
//! protocols instead (see [`super::exec_tutorial`]); `header`, the default,
//! is the message protocol above.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::listen::{Listener, Peer, Stream};
use super::{Kind, ServiceError, TcpCtx};
use crate::audit::{AuditEvent, AuditLog};
use crate::conn::ConnError;
use crate::settings::{ConfigError, Section};
use crate::stats::{ConnGuard, EventKind};
use crate::wire::exec::{Command, ExecReply, ExecRequest};

use super::process::Record;

mod running;
use running::{Ended, OutputBufs, Run, run_command};

/// The only PATH a command sees.
pub(super) const SAFE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Looks up each allowed program in [`SAFE_PATH`]; names not found are
/// reported and left out.
pub(crate) fn resolve_allowlist(
    allow: &[String],
    service: &crate::kind::ServiceId,
) -> HashMap<String, PathBuf> {
    let mut found = HashMap::new();
    for name in allow {
        let hit = SAFE_PATH
            .split(':')
            .map(|dir| Path::new(dir).join(name))
            .find(|p| p.is_file());
        match hit {
            Some(path) => {
                found.insert(name.clone(), path);
            }
            None => tracing::warn!(
                service = %service,
                "allowed program `{name}` not found in {SAFE_PATH}"
            ),
        }
    }
    found
}

pub(super) struct Shared {
    key: Vec<u8>,
    pub(super) audit: AuditLog,
    pub(super) config: Settings,
    pub(super) programs: HashMap<String, PathBuf>,
    pub(super) running: Semaphore,
}

/// An exec instance's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Program names that `run` may start, looked up in a fixed PATH at start.
    pub allow: Vec<String>,
    /// Whether `shell` requests (`/bin/sh -c LINE`) are allowed. Off by default.
    pub shell: bool,
    /// The longest a command may run; a request may ask for less, not more.
    pub timeout: Duration,
    /// Output (stdout and stderr together) sent per command before it is killed.
    pub max_output_bytes: u64,
    /// Commands running at once across all connections.
    pub max_commands: usize,
    /// The working directory (and HOME) of every command.
    pub workdir: PathBuf,
    /// How requests and output are framed on the wire.
    pub framing: Framing,
    /// The tutorial's client check, for the tutorial framings.
    pub auth: super::tutorial_auth::TutorialAuth,
}

/// Whether an instance needs the process's HMAC key: `files`, and `exec`
/// on its own framing (the tutorial framings have `auth_key`).
pub fn needs_key(kind: crate::kind::ServiceKind, settings: &crate::settings::AnySettings) -> bool {
    match kind {
        crate::kind::ServiceKind::Files => true,
        crate::kind::ServiceKind::Exec => settings
            .get::<Settings>()
            .is_some_and(|s| s.framing == Framing::Header),
        _ => false,
    }
}

/// `framing`: our message protocol, or one of seeds/001's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// The message protocol with our HMAC handshake (the default).
    #[default]
    Header,
    /// The output bare: the naive server of the sticky-packet lesson.
    Raw,
    /// 方式一: the length as decimal text, `ready` from the client, the output.
    LengthReady,
    /// 方式二: `struct.pack('i', len)` (4 bytes, native order), the output.
    Struct,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            allow: ["date", "uptime", "uname", "ls", "df", "echo", "whoami"]
                .map(String::from)
                .to_vec(),
            shell: false,
            timeout: Duration::from_secs(10),
            max_output_bytes: 1 << 20,
            max_commands: 8,
            workdir: PathBuf::from("/tmp"),
            framing: Framing::Header,
            auth: super::tutorial_auth::TutorialAuth::default(),
        }
    }
}

impl Kind for Settings {
    type Socket = Listener;

    fn read(s: &Section<'_>) -> Result<Self, ConfigError> {
        let d = Settings::default();
        let allow = s.str_list("allow")?.unwrap_or(d.allow);
        if let Some(bad) = allow.iter().find(|p| p.is_empty() || p.contains('/')) {
            return Err(s.bad(
                "allow",
                format!(
                    "`{bad}`: list program names, not paths (they are looked up in PATH at start)"
                ),
            ));
        }
        let settings = Settings {
            allow,
            shell: s.bool("shell", d.shell)?,
            timeout: s.ms("timeout_ms", d.timeout, 10, 86_400_000)?,
            max_output_bytes: s.int("max_output_bytes", d.max_output_bytes, 1, 1 << 40)?,
            max_commands: s.usize("max_commands", d.max_commands, 1, 10_000)?,
            workdir: s.path("workdir", &d.workdir)?,
            framing: match s.opt_str("framing")?.as_deref() {
                None | Some("header") => Framing::Header,
                Some("raw") => Framing::Raw,
                Some("length-ready") => Framing::LengthReady,
                Some("struct") => Framing::Struct,
                Some(other) => {
                    return Err(s.bad(
                        "framing",
                        format!(
                            "`{other}`: expected \"header\", \"raw\", \"length-ready\" or \"struct\""
                        ),
                    ));
                }
            },
            auth: super::tutorial_auth::TutorialAuth::read(s)?,
        };
        super::exec_tutorial::check_exposure_config(s, &settings)?;
        Ok(settings)
    }

    async fn run(self, listener: Listener, ctx: TcpCtx) -> Result<(), ServiceError> {
        run(listener, ctx, self).await
    }
}

/// Runs the exec service until `ctx.cancel` fires.
///
/// # Errors
/// No HMAC key (`header` framing), no check of clients on a public port
/// (tutorial framings); otherwise none in practice: accept errors are
/// logged and retried.
async fn run(listener: Listener, ctx: TcpCtx, config: Settings) -> Result<(), ServiceError> {
    let tutorial = config.framing != Framing::Header;
    if tutorial {
        super::exec_tutorial::check_exposure(&listener, &ctx, &config)?;
    }
    let key = if tutorial { Vec::new() } else { ctx.key()? };
    let shared = Shared {
        audit: ctx.resources.audit.clone(),
        programs: resolve_allowlist(&config.allow, &ctx.id),
        running: Semaphore::new(config.max_commands),
        key,
        config,
    };
    if tutorial {
        super::accept::serve_tcp_shared(listener, ctx, shared, super::exec_tutorial::serve_conn)
            .await;
        return Ok(());
    }
    super::accept::serve_tcp_shared(listener, ctx, shared, serve_conn).await;
    Ok(())
}

type Conn = super::accept::MessageStream;

async fn serve_conn(
    stream: Stream,
    _peer: Peer,
    guard: ConnGuard,
    shared: Arc<Shared>,
    ctx: TcpCtx,
) -> Result<(), ConnError> {
    let (shared, ctx, guard) = (&*shared, &ctx, &guard);
    let mut conn = super::authed::authed_message_conn(stream, &shared.key, ctx, guard).await?;
    // The output buffers, made at the first command and kept for the
    // connection: two 8 KiB allocations and frees per command cost more
    // than the rest of the bookkeeping (malloc consolidates on each).
    let mut bufs = OutputBufs::default();
    // One request at a time: a pipelined request waits (in our bounded
    // buffer or the peer's socket) until the one before it has ended, and
    // holds no command slot meanwhile.
    loop {
        let header = match super::authed::next_header(&mut conn, ctx, guard).await {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(()),
            Err(ConnError::Wire(e)) => {
                // Tell the peer why, then close: the stream cannot be trusted now.
                let _ = conn.write_message(&ExecReply::error(&e), &[]).await;
                return Err(ConnError::Wire(e));
            }
            Err(e) => return Err(e),
        };
        if header.size > 0 {
            let why = ExecReply::error("exec requests carry no body");
            let _ = conn.write_message(&why, &[]).await;
            return Ok(());
        }
        let request = header.request::<ExecRequest>();
        let record = CommandRecord {
            shared,
            ctx,
            guard,
            argv: request.as_ref().map_or_else(|_| Vec::new(), shown_argv),
            started: Instant::now(),
        };
        let checked = request
            .map_err(|e| e.to_string())
            .and_then(|r| Ok((resolve(&r.command, shared)?, r.timeout_ms)));
        let ((program, args), timeout_ms) = match checked {
            Ok(r) => r,
            Err(why) => {
                refuse(&mut conn, &record, why).await?;
                continue;
            }
        };
        let timeout = timeout_ms.map_or(shared.config.timeout, |ms| {
            Duration::from_millis(ms).min(shared.config.timeout)
        });
        let Ok(permit) = shared.running.try_acquire() else {
            let why = format!(
                "busy: {} commands already running",
                shared.config.max_commands
            );
            refuse(&mut conn, &record, why).await?;
            continue;
        };
        let run = Run {
            program: &program,
            args: &args,
            timeout,
            bufs: &mut bufs,
        };
        match run_command(&mut conn, run, record, permit).await? {
            Ended::Final(reply) => bufs.send_final(&mut conn, &reply).await?,
            Ended::ClientGone => return Ok(()),
        }
    }
}

/// The argv as the client asked for it, for the audit log and events
/// (empty for a request that could not be read).
fn shown_argv(request: &ExecRequest) -> Vec<String> {
    match &request.command {
        Command::Run { argv } => argv.iter().take(64).cloned().collect(),
        Command::Shell { line } => vec!["/bin/sh".into(), "-c".into(), line.clone()],
    }
}

/// Answers a request that will not run, and records it like any other.
async fn refuse(conn: &mut Conn, record: &CommandRecord<'_>, why: String) -> Result<(), ConnError> {
    record.write(&format!("error: {why}"), 0).await;
    conn.write_message(&ExecReply::error(why), &[]).await
}

/// What one request's audit line and `command_run` event are made of.
pub(super) struct CommandRecord<'a> {
    pub(super) shared: &'a Shared,
    pub(super) ctx: &'a TcpCtx,
    pub(super) guard: &'a crate::stats::ConnGuard,
    pub(super) argv: Vec<String>,
    pub(super) started: Instant,
}

impl Record for CommandRecord<'_> {
    /// One audit line, one log line and one `command_run` event.
    async fn write(&self, outcome: &str, bytes_out: u64) {
        let (entry, duration_ms) = self.entry(outcome, bytes_out);
        self.shared.audit.record(entry).await;
        self.emit(outcome, duration_ms, bytes_out);
    }

    /// [`Record::write`] without waiting, for a `Drop`.
    fn write_now(&self, outcome: &str, bytes_out: u64) {
        let (entry, duration_ms) = self.entry(outcome, bytes_out);
        self.shared.audit.record_now(entry);
        self.emit(outcome, duration_ms, bytes_out);
    }

    /// Why a request ended without its final message, read off the tokens
    /// from the widest down: the process, the service, the connection.
    fn ended_early(&self) -> &'static str {
        if self.ctx.process.is_cancelled() {
            "shutdown"
        } else if self.ctx.cancel.is_cancelled() {
            "service stopped"
        } else if self.guard.close_requested().is_cancelled() {
            "closed by admin"
        } else {
            "disconnected"
        }
    }

    fn owner(&self) -> (&tokio_util::task::TaskTracker, &crate::kind::ServiceId) {
        (&self.ctx.tasks, &self.ctx.id)
    }
}

impl CommandRecord<'_> {
    fn entry(&self, outcome: &str, bytes_out: u64) -> (AuditEvent, u64) {
        let duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let entry = AuditEvent::Command {
            service: self.ctx.id.name().to_owned(),
            peer: self.guard.peer().to_owned(),
            argv: self.argv.clone(),
            outcome: outcome.to_owned(),
            duration_ms,
            bytes_out,
            stderr: None,
        };
        (entry, duration_ms)
    }

    fn emit(&self, outcome: &str, duration_ms: u64, bytes_out: u64) {
        self.ctx
            .stats
            .observe_exec(&self.ctx.id, self.started.elapsed());
        // `{:?}` escapes the peer's argv: no newline or ESC reaches the log raw.
        tracing::info!(
            service = %self.ctx.id,
            peer = self.guard.peer(),
            ms = duration_ms,
            "{:?}: {}",
            self.argv,
            outcome.escape_debug()
        );
        self.ctx.stats.emit(EventKind::CommandRun {
            service: self.ctx.id.clone(),
            peer: self.guard.peer().to_owned(),
            argv: self.argv.clone(),
            outcome: outcome.to_owned(),
            duration_ms,
            bytes_out,
        });
    }
}

/// Checks a command against the allowlist and shell setting: the program
/// to start and its arguments.
fn resolve(command: &Command, shared: &Shared) -> Result<(PathBuf, Vec<String>), String> {
    match command {
        Command::Run { argv } => {
            let Some((name, args)) = argv.split_first() else {
                return Err("\"argv\" is empty".into());
            };
            let program = shared.programs.get(name).ok_or_else(|| {
                let mut allowed: Vec<&str> = shared.programs.keys().map(String::as_str).collect();
                allowed.sort_unstable();
                format!("`{name}` is not allowed (allowed: {})", allowed.join(", "))
            })?;
            Ok((program.clone(), args.to_vec()))
        }
        Command::Shell { line } => {
            if !shared.config.shell {
                return Err(
                    "shell mode is off (the operator can set services.exec.shell = true)".into(),
                );
            }
            Ok((PathBuf::from("/bin/sh"), vec!["-c".into(), line.clone()]))
        }
    }
}
