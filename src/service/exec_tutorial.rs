//! `exec` with a tutorial framing (seeds/001 "基于tcp实现远程命令" and its
//! sticky-packet lesson): what one `recv` returns is one command line, and
//! the answer is what the tutorial's server sends, framed its way.
//!
//! ```text
//! client: "ls -l"                     (one read of at most 1024 bytes)
//! raw:          <output>              (bare: the reader cannot tell its end)
//! length-ready: "<len>"  client: "ready"  <output>
//! struct:       <len as 4 bytes, native order, like struct.pack('i')> <output>
//! ```
//!
//! The output is the command's stderr if it wrote any, else its stdout,
//! else `操作成功`, as the tutorial's server decides. Unlike it, the line is
//! split into argv with shell-words rules and run without a shell (unless
//! `shell = true`), only programs on the allowlist run, every command has
//! the service's time limit and an output cap, and a refusal is answered
//! with its reason as the output. `raw` keeps the lesson's flaw on purpose:
//! a long output spills into the next read of a client that reads 1024
//! bytes at a time.
//!
//! What this does not do: stream output (the tutorial sends it whole once
//! the command ended), or read more than one command per read (two
//! commands that arrive glued are one line, as they are to the tutorial).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::exec::{CommandRecord, Framing, SAFE_PATH, Settings, Shared};
use super::listen::{Listener, Peer, Stream};
use super::process::{self, Record};
use super::{ServiceError, TcpCtx};
use crate::stats::ConnGuard;

/// The longest command line: one `recv(1024)`, as the tutorial reads.
pub const MAX_COMMAND: usize = 1024;
/// What a command that printed nothing is answered with.
pub const SUCCESS: &str = "操作成功";
/// The most output held for one answer, whatever `max_output_bytes` says:
/// a tutorial framing sends the output whole, so it is held in memory.
pub const MAX_HELD_OUTPUT: u64 = 16 << 20;

/// Why a tutorial connection ended early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TutorialError {
    #[error("idle for {0:?}")]
    Idle(Duration),
    #[error("wrong answer to the challenge")]
    AuthFailed,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Refuses to run commands for anyone who reaches a public port unchecked:
/// `auth = "none"` is only for loopback (or a Unix socket) unless TLS is on.
///
/// # Errors
/// A non-loopback address with neither `auth` nor `tls`.
pub(super) fn check_exposure(
    listener: &Listener,
    ctx: &TcpCtx,
    config: &Settings,
) -> Result<(), ServiceError> {
    if config.auth.is_on() || listener.tls().is_some() {
        return Ok(());
    }
    match listener.local_addr().ok().and_then(|a| a.inet()) {
        Some(addr) if !addr.ip().is_loopback() => Err(ServiceError::Tls(
            ctx.id.clone(),
            format!(
                "a tutorial framing with auth = \"none\" would run commands for anyone who \
                 reaches {addr}: listen on loopback, set auth = \"hmac-sha256\" with auth_key, \
                 or turn tls on"
            ),
        )),
        _ => Ok(()),
    }
}

/// [`check_exposure`] at config time, from the `listen` and `tls` keys.
///
/// # Errors
/// A non-loopback `listen` with neither `auth` nor `tls`.
pub(super) fn check_exposure_config(
    s: &crate::settings::Section<'_>,
    config: &Settings,
) -> Result<(), crate::settings::ConfigError> {
    if config.framing == Framing::Header || config.auth.is_on() || s.bool("tls", false)? {
        return Ok(());
    }
    let listen = s.opt_str("listen")?;
    let addr = listen.and_then(|t| t.parse::<crate::settings::ListenAddr>().ok());
    match addr.and_then(|a| a.inet()) {
        Some(addr) if !addr.ip().is_loopback() => Err(s.bad(
            "auth",
            format!(
                "\"none\" with a tutorial framing would run commands for anyone who reaches \
                 {addr}: listen on loopback, set auth = \"hmac-sha256\" with auth_key, or turn \
                 tls on"
            ),
        )),
        _ => Ok(()),
    }
}

/// One connection: the optional challenge, then a command per read.
pub(super) async fn serve_conn(
    stream: Stream,
    _peer: Peer,
    guard: ConnGuard,
    shared: Arc<Shared>,
    ctx: TcpCtx,
) -> Result<(), TutorialError> {
    let idle = ctx.limits.idle_timeout;
    let mut stream = super::counted::Counted::new(stream, guard.counter());
    let auth = &shared.config.auth;
    if !auth
        .challenge(&mut stream, super::accept::HANDSHAKE_TIMEOUT)
        .await?
    {
        ctx.stats
            .auth_failed(&ctx.id, guard.peer(), "wrong challenge answer");
        return Err(TutorialError::AuthFailed);
    }
    let mut buf = [0u8; MAX_COMMAND];
    loop {
        let n = within(idle, stream.read(&mut buf)).await?;
        if n == 0 {
            return Ok(());
        }
        guard.touch();
        let line = String::from_utf8_lossy(&buf[..n]).trim().to_owned();
        let output = answer(&line, &shared, &ctx, &guard).await;
        send(&mut stream, shared.config.framing, &output, idle, &mut buf).await?;
    }
}

/// An I/O step bounded by `limit`.
async fn within<T>(
    limit: Duration,
    step: impl Future<Output = io::Result<T>>,
) -> Result<T, TutorialError> {
    Ok(tokio::time::timeout(limit, step)
        .await
        .map_err(|_| TutorialError::Idle(limit))??)
}

/// Sends `output` framed as `framing` says.
async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    framing: Framing,
    output: &[u8],
    idle: Duration,
    buf: &mut [u8],
) -> Result<(), TutorialError> {
    match framing {
        Framing::Raw | Framing::Header => within(idle, stream.write_all(output)).await,
        Framing::LengthReady => {
            let length = output.len().to_string();
            within(idle, stream.write_all(length.as_bytes())).await?;
            // The tutorial's server sends the output only after `ready`;
            // anything else read here is dropped, as there.
            let n = within(idle, stream.read(buf)).await?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
            if &buf[..n] == b"ready" {
                within(idle, stream.write_all(output)).await?;
            }
            Ok(())
        }
        Framing::Struct => {
            let length = i32::try_from(output.len())
                .expect("outputs are capped at MAX_HELD_OUTPUT, below i32::MAX");
            within(idle, stream.write_all(&length.to_ne_bytes())).await?;
            within(idle, stream.write_all(output)).await
        }
    }
}

/// The answer to one command line: the output the tutorial's server would
/// send, or the reason it did not run.
async fn answer(line: &str, shared: &Shared, ctx: &TcpCtx, guard: &ConnGuard) -> Vec<u8> {
    if line.is_empty() {
        return SUCCESS.as_bytes().to_vec();
    }
    let mut record = CommandRecord {
        shared,
        ctx,
        guard,
        argv: vec![line.chars().take(MAX_COMMAND).collect()],
        started: Instant::now(),
    };
    let (program, args) = match resolve(line, shared) {
        Ok(found) => found,
        Err(why) => {
            record.write(&format!("error: {why}"), 0).await;
            return format!("{why}\n").into_bytes();
        }
    };
    record.argv = std::iter::once(program.display().to_string())
        .chain(args.iter().take(63).cloned())
        .collect();
    let Ok(slot) = shared.running.try_acquire() else {
        let why = format!(
            "busy: {} commands already running",
            shared.config.max_commands
        );
        record.write(&format!("error: {why}"), 0).await;
        return format!("{why}\n").into_bytes();
    };
    run(&program, &args, shared, record, slot).await
}

/// The program and arguments of a line: shell-words rules and the
/// allowlist, or `/bin/sh -c LINE` when the operator enabled the shell.
fn resolve(line: &str, shared: &Shared) -> Result<(PathBuf, Vec<String>), String> {
    if shared.config.shell {
        return Ok((PathBuf::from("/bin/sh"), vec!["-c".into(), line.into()]));
    }
    let argv = shell_words::split(line).map_err(|e| format!("cannot read the command: {e}"))?;
    let Some((name, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    let program = shared.programs.get(name).ok_or_else(|| {
        let mut allowed: Vec<&str> = shared.programs.keys().map(String::as_str).collect();
        allowed.sort_unstable();
        format!(
            "`{name}` is not allowed (allowed: {}; no shell)",
            allowed.join(", ")
        )
    })?;
    Ok((program.clone(), args.to_vec()))
}

/// Runs one command to its end within the service's limits and picks the
/// answer: stderr if any, else stdout, else [`SUCCESS`].
async fn run<'a>(
    program: &std::path::Path,
    args: &[String],
    shared: &'a Shared,
    record: CommandRecord<'a>,
    slot: tokio::sync::SemaphorePermit<'a>,
) -> Vec<u8> {
    let config = &shared.config;
    let mut command = tokio::process::Command::new(program);
    // argv[0] is the name typed, as a shell would give it: a program's
    // messages then read as they do under the tutorial's server.
    if let Some(name) = program.file_name() {
        command.arg0(name);
    }
    command
        .args(args)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .env("LANG", "C.UTF-8")
        .env("HOME", &config.workdir)
        .current_dir(&config.workdir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = match process::spawn_in_group(&mut command) {
        Ok(c) => c,
        Err(e) => {
            let why = format!("cannot start {}: {e}", program.display());
            record.write(&format!("error: {why}"), 0).await;
            return format!("{why}\n").into_bytes();
        }
    };
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let mut running = process::RunningCommand::new(child, record, slot);
    let cap = config.max_output_bytes.min(MAX_HELD_OUTPUT);
    let deadline = tokio::time::Instant::now() + config.timeout;
    let collected = collect(stdout, stderr, cap, deadline).await;
    let (out, err) = match collected {
        Ok(both) => both,
        Err(why) => {
            let why = match why {
                Cut::Timeout => format!("timed out after {} ms", config.timeout.as_millis()),
                Cut::Cap => format!("output cap of {cap} bytes reached; command killed"),
            };
            running.finish(&format!("error: {why}")).await;
            return format!("{why}\n").into_bytes();
        }
    };
    let child = running.child.as_mut().expect("held until finish or drop");
    let status = tokio::time::timeout_at(deadline, child.wait()).await;
    let outcome = match status {
        Ok(Ok(status)) => process::status_text(Some(status)),
        _ => format!("error: timed out after {} ms", config.timeout.as_millis()),
    };
    let output = if !err.is_empty() {
        err
    } else if !out.is_empty() {
        out
    } else {
        SUCCESS.as_bytes().to_vec()
    };
    running.sent = output.len() as u64;
    running.finish(&outcome).await;
    output
}

/// Why a command's output was not collected whole.
enum Cut {
    Timeout,
    Cap,
}

/// Reads stdout and stderr to their ends, together at most `cap` bytes,
/// before `deadline`.
async fn collect(
    mut stdout: Option<tokio::process::ChildStdout>,
    mut stderr: Option<tokio::process::ChildStderr>,
    cap: u64,
    deadline: tokio::time::Instant,
) -> Result<(Vec<u8>, Vec<u8>), Cut> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (mut out_buf, mut err_buf) = ([0u8; 8192], [0u8; 8192]);
    while stdout.is_some() || stderr.is_some() {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return Err(Cut::Timeout),
            read = async { stdout.as_mut().expect("guarded").read(&mut out_buf).await }, if stdout.is_some() => {
                match read { Ok(0) | Err(_) => stdout = None, Ok(n) => out.extend_from_slice(&out_buf[..n]) }
            }
            read = async { stderr.as_mut().expect("guarded").read(&mut err_buf).await }, if stderr.is_some() => {
                match read { Ok(0) | Err(_) => stderr = None, Ok(n) => err.extend_from_slice(&err_buf[..n]) }
            }
        }
        if (out.len() + err.len()) as u64 > cap {
            return Err(Cut::Cap);
        }
    }
    Ok((out, err))
}
