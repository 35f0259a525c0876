//! Characters that change how text *displays* without being seen: Unicode
//! format characters (general category Cf: the bidirectional overrides and
//! isolates, zero-width spaces and joiners, the byte-order mark, tag
//! characters, ...) and the line and paragraph separators.
//! `invoice\u{202e}gpj.exe` shows as `invoiceexe.jpg`; a name or a log line
//! holding one can pass for something it is not.
//!
//! Used to refuse such names in the files folder and to escape them in
//! the audit log. Not here: the C0/C1 controls, which `char::is_control`
//! already finds.

/// Whether `c` is a Unicode format character (category Cf, as of Unicode
/// 15.1) or U+2028 / U+2029 (line and paragraph separator).
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x2028..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_controls_and_zero_width_characters_are_found() {
        for c in [
            '\u{202e}',
            '\u{202a}',
            '\u{2066}',
            '\u{2069}',
            '\u{200b}',
            '\u{200d}',
            '\u{200e}',
            '\u{feff}',
            '\u{061c}',
            '\u{2028}',
            '\u{2029}',
            '\u{e0041}',
            '\u{00ad}',
        ] {
            assert!(is_invisible_format(c), "U+{:04X}", u32::from(c));
        }
        for c in ['a', 'é', '中', ' ', '-', '\u{2010}', '\u{2030}', '😀'] {
            assert!(!is_invisible_format(c), "U+{:04X}", u32::from(c));
        }
    }
}
