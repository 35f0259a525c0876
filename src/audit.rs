//! The audit log: one JSON object per line in `<data_dir>/audit.log`, for
//! every command run, every login and every file stored.
//!
//! Lines are written by one thread of their own (file I/O never blocks a
//! service task, nor does formatting the line), appended and flushed to the
//! OS as they come: lines queued meanwhile (and, while lines come often, for
//! a few milliseconds after a write) go out together in one write, so a
//! crash loses at most what was still queued. Peer-supplied text (argv, names,
//! user names) can hold anything: every control character, C1 controls
//! included, is written as a `\uXXXX` escape, so a line stays one line and
//! `cat audit.log` cannot drive a terminal.
//!
//! What a line says is an [`AuditEvent`]; nothing else is written here.

mod event;
pub use event::{AuditEvent, TokenEvent};

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// Lines waiting for the writer before `record` makes its caller wait.
const QUEUE: usize = 1024;
/// The writer stops adding queued lines to one write past this many bytes.
const BATCH_BYTES: usize = 64 * 1024;
/// When lines come often, how long the writer lets them gather after a
/// write (see [`write_lines`]).
const GATHER: std::time::Duration = std::time::Duration::from_millis(5);

/// Where the audit log of `data_dir` lives.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit.log")
}

enum Msg {
    /// A record and when it was made. The writer thread formats it, so a
    /// service's task spends no time on the line (it was a few percent of
    /// a remote command's server time).
    Event(AuditEvent, Stamp),
    Flush(oneshot::Sender<()>),
}

type Stamp = chrono::DateTime<chrono::Utc>;

/// Handle to the audit log. Clone it freely; the writer thread ends when
/// the last handle is dropped.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
}

impl AuditLog {
    /// Opens (creating, owner-only) `<data_dir>/audit.log` for appending.
    ///
    /// # Errors
    /// When the directory or the file cannot be created or opened.
    pub fn open(data_dir: &Path) -> std::io::Result<AuditLog> {
        crate::store::create_private_dir(data_dir)?;
        let path = path(data_dir);
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)?;
        let (tx, mut rx) = mpsc::channel::<Msg>(QUEUE);
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || write_lines(&mut rx, &mut file, &path))?;
        Ok(AuditLog { tx })
    }

    /// Appends `event` with an `at` timestamp in front (the time of this
    /// call). Waits only when the writer is more than `QUEUE` (1024) lines
    /// behind.
    pub async fn record(&self, event: AuditEvent) {
        if self
            .tx
            .send(Msg::Event(event, chrono::Utc::now()))
            .await
            .is_err()
        {
            tracing::error!("the audit log writer has stopped; entry lost");
        }
    }

    /// [`AuditLog::record`] for code that cannot wait, such as a `Drop`: the
    /// line is queued at once, or, with the queue full, by a task on the
    /// current runtime. Lost (and said so) only when there is neither room
    /// nor a runtime.
    pub fn record_now(&self, event: AuditEvent) {
        use tokio::sync::mpsc::error::TrySendError;
        match self.tx.try_send(Msg::Event(event, chrono::Utc::now())) {
            Ok(()) => {}
            Err(TrySendError::Full(msg)) => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let tx = self.tx.clone();
                    runtime.spawn(async move { tx.send(msg).await });
                }
                Err(_) => tracing::error!("the audit log queue is full; entry lost"),
            },
            Err(TrySendError::Closed(_)) => {
                tracing::error!("the audit log writer has stopped; entry lost");
            }
        }
    }

    /// Waits until everything recorded so far has been written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// The writer thread: formats and appends what `rx` brings until every
/// handle is gone.
///
/// Lines queued while the last write ran go out together: one wake-up and
/// one write for a burst, not one each. When lines come often (the last
/// write was less than [`GATHER`] ago), the writer also lets the next ones
/// gather for [`GATHER`] before it takes them: under a steady stream of
/// commands that is one wake-up and one write per few milliseconds, not
/// one per line (a futex wake and two context switches each). A line that
/// comes alone is written at once, and nothing waits for the gathering:
/// `record` only queues, and a `flush` waits at most [`GATHER`] more.
fn write_lines(rx: &mut mpsc::Receiver<Msg>, file: &mut std::fs::File, path: &Path) {
    let mut failing = false;
    let mut batch = String::new();
    let mut last_write: Option<std::time::Instant> = None;
    while let Some(msg) = rx.blocking_recv() {
        let mut next = Some(msg);
        let mut cut = false;
        while let Some(msg) = next.take() {
            match msg {
                Msg::Event(event, at) => {
                    batch.push_str(&line(&event, &rfc3339(at)));
                    batch.push('\n');
                    if batch.len() < BATCH_BYTES {
                        next = rx.try_recv().ok();
                    } else {
                        cut = true;
                    }
                }
                Msg::Flush(done) => {
                    write_batch(file, &mut batch, path, &mut failing);
                    let _ = done.send(());
                    next = rx.try_recv().ok();
                }
            }
        }
        if write_batch(file, &mut batch, path, &mut failing) {
            let now = std::time::Instant::now();
            let often = last_write.is_some_and(|t| now.duration_since(t) < GATHER);
            last_write = Some(now);
            // More is queued already (the batch was cut): no pause.
            if often && !cut {
                std::thread::sleep(GATHER);
            }
        }
    }
}

/// Writes the queued lines (whole lines, each ending in a newline) in one
/// write: with O_APPEND, lines never interleave with another writer's.
/// Says so once when writing starts failing. Whether there was anything.
fn write_batch(
    file: &mut std::fs::File,
    batch: &mut String,
    path: &Path,
    failing: &mut bool,
) -> bool {
    if batch.is_empty() {
        return false;
    }
    match file.write_all(batch.as_bytes()).and_then(|()| file.flush()) {
        Ok(()) => *failing = false,
        Err(e) if !*failing => {
            *failing = true;
            tracing::error!("cannot write the audit log {}: {e}", path.display());
        }
        Err(_) => {}
    }
    batch.clear();
    if batch.capacity() > 4 * BATCH_BYTES {
        batch.shrink_to(BATCH_BYTES);
    }
    true
}

/// `at` as a line's `at`: RFC 3339, milliseconds, `Z`.
fn rfc3339(at: Stamp) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The line (without its newline) that records `event` at `at` (RFC 3339):
/// a JSON object, keys in byte order, `at` among them, control characters
/// escaped.
pub fn line(event: &AuditEvent, at: &str) -> String {
    let mut line = serde_json::Map::new();
    line.insert("at".into(), Value::String(at.to_owned()));
    match serde_json::to_value(event) {
        Ok(Value::Object(fields)) => line.extend(fields),
        // Every variant is a struct of plain fields: an object.
        Ok(_) | Err(_) => {
            tracing::error!("an audit event did not serialise as an object: {event:?}");
        }
    }
    escape_controls(Value::Object(line).to_string())
}

/// serde_json already escapes U+0000–U+001F; this escapes the rest of what a
/// terminal or a line-based reader could act on: DEL, the C1 controls, the
/// Unicode line and paragraph separators, and the format characters that
/// make text display as something else (a right-to-left override turns
/// `rm -rf /tmp/x\u{202e}` into nonsense on screen). Outside strings JSON text
/// holds none of these, so a plain pass over the whole line is exact.
fn escape_controls(json: String) -> String {
    // Everything to escape is DEL or beyond ASCII: most lines need nothing.
    if json.bytes().all(|b| b < 0x7f) {
        return json;
    }
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if matches!(c, '\u{7f}'..='\u{9f}') || crate::wire::text::is_invisible_format(c) {
            // JSON's escape is UTF-16: a pair of them past the BMP.
            for unit in c.encode_utf16(&mut [0u16; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn control_characters_are_escaped_and_round_trip() {
        let argv = [
            "ls",
            "a\nb",
            "\u{1b}[31mred",
            "csi\u{9b}2J",
            "del\u{7f}",
            "ls\u{2028}x",
            "invoice\u{202e}gpj.exe",
            "tag\u{e0041}",
        ];
        let value = json!({ "argv": argv });
        let line = escape_controls(value.to_string());
        assert!(
            line.chars()
                .all(|c| !c.is_control() && !crate::wire::text::is_invisible_format(c)),
            "{line}"
        );
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back, value);
    }

    #[tokio::test]
    async fn lines_are_appended_one_per_entry() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        log.record(AuditEvent::Command {
            service: "exec".into(),
            peer: "127.0.0.1:1".into(),
            argv: vec!["echo".into(), "x\ny".into()],
            outcome: "exit 0".into(),
            duration_ms: 1,
            bytes_out: 2,
            stderr: None,
        })
        .await;
        log.record(AuditEvent::Login {
            service: "login".into(),
            peer: "127.0.0.1:2".into(),
            user: None,
            role: None,
            ok: false,
        })
        .await;
        log.flush().await;
        // Reopening appends rather than truncates.
        let again = AuditLog::open(dir.path()).unwrap();
        again
            .record(AuditEvent::CloseConnection {
                id: 3,
                user: "ann".into(),
                peer: None,
            })
            .await;
        again.flush().await;
        let text = std::fs::read_to_string(path(dir.path())).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["argv"][1], "x\ny");
        assert!(lines[0]["at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[2]["event"], "close_connection");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "audit log readable by others: {mode:o}");
    }
}
