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
