//! `LoginClient`: the `login` service's dialogue, driven by a program.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ClientError, Stream, deadline};

/// Bytes of server text kept while waiting for a prompt or a verdict.
const MAX_TEXT: usize = 1024;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// `login ok`: the server closes the connection now.
    Ok,
    /// `login failed`: the server prompts again, if tries remain.
    Failed,
    /// Anything else the server said instead (rate limited, line too long,
    /// busy), as text.
    Refused(String),
}

/// A connection to the login service.
pub struct LoginClient {
    stream: Stream,
    addr: String,
    timeout: Duration,
    /// Server text not yet consumed.
    pending: Vec<u8>,
    /// The `username: ` prompt was already read (by [`LoginClient::prompts_again`]).
    prompted: bool,
}

impl LoginClient {
    stream_client_connect!(greeted LoginClient, pending: Vec::new(), prompted: false);

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Reads until the server's text ends with `prompt` (consumed) or holds
    /// a whole line that is not it (returned as a refusal).
    async fn expect(&mut self, prompt: &str) -> Result<Result<(), String>, ClientError> {
        let addr = self.addr.clone();
        deadline(&addr, self.timeout, async {
            loop {
                if let Some(rest) = self.pending.strip_prefix(prompt.as_bytes()) {
                    self.pending = rest.to_vec();
                    return Ok(Ok(()));
                }
                if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                    // The login service never says this itself: it is the
                    // line of a connection refused before the dialogue.
                    if let Some(away) = super::refusal::in_reply(&addr, &self.pending[..=end]) {
                        return Err(away);
                    }
                    let line = String::from_utf8_lossy(&self.pending[..end]).into_owned();
                    self.pending.drain(..=end);
                    return Ok(Err(line));
                }
                if self.pending.len() > MAX_TEXT {
                    return Err(self.protocol("a prompt longer than 1 KiB"));
                }
                let mut buf = [0u8; 512];
                let n = self
                    .stream
                    .read(&mut buf)
                    .await
                    .map_err(|e| ClientError::io(&addr, e))?;
                if n == 0 {
                    let said = String::from_utf8_lossy(&self.pending).trim().to_owned();
                    return Ok(Err(if said.is_empty() {
                        "the server closed the connection".to_owned()
                    } else {
                        said
                    }));
                }
                self.pending.extend_from_slice(&buf[..n]);
            }
        })
        .await
    }

    fn protocol(&self, detail: &str) -> ClientError {
        ClientError::Protocol {
            addr: self.addr.clone(),
            detail: detail.to_owned(),
        }
    }

    async fn send_line(&mut self, text: &str) -> Result<(), ClientError> {
        if text.contains('\n') {
            return Err(self.protocol("a name or password cannot hold a newline"));
        }
        let line = format!("{text}\n");
        let addr = self.addr.clone();
        deadline(&addr, self.timeout, async {
            self.stream
                .write_all(line.as_bytes())
                .await
                .map_err(|e| ClientError::io(&addr, e))
        })
        .await
    }

    /// One attempt: answers the two prompts and reads the verdict.
    ///
    /// # Errors
    /// Connection problems and timeouts; a connection the service turned
    /// away before the dialogue as [`ClientError::TurnedAway`]. What the
    /// server says instead of a prompt comes back as [`LoginOutcome::Refused`].
    pub async fn attempt(
        &mut self,
        user: &str,
        password: &str,
    ) -> Result<LoginOutcome, ClientError> {
        if !std::mem::take(&mut self.prompted)
            && let Err(said) = self.expect("username: ").await?
        {
            return Ok(LoginOutcome::Refused(said));
        }
        self.send_line(user).await?;
        if let Err(said) = self.expect("password: ").await? {
            return Ok(LoginOutcome::Refused(said));
        }
        self.send_line(password).await?;
        match self.expect("login ok\n").await? {
            Ok(()) => Ok(LoginOutcome::Ok),
            Err(line) if line == "login failed" => Ok(LoginOutcome::Failed),
            Err(other) => Ok(LoginOutcome::Refused(other)),
        }
    }

    /// After a failed attempt: whether the server asks again (`true`) or
    /// has closed the connection, as it does after its last try. Ask the
    /// person for another password only when it does.
    ///
    /// # Errors
    /// I/O errors, or no word from the server within the timeout.
    pub async fn prompts_again(&mut self) -> Result<bool, ClientError> {
        if self.prompted {
            return Ok(true);
        }
        self.prompted = self.expect("username: ").await?.is_ok();
        Ok(self.prompted)
    }
}
