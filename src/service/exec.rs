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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;

use super::listen::{Listener, Stream};
use super::{ServiceCtx, ServiceError};
use crate::audit::AuditLog;
use crate::config::ExecConfig;
use crate::conn::{ConnError, MessageConn};
use crate::stats::EventKind;
use crate::wire::message::{self, MAX_HEADER_LEN};

/// The only PATH a command sees.
const SAFE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Output is read and sent in chunks of at most this many bytes.
const OUTPUT_CHUNK: usize = 8 * 1024;

/// Looks up each allowed program in [`SAFE_PATH`]; names not found are
/// reported and left out.
pub(crate) fn resolve_allowlist(allow: &[String]) -> HashMap<String, PathBuf> {
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
                service = "exec",
                "allowed program `{name}` not found in {SAFE_PATH}"
            ),
        }
    }
    found
}

struct Shared {
    key: Vec<u8>,
    audit: AuditLog,
    config: ExecConfig,
    programs: HashMap<String, PathBuf>,
    running: Semaphore,
}

/// Runs the exec service until `ctx.cancel` fires.
///
/// # Errors
/// None in practice: accept errors are logged and retried.
pub(crate) async fn run(
    listener: Listener,
    ctx: ServiceCtx,
    key: Vec<u8>,
    config: ExecConfig,
    audit: AuditLog,
) -> Result<(), ServiceError> {
    let shared = Shared {
        audit,
        programs: resolve_allowlist(&config.allow),
        running: Semaphore::new(config.max_commands),
        key,
        config,
    };
    super::serve_tcp_shared(
        listener,
        ctx,
        shared,
        |stream, _peer, conn, shared, ctx| async move {
            serve_conn(MessageConn::new(stream), &shared, &ctx, &conn).await
        },
    )
    .await;
    Ok(())
}

fn error_message(why: impl std::fmt::Display) -> serde_json::Map<String, Value> {
    message::fields(json!({"type": "error", "error": why.to_string()}))
}

async fn serve_conn(
    mut conn: MessageConn<Stream>,
    shared: &Shared,
    ctx: &ServiceCtx,
    guard: &crate::stats::ConnGuard,
) -> Result<(), ConnError> {
    super::authenticate(&mut conn, &shared.key, ctx, guard).await?;
    loop {
        let header =
            tokio::time::timeout(ctx.limits.idle_timeout, conn.read_header(MAX_HEADER_LEN))
                .await
                .map_err(|_| ConnError::Timeout(ctx.limits.idle_timeout))?;
        let header = match header {
            Ok(Some(h)) => h,
            Ok(None) => return Ok(()),
            Err(ConnError::Wire(e)) => {
                // Tell the peer why, then close: the stream cannot be trusted now.
                let _ = conn.write_message(error_message(&e), &[]).await;
                return Err(ConnError::Wire(e));
            }
            Err(e) => return Err(e),
        };
        guard.touch();
        if header.size > 0 {
            let _ = conn
                .write_message(error_message("exec requests carry no body"), &[])
                .await;
            return Ok(());
        }
        let shown = shown_argv(&header.fields);
        let (program, args) = match parse_request(&header.fields, shared) {
            Ok(r) => r,
            Err(why) => {
                refuse(&mut conn, shared, ctx, guard, &shown, why).await?;
                continue;
            }
        };
        let timeout = header
            .fields
            .get("timeout_ms")
            .and_then(Value::as_u64)
            .map_or(shared.config.timeout, |ms| {
                Duration::from_millis(ms).min(shared.config.timeout)
            });
        let Ok(_permit) = shared.running.try_acquire() else {
            let why = format!(
                "busy: {} commands already running",
                shared.config.max_commands
            );
            refuse(&mut conn, shared, ctx, guard, &shown, why).await?;
            continue;
        };
        let started = Instant::now();
        let (outcome, sent) =
            run_command(&mut conn, &program, &args, timeout, shared, guard).await?;
        record(
            shared,
            ctx,
            guard,
            &shown,
            &outcome.to_string(),
            started.elapsed(),
            sent,
        )
        .await;
        match outcome {
            Outcome::ClientGone => return Ok(()),
            Outcome::Final(fields) => conn.write_message(fields, &[]).await?,
        }
    }
}

/// The argv as the client asked for it, for the audit log and events.
fn shown_argv(fields: &serde_json::Map<String, Value>) -> Vec<String> {
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    match (fields.get("argv"), fields.get("line")) {
        (Some(Value::Array(argv)), _) => argv.iter().take(64).map(text).collect(),
        (_, Some(line)) => vec!["/bin/sh".into(), "-c".into(), text(line)],
        _ => Vec::new(),
    }
}

/// Answers a request that will not run, and records it like any other.
async fn refuse(
    conn: &mut MessageConn<Stream>,
    shared: &Shared,
    ctx: &ServiceCtx,
    guard: &crate::stats::ConnGuard,
    argv: &[String],
    why: String,
) -> Result<(), ConnError> {
    let outcome = format!("error: {why}");
    record(shared, ctx, guard, argv, &outcome, Duration::ZERO, 0).await;
    conn.write_message(error_message(why), &[]).await
}

/// One audit line and one `command_run` event per request.
async fn record(
    shared: &Shared,
    ctx: &ServiceCtx,
    guard: &crate::stats::ConnGuard,
    argv: &[String],
    outcome: &str,
    took: Duration,
    bytes_out: u64,
) {
    let duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    tracing::info!(
        service = "exec",
        peer = guard.peer(),
        ms = duration_ms,
        "{argv:?}: {outcome}"
    );
    shared
        .audit
        .record(json!({
            "event": "command",
            "service": ctx.kind,
            "peer": guard.peer(),
            "argv": argv,
            "outcome": outcome,
            "duration_ms": duration_ms,
            "bytes_out": bytes_out,
        }))
        .await;
    ctx.stats.emit(EventKind::CommandRun {
        service: ctx.kind,
        peer: guard.peer().to_owned(),
        argv: argv.to_vec(),
        outcome: outcome.to_owned(),
        duration_ms,
        bytes_out,
    });
}

/// Checks a request against the allowlist and shell setting.
fn parse_request(
    fields: &serde_json::Map<String, Value>,
    shared: &Shared,
) -> Result<(PathBuf, Vec<String>), String> {
    match fields.get("op").and_then(Value::as_str) {
        Some("run") => {
            let argv: Vec<String> = fields
                .get("argv")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect())
                .ok_or("\"argv\" must be a list of strings")?;
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
        Some("shell") => {
            if !shared.config.shell {
                return Err(
                    "shell mode is off (the operator can set services.exec.shell = true)".into(),
                );
            }
            let line = fields
                .get("line")
                .and_then(Value::as_str)
                .ok_or("\"line\" must be a string")?;
            Ok((PathBuf::from("/bin/sh"), vec!["-c".into(), line.into()]))
        }
        Some(op) => Err(format!("unknown op `{op}` (use run or shell)")),
        None => Err("missing \"op\"".into()),
    }
}

enum Outcome {
    Final(serde_json::Map<String, Value>),
    ClientGone,
}

impl std::fmt::Display for Outcome {
    /// `exit 0`, `signal 9`, `error: timed out after 100 ms`, ...
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Final(m) => match (m.get("code"), m.get("signal"), m.get("error")) {
                (Some(code), _, _) => write!(f, "exit {code}"),
                (_, Some(signal), _) => write!(f, "signal {signal}"),
                (_, _, Some(Value::String(why))) => write!(f, "error: {why}"),
                _ => write!(f, "{}", Value::Object(m.clone())),
            },
            Outcome::ClientGone => f.write_str("error: client disconnected; command killed"),
        }
    }
}

fn kill_group(pgid: Option<u32>) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    if let Some(pgid) = pgid.and_then(|p| i32::try_from(p).ok()) {
        // ESRCH (the group is already gone) is the common, happy case.
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

async fn run_command(
    conn: &mut MessageConn<Stream>,
    program: &Path,
    args: &[String],
    timeout: Duration,
    shared: &Shared,
    guard: &crate::stats::ConnGuard,
) -> Result<(Outcome, u64), ConnError> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .env("LANG", "C.UTF-8")
        .env("HOME", &shared.config.workdir)
        .current_dir(&shared.config.workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            let why = format!("cannot start {}: {e}", program.display());
            return Ok((Outcome::Final(error_message(why)), 0));
        }
    };
    let pgid = child.id();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut out_buf = vec![0u8; OUTPUT_CHUNK];
    let mut err_buf = vec![0u8; OUTPUT_CHUNK];
    let mut sent: u64 = 0;
    let cap = shared.config.max_output_bytes;
    let mut status = None;
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);

    let outcome = loop {
        if status.is_some() && stdout.is_none() && stderr.is_none() {
            break None;
        }
        let (kind, n) = tokio::select! {
            () = &mut deadline => break Some(Outcome::Final(error_message(format!("timed out after {} ms", timeout.as_millis())))),
            read = async { stdout.as_mut().expect("guarded").read(&mut out_buf).await }, if stdout.is_some() => {
                match read { Ok(0) | Err(_) => { stdout = None; continue } Ok(n) => ("stdout", n) }
            }
            read = async { stderr.as_mut().expect("guarded").read(&mut err_buf).await }, if stderr.is_some() => {
                match read { Ok(0) | Err(_) => { stderr = None; continue } Ok(n) => ("stderr", n) }
            }
            exited = child.wait(), if status.is_none() => {
                status = Some(exited?);
                continue;
            }
            more = conn.fill() => match more {
                // Bytes from the client mid-command are its next request: kept.
                Ok(n) if n > 0 => continue,
                _ => break Some(Outcome::ClientGone),
            },
        };
        let room = cap.saturating_sub(sent);
        let take = (n as u64).min(room) as usize;
        let chunk = if kind == "stdout" {
            &out_buf[..take]
        } else {
            &err_buf[..take]
        };
        if take > 0 {
            conn.write_message(message::fields(json!({"type": kind})), chunk)
                .await?;
            guard.add_out(take);
            sent += take as u64;
        }
        if take < n {
            break Some(Outcome::Final(error_message(format!(
                "output cap of {cap} bytes reached; command killed"
            ))));
        }
    };
    // Whatever happened, nothing of the command's group outlives it.
    kill_group(pgid);
    let status = match status {
        Some(s) => s,
        None => child.wait().await?,
    };
    if let Some(outcome) = outcome {
        return Ok((outcome, sent));
    }
    use std::os::unix::process::ExitStatusExt;
    let fields = match (status.code(), status.signal()) {
        (Some(code), _) => json!({"type": "exit", "code": code}),
        (None, Some(signal)) => json!({"type": "exit", "signal": signal}),
        (None, None) => json!({"type": "error", "error": "the command ended without a status"}),
    };
    Ok((Outcome::Final(message::fields(fields)), sent))
}
