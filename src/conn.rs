//! A message-protocol connection: one type owns the stream and its read
//! buffer (as mini-redis's `Connection` does), for the services and the
//! clients alike. The formats themselves are `wire::message` and `auth`;
//! this only moves their bytes.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::auth::{self, CHALLENGE_LEN, RESPONSE_LEN};

/// A body up to this size goes out in the same write as its header (one
/// copy of it, exec's output chunks); a larger one is written on its own.
const COALESCE_BODY: usize = 16 * 1024;
use crate::wire::message::{self, Header, MAX_HEADER_LEN, PREFIX_LEN, WireError};
use crate::wire::reply::{Empty, Reply, Verdict};

/// Why a message exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("the peer closed the connection in the middle of a message")]
    Truncated,
    #[error("no data for {0:?}")]
    Timeout(Duration),
}

/// A stream speaking the message protocol.
pub struct MessageConn<S> {
    stream: S,
    buf: BytesMut,
}

impl<S: AsyncRead + AsyncWrite + Unpin> MessageConn<S> {
    pub fn new(stream: S) -> Self {
        MessageConn {
            stream,
            // Small at first: an idle connection should cost little.
            buf: BytesMut::with_capacity(256),
        }
    }

    /// Reads more bytes into the buffer, but never beyond one maximal header
    /// (a peer cannot make us buffer more than that). Returns how many were
    /// read; 0 means the peer closed (or the buffer is full).
    ///
    /// # Cancel safety
    /// Cancel safe: bytes read are kept in the buffer.
    pub async fn fill(&mut self) -> io::Result<usize> {
        let room = (PREFIX_LEN + MAX_HEADER_LEN).saturating_sub(self.buf.len());
        if room == 0 {
            return Ok(0);
        }
        let mut limited = (&mut self.stream).take(room as u64);
        limited.read_buf(&mut self.buf).await
    }

    /// The bytes read and not yet taken by a header or a body: what a
    /// client looks at before reading them as a message (a refusal line
    /// where a challenge should be, `client::refusal`).
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Whether [`MessageConn::fill`] can read more: false once a maximal
    /// header is buffered (a pipelining peer waits in its socket).
    pub fn can_fill(&self) -> bool {
        self.buf.len() < PREFIX_LEN + MAX_HEADER_LEN
    }

    /// Reads the next header: `Ok(None)` on a clean end of stream between
    /// messages. The header's length is checked before it is buffered.
    ///
    /// # Errors
    /// A malformed or oversized header, a stream cut mid-header, I/O errors.
    pub async fn read_header(&mut self, max: usize) -> Result<Option<Header>, ConnError> {
        loop {
            if let Some(header) = message::decode_header(&mut self.buf, max)? {
                return Ok(Some(header));
            }
            if self.fill().await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ConnError::Truncated)
                };
            }
        }
    }

    /// Reads exactly `len` body bytes into `out`, taking buffered bytes first.
    ///
    /// # Errors
    /// [`ConnError::Truncated`] if the stream ends first.
    pub async fn read_body(&mut self, out: &mut [u8]) -> Result<(), ConnError> {
        let from_buf = out.len().min(self.buf.len());
        out[..from_buf].copy_from_slice(&self.buf.split_to(from_buf));
        self.stream
            .read_exact(&mut out[from_buf..])
            .await
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => ConnError::Truncated,
                _ => ConnError::Io(e),
            })?;
        Ok(())
    }

    /// Reads up to `max` body bytes into `out`'s spare capacity (buffered
    /// bytes first). Returns how many; 0 means the peer closed.
    ///
    /// # Errors
    /// I/O errors.
    pub async fn read_into(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        let max = max.min(out.capacity() - out.len());
        if !self.buf.is_empty() {
            let n = max.min(self.buf.len());
            out.extend_from_slice(&self.buf.split_to(n));
            return Ok(n);
        }
        let mut limited = (&mut self.stream).take(max as u64);
        limited.read_buf(out).await
    }

    /// Writes `msg` as a header announcing a body of `size` bytes (even
    /// 0), which the caller then writes with [`MessageConn::write_body`].
    ///
    /// # Errors
    /// I/O errors, or a header over the cap.
    pub async fn write_header<M: Serialize>(
        &mut self,
        msg: &M,
        size: u64,
    ) -> Result<(), ConnError> {
        let header = message::encode(msg, Some(size))?;
        self.stream.write_all(&header).await?;
        Ok(())
    }

    /// Writes body bytes after [`MessageConn::write_header`].
    ///
    /// # Errors
    /// I/O errors.
    pub async fn write_body(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Flushes what was written.
    ///
    /// # Errors
    /// I/O errors.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.stream.flush().await
    }

    /// Appends one message to `out`, encoded as
    /// [`MessageConn::write_message`] writes it, for a caller that sends
    /// several in one write ([`MessageConn::write_encoded`]).
    ///
    /// # Errors
    /// A header over the cap.
    pub fn encode_message<M: Serialize>(
        msg: &M,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), ConnError> {
        let size = (!body.is_empty()).then_some(body.len() as u64);
        out.extend_from_slice(&message::encode(msg, size)?);
        out.extend_from_slice(body);
        Ok(())
    }

    /// Writes messages put together by [`MessageConn::encode_message`],
    /// in one write.
    ///
    /// # Errors
    /// I/O errors.
    pub async fn write_encoded(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Writes one message: `msg` as a header (with `size` set to the
    /// body's length when there is a body) and the body.
    ///
    /// # Errors
    /// I/O errors, or a header over the cap.
    pub async fn write_message<M: Serialize>(
        &mut self,
        msg: &M,
        body: &[u8],
    ) -> Result<(), ConnError> {
        let size = (!body.is_empty()).then_some(body.len() as u64);
        let mut header = message::encode(msg, size)?;
        if body.len() <= COALESCE_BODY {
            // One write, so one segment on a TCP_NODELAY socket, not two.
            header.extend_from_slice(body);
            self.stream.write_all(&header).await?;
        } else {
            self.stream.write_all(&header).await?;
            self.stream.write_all(body).await?;
        }
        self.stream.flush().await?;
        Ok(())
    }

    /// Server side of the handshake: send a fresh challenge and check the
    /// answer within `within`. Answers `{"ok":...}` either way.
    ///
    /// # Errors
    /// [`ConnError::Timeout`] for silence; an I/O error; `Ok(Err(_))` when
    /// the response was wrong (the peer has been told).
    pub async fn accept_handshake(
        &mut self,
        key: &[u8],
        within: Duration,
    ) -> Result<Result<(), auth::AuthError>, ConnError> {
        let challenge = auth::new_challenge().map_err(|e| io::Error::other(e.to_string()))?;
        self.stream.write_all(&challenge).await?;
        self.stream.flush().await?;
        let mut response = [0u8; RESPONSE_LEN];
        tokio::time::timeout(within, self.read_body(&mut response))
            .await
            .map_err(|_| ConnError::Timeout(within))??;
        let verdict = auth::verify(key, &challenge, &response);
        let reply = match &verdict {
            Ok(()) => Verdict::Ok(Empty {}),
            Err(e) => Verdict::refused(e),
        };
        self.write_message(&reply, &[]).await?;
        Ok(verdict)
    }

    /// Client side of the handshake: answer the challenge, read the verdict.
    ///
    /// # Errors
    /// I/O errors; a verdict that is not a header, or not a verdict. A
    /// refusal comes back as `Ok(Some(reason))`.
    pub async fn offer_handshake(&mut self, key: &[u8]) -> Result<Option<String>, ConnError> {
        let mut challenge = [0u8; CHALLENGE_LEN];
        self.read_body(&mut challenge).await?;
        self.stream
            .write_all(&auth::respond(key, &challenge))
            .await?;
        self.stream.flush().await?;
        let verdict = self
            .read_header(MAX_HEADER_LEN)
            .await?
            .ok_or(ConnError::Truncated)?;
        match verdict.message::<Verdict>().map_err(WireError::NotJson)? {
            Reply::Ok(Empty {}) => Ok(None),
            Reply::Refused(why) => Ok(Some(why)),
        }
    }

    /// The stream, e.g. to shut it down.
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }
}

/// A stream whose writes fail with [`io::ErrorKind::TimedOut`] once the
/// peer has accepted no byte for `after`: a peer that stops reading cannot
/// hold a write (and what waits on it) forever. Reads pass through.
///
/// The timer is armed only while a write is pending and disarmed by any
/// progress, so a slow reader that keeps taking bytes is never cut off and
/// the common path (the socket takes the bytes at once) costs nothing.
pub struct WriteTimeout<S> {
    stream: S,
    after: Duration,
    /// Armed while a write is pending; `None` when the last write progressed.
    stall: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteTimeout<S> {
    pub fn new(stream: S, after: Duration) -> Self {
        WriteTimeout {
            stream,
            after,
            stall: None,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Called when the inner write is pending: arms the timer on the first
    /// stall and reports whether it has run out.
    fn stalled(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<usize>> {
        let after = self.after;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
        match stall.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => std::task::Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the peer accepted no byte for {} ms", after.as_millis()),
            ))),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        match std::pin::Pin::new(&mut self.stream).poll_write(cx, buf) {
            std::task::Poll::Pending => self.stalled(cx),
            done => {
                self.stall = None;
                done
            }
        }
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match std::pin::Pin::new(&mut self.stream).poll_flush(cx) {
            std::task::Poll::Pending => self.stalled(cx).map_ok(|_| ()),
            done => {
                self.stall = None;
                done
            }
        }
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match std::pin::Pin::new(&mut self.stream).poll_shutdown(cx) {
            std::task::Poll::Pending => self.stalled(cx).map_ok(|_| ()),
            done => {
                self.stall = None;
                done
            }
        }
    }
}
