//! The HMAC-SHA256 challenge/response handshake of `exec` and `files`, as
//! pure functions (seeds/001's connection check, made exact):
//!
//! 1. the server sends [`CHALLENGE_LEN`] random bytes, fresh from the OS for
//!    every connection, so a challenge is never reused;
//! 2. the client answers with `HMAC-SHA256(key, challenge)`, [`RESPONSE_LEN`] bytes;
//! 3. the server checks it in constant time ([`verify`]).
//!
//! No I/O here: the services and clients move the bytes.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Bytes of a challenge.
pub const CHALLENGE_LEN: usize = 32;
/// Bytes of a response (one SHA-256 output).
pub const RESPONSE_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Why a handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("wrong key (HMAC mismatch)")]
    ChallengeRejected,
    #[error("the system random generator failed: {0}")]
    Random(String),
}

/// A fresh random challenge.
///
/// # Errors
/// [`AuthError::Random`] if the OS cannot supply random bytes.
pub fn new_challenge() -> Result<[u8; CHALLENGE_LEN], AuthError> {
    let mut challenge = [0u8; CHALLENGE_LEN];
    getrandom::fill(&mut challenge).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(challenge)
}

fn mac(key: &[u8], challenge: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(challenge);
    mac
}

/// The client's answer to `challenge` under `key`.
pub fn respond(key: &[u8], challenge: &[u8]) -> [u8; RESPONSE_LEN] {
    let tag = mac(key, challenge).finalize().into_bytes();
    let mut out = [0u8; RESPONSE_LEN];
    out.copy_from_slice(&tag);
    out
}

/// Checks a response in constant time; a response of the wrong length fails too.
///
/// # Errors
/// [`AuthError::ChallengeRejected`] when it does not match.
pub fn verify(key: &[u8], challenge: &[u8], response: &[u8]) -> Result<(), AuthError> {
    mac(key, challenge)
        .verify_slice(response)
        .map_err(|_| AuthError::ChallengeRejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_pythons_hmac_module() {
        // python3 -c "import hmac; print(hmac.new(b'key', b'\0'*32, 'sha256').hexdigest())"
        let tag = respond(b"key", &[0u8; 32]);
        assert_eq!(
            crate::wire::hex(&tag),
            "f7ce443554b62f0a6aa18ca2bdc213a5c4af495cca2adba7ae1cc2979445344f"
        );
    }

    #[test]
    fn the_right_response_verifies_and_any_other_does_not() {
        let challenge = new_challenge().unwrap();
        let good = respond(b"secret", &challenge);
        assert_eq!(verify(b"secret", &challenge, &good), Ok(()));
        assert_eq!(
            verify(b"other", &challenge, &good),
            Err(AuthError::ChallengeRejected)
        );
        let mut flipped = good;
        flipped[31] ^= 1;
        assert!(verify(b"secret", &challenge, &flipped).is_err());
        assert!(verify(b"secret", &challenge, &good[..31]).is_err(), "short");
        assert!(verify(b"secret", &challenge, &[]).is_err(), "empty");
        let mut long = good.to_vec();
        long.push(0);
        assert!(verify(b"secret", &challenge, &long).is_err(), "long");
    }

    #[test]
    fn challenges_are_fresh() {
        let a = new_challenge().unwrap();
        let b = new_challenge().unwrap();
        assert_ne!(a, b);
        // A response to one challenge is no good for the next (no replay).
        assert!(verify(b"k", &b, &respond(b"k", &a)).is_err());
    }
}
