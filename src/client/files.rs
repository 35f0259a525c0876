//! `FilesClient` (the `files` service) and `ClassicClient` (`files-classic`).
//!
//! Both stream: a body goes from any `AsyncRead` to the socket and from the
//! socket to any `AsyncWrite` through one fixed buffer, hashed with SHA-256
//! on the way, so the server's hash can be checked against our own. A
//! `progress` callback hears the running byte count. (The dashboard's relay
//! hands on an HTTP body's chunks as they came, hashed by the service alone:
//! [`FilesClient::put_hashed_by_service`].)

use std::time::Duration;

mod resume;

use crate::store::Sha256;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::exec::conn_error;
use super::{ClientError, Stream, deadline};
use crate::conn::MessageConn;
use crate::store::{CHUNK, FileInfo};
use crate::wire::files::{FilesRequest, GetReply, ListReply, PutReply, Reply};
use crate::wire::message::MAX_HEADER_LEN;
use crate::wire::{classic, hex};

/// What the server said it stored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Stored {
    /// The name it was stored under (may differ from the one asked for).
    pub name: String,
    /// Bytes stored (on the wire `stored_size` after a put: a `size` there
    /// would announce a body).
    pub size: u64,
    pub sha256: String,
}

/// An authenticated connection to the files service.
pub struct FilesClient {
    conn: MessageConn<Stream>,
    addr: String,
    /// Bounds the connection and every wait for a reply or for the next
    /// bytes of a body, not a whole transfer.
    timeout: Duration,
}

impl FilesClient {
    stream_client_connect!(authenticated FilesClient, timeout);

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Reads a reply and the size of the body that follows it;
    /// `{"ok":false}` becomes [`ClientError::Rejected`].
    async fn reply<T: DeserializeOwned>(&mut self) -> Result<(T, u64), ClientError> {
        let addr = self.addr.clone();
        let header = deadline(&addr, self.timeout, async {
            self.conn
                .read_header(MAX_HEADER_LEN)
                .await
                .map_err(|e| conn_error(&addr, e))
        })
        .await?
        .ok_or_else(|| ClientError::Closed {
            addr: addr.clone(),
            detail: " without answering".into(),
        })?;
        match header.message::<Reply<T>>() {
            Ok(Reply::Ok(reply)) => Ok((reply, header.size)),
            Ok(Reply::Refused(reason)) => Err(ClientError::Rejected { addr, reason }),
            Err(e) => Err(self.protocol(format!("bad reply: {e}"))),
        }
    }

    /// Sends a request that has no body.
    async fn request(&mut self, request: &FilesRequest) -> Result<(), ClientError> {
        let addr = self.addr.clone();
        self.conn
            .write_message(request, &[])
            .await
            .map_err(|e| conn_error(&addr, e))
    }

    fn protocol(&self, detail: impl Into<String>) -> ClientError {
        ClientError::Protocol {
            addr: self.addr.clone(),
            detail: detail.into(),
        }
    }

    /// Uploads `size` bytes from `body` as `name`, checking the server's
    /// SHA-256 against the one computed while sending.
    ///
    /// # Errors
    /// A refusal (bad name, too large, no space) as
    /// [`ClientError::Rejected`]; [`ClientError::Integrity`] when the hashes
    /// differ; a body shorter than `size` as [`ClientError::Local`].
    pub async fn put(
        &mut self,
        name: &str,
        size: u64,
        body: impl AsyncRead + Unpin,
        progress: impl FnMut(u64),
    ) -> Result<Stored, ClientError> {
        self.put_checked(name, size, body, progress, Check::Hash)
            .await
    }

    /// Like [`FilesClient::put`] for a body whose SHA-256 the caller knows
    /// already (a load generator sending the same bytes again): nothing is
    /// hashed on this side, and the server's hash is checked against `sha256`.
    ///
    /// # Errors
    /// As [`FilesClient::put`].
    pub async fn put_known(
        &mut self,
        name: &str,
        size: u64,
        body: impl AsyncRead + Unpin,
        sha256: &str,
    ) -> Result<Stored, ClientError> {
        self.put_checked(name, size, body, |_| {}, Check::Known(sha256))
            .await
    }

    /// Like [`FilesClient::put`] for a body that arrives as chunks already
    /// in memory (an HTTP request's body), without hashing on this side: for
    /// the dashboard's relay, whose files service is its own, in the same
    /// process. That service hashes what it stores and says so; hashing the
    /// same bytes here too would check only a copy between two buffers of
    /// one process, and doubled the CPU an upload through the dashboard
    /// cost (SHA-256 was half of it, measured). The stored size is still
    /// checked.
    ///
    /// Each chunk is written to the socket as it came (no copy into a
    /// buffer of ours: one `send` per chunk, where a buffer of `CHUNK`
    /// split hyper's 408 KiB chunks in two) and let go before the next is
    /// asked for. Bytes past `size` are not sent.
    ///
    /// # Errors
    /// As [`FilesClient::put`], without [`ClientError::Integrity`] for the
    /// hash; a chunk's error as [`ClientError::Local`].
    pub async fn put_hashed_by_service(
        &mut self,
        name: &str,
        size: u64,
        mut chunks: impl futures_util::Stream<Item = std::io::Result<Bytes>> + Unpin,
    ) -> Result<Stored, ClientError> {
        self.begin_put(name, size).await?;
        let local = |source| ClientError::Local {
            path: name.to_owned(),
            source,
        };
        let mut sent = 0u64;
        while sent < size {
            let Some(mut chunk) = chunks.next().await.transpose().map_err(local)? else {
                return Err(local(ended_early(sent, size)));
            };
            chunk.truncate((size - sent).min(chunk.len() as u64) as usize);
            self.send_body(&chunk).await?;
            sent += chunk.len() as u64;
        }
        self.finish_put(size, None).await
    }

    async fn put_checked(
        &mut self,
        name: &str,
        size: u64,
        mut body: impl AsyncRead + Unpin,
        mut progress: impl FnMut(u64),
        check: Check<'_>,
    ) -> Result<Stored, ClientError> {
        self.begin_put(name, size).await?;
        let mut hasher = matches!(check, Check::Hash).then(Sha256::new);
        let mut buf = vec![0u8; CHUNK];
        let mut sent = 0u64;
        while sent < size {
            let want = (size - sent).min(CHUNK as u64) as usize;
            let n = body
                .read(&mut buf[..want])
                .await
                .map_err(|source| ClientError::Local {
                    path: name.to_owned(),
                    source,
                })?;
            if n == 0 {
                return Err(ClientError::Local {
                    path: name.to_owned(),
                    source: ended_early(sent, size),
                });
            }
            if let Some(h) = &mut hasher {
                h.update(&buf[..n]);
            }
            self.send_body(&buf[..n]).await?;
            sent += n as u64;
            progress(sent);
        }
        let expected = match check {
            Check::Hash => hasher.map(|h| hex(&h.finalize())),
            Check::Known(sha256) => Some(sha256.to_owned()),
        };
        self.finish_put(size, expected).await
    }

    /// A put's header: the request and the body's size.
    async fn begin_put(&mut self, name: &str, size: u64) -> Result<(), ClientError> {
        let request = FilesRequest::Put {
            name: name.to_owned(),
            total: None,
            partial: None,
            offset: None,
        };
        let addr = &self.addr;
        self.conn
            .write_header(&request, size)
            .await
            .map_err(|e| conn_error(addr, e))
    }

    /// Writes body bytes within the timeout. A write that fails because the
    /// server refused early (too large, no space) and closed reports the
    /// refusal, whose reason beats a reset.
    async fn send_body(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let Self {
            conn,
            addr,
            timeout,
        } = self;
        let wrote = deadline(addr, *timeout, async {
            conn.write_body(bytes)
                .await
                .map_err(|e| ClientError::io(addr, e))
        })
        .await;
        match wrote {
            Ok(()) => Ok(()),
            Err(e) => Err(match self.reply::<PutReply>().await {
                Err(refusal @ ClientError::Rejected { .. }) => refusal,
                _ => e,
            }),
        }
    }

    /// After the body: the server's reply, its size checked against `size`
    /// and its hash against `expected` (none: the service's hash is taken).
    async fn finish_put(
        &mut self,
        size: u64,
        expected: Option<String>,
    ) -> Result<Stored, ClientError> {
        let addr = &self.addr;
        self.conn
            .flush()
            .await
            .map_err(|e| ClientError::io(addr, e))?;
        let (reply, _) = self.reply::<PutReply>().await?;
        let stored = Stored {
            name: reply.name,
            size: reply.stored_size,
            sha256: reply.sha256,
        };
        let ours = expected.unwrap_or_else(|| stored.sha256.clone());
        if stored.sha256 != ours || stored.size != size {
            return Err(ClientError::Integrity {
                name: stored.name,
                ours,
                theirs: stored.sha256,
            });
        }
        Ok(stored)
    }

    /// Downloads `name` into `out`, checking the SHA-256 the server
    /// announced against the bytes received. `on_start` hears the size
    /// before the first byte.
    ///
    /// # Errors
    /// [`ClientError::Rejected`] (no such file), [`ClientError::Integrity`],
    /// a short body as [`ClientError::Closed`], write errors as
    /// [`ClientError::Local`].
    pub async fn get(
        &mut self,
        name: &str,
        mut out: impl AsyncWrite + Unpin,
        on_start: impl FnOnce(u64),
        mut progress: impl FnMut(u64),
    ) -> Result<Stored, ClientError> {
        let addr = self.addr.clone();
        let name = name.to_owned();
        self.request(&FilesRequest::Get { name: name.clone() })
            .await?;
        let (reply, size) = self.reply::<GetReply>().await?;
        let theirs = reply.sha256;
        on_start(size);
        let mut hasher = Sha256::new();
        let mut buf = Vec::with_capacity(CHUNK);
        let mut got = 0u64;
        while got < size {
            buf.clear();
            let want = (size - got).min(CHUNK as u64) as usize;
            let n = deadline(&addr, self.timeout, async {
                self.conn
                    .read_into(&mut buf, want)
                    .await
                    .map_err(|e| ClientError::io(&addr, e))
            })
            .await?;
            if n == 0 {
                return Err(ClientError::Closed {
                    addr,
                    detail: format!(" after {got} of {size} bytes"),
                });
            }
            hasher.update(&buf);
            out.write_all(&buf)
                .await
                .map_err(|source| ClientError::Local {
                    path: name.clone(),
                    source,
                })?;
            got += n as u64;
            progress(got);
        }
        out.flush().await.map_err(|source| ClientError::Local {
            path: name.clone(),
            source,
        })?;
        let ours = hex(&hasher.finalize());
        if ours != theirs {
            return Err(ClientError::Integrity { name, ours, theirs });
        }
        Ok(Stored {
            name: reply.name,
            size,
            sha256: ours,
        })
    }

    /// Every stored file, and whether the server cut the list short.
    ///
    /// # Errors
    /// Connection and protocol errors.
    pub async fn list(&mut self) -> Result<(Vec<FileInfo>, bool), ClientError> {
        self.request(&FilesRequest::List).await?;
        let (reply, _) = self.reply::<ListReply>().await?;
        let files = reply
            .files
            .into_iter()
            .map(|e| FileInfo {
                name: e.name,
                size: e.size,
                sha256: e.sha256,
                modified: e.modified,
            })
            .collect();
        Ok((files, reply.truncated))
    }
}

/// A connection to files-classic, speaking the tutorial's format.
pub struct ClassicClient {
    stream: Stream,
    addr: String,
    timeout: Duration,
}

impl ClassicClient {
    stream_client_connect!(ClassicClient);

    /// Sends one file: the 136-byte header, then `size` bytes of `body`.
    /// Returns the SHA-256 of what was sent. The protocol has no reply; the
    /// server's refusal (`error: ...`), if any, is read after sending.
    ///
    /// # Errors
    /// A name that does not fit the header; a refusal as
    /// [`ClientError::Rejected`]; a connection the service turned away as
    /// [`ClientError::TurnedAway`]; connection errors.
    pub async fn put(
        self,
        name: &str,
        size: u64,
        body: impl AsyncRead + Unpin,
        progress: impl FnMut(u64),
    ) -> Result<String, ClientError> {
        let sha = self.send(name, size, body, progress, true).await?;
        Ok(sha.unwrap_or_default())
    }

    /// Like [`ClassicClient::put`] without hashing what is sent, for a
    /// caller that knows the body's hash already (a load generator).
    ///
    /// # Errors
    /// As [`ClassicClient::put`].
    pub async fn put_unhashed(
        self,
        name: &str,
        size: u64,
        body: impl AsyncRead + Unpin,
    ) -> Result<(), ClientError> {
        self.send(name, size, body, |_| {}, false).await.map(drop)
    }

    async fn send(
        mut self,
        name: &str,
        size: u64,
        mut body: impl AsyncRead + Unpin,
        mut progress: impl FnMut(u64),
        hash: bool,
    ) -> Result<Option<String>, ClientError> {
        let addr = self.addr.clone();
        let signed = i64::try_from(size).map_err(|_| self.protocol("file too large"))?;
        let header = classic::encode(name.as_bytes(), signed).map_err(|e| ClientError::Local {
            path: name.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
        })?;
        let mut hasher = hash.then(Sha256::new);
        let mut buf = vec![0u8; CHUNK];
        let mut sent = 0u64;
        let sending = async {
            self.stream.write_all(&header).await?;
            while sent < size {
                let want = (size - sent).min(CHUNK as u64) as usize;
                let n = body.read(&mut buf[..want]).await?;
                if n == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("{name} ended after {sent} of {size} bytes"),
                    ));
                }
                if let Some(h) = &mut hasher {
                    h.update(&buf[..n]);
                }
                self.stream.write_all(&buf[..n]).await?;
                sent += n as u64;
                progress(sent);
            }
            self.stream.shutdown().await
        }
        .await;
        // Whatever the server said (nothing, or `error: ...`) until it closes.
        let mut said = Vec::new();
        let _ = deadline(&addr, self.timeout, async {
            let mut limited = (&mut self.stream).take(4096);
            limited
                .read_to_end(&mut said)
                .await
                .map_err(|e| ClientError::io(&addr, e))
        })
        .await;
        if matches!(self.stream, Stream::Plain(_)) && super::detect::is_tls_record(&said) {
            return Err(
                super::detect::speaks_tls(&addr, self.timeout, super::detect::TLS_HINT).await,
            );
        }
        // Refused before it read a byte (a cap, a port behind a proxy):
        // what was sent went nowhere, even if every write succeeded.
        if let Some(away) = super::refusal::in_reply(&addr, &said) {
            return Err(away);
        }
        let said = String::from_utf8_lossy(&said).trim().to_owned();
        if let Some(reason) = said.strip_prefix("error: ") {
            return Err(ClientError::Rejected {
                addr,
                reason: reason.to_owned(),
            });
        }
        sending.map_err(|e| ClientError::io(&addr, e))?;
        Ok(hasher.map(|h| hex(&h.finalize())))
    }

    fn protocol(&self, detail: &str) -> ClientError {
        ClientError::Protocol {
            addr: self.addr.clone(),
            detail: detail.to_owned(),
        }
    }
}

/// A body that ended before the `size` its header announced.
fn ended_early(sent: u64, size: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        format!("ended after {sent} of {size} bytes"),
    )
}

/// How an upload's stored SHA-256 is checked.
#[derive(Clone, Copy)]
enum Check<'a> {
    /// Against the hash of what was sent, computed while sending.
    Hash,
    /// Against a hash the caller knows.
    Known(&'a str),
}
