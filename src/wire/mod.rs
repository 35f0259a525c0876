//! Pure codecs: bytes in, bytes or typed values out. No sockets, no clocks
//! read here (callers pass the time in), so every rule can be unit-tested and
//! fuzzed on its own.

pub mod classic;
pub mod message;
pub mod time;

/// ASCII upper-casing as DESIGN.md defines it (Python's `bytes.upper()`):
/// `a`–`z` become `A`–`Z`, every other byte, UTF-8 or not, is left alone.
pub fn ascii_upper_in_place(buf: &mut [u8]) {
    buf.make_ascii_uppercase();
}

/// Lower-case hex of `bytes` (SHA-256 digests, keys, HMAC tags).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
