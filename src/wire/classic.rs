//! The seeds/003 upload header, byte for byte: Python's
//! `struct.pack('128sq', name, size)` on x86-64.
//!
//! ```text
//! +--------------------------------------+---------------------------+
//! | 128 bytes: file name, NUL-padded     | i64 little-endian: size   |
//! +--------------------------------------+---------------------------+
//! ```
//!
//! then `size` bytes of file. `'128s'` truncates longer names and pads
//! shorter ones with NULs, so a name is the bytes before the first NUL (all
//! 128 when there is none). Whether the name is acceptable is the store's
//! business; whether the size is, the service's.

/// Bytes in the header.
pub const HEADER_LEN: usize = 136;
/// Bytes of the name field.
pub const NAME_LEN: usize = 128;

/// A decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicHeader {
    /// The raw name bytes, up to the first NUL. Not checked in any way.
    pub name: Vec<u8>,
    /// As sent: may be negative or absurd.
    pub size: i64,
}

/// Decodes a complete header. Every 136-byte input decodes.
pub fn decode(buf: &[u8; HEADER_LEN]) -> ClassicHeader {
    let (name, size) = buf.split_at(NAME_LEN);
    let end = name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
    let size: [u8; 8] = size.try_into().expect("136 - 128 = 8");
    ClassicHeader {
        name: name[..end].to_vec(),
        size: i64::from_le_bytes(size),
    }
}

impl ClassicHeader {
    /// The declared size as a byte count, if it is one the service takes:
    /// not negative and at most `max`.
    ///
    /// # Errors
    /// [`SizeRefused`] saying which rule the size breaks.
    pub fn checked_size(&self, max: u64) -> Result<u64, SizeRefused> {
        let size = u64::try_from(self.size).map_err(|_| SizeRefused::Negative(self.size))?;
        if size > max {
            return Err(SizeRefused::OverLimit { size, max });
        }
        Ok(size)
    }
}

/// Why a declared size is refused. Sent to the peer as `error: <this>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeRefused {
    #[error("negative size {0}")]
    Negative(i64),
    #[error("file too large: it is {size} bytes; the limit is {max}")]
    OverLimit { size: u64, max: u64 },
}

/// Why a header cannot be encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClassicError {
    #[error("file name is {0} bytes; the classic header holds at most 128")]
    NameTooLong(usize),
    #[error("file name contains a NUL byte")]
    NulInName,
}

/// Encodes a header. Unlike Python's `'128s'`, a name that does not fit is
/// an error rather than silently cut.
///
/// # Errors
/// [`ClassicError`] for a name over 128 bytes or holding a NUL.
pub fn encode(name: &[u8], size: i64) -> Result<[u8; HEADER_LEN], ClassicError> {
    if name.len() > NAME_LEN {
        return Err(ClassicError::NameTooLong(name.len()));
    }
    if name.contains(&0) {
        return Err(ClassicError::NulInName);
    }
    let mut out = [0u8; HEADER_LEN];
    out[..name.len()].copy_from_slice(name);
    out[NAME_LEN..].copy_from_slice(&size.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_struct_pack() {
        // python3 -c "import struct; print(struct.pack('128sq', b'a.txt', 1000).hex())"
        let mut want = vec![b'a', b'.', b't', b'x', b't'];
        want.resize(128, 0);
        want.extend_from_slice(&[0xe8, 0x03, 0, 0, 0, 0, 0, 0]);
        let got = encode(b"a.txt", 1000).unwrap();
        assert_eq!(&got[..], &want[..]);
        assert_eq!(
            decode(&got),
            ClassicHeader {
                name: b"a.txt".to_vec(),
                size: 1000
            }
        );
    }

    #[test]
    fn odd_headers_decode_as_they_are() {
        let full = [b'x'; HEADER_LEN];
        let h = decode(&full);
        assert_eq!(h.name.len(), 128, "no NUL: all 128 bytes");
        let mut neg = encode(b"n", -1).unwrap();
        assert_eq!(decode(&neg).size, -1);
        neg[NAME_LEN..].copy_from_slice(&i64::MAX.to_le_bytes());
        assert_eq!(decode(&neg).size, i64::MAX);
        // a\0../x: the name ends at the NUL.
        let mut tricky = [0u8; HEADER_LEN];
        tricky[..6].copy_from_slice(b"a\0../x");
        assert_eq!(decode(&tricky).name, b"a");
        assert_eq!(encode(&[b'y'; 129], 0), Err(ClassicError::NameTooLong(129)));
        assert_eq!(encode(b"a\0b", 0), Err(ClassicError::NulInName));
    }
}

/// Property tests: every name that fits round-trips with every size, and a
/// size is taken only when it is a byte count within the limit.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_name_that_fits_round_trips(
            name in prop::collection::vec(1u8..=255, 0..=NAME_LEN),
            size in any::<i64>(),
        ) {
            let bytes = encode(&name, size).unwrap();
            prop_assert_eq!(decode(&bytes), ClassicHeader { name, size });
        }

        #[test]
        fn names_too_long_or_holding_nul_are_not_encoded(
            mut name in prop::collection::vec(any::<u8>(), 0..300),
            at in any::<usize>(),
        ) {
            if name.len() > NAME_LEN {
                prop_assert_eq!(encode(&name, 0), Err(ClassicError::NameTooLong(name.len())));
            } else if !name.is_empty() {
                let at = at % name.len();
                name[at] = 0;
                prop_assert_eq!(encode(&name, 0), Err(ClassicError::NulInName));
            }
        }

        #[test]
        fn every_header_decodes_and_re_encodes_to_its_meaning(
            raw in prop::collection::vec(any::<u8>(), HEADER_LEN),
        ) {
            let raw: [u8; HEADER_LEN] = raw.try_into().unwrap();
            let h = decode(&raw);
            prop_assert!(h.name.len() <= NAME_LEN && !h.name.contains(&0));
            prop_assert_eq!(decode(&encode(&h.name, h.size).unwrap()), h);
        }

        #[test]
        fn negative_and_oversized_sizes_are_refused(size in any::<i64>(), max in any::<u64>()) {
            let h = ClassicHeader { name: b"a".to_vec(), size };
            match h.checked_size(max) {
                Ok(n) => prop_assert!(size >= 0 && n == size as u64 && n <= max),
                Err(SizeRefused::Negative(s)) => prop_assert!(size < 0 && s == size),
                Err(SizeRefused::OverLimit { size: n, max: m }) => {
                    prop_assert!(size >= 0 && n == size as u64 && n > max && m == max);
                }
            }
        }
    }
}
