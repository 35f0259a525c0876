//! The command line: `serve` (the default) and a client per service.
//!
//! Only the shape of the arguments lives here; `main.rs` dispatches.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// switchboard: the classic socket-tutorial servers (TCP and UDP echo, a
/// time server, remote commands, file transfer, a login prompt) with a web
/// dashboard in front, and a command-line client for each.
///
/// With no command, `switchboard` runs `serve`.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every enabled service (the default command).
    Serve(ServeArgs),
    /// Talk to the TCP upper-case echo service.
    ///
    /// With TEXT, sends it once and prints the reply; without, reads lines
    /// from standard input at a `>>` prompt until EOF or `quit`.
    Echo(TextArgs),
    /// Talk to the UDP upper-case echo service (`udp-echo`).
    ///
    /// With TEXT, sends it once and prints the reply; without, reads lines
    /// from standard input at a `>>` prompt until EOF or `quit`.
    Udp(TextArgs),
    /// Ask the UDP time service for the time in a strftime FORMAT.
    ///
    /// An empty FORMAT gets the server's default, %Y-%m-%d-%X. Without
    /// FORMAT, reads formats at a `>>` prompt until EOF or `quit`.
    Time(TimeArgs),
    /// Run a command on the exec service: `switchboard exec ADDR -- ls -l`.
    ///
    /// Output is streamed to stdout and stderr as it comes; the remote exit
    /// code becomes this command's own (128+N for a signal N). The key comes
    /// from --key-file, else SWITCHBOARD_KEY, else the key file of a local
    /// server's data directory (--data-dir).
    Exec(ExecArgs),
    /// Upload files to the files service: `switchboard put 9004 photo.jpg`.
    ///
    /// Shows progress (bytes, rate, ETA) on a terminal and checks the
    /// server's SHA-256 against its own. With --classic, speaks the
    /// tutorial's 136-byte header to files-classic instead.
    Put(PutArgs),
    /// Download a stored file, checking its SHA-256.
    Get(GetArgs),
    /// List the stored files: size, time, SHA-256, name.
    List(ListArgs),
    /// Sign in at the login service's prompt: `switchboard login ADDR`.
    ///
    /// Asks for the user (unless --user) and the password (without echo on
    /// a terminal; one line of standard input otherwise). Exits 0 on
    /// `login ok`, 1 when the login fails.
    Login(LoginArgs),
    /// Manage the accounts of the dashboard and the login service.
    ///
    /// Works on `<data_dir>/users.json` (see --data-dir); a running server
    /// picks changes up at once. New passwords are asked for without echo,
    /// read as one line of standard input when it is not a terminal, or
    /// generated with --generate.
    User(UserArgs),
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    /// The user name (asked for when omitted).
    #[arg(long, short = 'u', value_name = "NAME")]
    pub user: Option<String>,
}

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub action: UserAction,

    #[command(flatten)]
    pub config: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Add an account (the first one must be `admin`).
    Add {
        name: String,
        /// viewer (sees), operator (also sends and uploads) or admin (also
        /// starts/stops services and runs commands).
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Generate a password and print it instead of asking for one.
        #[arg(long)]
        generate: bool,
    },
    /// Set a new password.
    Passwd {
        name: String,
        /// Generate a password and print it instead of asking for one.
        #[arg(long)]
        generate: bool,
    },
    /// Change an account's role.
    Role { name: String, role: String },
    /// Remove an account (not the last admin).
    Del { name: String },
    /// List the accounts.
    List,
}

/// Where an authenticating client finds the HMAC key.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// File holding the HMAC key (as the server's `<data_dir>/key`).
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,

    /// Data directory of a local server whose key file to use.
    #[arg(long, value_name = "DIR", default_value = "switchboard-data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    /// Files to upload, one after another on one connection.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    /// Store under this name instead of the file's own (one FILE only).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Speak the tutorial's format to files-classic (no key, no reply; the
    /// server stores `new_<name>`).
    #[arg(long)]
    pub classic: bool,

    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    /// The stored name (as `switchboard list` shows it).
    #[arg(value_name = "NAME")]
    pub name: String,

    /// Where to write it (`-` for standard output); default ./NAME.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Replace PATH if it exists.
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    /// Print the list as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    #[command(flatten)]
    pub key: KeyArgs,

    /// Run LINE with /bin/sh -c (only if the server enabled shell mode).
    #[arg(long, value_name = "LINE", conflicts_with = "argv")]
    pub shell: Option<String>,

    /// Ask the server to stop the command after this long (it may allow less).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub limit: Option<Duration>,

    /// The program and its arguments, after `--`, passed as given (no shell).
    #[arg(last = true, value_name = "PROGRAM ARGS")]
    pub argv: Vec<String>,
}

/// Options of `serve`.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// TOML config file (keys as in DESIGN.md: data_dir, key, [web],
    /// [services.<name>]).
    #[arg(long, global = true, value_name = "PATH", env = "SWITCHBOARD_CONFIG")]
    pub config: Option<PathBuf>,

    /// Override one config key, e.g. `--set services.echo.listen=[::1]:9000`.
    /// Repeatable; wins over the file and the environment.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Where files, accounts and the generated key are kept
    /// (same as `--set data_dir=DIR`).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Arguments shared by every client.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Service address: HOST:PORT, [IPv6]:PORT, PORT (on 127.0.0.1), or
    /// unix:/path for TCP services.
    #[arg(value_name = "ADDR")]
    pub addr: String,

    /// How long to wait for a connection or a reply: `5s`, `500ms`, or seconds.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct TextArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    /// Text to send (words are joined with spaces). Omit for a prompt.
    #[arg(
        value_name = "TEXT",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub text: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TimeArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    /// strftime format, e.g. '%H:%M:%S'. Omit for a prompt.
    #[arg(value_name = "FORMAT", allow_hyphen_values = true)]
    pub format: Option<String>,
}

/// Parses `5s`, `250ms`, `2m` or a bare number of seconds (`1.5`).
///
/// # Errors
/// A message saying what was expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try 5s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{text}` (use ms, s or m)"
            ));
        }
    };
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("`{text}` must be more than 0 and at most a day"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        for bad in ["", "0", "-1s", "5h", "abc", "1e9"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_command_means_serve_and_text_keeps_hyphens() {
        let cli = Cli::try_parse_from(["switchboard", "--set", "web.listen=127.0.0.1:1"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.set, ["web.listen=127.0.0.1:1"]);
        let cli =
            Cli::try_parse_from(["switchboard", "echo", "9000", "hello", "-n", "world"]).unwrap();
        let Some(Command::Echo(args)) = cli.command else {
            panic!("echo")
        };
        assert_eq!(args.text, ["hello", "-n", "world"]);
    }
}
