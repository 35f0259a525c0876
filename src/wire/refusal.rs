//! The one line a TCP service writes when it turns a connection away before
//! serving it, then closes: `switchboard: REASON\n` (a connection cap, a port
//! behind a proxy reached directly, a program limit). Plain text on purpose,
//! so a person with `nc` reads why; our clients and benches recognise it
//! where they expected their protocol (`client::refusal`, `bench::refusal`).

/// How every refusal line starts.
pub const PREFIX: &[u8] = b"switchboard: ";

/// The most of a refusal line a reader takes (a longer one is cut there):
/// the services' own reasons are short, but one can quote a configured
/// program's path.
pub const MAX_LINE: usize = 512;

/// The refusal line for `reason`.
pub fn line(reason: impl std::fmt::Display) -> String {
    format!("switchboard: {reason}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_starts_with_the_prefix_and_ends_at_its_newline() {
        let l = line("busy");
        assert!(l.as_bytes().starts_with(PREFIX));
        assert_eq!(l, "switchboard: busy\n");
    }
}
