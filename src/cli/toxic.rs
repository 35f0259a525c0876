//! The arguments of `switchboard toxic list|add|edit|rm PROXY`.

use super::*;

#[derive(Debug, Args)]
pub struct ToxicArgs {
    #[command(subcommand)]
    pub action: ToxicAction,

    /// The dashboard: HOST:PORT, PORT (on 127.0.0.1) or its URL as the
    /// banner prints it (default: `web.listen` of the config). The host is
    /// sent as `Host`, so a name `web.allowed_hosts` lists is answered.
    #[arg(long, value_name = "ADDR", global = true, value_parser = parse_dashboard)]
    pub url: Option<DashboardAddr>,

    /// An API token (`switchboard token create NAME --role operator`).
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,

    /// How long to wait for each answer.
    #[arg(long, default_value = "10s", value_parser = parse_duration, global = true)]
    pub timeout: Duration,

    #[command(flatten)]
    pub config: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum ToxicAction {
    /// A proxy's toxics: name, type, stream, toxicity, on/off, attributes.
    List {
        /// A tcp-proxy or udp-proxy instance.
        proxy: String,
    },
    /// Add a toxic: `switchboard toxic add db --type latency -a latency=100`.
    ///
    /// Types (units as Toxiproxy's): latency (latency, jitter: ms),
    /// bandwidth (rate: KB/s), slow_close (delay: ms), timeout (timeout:
    /// ms, 0 = hold forever), reset_peer (timeout: ms), slicer
    /// (average_size, size_variation: bytes; delay: µs), limit_data
    /// (bytes); for udp-proxy also loss and duplicate (probability) and
    /// reorder (window: ms).
    Add {
        proxy: String,
        /// The toxic's type.
        #[arg(long = "type", value_name = "TYPE")]
        type_name: String,
        /// Its name (default: TYPE_STREAM).
        #[arg(long)]
        name: Option<String>,
        /// upstream (client → server) or downstream (server → client).
        #[arg(long, default_value = "downstream")]
        stream: String,
        /// Chance (0–1) it acts on a connection (per datagram for UDP).
        #[arg(long, default_value_t = 1.0)]
        toxicity: f64,
        /// An attribute, NAME=NUMBER (repeatable).
        #[arg(short = 'a', long = "attribute", value_name = "NAME=NUMBER")]
        attributes: Vec<String>,
    },
    /// Change a toxic: its attributes, toxicity, or switch it on or off.
    Edit {
        proxy: String,
        name: String,
        #[arg(long)]
        toxicity: Option<f64>,
        /// true or false: a toxic switched off stays listed and does nothing.
        #[arg(long)]
        enabled: Option<bool>,
        #[arg(short = 'a', long = "attribute", value_name = "NAME=NUMBER")]
        attributes: Vec<String>,
    },
    /// Remove a toxic.
    Rm { proxy: String, name: String },
}
