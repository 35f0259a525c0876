//! `stdio` (TCP): one configured program per connection, inetd-style. The
//! socket's bytes are the program's stdin and its stdout goes back to the
//! socket, so `argv = ["/usr/bin/bc", "-q"]` is a network calculator.
//!
//! The program is fixed by the operator (`argv`, an absolute path checked
//! when the config is read; no shell, no PATH lookup) and a peer only
//! talks to it. Each run is a [`RunningCommand`](super::process) of its
//! own process group, with an environment holding only `env`, in
//! `workdir`.
//!
//! How a connection ends:
//! - the peer half-closes (EOF): the program's stdin is closed, and its
//!   remaining output still goes back until it closes its stdout;
//! - the program closes its stdout (mostly: exits): the rest of the group
//!   is killed and the socket closed after what was sent;
//! - the peer resets or a write to it fails (it is gone), `timeout_ms`
//!   passes, `max_output_bytes` is reached, a write makes no progress for
//!   the idle timeout, the service stops or the process shuts down: the
//!   whole group is killed (SIGKILL, so ignoring SIGTERM or forking does
//!   not help) and the socket is closed.
//!
//! A peer that closes its side fully and says nothing more cannot be told
//! from one that half-closed until something is written to it: a program
//! that neither writes nor exits then runs until `timeout_ms`.
//!
//! Bounds: `max_instances` programs at once (beyond that a client gets one
//! line saying so and is closed), one read buffer each way, and the first
//! [`STDERR_KEPT`] bytes of stderr (the rest is read and dropped, so a
//! chatty program does not block); stderr goes to the log and the audit
//! line, escaped, never to the peer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::listen::{Listener, Peer, Stream};
use super::process::{self, Record};
use super::{Kind, ServiceError, TcpCtx};
use crate::audit::AuditLog;
use crate::kind::ServiceId;
use crate::settings::{ConfigError, Section};
use crate::stats::{ConnGuard, EventKind};
use crate::sync::lock;

/// Bytes moved per read, each way.
const CHUNK: usize = 8 * 1024;
/// The stderr kept per connection for the log and the audit line.
pub const STDERR_KEPT: usize = 4 * 1024;

/// A stdio instance's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The program (an absolute path) and its arguments.
    pub argv: Vec<String>,
    /// The program's whole environment.
    pub env: BTreeMap<String, String>,
    /// The program's working directory.
    pub workdir: PathBuf,
    /// The longest one connection's program may run.
    pub timeout: Duration,
    /// Programs running at once across all connections.
    pub max_instances: usize,
    /// Output sent per connection before its program is killed.
    pub max_output_bytes: u64,
}

impl Settings {
    /// `argv` with the defaults for everything else.
    pub fn new(argv: Vec<String>) -> Self {
        Settings {
            argv,
            env: BTreeMap::new(),
            workdir: PathBuf::from("/tmp"),
            timeout: Duration::from_secs(60),
            max_instances: 16,
            max_output_bytes: 16 << 20,
        }
    }
}

/// Whether `argv` names a program that can be started: non-empty, an
/// absolute path, an existing file with an execute bit.
fn check_argv(argv: &[String]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let Some(program) = argv.first() else {
        return Err("is empty: give the program's absolute path first".into());
    };
    let path = Path::new(program);
    if !path.is_absolute() {
        return Err(format!(
            "`{program}` is not an absolute path (no PATH lookup, no shell: e.g. \"/usr/bin/bc\")"
        ));
    }
    let meta = std::fs::metadata(path).map_err(|e| format!("`{program}`: {e}"))?;
    if !meta.is_file() {
        return Err(format!("`{program}` is not a file"));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("`{program}` is not executable"));
    }
    Ok(())
}

impl Kind for Settings {
    type Socket = Listener;

    fn program(&self) -> Option<&str> {
        Some(self.argv.first().map_or("", String::as_str))
    }

    fn read(s: &Section<'_>) -> Result<Self, ConfigError> {
        // Every key is declared before `argv` is checked, so a form that
        // lists an instance's keys sees them all.
        let argv = s.str_list("argv")?;
        let d = Settings::new(Vec::new());
        let settings = Settings {
            env: s.str_map("env")?.unwrap_or_default(),
            workdir: s.path("workdir", &d.workdir)?,
            timeout: s.ms("timeout_ms", d.timeout, 10, 86_400_000)?,
            max_instances: s.usize("max_instances", d.max_instances, 1, 10_000)?,
            max_output_bytes: s.int("max_output_bytes", d.max_output_bytes, 1, 1 << 40)?,
            argv: argv.unwrap_or_default(),
        };
        check_argv(&settings.argv).map_err(|why| s.bad("argv", why))?;
        // Checked here, not per connection: each client would otherwise
        // read a message naming the program, not the folder.
        if !settings.workdir.is_dir() {
            let why = format!("{} is not an existing folder", settings.workdir.display());
            return Err(s.bad("workdir", why));
        }
        Ok(settings)
    }

    async fn run(self, listener: Listener, ctx: TcpCtx) -> Result<(), ServiceError> {
        let shared = Shared {
            audit: ctx.resources.audit.clone(),
            running: Arc::new(Semaphore::new(self.max_instances)),
            config: self,
        };
        super::accept::serve_tcp_shared(listener, ctx, shared, serve_conn).await;
        Ok(())
    }
}

struct Shared {
    audit: AuditLog,
    config: Settings,
    running: Arc<Semaphore>,
}

/// Why a run ended before its program closed its stdout.
enum Cut {
    /// The peer reset or a write to it failed.
    Gone,
    /// `timeout_ms` passed.
    TimedOut,
    /// `max_output_bytes` were sent.
    Cap,
    /// A write made no progress for the idle timeout.
    Stalled,
}

async fn serve_conn(
    stream: Stream,
    _peer: Peer,
    guard: ConnGuard,
    shared: Arc<Shared>,
    ctx: TcpCtx,
) -> std::io::Result<()> {
    let config = &shared.config;
    let mut stream = stream;
    let Ok(slot) = Arc::clone(&shared.running).try_acquire_owned() else {
        let line = crate::wire::refusal::line(format_args!(
            "{} is running its limit of {} programs, try again later",
            ctx.id, config.max_instances
        ));
        ctx.stats
            .refused(&ctx.id, guard.peer(), "too many programs running");
        say_and_close(&mut stream, &line, ctx.limits.idle_timeout).await;
        return Ok(());
    };
    let record = RunRecord {
        audit: shared.audit.clone(),
        ctx: ctx.clone(),
        close: guard.close_requested(),
        peer: guard.peer().to_owned(),
        argv: config.argv.clone(),
        started: Instant::now(),
        stderr: Mutex::new(Vec::new()),
    };
    let (program, args) = config
        .argv
        .split_first()
        .expect("argv is checked non-empty when the config is read");
    let mut command = command(config, program, args);
    let mut child = match process::spawn_in_group(&mut command) {
        Ok(child) => child,
        Err(e) => {
            let why = format!("cannot start {program}: {e}");
            record.write(&format!("error: {why}"), 0).await;
            let line = crate::wire::refusal::line(&why);
            say_and_close(&mut stream, &line, ctx.limits.idle_timeout).await;
            return Ok(());
        }
    };
    let pipes = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    // From here on, however this ends, the group dies with `running`.
    let mut running = process::RunningCommand::new(child, record, slot);
    let (Some(stdin), Some(stdout), Some(stderr)) = pipes else {
        return Err(std::io::Error::other("the program's pipes were not set up"));
    };
    let deadline = tokio::time::Instant::now() + config.timeout;
    let idle = ctx.limits.idle_timeout;
    let (mut from_peer, mut to_peer) = tokio::io::split(stream);
    let cut = {
        // Field by field: the pumps borrow the count and the stderr buffer;
        // if this future is dropped, `running`'s Drop sees what they saw.
        let sent = &mut running.sent;
        let kept = &running.record.stderr;
        let input = pump_in(&mut from_peer, stdin, &guard);
        let output = pump_out(
            stdout,
            &mut to_peer,
            &guard,
            sent,
            config.max_output_bytes,
            idle,
        );
        let errors = keep_stderr(stderr, kept);
        tokio::pin!(input, output, errors);
        let (mut input_done, mut errors_done) = (false, false);
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => break Err(Cut::TimedOut),
                r = &mut input, if !input_done => match r {
                    Ok(()) => input_done = true,
                    Err(cut) => break Err(cut),
                },
                () = &mut errors, if !errors_done => errors_done = true,
                r = &mut output => break r,
            }
        }
    };
    let child = running.child.as_mut().expect("held until finish or drop");
    let outcome = outcome_of(&cut, child, deadline, config).await;
    let clean = matches!(cut, Ok(()));
    running.finish(&outcome).await;
    let mut stream = from_peer.unsplit(to_peer);
    if clean {
        // Everything the program wrote has been sent: a FIN after it, and
        // unread input swallowed (bounded) so no reset destroys the tail.
        super::accept::linger_close(&mut stream).await;
    } else {
        let _ = tokio::time::timeout(Duration::from_millis(100), stream.shutdown()).await;
    }
    Ok(())
}

/// The audit outcome of a run: after a clean end, the program's exit
/// (waited for within its time, as its stdout is closed); else why it
/// was cut.
async fn outcome_of(
    cut: &Result<(), Cut>,
    child: &mut tokio::process::Child,
    deadline: tokio::time::Instant,
    config: &Settings,
) -> String {
    match cut {
        Ok(()) => match tokio::time::timeout_at(deadline, child.wait()).await {
            Ok(status) => process::status_text(status.ok()),
            Err(_) => timed_out(config.timeout),
        },
        Err(cut) => cut.outcome(config),
    }
}

/// Writes a last line to the peer (bounded by the idle timeout) and
/// closes without a reset.
async fn say_and_close(stream: &mut Stream, line: &str, idle: Duration) {
    let _ = tokio::time::timeout(idle, stream.write_all(line.as_bytes())).await;
    super::accept::linger_close(stream).await;
}

/// The program as an instance runs it: its own environment only, in its
/// working directory, all three pipes.
fn command(config: &Settings, program: &str, args: &[String]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(&config.env)
        .current_dir(&config.workdir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

impl Cut {
    /// The audit outcome of a run cut short this way.
    fn outcome(&self, config: &Settings) -> String {
        match self {
            Cut::TimedOut => timed_out(config.timeout),
            Cut::Cap => format!(
                "error: output cap of {} bytes reached; program killed",
                config.max_output_bytes
            ),
            Cut::Stalled => "error: client stopped reading; program killed".into(),
            Cut::Gone => "disconnected".into(),
        }
    }
}

fn timed_out(after: Duration) -> String {
    format!("error: timed out after {} ms", after.as_millis())
}

/// Copies the peer's bytes to the program's stdin until the peer's EOF
/// (then the stdin is closed, as the pump owns it) or until the program
/// stops taking input. A reset is the peer gone.
async fn pump_in<R: AsyncRead + Unpin>(
    from_peer: &mut R,
    mut stdin: tokio::process::ChildStdin,
    guard: &ConnGuard,
) -> Result<(), Cut> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = from_peer.read(&mut buf).await.map_err(|_| Cut::Gone)?;
        if n == 0 {
            return Ok(());
        }
        guard.received(&buf[..n]);
        // A program that closed its stdin takes no more; its output (or
        // its exit) decides the rest, and the peer's bytes wait unread.
        if stdin.write_all(&buf[..n]).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Copies the program's stdout to the peer, up to `cap` bytes, each write
/// bounded by `idle` (a peer that takes no byte for that long is stalled). `Ok` once the program closes its stdout.
async fn pump_out<W: AsyncWrite + Unpin>(
    mut stdout: tokio::process::ChildStdout,
    to_peer: &mut W,
    guard: &ConnGuard,
    sent: &mut u64,
    cap: u64,
    idle: Duration,
) -> Result<(), Cut> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match stdout.read(&mut buf).await {
            Ok(0) | Err(_) => return Ok(()),
            Ok(n) => n,
        };
        let room = cap.saturating_sub(*sent);
        let take = (n as u64).min(room) as usize;
        // Counted write by write, so the count is what the peer was sent
        // even when a deadline cuts a chunk short.
        let mut rest = &buf[..take];
        while !rest.is_empty() {
            match tokio::time::timeout(idle, to_peer.write(rest)).await {
                Ok(Ok(0) | Err(_)) => return Err(Cut::Gone),
                Ok(Ok(wrote)) => {
                    guard.sent(&rest[..wrote]);
                    *sent += wrote as u64;
                    rest = &rest[wrote..];
                }
                Err(_) => return Err(Cut::Stalled),
            }
        }
        if take < n {
            return Err(Cut::Cap);
        }
    }
}

/// Reads stderr to its end, keeping the first [`STDERR_KEPT`] bytes.
async fn keep_stderr(mut stderr: tokio::process::ChildStderr, kept: &Mutex<Vec<u8>>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut kept = lock(kept);
        let room = STDERR_KEPT.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
}

/// What one run's audit line, log line and `command_run` event are made of.
struct RunRecord {
    audit: AuditLog,
    ctx: TcpCtx,
    close: CancellationToken,
    peer: String,
    argv: Vec<String>,
    started: Instant,
    /// The first [`STDERR_KEPT`] bytes of the program's stderr.
    stderr: Mutex<Vec<u8>>,
}

impl RunRecord {
    fn entry(&self, outcome: &str, bytes_out: u64) -> (crate::audit::AuditEvent, u64) {
        let duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let stderr = String::from_utf8_lossy(&lock(&self.stderr)).into_owned();
        let entry = crate::audit::AuditEvent::Command {
            service: self.ctx.id.name().to_owned(),
            peer: self.peer.clone(),
            argv: self.argv.clone(),
            outcome: outcome.to_owned(),
            duration_ms,
            bytes_out,
            stderr: Some(stderr.clone()),
        };
        // `{:?}` escapes the program's stderr: no newline or ESC reaches the log raw.
        tracing::info!(
            service = %self.ctx.id,
            peer = self.peer,
            ms = duration_ms,
            "{:?}: {} (stderr: {:?})",
            self.argv,
            outcome.escape_debug(),
            stderr
        );
        self.ctx.stats.emit(EventKind::CommandRun {
            service: self.ctx.id.clone(),
            peer: self.peer.clone(),
            argv: self.argv.clone(),
            outcome: outcome.to_owned(),
            duration_ms,
            bytes_out,
        });
        (entry, duration_ms)
    }
}

impl Record for RunRecord {
    async fn write(&self, outcome: &str, bytes_out: u64) {
        let (entry, _) = self.entry(outcome, bytes_out);
        self.audit.record(entry).await;
    }

    fn write_now(&self, outcome: &str, bytes_out: u64) {
        let (entry, _) = self.entry(outcome, bytes_out);
        self.audit.record_now(entry);
    }

    fn ended_early(&self) -> &'static str {
        if self.ctx.process.is_cancelled() {
            "shutdown"
        } else if self.ctx.cancel.is_cancelled() {
            "service stopped"
        } else if self.close.is_cancelled() {
            "closed by admin"
        } else {
            "disconnected"
        }
    }

    fn owner(&self) -> (&TaskTracker, &ServiceId) {
        (&self.ctx.tasks, &self.ctx.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_must_name_an_executable_by_absolute_path() {
        let ok = |a: &[&str]| check_argv(&a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert!(ok(&["/bin/sh", "-c", "true"]).is_ok());
        assert!(ok(&[]).unwrap_err().contains("empty"));
        assert!(ok(&["sh"]).unwrap_err().contains("absolute"));
        assert!(ok(&["/no/such/program"]).is_err());
        assert!(ok(&["/tmp"]).unwrap_err().contains("not a file"));
        assert!(ok(&["/etc/passwd"]).unwrap_err().contains("not executable"));
    }
}
