//! The arguments of `switchboard bench KIND`: the target, the load and what
//! each kind sends.

use super::*;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub kind: BenchKind,
}

#[derive(Debug, Subcommand)]
pub enum BenchKind {
    /// TCP echo: each connection sends SIZE bytes and reads the upper-cased
    /// reply back, in lockstep.
    Echo {
        /// Address of an upper-case echo server.
        #[arg(value_name = "ADDR", default_value = "127.0.0.1:9000")]
        addr: String,
        /// Bytes per request (lower-case letters).
        #[arg(long, short = 's', default_value = "64", value_parser = parse_size)]
        size: u64,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// UDP echo: each socket sends a datagram and waits for its reply; a
    /// reply not back within --timeout counts as lost.
    Udp {
        #[arg(value_name = "ADDR", default_value = "127.0.0.1:9001")]
        addr: String,
        /// Bytes per datagram.
        #[arg(long, short = 's', default_value = "64", value_parser = parse_size)]
        size: u64,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// The UDP time service: each socket asks for the time in FORMAT.
    Time {
        #[arg(value_name = "ADDR", default_value = "127.0.0.1:9002")]
        addr: String,
        #[arg(long, default_value = "%Y-%m-%d %H:%M:%S")]
        format: String,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Remote commands per second: each connection runs PROGRAM ARGS (after
    /// `--`, default `echo hi`) and waits for its exit.
    Exec {
        #[arg(value_name = "ADDR", default_value = "127.0.0.1:9003")]
        addr: String,
        /// Speak the seeds/001 tutorial protocol (the command line, answered
        /// by a 4-byte little-endian length and the output) instead of ours.
        #[arg(long)]
        classic: bool,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        load: LoadArgs,
        #[arg(last = true, value_name = "PROGRAM ARGS")]
        argv: Vec<String>,
    },
    /// Uploads: PARALLEL at a time, COUNT in all, of SIZE bytes each. Files
    /// uploads are checked against the server's SHA-256.
    Put {
        #[arg(value_name = "ADDR", default_value = "127.0.0.1:9004")]
        addr: String,
        /// Bytes per upload: 128MiB, 1GiB, 500k...
        #[arg(long, short = 's', default_value = "64MiB", value_parser = parse_size)]
        size: u64,
        /// Uploads at once, each on its own connection.
        #[arg(long, short = 'P', default_value = "1")]
        parallel: usize,
        /// Uploads in all (default: PARALLEL).
        #[arg(long, short = 'n')]
        count: Option<u64>,
        /// Speak files-classic's 136-byte header (no key, no reply): an
        /// upload ends when the server closes.
        #[arg(long)]
        classic: bool,
        /// With --classic: the folder the server stores into; its files
        /// are hashed (then removed) after the run to check them.
        #[arg(long, value_name = "DIR")]
        verify_dir: Option<PathBuf>,
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        common: BenchCommon,
    },
    /// Opens CONNECTIONS connections and holds them idle, then reports how
    /// many stayed open (and, with --server-pid, the server's memory each).
    Idle {
        #[arg(value_name = "ADDR", default_value = "127.0.0.1:9000")]
        addr: String,
        #[arg(long, short = 'c', default_value = "1000")]
        connections: usize,
        /// How long to hold them before looking.
        #[arg(long, default_value = "3s", value_parser = parse_duration)]
        hold: Duration,
        /// Connect from this many loopback addresses (127.0.0.1, 127.0.0.2,
        /// ...; IPv4 loopback targets only): one source has about 28,000
        /// ports per server address, so 100,000 connections need 4 or more.
        /// The server's `max_connections_per_peer` counts each source apart.
        #[arg(long, default_value = "1", value_parser = clap::value_parser!(u8).range(1..=64))]
        sources: u8,
        #[command(flatten)]
        common: BenchCommon,
    },
    /// A dashboard API route, signed in: keep-alive GETs of PATH.
    ///
    /// The password is read from --password-file, else asked for (one line
    /// of standard input when it is not a terminal).
    Http {
        #[arg(value_name = "ADDR", default_value = "127.0.0.1:8080")]
        addr: String,
        #[arg(long, default_value = "/api/v1/services")]
        path: String,
        #[arg(long, short = 'u', default_value = "admin")]
        user: String,
        #[arg(long, value_name = "PATH")]
        password_file: Option<PathBuf>,
        #[command(flatten)]
        load: LoadArgs,
    },
}

/// How hard and how long a bench runs.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Connections (or sockets), each with one request in flight.
    #[arg(long, short = 'c', default_value = "50")]
    pub connections: usize,
    /// How long to run (at most 10m).
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stop after this many requests in all (if sooner than --duration).
    #[arg(long, short = 'n')]
    pub requests: Option<u64>,
    #[command(flatten)]
    pub common: BenchCommon,
}

/// Options every bench shares.
#[derive(Debug, Args)]
pub struct BenchCommon {
    /// Longest wait for a connection or one reply.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// The server's process id, to report its CPU time and memory (Linux).
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Allow a target that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Exit 0 even when some requests failed or (idle) some connections
    /// were not held; without it any error makes the exit status 1, after
    /// the report (with the server's refusal reasons, if it sent any).
    #[arg(long)]
    pub allow_errors: bool,
    /// TLS for the echo, exec and put benches.
    #[command(flatten)]
    pub tls: TlsArgs,
}
