//! Pure codecs: bytes in, bytes or typed values out. No sockets, no clocks
//! read here (callers pass the time in), so every rule can be unit-tested and
//! fuzzed on its own.

pub mod classic;
pub mod exec;
pub mod files;
pub mod line;
pub mod message;
pub mod proxy_protocol;
pub mod refusal;
pub mod reply;
pub mod text;
pub mod time;

/// ASCII upper-casing as the README's service table means it (Python's `bytes.upper()`):
/// `a`–`z` become `A`–`Z`, every other byte, UTF-8 or not, is left alone.
pub fn ascii_upper_in_place(buf: &mut [u8]) {
    buf.make_ascii_uppercase();
}

/// Lower-case hex of `bytes` (SHA-256 digests, keys, HMAC tags).
pub fn hex(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

/// Parses hex digits (either case; spaces, tabs, newlines and `:` between
/// byte pairs are ignored, so `48 65:6c` works).
///
/// # Errors
/// A character that is not a hex digit, or an odd number of digits.
pub fn unhex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b':'))
        .collect();
    if let Some(&other) = digits.iter().find(|b| !b.is_ascii_hexdigit()) {
        return Err(format!(
            "`{}` is not a hex digit",
            char::from(other).escape_default()
        ));
    }
    if !digits.len().is_multiple_of(2) {
        return Err(format!("{} hex digits: bytes need two each", digits.len()));
    }
    ::hex::decode(&digits).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhex_reads_what_hex_writes_and_refuses_the_rest() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&all)).unwrap(), all);
        assert_eq!(unhex("48 65:6C\n6c").unwrap(), b"Hell");
        assert!(unhex("abc").unwrap_err().contains("3 hex digits"));
        assert!(unhex("zz").unwrap_err().contains("not a hex digit"));
        assert_eq!(unhex("").unwrap(), b"");
    }

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn upper_cases_only_ascii_letters() {
        let mut all: Vec<u8> = (0..=255u8).collect();
        ascii_upper_in_place(&mut all);
        for (i, b) in all.iter().enumerate() {
            let i = i as u8;
            let want = if i.is_ascii_lowercase() { i - 32 } else { i };
            assert_eq!(*b, want, "byte {i:#04x}");
        }
    }

    #[test]
    fn leaves_utf8_multibyte_sequences_alone() {
        // Python: "héllo ß".encode().upper() == b"H\xc3\xa9LLO \xc3\x9f"
        let mut s = "héllo ß".as_bytes().to_vec();
        ascii_upper_in_place(&mut s);
        assert_eq!(s, "HéLLO ß".as_bytes());
    }
}
