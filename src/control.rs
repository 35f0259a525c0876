//! The control socket, `<data_dir>/control.sock` (owner-only): how
//! `switchboard reload` and `switchboard upgrade` reach the running server
//! and get its answer back (a signal carries no answer, and the exit code
//! of `switchboard reload` must say whether the configuration was good).
//!
//! One line in (`reload` or `upgrade`, at most [`MAX_LINE`] bytes with its
//! newline, within [`READ_TIMEOUT`]), one JSON line out (within
//! [`WRITE_TIMEOUT`]): `{"ok": true, "result": …}` or `{"ok": false,
//! "error": "…"}`; at most [`MAX_CLIENTS`] at once, more answered "busy".
//! Who may use it is who may open the file: the server's own user (and
//! root). This module only carries requests:
//! the server's main loop does what they ask.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// The control socket's file name in the data folder.
pub const FILE: &str = "control.sock";
/// The longest request line.
pub const MAX_LINE: u64 = 64;
/// How long a client may take to send its line.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to read its answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Control connections served at once; more are answered "busy".
pub const MAX_CLIENTS: usize = 4;

/// What a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Reload,
    Upgrade,
    /// From the new process of an upgrade: it listens; the old one may go.
    Ready,
}

impl Request {
    pub fn word(self) -> &'static str {
        match self {
            Request::Reload => "reload",
            Request::Upgrade => "upgrade",
            Request::Ready => "ready",
        }
    }
}

/// A request for the server's main loop and where its answer goes.
pub struct Asked {
    pub request: Request,
    pub reply: oneshot::Sender<Result<Value, String>>,
}

/// Why the control socket could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "no switchboard is running with data folder {} (cannot connect to {}: {source})",
        dir.display(), path.display()
    )]
    Connect {
        dir: PathBuf,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the server did not answer within {0:?}")]
    Timeout(Duration),
    #[error("talking to the server: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server's answer is not JSON: {0}")]
    Answer(String),
}

/// Where the control socket of `data_dir` is.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// Binds the control socket, replacing a stale file (or, `take_over`, the
/// old process's); owner-only.
///
/// # Errors
/// The folder cannot hold it, or another server answers on it.
pub fn bind(data_dir: &Path, take_over: bool) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let path = path(data_dir);
    // `take_over`: the new process of an upgrade, whose old one still answers.
    if take_over || std::os::unix::net::UnixStream::connect(&path).is_err() {
        let _ = std::fs::remove_file(&path);
    } else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("another switchboard answers on {}", path.display()),
        ));
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves control connections until `cancel`, passing each request to `tx`.
/// Past [`MAX_CLIENTS`] at once, a client is answered "busy" and closed.
pub async fn serve(listener: UnixListener, tx: mpsc::Sender<Asked>, cancel: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            // Answered rather than left in the backlog: `switchboard
            // reload` says why at once instead of waiting behind clients
            // that may never speak.
            let busy = json!({"ok": false, "error": format!(
                "busy: {MAX_CLIENTS} control clients already; try again"
            )});
            let (read, write) = stream.into_split();
            tokio::spawn(answer(read, write, busy));
            continue;
        };
        let tx = tx.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let _ = cancel.run_until_cancelled(one(stream, tx)).await;
            drop(permit);
        });
    }
}

/// Writes `answer` as one line, within [`WRITE_TIMEOUT`] (a client that
/// does not read cannot hold the slot), then reads and discards what the
/// client sent beyond its request (at most [`MAX_LINE`] × 16 bytes, for at
/// most a second) before closing: a unix socket closed with unread input
/// resets, and the client would lose the answer that says why.
async fn answer(
    mut read: impl tokio::io::AsyncRead + Unpin,
    mut write: impl tokio::io::AsyncWrite + Unpin,
    answer: Value,
) {
    let mut out = answer.to_string();
    out.push('\n');
    let sent = tokio::time::timeout(WRITE_TIMEOUT, async {
        write.write_all(out.as_bytes()).await?;
        write.shutdown().await
    })
    .await;
    if matches!(sent, Ok(Ok(()))) {
        let mut rest = (&mut read).take(MAX_LINE * 16);
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::io::copy(&mut rest, &mut tokio::io::sink()),
        )
        .await;
    }
}

async fn one(stream: UnixStream, tx: mpsc::Sender<Asked>) {
    let (read, write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_LINE));
    let reply = match tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line)).await {
        Err(_) => json!({"ok": false, "error": "no request within the time allowed"}),
        Ok(Err(e)) => json!({"ok": false, "error": format!("bad request: {e}")}),
        Ok(Ok(_)) if !line.ends_with('\n') => json!({"ok": false, "error": format!(
            "bad request: not one line of at most {MAX_LINE} bytes"
        )}),
        Ok(Ok(_)) => match line.trim() {
            "reload" => ask_main(&tx, Request::Reload).await,
            "upgrade" => ask_main(&tx, Request::Upgrade).await,
            "ready" => ask_main(&tx, Request::Ready).await,
            _ => json!({"ok": false, "error": "unknown request (reload or upgrade)"}),
        },
    };
    answer(reader.into_inner().into_inner(), write, reply).await;
}

async fn ask_main(tx: &mpsc::Sender<Asked>, request: Request) -> Value {
    let (reply, answer) = oneshot::channel();
    if tx.send(Asked { request, reply }).await.is_err() {
        return json!({"ok": false, "error": "the server is shutting down"});
    }
    match answer.await {
        Ok(Ok(result)) => json!({"ok": true, "result": result}),
        Ok(Err(error)) => json!({"ok": false, "error": error}),
        Err(_) => json!({"ok": false, "error": "the server is shutting down"}),
    }
}

/// Asks the server whose data folder is `data_dir` for `request`; its
/// answer (`ok`, and `result` or `error`).
///
/// # Errors
/// No server answers there, or not in `timeout`.
pub async fn ask(
    data_dir: &Path,
    request: Request,
    timeout: Duration,
) -> Result<Value, ControlError> {
    let path = path(data_dir);
    let talk = async {
        let mut stream =
            UnixStream::connect(&path)
                .await
                .map_err(|source| ControlError::Connect {
                    dir: data_dir.to_owned(),
                    path: path.clone(),
                    source,
                })?;
        stream
            .write_all(format!("{}\n", request.word()).as_bytes())
            .await?;
        let mut line = String::new();
        // An answer is a report of a few hundred instances at most.
        BufReader::new(stream.take(1 << 20))
            .read_line(&mut line)
            .await?;
        serde_json::from_str::<Value>(&line).map_err(|e| ControlError::Answer(e.to_string()))
    };
    tokio::time::timeout(timeout, talk)
        .await
        .map_err(|_| ControlError::Timeout(timeout))?
}
