//! `EchoClient`: a TCP (or unix-socket) connection to `echo`.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ClientError, Stream, deadline, refusal};

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
            if plain && super::detect::is_tls_answer(&reply, data) {
                return Err(
                    super::detect::speaks_tls(&addr, timeout, super::detect::TLS_HINT).await,
                );
            }
            read.map_err(|got| {
                let said = &reply[..got];
                refusal::in_reply(&addr, said).unwrap_or_else(|| ClientError::Closed {
                    addr: addr.clone(),
                    detail: match got {
                        0 => String::new(),
                        _ => format!(": {}", String::from_utf8_lossy(said).trim_end()),
                    },
                })
            })
        })
        .await?;
        // Echo upper-cases every ASCII letter it sends back, so a reply
        // starting with the refusal's lower-case prefix is never an echo
        // (a short message reads back only the start of the line).
        match refusal::check(&self.addr, &reply, &mut self.stream, timeout).await {
            Some(refused) => Err(refused),
            None => Ok(reply),
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
