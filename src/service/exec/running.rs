//! One exec request's command, from spawn to its final message: its
//! output read from the pipes and queued in messages, sent when it fills a
//! chunk, after [`FLUSH_WITHIN`], or with the final message, all within
//! the command's deadline.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::super::process::{self, Audit, Record};
use super::{CommandRecord, Conn, SAFE_PATH};
use crate::conn::ConnError;
use crate::wire::exec::{ExecReply, Exit};

/// A command running for one request, holding one of the command slots.
type RunningCommand<'a> =
    process::RunningCommand<CommandRecord<'a>, tokio::sync::SemaphorePermit<'a>>;

/// Output is read and sent in chunks of at most this many bytes.
const OUTPUT_CHUNK: usize = 8 * 1024;
/// How long output read from a command may wait to go out with what
/// follows it. A command that prints and exits at once (the usual case)
/// is answered in one segment, its output and its exit status together,
/// not two; one that goes on printing is delayed by at most this and the
/// timer's tick (1 ms).
const FLUSH_WITHIN: Duration = Duration::from_millis(1);

/// How a command's request ended, as far as the connection is concerned.
pub(super) enum Ended {
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
pub(super) struct Run<'b> {
    pub(super) program: &'b Path,
    pub(super) args: &'b [String],
    pub(super) timeout: Duration,
    pub(super) bufs: &'b mut OutputBufs,
}

/// A connection's stdout and stderr buffers, made when first needed, and
/// the output messages not yet sent ([`FLUSH_WITHIN`]).
#[derive(Default)]
pub(super) struct OutputBufs {
    read: Option<(Vec<u8>, Vec<u8>)>,
    queued: Vec<u8>,
}

impl OutputBufs {
    fn get(&mut self) -> (&mut [u8], &mut [u8], &mut Vec<u8>) {
        let (out, err) = self
            .read
            .get_or_insert_with(|| (vec![0u8; OUTPUT_CHUNK], vec![0u8; OUTPUT_CHUNK]));
        (out, err, &mut self.queued)
    }

    /// Sends a request's final message, after the output still queued:
    /// often one write for both.
    ///
    /// # Errors
    /// I/O errors.
    pub(super) async fn send_final(
        &mut self,
        conn: &mut Conn,
        reply: &ExecReply,
    ) -> Result<(), ConnError> {
        Conn::encode_message(reply, &[], &mut self.queued)?;
        conn.write_encoded(&self.queued).await?;
        self.queued.clear();
        Ok(())
    }
}

/// What a running command's wait ended with.
enum Event {
    /// Bytes read from stdout or stderr (the reply type says which).
    Output(ExecReply, usize),
    /// The queued output has waited [`FLUSH_WITHIN`].
    Flush,
    /// The loop goes round: a stream closed, the command exited, or the
    /// client sent its next request early.
    Again,
    /// The run ends before the command did.
    Early(Ended),
}

/// Sends the queued output within the command's deadline: `Ok(false)` when
/// the deadline passed mid-write (the message may be cut, so the
/// connection cannot go on).
async fn flush(
    conn: &mut Conn,
    queued: &mut Vec<u8>,
    deadline: Instant,
    audit: &mut Audit,
) -> Result<bool, ConnError> {
    match tokio::time::timeout_at(deadline.into(), conn.write_encoded(queued)).await {
        Ok(Ok(())) => {
            queued.clear();
            Ok(true)
        }
        Ok(Err(e)) => {
            // A reset or a close reads as `disconnected` in Drop.
            if e.kind() == std::io::ErrorKind::TimedOut {
                *audit = Audit::Failed("error: client stopped reading; command killed".into());
            }
            Err(e.into())
        }
        Err(_) => Ok(false),
    }
}

/// Runs one command to its end, streaming its output. Every wait is bound
/// in wall time: the command's deadline holds while a write to the peer is
/// blocked, and a peer that takes no byte for the idle timeout is dropped
/// (the stream's [`WriteTimeout`](crate::conn::WriteTimeout)).
pub(super) async fn run_command<'a>(
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
    let (out_buf, err_buf, queued) = bufs.get();
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
    // When the queued output goes out unless the command ends first, and
    // its bytes of output (counted in `sent` once they are on their way).
    let mut flush_at: Option<Instant> = None;
    let mut unsent = 0u64;

    let early = loop {
        if exited && stdout.is_none() && stderr.is_none() {
            break None;
        }
        let child = running.child.as_mut().expect("held until finish or drop");
        let event = tokio::select! {
            () = tokio::time::sleep_until(deadline.into()) => Event::Early(Ended::Final(timed_out())),
            () = tokio::time::sleep_until(flush_at.unwrap_or(deadline).into()), if flush_at.is_some() => Event::Flush,
            read = async { stdout.as_mut().expect("guarded").read(out_buf).await }, if stdout.is_some() => {
                match read { Ok(0) | Err(_) => { stdout = None; Event::Again } Ok(n) => Event::Output(ExecReply::Stdout, n) }
            }
            read = async { stderr.as_mut().expect("guarded").read(err_buf).await }, if stderr.is_some() => {
                match read { Ok(0) | Err(_) => { stderr = None; Event::Again } Ok(n) => Event::Output(ExecReply::Stderr, n) }
            }
            status = child.wait(), if !exited => {
                status?;
                exited = true;
                Event::Again
            }
            more = conn.fill(), if conn.can_fill() => match more {
                // Bytes from the client mid-command are its next request: kept.
                Ok(n) if n > 0 => Event::Again,
                _ => Event::Early(Ended::ClientGone),
            },
        };
        let send_now = match event {
            Event::Output(kind, n) => {
                let room = cap.saturating_sub(running.sent + unsent);
                let take = (n as u64).min(room) as usize;
                let buf = if kind == ExecReply::Stdout { &out_buf } else { &err_buf };
                if take > 0 {
                    Conn::encode_message(&kind, &buf[..take], queued)?;
                    unsent += take as u64;
                }
                if take < n {
                    break Some(Ended::Final(ExecReply::error(format!(
                        "output cap of {cap} bytes reached; command killed"
                    ))));
                }
                flush_at.get_or_insert_with(|| Instant::now() + FLUSH_WITHIN);
                // Bulk output goes as it comes.
                queued.len() >= OUTPUT_CHUNK
            }
            Event::Flush => true,
            Event::Again => false,
            Event::Early(ended) => break Some(ended),
        };
        if send_now {
            flush_at = None;
            if !flush(conn, queued, deadline, &mut running.audit).await? {
                // Recorded, then closed.
                running.finish(&outcome_text(&timed_out())).await;
                return Err(ConnError::Timeout(timeout));
            }
            running.sent += std::mem::take(&mut unsent);
        }
    };
    running.sent += settle_queued(conn, queued, early.as_ref(), unsent);
    finish(running, early).await
}

/// What becomes of the output still queued when a command's loop ends; the
/// bytes of it that count as sent. With a final message it goes out with
/// that message, after the audit line that counts it (bytes handed to the
/// connection, as a write that succeeded counts them). With the client
/// gone it goes out if the socket takes it at once (a client that only
/// half-closed still reads; the command is not kept waiting for it, and
/// the connection closes after).
fn settle_queued(conn: &mut Conn, queued: &mut Vec<u8>, early: Option<&Ended>, unsent: u64) -> u64 {
    use futures_util::FutureExt;
    if !matches!(early, Some(Ended::ClientGone)) {
        return unsent;
    }
    let sent = matches!(conn.write_encoded(queued).now_or_never(), Some(Ok(())));
    queued.clear();
    if sent { unsent } else { 0 }
}
