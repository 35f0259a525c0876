//! `EchoClient`: a TCP (or unix-socket) connection to `echo`.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ClientError, Stream, deadline};

/// How every refusal line of our services starts (`switchboard: too many
/// connections ...`). Echo upper-cases every ASCII letter it sends back, so
/// a reply holding these lower-case letters is never an echo.
const REFUSAL_PREFIX: &str = "switchboard:";
/// Longest refusal line read.
const MAX_REFUSAL: usize = 512;

/// Whether `reply` starts like a refusal line (or is the start of one: a
/// short message reads back only as many bytes as it sent).
fn looks_like_refusal(reply: &[u8]) -> bool {
    let n = reply.len().min(REFUSAL_PREFIX.len());
    n > 0 && reply[..n] == REFUSAL_PREFIX.as_bytes()[..n]
}

/// A connection to the echo service.
pub struct EchoClient {
    stream: Stream,
    addr: String,
    timeout: Duration,
}

impl EchoClient {
    stream_client_connect!(EchoClient);

    /// The address connected to, as shown in messages.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `data` and reads back as many bytes (echo replies byte for
    /// byte). Writing and reading run together, so a payload larger than the
    /// socket buffers cannot deadlock.
    ///
    /// # Errors
    /// [`ClientError::Timeout`] after `timeout` in total,
    /// [`ClientError::Closed`] if the server closes first (the message it
    /// sent before closing is in the detail), [`ClientError::TurnedAway`]
    /// when what came back is the service's refusal line, not an echo.
    pub async fn round_trip(&mut self, data: &[u8]) -> Result<Vec<u8>, ClientError> {
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let addr = self.addr.clone();
        let plain = matches!(self.stream, Stream::Plain(_));
        let timeout = self.timeout;
        let (mut rd, mut wr) = tokio::io::split(&mut self.stream);
        let mut reply = vec![0u8; data.len()];
        deadline(&addr, timeout, async {
            let write = async {
                wr.write_all(data).await?;
                wr.flush().await
            };
            let read = async {
                let mut got = 0;
                while got < reply.len() {
                    let n = match rd.read(&mut reply[got..]).await {
                        Ok(n) => n,
                        // A refused connection is reset after its refusal
                        // line: what came first is still the answer.
                        Err(_) if got > 0 => 0,
                        Err(e) => return Err(e),
                    };
                    if n == 0 {
                        return Ok(Err(got));
                    }
                    got += n;
                }
                Ok(Ok(()))
            };
            let ((), read) =
                tokio::try_join!(write, read).map_err(|e| ClientError::io(&addr, e))?;
            // Upper-casing keeps control bytes: only a TLS port answers
            // plain text with a TLS record (its alert).
            if plain && super::detect::is_tls_record(&reply) && !super::detect::is_tls_record(data)
            {
                return Err(
                    super::detect::speaks_tls(&addr, timeout, super::detect::TLS_HINT).await,
                );
            }
            read.map_err(|got| {
                let said = String::from_utf8_lossy(&reply[..got]);
                match said.strip_prefix(REFUSAL_PREFIX) {
                    Some(reason) => ClientError::TurnedAway {
                        addr: addr.clone(),
                        reason: reason.lines().next().unwrap_or_default().trim().to_owned(),
                    },
                    None if got == 0 => ClientError::Closed {
                        addr: addr.clone(),
                        detail: String::new(),
                    },
                    None => ClientError::Closed {
                        addr: addr.clone(),
                        detail: format!(": {}", said.trim_end()),
                    },
                }
            })
        })
        .await?;
        if looks_like_refusal(&reply) {
            return Err(self.refusal(reply).await);
        }
        Ok(reply)
    }

    /// The rest of a refusal line whose start came back as a "reply", as
    /// [`ClientError::TurnedAway`]: at most [`MAX_REFUSAL`] bytes, within
    /// the client's timeout, up to the newline or the close.
    async fn refusal(&mut self, mut line: Vec<u8>) -> ClientError {
        let addr = self.addr.clone();
        let stream = &mut self.stream;
        let _ = tokio::time::timeout(self.timeout, async {
            let mut buf = [0u8; 256];
            while !line.contains(&b'\n') && line.len() < MAX_REFUSAL {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => line.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        line.truncate(MAX_REFUSAL);
        let text = String::from_utf8_lossy(&line);
        let reason = text.lines().next().unwrap_or_default();
        ClientError::TurnedAway {
            addr,
            reason: reason
                .strip_prefix(REFUSAL_PREFIX)
                .unwrap_or(reason)
                .trim()
                .to_owned(),
        }
    }

    /// This end's address over TCP (how the server's stats name us).
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.stream.local_addr()
    }

    /// Writes each piece with a write of its own (and, with `TCP_NODELAY`,
    /// a segment of its own), back to back, reading nothing.
    ///
    /// # Errors
    /// As [`EchoClient::round_trip`].
    pub async fn write_each(&mut self, pieces: &[Vec<u8>]) -> Result<(), ClientError> {
        let addr = self.addr.clone();
        let stream = &mut self.stream;
        deadline(&addr, self.timeout, async {
            for piece in pieces {
                stream
                    .write_all(piece)
                    .await
                    .map_err(|e| ClientError::io(&addr, e))?;
            }
            stream.flush().await.map_err(|e| ClientError::io(&addr, e))
        })
        .await
    }

    /// Reads until `total` bytes have arrived and returns them read by read,
    /// as the socket delivered them: where TCP merged or split what was
    /// written, so do these.
    ///
    /// # Errors
    /// As [`EchoClient::round_trip`].
    pub async fn read_chunks(&mut self, total: usize) -> Result<Vec<Vec<u8>>, ClientError> {
        let addr = self.addr.clone();
        let stream = &mut self.stream;
        deadline(&addr, self.timeout, async {
            let mut chunks = Vec::new();
            let mut got = 0;
            let mut buf = vec![0u8; total.clamp(1, 64 * 1024)];
            while got < total {
                let want = (total - got).min(buf.len());
                let n = stream
                    .read(&mut buf[..want])
                    .await
                    .map_err(|e| ClientError::io(&addr, e))?;
                if n == 0 {
                    return Err(ClientError::Closed {
                        addr: addr.clone(),
                        detail: format!(" after {got} of {total} bytes"),
                    });
                }
                chunks.push(buf[..n].to_vec());
                got += n;
            }
            Ok(chunks)
        })
        .await
    }

    /// Sends the end of the stream (a TCP half-close).
    ///
    /// # Errors
    /// An I/O error from the socket.
    pub async fn shutdown(&mut self) -> Result<(), ClientError> {
        self.stream
            .shutdown()
            .await
            .map_err(|e| ClientError::io(&self.addr, e))
    }
}
