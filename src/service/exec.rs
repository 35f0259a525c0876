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
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

use super::listen::{Listener, Peer, Stream};
use super::{Kind, ServiceError, TcpCtx};
use crate::audit::{AuditEvent, AuditLog};
use crate::conn::ConnError;
use crate::settings::{ConfigError, Section};
use crate::stats::{ConnGuard, EventKind};
use crate::wire::exec::{Command, ExecReply, ExecRequest, Exit};

use super::process::{self, Audit, Record};

/// A command running for one request, holding one of the command slots.
type RunningCommand<'a> =
    process::RunningCommand<CommandRecord<'a>, tokio::sync::SemaphorePermit<'a>>;

/// The only PATH a command sees.
pub(super) const SAFE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Output is read and sent in chunks of at most this many bytes.
const OUTPUT_CHUNK: usize = 8 * 1024;

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
            Ended::Final(reply) => conn.write_message(&reply, &[]).await?,
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

/// How a command's request ended, as far as the connection is concerned.
enum Ended {
    /// Send this final message; the connection goes on.
    Final(ExecReply),
    /// The client went away while the command ran.
    ClientGone,
}

/// `exit 0`, `signal 9`, `error: timed out after 100 ms`, ...
fn outcome_text(reply: &ExecReply) -> String {
    match reply {
        ExecReply::Exit(Exit::Code { code }) => format!("exit {code}"),
        ExecReply::Exit(Exit::Signal { signal }) => format!("signal {signal}"),
        ExecReply::Error { error } => format!("error: {error}"),
        ExecReply::Stdout | ExecReply::Stderr => "output".into(),
    }
}

/// The command as exec runs it: no shell, a clean environment, the
/// working directory as HOME, no stdin, output piped.
fn command(program: &Path, args: &[String], workdir: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .env("LANG", "C.UTF-8")
        .env("HOME", workdir)
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Ends a command: killed early (`early`, with why) or exited by itself
/// (its status is the reply); either way audited once.
async fn finish(mut running: RunningCommand<'_>, early: Option<Ended>) -> Result<Ended, ConnError> {
    match early {
    Some(Ended::ClientGone) => {
        running.finish("disconnected").await;
        Ok(Ended::ClientGone)
    }
    Some(Ended::Final(reply)) => {
        running.finish(&outcome_text(&reply)).await;
        Ok(Ended::Final(reply))
    }
    None => {
        let status = running.finish_status().await;
        use std::os::unix::process::ExitStatusExt;
        let reply = match status.as_ref().map(|s| (s.code(), s.signal())) {
            Some((Some(code), _)) => ExecReply::Exit(Exit::Code { code }),
            Some((None, Some(signal))) => ExecReply::Exit(Exit::Signal { signal }),
            _ => ExecReply::error("the command ended without a status"),
        };
        running.record_final(&outcome_text(&reply)).await;
        Ok(Ended::Final(reply))
    }
}
}

/// One checked request: what to run, for how long, with which buffers.
struct Run<'b> {
    program: &'b Path,
    args: &'b [String],
    timeout: Duration,
    bufs: &'b mut OutputBufs,
}

/// A connection's stdout and stderr buffers, made when first needed.
#[derive(Default)]
struct OutputBufs(Option<(Vec<u8>, Vec<u8>)>);

impl OutputBufs {
    fn get(&mut self) -> (&mut [u8], &mut [u8]) {
        let (out, err) = self
            .0
            .get_or_insert_with(|| (vec![0u8; OUTPUT_CHUNK], vec![0u8; OUTPUT_CHUNK]));
        (out, err)
    }
}

/// Runs one command to its end, streaming its output. Every wait is bound
/// in wall time: the command's deadline holds while a write to the peer is
/// blocked, and a peer that takes no byte for the idle timeout is dropped
/// (the stream's [`WriteTimeout`](crate::conn::WriteTimeout)).
async fn run_command<'a>(
    conn: &mut Conn,
    run: Run<'_>,
    record: CommandRecord<'a>,
    slot: tokio::sync::SemaphorePermit<'a>,
) -> Result<Ended, ConnError> {
    let Run {
        program,
        args,
        timeout,
        bufs,
    } = run;
    let (out_buf, err_buf) = bufs.get();
    let shared = record.shared;
    let mut command = command(program, args, &shared.config.workdir);
    let mut child = match process::spawn_in_group(&mut command) {
        Ok(c) => c,
        Err(e) => {
            let reply = ExecReply::error(format!("cannot start {}: {e}", program.display()));
            record.write(&outcome_text(&reply), 0).await;
            return Ok(Ended::Final(reply));
        }
    };
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut running = RunningCommand::new(child, record, slot);
    let cap = shared.config.max_output_bytes;
    let mut exited = false;
    let deadline = Instant::now() + timeout;
    let timed_out = || ExecReply::error(format!("timed out after {} ms", timeout.as_millis()));

    let early = loop {
        if exited && stdout.is_none() && stderr.is_none() {
            break None;
        }
        let child = running.child.as_mut().expect("held until finish or drop");
        let (kind, n) = tokio::select! {
            () = tokio::time::sleep_until(deadline.into()) => break Some(Ended::Final(timed_out())),
            read = async { stdout.as_mut().expect("guarded").read(out_buf).await }, if stdout.is_some() => {
                match read { Ok(0) | Err(_) => { stdout = None; continue } Ok(n) => (ExecReply::Stdout, n) }
            }
            read = async { stderr.as_mut().expect("guarded").read(err_buf).await }, if stderr.is_some() => {
                match read { Ok(0) | Err(_) => { stderr = None; continue } Ok(n) => (ExecReply::Stderr, n) }
            }
            status = child.wait(), if !exited => {
                status?;
                exited = true;
                continue;
            }
            more = conn.fill(), if conn.can_fill() => match more {
                // Bytes from the client mid-command are its next request: kept.
                Ok(n) if n > 0 => continue,
                _ => break Some(Ended::ClientGone),
            },
        };
        let room = cap.saturating_sub(running.sent);
        let take = (n as u64).min(room) as usize;
        let chunk = if kind == ExecReply::Stdout {
            &out_buf[..take]
        } else {
            &err_buf[..take]
        };
        if take > 0 {
            match tokio::time::timeout_at(deadline.into(), conn.write_message(&kind, chunk)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    // A reset or a close reads as `disconnected` in Drop.
                    if matches!(&e, ConnError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
                    {
                        let why = "error: client stopped reading; command killed";
                        running.audit = Audit::Failed(why.into());
                    }
                    return Err(e);
                }
                Err(_) => {
                    // The deadline passed mid-write: the message may be cut, so
                    // the connection cannot go on. Recorded, then closed.
                    let outcome = outcome_text(&timed_out());
                    running.finish(&outcome).await;
                    return Err(ConnError::Timeout(timeout));
                }
            }
            running.sent += take as u64;
        }
        if take < n {
            break Some(Ended::Final(ExecReply::error(format!(
                "output cap of {cap} bytes reached; command killed"
            ))));
        }
    };
    finish(running, early).await
}
