//! The command line: `serve` (the default) and a client per service.
//!
//! Only the shape of the arguments lives here; `main.rs` dispatches.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

mod bench;
pub use bench::{BenchArgs, BenchCommon, BenchKind, LoadArgs};
mod toxic;
pub use toxic::{ToxicAction, ToxicArgs};
mod accounts;
mod dashboard;
pub use accounts::{KeyArgs, TokenAction, TokenArgs, UserAction, UserArgs};
pub use dashboard::{DashboardAddr, parse_dashboard};

/// switchboard: the classic socket-tutorial servers (TCP and UDP echo, a
/// time server, remote commands, file transfer, a login prompt) with a web
/// dashboard in front, and a command-line client for each.
///
/// With no command, `switchboard` runs `serve`.
///
/// Each service is an instance of a kind. The seven built-in instances are
/// named after their kinds (echo, udp-echo, time, exec, files,
/// files-classic, login); a config file adds more: a table
/// `[services.echo-2]` with `kind = "echo"` and `listen = "127.0.0.1:9100"`
/// runs a second echo.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,

    /// Log lines on stderr as plain text or as one JSON object per line
    /// (for journald, `docker logs` and log collectors).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "SWITCHBOARD_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every enabled service instance and the dashboard (the default command).
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
    /// Manage API tokens: what scripts send as `Authorization: Bearer`
    /// instead of signing in.
    ///
    /// Works on `<data_dir>/tokens.json` (see --data-dir); a running server
    /// picks changes up at once. `create` prints the token once: only its
    /// SHA-256 is kept.
    Token(TokenArgs),
    /// Manage the service instances of a running switchboard through its
    /// API (an admin token for changes): list, add, edit, remove. The same
    /// as the dashboard's Services page; changes are kept in
    /// `<data_dir>/services.toml`.
    Service(ServiceArgs),
    /// Fault injection on a tcp-proxy or udp-proxy through the running
    /// dashboard's API (an operator token for changes): list, add, edit,
    /// remove toxics (latency, bandwidth, slicer, ...; see docs/TOXICS.md).
    Toxic(ToxicArgs),
    /// Load-test a service (or any server speaking its protocol) and report
    /// throughput, latency percentiles and errors.
    ///
    /// Connections are opened first, untimed; then each does one request at
    /// a time until --duration is up or --requests are done. Targets must
    /// be loopback unless --allow-remote. With --server-pid, the server's
    /// CPU time and memory are read from /proc before and after.
    Bench(BenchArgs),
    /// Replay a capture's client side to ADDR and compare the replies with
    /// the recorded ones: `switchboard replay echo.pcapng 127.0.0.1:9000`.
    ///
    /// Reads pcapng or pcap (our exports, tcpdump, tshark) holding one TCP
    /// stream or UDP flow (or pick one with --stream). The client is the
    /// side that sent the SYN (or spoke first); each of its segments is one
    /// write (one datagram for UDP), back to back, or at the recorded gaps
    /// with --timing. Replies are read until the server closes, the
    /// recorded amount has come back and half a second passes quietly, less
    /// came back and --idle passes quietly, or --timeout. Exits 0 when the replies equal the recording byte for
    /// byte, 1 when they differ (the first difference is shown), 2 when
    /// the capture cannot be read or ADDR cannot be reached.
    Replay(ReplayArgs),
    /// Check that a running switchboard answers on its dashboard's
    /// /healthz: exit 0 if it does, 1 if not (the Docker HEALTHCHECK).
    ///
    /// Without ADDR, asks the dashboard address of the config (a wildcard
    /// listen address is asked on loopback).
    Health(HealthArgs),
    /// Print a shell completion script: `switchboard completions bash >
    /// ~/.local/share/bash-completion/completions/switchboard`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `switchboard man | man -l -`.
    Man,
    /// Make the running server read its config file and
    /// `<data_dir>/services.toml` again and apply only the differences
    /// (the same as `SIGHUP` or the dashboard's Reload button).
    ///
    /// Unchanged instances keep their listeners and connections; a changed
    /// one starts anew on the same socket while its old connections drain.
    /// Talks to the server over `<data_dir>/control.sock`. Exits non-zero
    /// with the reason when the configuration has an error (then nothing
    /// changed) or a change failed.
    Reload(ControlArgs),
    /// Replace the running server by the binary now at its path, without
    /// dropping a connection (the same as `SIGUSR2`).
    ///
    /// The new process gets every listening socket and, once it listens,
    /// the old one stops accepting and exits when its open connections,
    /// commands and uploads are done (within `shutdown_grace_ms`). If the
    /// new one fails to start, the old one goes on serving and this exits
    /// non-zero with the reason. Prints the new process's pid.
    Upgrade(ControlArgs),
}

/// Options of `reload` (and `upgrade`).
#[derive(Debug, Args)]
pub struct ControlArgs {
    #[command(flatten)]
    pub config: ServeArgs,

    /// How long to wait for the server's answer.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    #[command(subcommand)]
    pub action: ServiceAction,

    /// The dashboard: HOST:PORT, PORT (on 127.0.0.1) or its URL as the
    /// banner prints it (default: `web.listen` of the config). The host is
    /// sent as `Host`, so a name `web.allowed_hosts` lists is answered.
    #[arg(long, value_name = "ADDR", global = true, value_parser = parse_dashboard)]
    pub url: Option<DashboardAddr>,

    /// An API token (`switchboard token create NAME --role admin`).
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,

    /// How long to wait for each answer.
    #[arg(long, default_value = "10s", value_parser = parse_duration, global = true)]
    pub timeout: Duration,

    #[command(flatten)]
    pub config: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum ServiceAction {
    /// Every instance: name, kind, protocol, state, address, where defined.
    List,
    /// Add an instance and start it: `switchboard service add echo-2 --kind
    /// echo --setting listen=127.0.0.1:9100`.
    Add {
        /// The new instance's name: a-z, 0-9 and `-`.
        name: String,
        /// Its kind: echo, udp-echo, time, exec, files, files-classic, login, ...
        #[arg(long)]
        kind: String,
        /// One of the kind's settings, as in the config file (repeatable).
        #[arg(long = "setting", value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
    /// Change some settings of an added instance (it restarts with them):
    /// the ones named change, the others stay. A built-in or config-file
    /// instance takes only `--setting enabled=false|true`.
    Edit {
        name: String,
        /// A setting to change, as in the config file (repeatable).
        #[arg(long = "setting", value_name = "KEY=VALUE")]
        settings: Vec<String>,
        /// Replace every setting with the `--setting`s given (the others
        /// go back to their defaults; `listen` is required).
        #[arg(long)]
        replace: bool,
    },
    /// Stop and remove an instance added from the dashboard or this command.
    Rm { name: String },
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The capture: pcapng or pcap, as exported by the dashboard or written
    /// by tcpdump -w or tshark -w.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Where to send it: HOST:PORT, [IPv6]:PORT, PORT (on 127.0.0.1), or
    /// unix:/path for a TCP capture.
    #[arg(value_name = "ADDR")]
    pub addr: String,

    /// Keep the recorded gaps between the client's segments (each at most 10s).
    #[arg(long)]
    pub timing: bool,

    /// Print the result as JSON: what was sent, recorded and replied, and
    /// the comparison.
    #[arg(long)]
    pub json: bool,

    /// The longest the whole replay may take, connecting included.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Once everything is sent and less than the recorded amount came back,
    /// how long a silence ends the wait (with the recorded amount back,
    /// half a second does).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub idle: Duration,

    /// Which stream to replay when the capture holds several (numbered as
    /// the error listing them shows).
    #[arg(long, value_name = "N")]
    pub stream: Option<usize>,

    /// The largest capture file read: `256MiB`, `10m`, `500k`.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub max_bytes: u64,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The dashboard: HOST:PORT, PORT (on 127.0.0.1) or its URL as the
    /// banner prints it (default: `web.listen` of the config). The host is
    /// sent as `Host`, so a name `web.allowed_hosts` lists is answered.
    #[arg(value_name = "ADDR", value_parser = parse_dashboard)]
    pub addr: Option<DashboardAddr>,

    /// How long to wait for the answer.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,

    #[command(flatten)]
    pub config: ServeArgs,
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

    /// Resumable: keep what the server received if the connection drops,
    /// and continue from there when run again with --resume (the partial
    /// upload's id is kept under $XDG_STATE_HOME/switchboard/partials/).
    #[arg(long, conflicts_with = "classic")]
    pub resume: bool,

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
#[derive(Debug, Clone, Args, Default)]
pub struct ServeArgs {
    /// TOML config file: data_dir, key, [web] and one [services.<name>] table
    /// per instance, with `kind = "..."` for a name that is not a kind
    /// (every key is listed in the README's configuration section).
    #[arg(long, global = true, value_name = "PATH", env = "SWITCHBOARD_CONFIG")]
    pub config: Option<PathBuf>,

    /// Override one config key, e.g. `--set services.echo.listen=[::1]:9000`.
    /// Repeatable; wins over the file and the environment.
    // Not global: clap would copy a later level's list over an earlier
    // one's, and `switchboard --set a=1 serve --set b=2` takes both.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Where files, accounts and the generated key are kept
    /// (same as `--set data_dir=DIR`).
    // Global, like --config and --port-base: `switchboard user add NAME
    // --data-dir DIR` takes it after the subcommand as well as before.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Move every port at once: the services to N…N+6 (echo, udp-echo,
    /// time, exec, files, files-classic, login) and the dashboard to N+80,
    /// each on its configured address. `--set` still wins for one service.
    #[arg(long, global = true, value_name = "N", env = "SWITCHBOARD_PORT_BASE")]
    pub port_base: Option<u16>,

    /// Once everything is bound, write where each service and the dashboard
    /// listen to this file as JSON ({"web": URL, "services": {NAME: {kind,
    /// proto, addr, state}}}): for scripts and tests, which should not parse
    /// the banner.
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,

    /// Run on when the dashboard or an enabled instance cannot bind at
    /// start (same as `--set keep_going=true`). Without it `serve` lists
    /// every bind failure and exits with status 1.
    #[arg(long)]
    pub keep_going: bool,
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

    #[command(flatten)]
    pub tls: TlsArgs,
}

/// TLS to a TCP service (`services.<name>.tls = true`).
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// Speak TLS; give --ca or --pin to say which certificate to trust.
    #[arg(long)]
    pub tls: bool,
    /// With --tls: trust certificates signed by the CA(s) in this PEM file
    /// (a self-signed certificate is its own CA), for the host dialled.
    #[arg(long, value_name = "FILE", requires = "tls", conflicts_with = "pin")]
    pub ca: Option<PathBuf>,
    /// With --tls: accept exactly the certificate with this SHA-256 (hex,
    /// as `serve` prints it), whatever its name or dates.
    #[arg(long, value_name = "SHA256HEX", requires = "tls")]
    pub pin: Option<String>,
}

#[derive(Debug, Args)]
pub struct TextArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    /// Text to send (words are joined with spaces). Omit for a prompt.
    /// Options may come after it; text that starts with `-` goes after `--`.
    #[arg(value_name = "TEXT")]
    pub text: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TimeArgs {
    #[command(flatten)]
    pub client: ClientArgs,

    /// strftime format, e.g. '%H:%M:%S'. Omit for a prompt. A format that
    /// starts with `-` goes after `--`.
    #[arg(value_name = "FORMAT")]
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

/// Parses `64`, `500k`, `128MiB`, `1G` (powers of 1024; `B` optional).
///
/// # Errors
/// A message saying what was expected.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a size (try 64, 500k, 128MiB, 1GiB)"))?;
    let shift = match unit
        .to_ascii_lowercase()
        .trim_end_matches('b')
        .trim_end_matches('i')
    {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        _ => return Err(format!("unknown unit in `{text}` (use k, MiB or GiB)")),
    };
    let bytes = value * (1u64 << shift) as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes <= (1u64 << 40) as f64) {
        return Err(format!("`{text}` must be 1 B to 1 TiB"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests;
