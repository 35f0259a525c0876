//! SHA-256 of bulk data: uploads as they arrive, stored files, resumable
//! parts, and the clients' side of the same checks.
//!
//! On ring's implementation (already linked for TLS) rather than sha2's:
//! both use the CPU's SHA extensions where there are any, and ring's was
//! about a tenth faster on our x86-64 machines (0.87–0.90 ns per byte
//! against 0.98–1.02), on the path where hashing is most of an upload's
//! CPU (see bench/NOTES.md). Small hashes (tokens, certificate
//! fingerprints, HMAC) stay on sha2, whose `Digest` trait `hmac` needs.

/// A running SHA-256, with the method names of `sha2::Digest`.
#[derive(Clone)]
pub struct Sha256(ring::digest::Context);

impl Sha256 {
    pub fn new() -> Self {
        Sha256(ring::digest::Context::new(&ring::digest::SHA256))
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finalize(self) -> [u8; 32] {
        self.0
            .finish()
            .as_ref()
            .try_into()
            .expect("a SHA-256 digest is 32 bytes")
    }

    /// The digest of `bytes`, at once.
    pub fn digest(bytes: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(bytes);
        h.finalize()
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Sha256::new()
    }
}

impl std::fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha256")
    }
}

#[cfg(test)]
mod tests {
    use super::Sha256;

    #[test]
    fn agrees_with_sha2_in_pieces_and_at_once() {
        use sha2::Digest;
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let want: [u8; 32] = sha2::Sha256::digest(&data).into();
        let mut h = Sha256::new();
        for piece in data.chunks(4093) {
            h.update(piece);
        }
        assert_eq!(h.finalize(), want);
        assert_eq!(Sha256::digest(&data), want);
        assert_eq!(
            crate::wire::hex(&Sha256::digest(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
