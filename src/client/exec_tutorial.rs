//! `TutorialExecClient`: speaks `exec`'s tutorial framings (`raw`,
//! `length-ready`, `struct`) as the tutorial's clients do, for the
//! dashboard's sticky-packet lab: one command per write, and each reply
//! read the way its framing allows.
//!
//! `raw` is read like the naive client's `recv(1024)`: one read of at most
//! [`RAW_READ`] bytes per command, so a long output spills into the next
//! command's reply — the flaw the lesson shows, kept on purpose. What this
//! deliberately doesn't do: the header framing (that is
//! [`CommandClient`](super::CommandClient)), or trust a length the server
//! sends beyond the caller's cap.
//!
//! A challenge or a length that is a service's refusal line instead (a
//! full instance) is reported as one (`client::refusal`). A `raw` reply is
//! not checked: it is whatever bytes came, which a command's own output
//! can be, and the lab shows them as they are.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ClientError, Stream, deadline};
use crate::service::tutorial_auth::TutorialAuth;

/// One naive read, as the tutorial's `recv(1024)`.
pub const RAW_READ: usize = 1024;

/// A connection to an `exec` instance with a tutorial framing.
pub struct TutorialExecClient {
    stream: Stream,
    addr: String,
    timeout: Duration,
}

impl TutorialExecClient {
    stream_client_connect!(TutorialExecClient);

    /// Answers the 32-byte challenge of an instance with `auth` on.
    ///
    /// # Errors
    /// The server closing or not sending the challenge in time.
    pub async fn answer_challenge(&mut self, auth: &TutorialAuth) -> Result<(), ClientError> {
        let mut challenge = [0u8; 32];
        timed(
            &self.addr,
            self.timeout,
            self.stream.read_exact(&mut challenge),
        )
        .await?;
        self.not_refused(&challenge).await?;
        let answer = auth.answer(&challenge);
        timed(&self.addr, self.timeout, self.stream.write_all(&answer)).await?;
        Ok(())
    }

    async fn send(&mut self, command: &str) -> Result<(), ClientError> {
        timed(
            &self.addr,
            self.timeout,
            self.stream.write_all(command.as_bytes()),
        )
        .await?;
        Ok(())
    }

    /// `raw`: sends `command`, then one read of at most [`RAW_READ`] bytes
    /// (whatever the socket holds: a piece of this reply, or the rest of
    /// the previous one).
    ///
    /// # Errors
    /// Connection errors, silence past the timeout.
    pub async fn raw(&mut self, command: &str) -> Result<Vec<u8>, ClientError> {
        self.send(command).await?;
        let mut buf = vec![0u8; RAW_READ];
        let n = timed(&self.addr, self.timeout, self.stream.read(&mut buf)).await?;
        buf.truncate(n);
        Ok(buf)
    }

    /// `length-ready`: sends `command`, reads the decimal length, answers
    /// `ready`, reads exactly that many bytes.
    ///
    /// # Errors
    /// A length that is not a number or exceeds `max`, connection errors.
    pub async fn length_ready(
        &mut self,
        command: &str,
        max: usize,
    ) -> Result<Vec<u8>, ClientError> {
        self.send(command).await?;
        let mut buf = [0u8; 32];
        let n = timed(&self.addr, self.timeout, self.stream.read(&mut buf)).await?;
        self.not_refused(&buf[..n]).await?;
        let text = std::str::from_utf8(&buf[..n]).unwrap_or("");
        let len: usize = text
            .trim()
            .parse()
            .map_err(|_| self.broke("a length", &buf[..n]))?;
        self.send("ready").await?;
        self.exactly(len, max).await
    }

    /// `struct`: sends `command`, reads the 4-byte native-order length,
    /// then exactly that many bytes.
    ///
    /// # Errors
    /// A negative length or one over `max`, connection errors.
    pub async fn struct_framed(
        &mut self,
        command: &str,
        max: usize,
    ) -> Result<Vec<u8>, ClientError> {
        self.send(command).await?;
        let mut len = [0u8; 4];
        timed(&self.addr, self.timeout, self.stream.read_exact(&mut len)).await?;
        self.not_refused(&len).await?;
        let len =
            usize::try_from(i32::from_ne_bytes(len)).map_err(|_| self.broke("a length", &len))?;
        self.exactly(len, max).await
    }

    async fn exactly(&mut self, len: usize, max: usize) -> Result<Vec<u8>, ClientError> {
        if len > max {
            return Err(ClientError::Protocol {
                addr: self.addr.clone(),
                detail: format!("a reply of {len} bytes; the lab reads at most {max}"),
            });
        }
        let mut out = vec![0u8; len];
        timed(&self.addr, self.timeout, self.stream.read_exact(&mut out)).await?;
        Ok(out)
    }

    /// Ends the conversation and reads what the server still had to say,
    /// at most `max` bytes (the rest of `raw` replies that no read took).
    ///
    /// # Errors
    /// Connection errors, a server that neither closes nor stops in time.
    pub async fn finish(mut self, max: usize) -> Result<Vec<u8>, ClientError> {
        timed(&self.addr, self.timeout, self.stream.shutdown()).await?;
        let mut out = Vec::new();
        let limit = u64::try_from(max).unwrap_or(u64::MAX);
        timed(
            &self.addr,
            self.timeout,
            (&mut self.stream).take(limit).read_to_end(&mut out),
        )
        .await?;
        Ok(out)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }
}

impl TutorialExecClient {
    /// `head`, read where a challenge or a length belongs, as the service's
    /// refusal when it starts one. A length that only starts like the line
    /// is broken either way (`swit` is 1.9 GB; text is no number), and a
    /// random challenge starts like it once in 2^104: reading on to decide
    /// costs nothing.
    async fn not_refused(&mut self, head: &[u8]) -> Result<(), ClientError> {
        match super::refusal::check(&self.addr, head, &mut self.stream, self.timeout).await {
            Some(refused) => Err(refused),
            None => Ok(()),
        }
    }

    fn broke(&self, what: &str, got: &[u8]) -> ClientError {
        ClientError::Protocol {
            addr: self.addr.clone(),
            detail: format!(
                "expected {what}, got {:?}",
                String::from_utf8_lossy(&got[..got.len().min(32)])
            ),
        }
    }
}

/// Runs one I/O step within `after`, naming `addr` in its error.
async fn timed<T>(
    addr: &str,
    after: Duration,
    fut: impl Future<Output = std::io::Result<T>>,
) -> Result<T, ClientError> {
    deadline(addr, after, async {
        fut.await.map_err(|e| ClientError::io(addr, e))
    })
    .await
}
