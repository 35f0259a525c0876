//! Asking a person for a line at the terminal, with or without echo.
//!
//! When standard input is not a terminal (a pipe, a test, a script), lines
//! are read from it plainly and no prompt is printed.

use std::io::{BufRead, IsTerminal, Write};

/// Reads one line from standard input, without its line ending. With a
/// terminal, `prompt` is shown on stderr first; with `hidden`, what is typed
/// is not echoed (the terminal is restored afterwards).
///
/// # Errors
/// End of input, or the terminal cannot be read or set.
pub fn ask(prompt: &str, hidden: bool) -> std::io::Result<String> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    if tty {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
    }
    let saved = if tty && hidden {
        use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
        let saved = tcgetattr(&stdin).map_err(std::io::Error::from)?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(&stdin, SetArg::TCSANOW, &quiet).map_err(std::io::Error::from)?;
        Some(saved)
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = saved {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &saved);
        eprintln!();
    }
    if read? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "no input",
        ));
    }
    let trimmed = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(trimmed);
    Ok(line)
}

/// Whether a person is typing (so confirmation prompts make sense).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Bytes as people read them: `512 B`, `1.5 KiB`, `12.3 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A one-line progress bar on stderr (bytes, percent, rate, ETA), drawn
/// only when stderr is a terminal and at most ten times a second.
pub struct Progress {
    label: String,
    total: u64,
    started: std::time::Instant,
    drawn: Option<std::time::Instant>,
    enabled: bool,
}

impl Progress {
    pub fn new(label: &str, total: u64) -> Self {
        Progress {
            label: label.chars().take(24).collect(),
            total,
            started: std::time::Instant::now(),
            drawn: None,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    pub fn update(&mut self, done: u64) {
        if !self.enabled {
            return;
        }
        let now = std::time::Instant::now();
        let due = self
            .drawn
            .is_none_or(|t| now.duration_since(t).as_millis() >= 100);
        if !due && done < self.total {
            return;
        }
        self.drawn = Some(now);
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let frac = if self.total == 0 {
            1.0
        } else {
            done as f64 / self.total as f64
        };
        let filled = (frac * 24.0) as usize;
        let eta = if rate > 0.0 {
            let left = (self.total.saturating_sub(done) as f64 / rate) as u64;
            format!("{}:{:02}", left / 60, left % 60)
        } else {
            "-:--".into()
        };
        eprint!(
            "\r\x1b[K{:<24} [{}{}] {:>3.0}%  {} / {}  {}/s  ETA {eta}",
            self.label,
            "#".repeat(filled),
            ".".repeat(24 - filled),
            frac * 100.0,
            human_bytes(done),
            human_bytes(self.total),
            human_bytes(rate as u64),
        );
        let _ = std::io::stderr().flush();
    }

    /// Clears the bar so the result line can be printed in its place.
    pub fn finish(&mut self) {
        if self.enabled && self.drawn.is_some() {
            eprint!("\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_naturally() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(64 << 20), "64.0 MiB");
    }
}
