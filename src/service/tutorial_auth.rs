//! The tutorials' check of a client (seeds/001 "认证客户端合法性"), as the
//! `auth` and `auth_key` settings of `echo` and of `exec`'s tutorial
//! framings: the server sends 32 random bytes, the client answers with the
//! raw HMAC of them under the shared key, and a wrong answer ends the
//! connection without a word (as the seed's server closes it).
//!
//! `hmac-md5` is what the seed's `hmac.new(key, msg)` computed on the Python
//! of its time; `hmac-sha256` is the same exchange with a stronger hash.
//! What this does not do: encrypt anything, or keep a replayed answer out
//! (the challenge is fresh each time, so a replay fails). It is not our own
//! handshake of `exec`/`files` (`header` framing), which signs its answer in
//! the message protocol.

use std::time::Duration;

use hmac::{KeyInit, Mac};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::settings::{ConfigError, Secret, Section};

/// The challenge's length, as in the seed.
pub const CHALLENGE_LEN: usize = 32;

/// Which HMAC, if any, a client must answer the challenge with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    #[default]
    None,
    HmacMd5,
    HmacSha256,
}

/// An instance's `auth` and `auth_key`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TutorialAuth {
    pub mode: AuthMode,
    pub key: Option<Secret>,
}

impl TutorialAuth {
    /// Reads `auth` (default `none`) and `auth_key` (required unless `none`).
    ///
    /// # Errors
    /// An unknown mode, or a mode without its key.
    pub fn read(s: &Section<'_>) -> Result<Self, ConfigError> {
        let mode = match s.opt_str("auth")?.as_deref() {
            None | Some("none") => AuthMode::None,
            Some("hmac-md5") => AuthMode::HmacMd5,
            Some("hmac-sha256") => AuthMode::HmacSha256,
            Some(other) => {
                return Err(s.bad(
                    "auth",
                    format!("`{other}`: expected \"none\", \"hmac-md5\" or \"hmac-sha256\""),
                ));
            }
        };
        let key = s.opt_str("auth_key")?.map(Secret::new);
        match (&key, mode) {
            (Some(k), _) if k.expose().is_empty() => Err(s.bad("auth_key", "must not be empty")),
            (None, AuthMode::HmacMd5 | AuthMode::HmacSha256) => Err(s.bad(
                "auth_key",
                "is required with this `auth` (the tutorial's is \"ni hao ma\")",
            )),
            _ => Ok(TutorialAuth { mode, key }),
        }
    }

    /// Whether a client must answer a challenge.
    pub fn is_on(&self) -> bool {
        self.mode != AuthMode::None
    }

    /// The answer expected for `challenge`.
    fn digest(&self, challenge: &[u8]) -> Vec<u8> {
        let key = self.key.as_ref().map_or(&[][..], Secret::expose);
        match self.mode {
            AuthMode::None => Vec::new(),
            AuthMode::HmacMd5 => {
                let mut mac = hmac::Hmac::<md5::Md5>::new_from_slice(key)
                    .expect("HMAC accepts keys of any length");
                mac.update(challenge);
                mac.finalize().into_bytes().to_vec()
            }
            AuthMode::HmacSha256 => {
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key)
                    .expect("HMAC accepts keys of any length");
                mac.update(challenge);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    /// The server's side: sends a fresh challenge and reads exactly the
    /// digest's length back within `within`. `Ok(false)`: a wrong answer,
    /// or too short a one by then (an answer of another HMAC).
    ///
    /// # Errors
    /// No randomness, I/O errors, an early close.
    pub async fn challenge<S>(&self, stream: &mut S, within: Duration) -> std::io::Result<bool>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if !self.is_on() {
            return Ok(true);
        }
        let mut challenge = [0u8; CHALLENGE_LEN];
        getrandom::fill(&mut challenge).map_err(|e| std::io::Error::other(e.to_string()))?;
        let expected = self.digest(&challenge);
        let mut answer = vec![0u8; expected.len()];
        let exchange = async {
            stream.write_all(&challenge).await?;
            stream.read_exact(&mut answer).await
        };
        match tokio::time::timeout(within, exchange).await {
            Ok(read) => {
                read?;
                Ok(constant_time_eq(&answer, &expected))
            }
            Err(_) => Ok(false),
        }
    }

    /// The client's side, for tests and our own clients: the answer to
    /// `challenge`.
    pub fn answer(&self, challenge: &[u8]) -> Vec<u8> {
        self.digest(challenge)
    }
}

/// Compares without an early exit, so timing says nothing of the match.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(mode: AuthMode) -> TutorialAuth {
        TutorialAuth {
            mode,
            key: Some(Secret::new("ni hao ma")),
        }
    }

    #[test]
    fn md5_matches_pythons_hmac_new_without_digestmod() {
        // python3 -c "import hmac,hashlib;print(hmac.new(b'ni hao ma',
        //   b'\x00'*32, hashlib.md5).hexdigest())"
        let d = auth(AuthMode::HmacMd5).answer(&[0u8; 32]);
        assert_eq!(d.len(), 16);
        assert_eq!(hex(&d), "62b380ad2b6af4ce2dd35f626956207a");
    }

    #[test]
    fn sha256_is_32_bytes_and_differs() {
        let a = auth(AuthMode::HmacSha256).answer(&[0u8; 32]);
        assert_eq!(a.len(), 32);
        assert_ne!(a[..16], auth(AuthMode::HmacMd5).answer(&[0u8; 32])[..]);
    }

    #[tokio::test]
    async fn a_wrong_answer_is_refused_and_a_right_one_accepted() {
        for (right, expect) in [(true, true), (false, false)] {
            let (mut server, mut client) = tokio::io::duplex(256);
            let a = auth(AuthMode::HmacMd5);
            let peer = tokio::spawn(async move {
                let mut c = [0u8; CHALLENGE_LEN];
                client.read_exact(&mut c).await.unwrap();
                let mut d = auth(AuthMode::HmacMd5).answer(&c);
                if !right {
                    d[0] ^= 1;
                }
                client.write_all(&d).await.unwrap();
                client
            });
            let ok = a
                .challenge(&mut server, Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!(ok, expect);
            drop(peer.await.unwrap());
        }
    }

    fn hex(b: &[u8]) -> String {
        crate::wire::hex(b)
    }
}
