//! Every key of every kind, described for people: what `/api/v1/kinds`
//! serves and the dashboard's Services form is built from.
//!
//! The key list, types, defaults and bounds are not written here: they come
//! from the kinds' readers (`config::overlay::shapes_of`), which declare
//! them as they read. Here are only the words (a description, the values an
//! enumerated key takes, whether its value is secret), and the tests below
//! fail when a reader declares a key this table does not describe, or when
//! a listed choice is not what the reader accepts — so the form cannot miss
//! a key again.

use serde::Serialize;

use crate::config::overlay;
use crate::kind::{Proto, ServiceKind};
use crate::settings::Shape;

/// One key of a kind, as the form needs it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub key: String,
    /// `type` and, by type, `default`, `min`, `max` (durations in ms).
    #[serde(flatten)]
    pub shape: Shape,
    pub description: &'static str,
    /// For a text key with fixed values: them, the default first.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub choices: &'static [&'static str],
    /// Its value is never shown again once saved.
    pub secret: bool,
    /// An instance of this kind cannot be added without it.
    pub required: bool,
}

/// The words for one key.
struct Words {
    key: &'static str,
    text: &'static str,
    choices: &'static [&'static str],
}

const fn w(key: &'static str, text: &'static str) -> Words {
    Words {
        key,
        text,
        choices: &[],
    }
}

const fn choice(key: &'static str, text: &'static str, choices: &'static [&'static str]) -> Words {
    Words { key, text, choices }
}

/// Keys whose values go in and never come back out.
pub const SECRET: &[&str] = &["auth_key", "env"];

/// The words, by key name: a name means the same in every kind that has it.
const WORDS: &[Words] = &[
    w(
        "listen",
        "Address to listen on: IP:PORT, [IPv6]:PORT or unix:/path.",
    ),
    w(
        "enabled",
        "Starts with switchboard (and runs now when switched on).",
    ),
    w(
        "tls",
        "TLS on this TCP service; without its own files, the dashboard's certificate.",
    ),
    w(
        "tls_cert",
        "This service's own PEM certificate chain (with tls_key).",
    ),
    w(
        "tls_key",
        "This service's own PEM private key (with tls_cert).",
    ),
    w(
        "max_connections",
        "Connections at once; beyond it new ones are refused with a message.",
    ),
    w(
        "max_connections_per_peer",
        "Connections at once from one IP address.",
    ),
    w(
        "idle_timeout_ms",
        "A connection with no byte either way this long is closed.",
    ),
    w(
        "evict_idle_ms",
        "When full, the longest idle connection (idle at least this long) makes room.",
    ),
    w(
        "accept_proxy",
        "Every connection opens with a PROXY v1/v2 header naming the client.",
    ),
    w(
        "trusted_proxies",
        "With accept_proxy: the CIDR ranges that may send the header (default loopback).",
    ),
    w("max_peers", "Distinct sources tracked at once."),
    w("peer_rate", "Datagrams per second answered per source."),
    w("peer_burst", "Burst allowed above peer_rate."),
    w(
        "peer_ttl_ms",
        "A source is listed this long after its last datagram.",
    ),
    w(
        "capture",
        "Record every read and write for the wire inspector.",
    ),
    w(
        "capture_bytes",
        "Bytes captured per connection and direction; the oldest go first.",
    ),
    w(
        "public",
        "Allows a non-loopback listen address without TLS (for kinds without their own sign-in).",
    ),
    choice(
        "auth",
        "The tutorial's HMAC challenge before the first request.",
        &["none", "hmac-md5", "hmac-sha256"],
    ),
    w(
        "auth_key",
        "The challenge's shared key (required with auth).",
    ),
    w(
        "allow",
        "Programs that may be run, looked up in /usr/local/bin:/usr/bin:/bin.",
    ),
    w("shell", "Allow shell requests (/bin/sh -c)."),
    w(
        "timeout_ms",
        "How long one command or program may run; its whole process group is then killed.",
    ),
    w(
        "max_output_bytes",
        "Output kept per command or program; the rest is cut.",
    ),
    w("max_commands", "Commands running at once."),
    w("workdir", "Folder the commands or program run in."),
    choice(
        "framing",
        "How requests are framed: switchboard's header, or a tutorial's.",
        &["header", "raw", "length-ready", "struct"],
    ),
    w(
        "folder",
        "This service's own folder; without it, the data folder's files/ (shared).",
    ),
    w(
        "max_file_bytes",
        "Larger uploads are refused before a byte is stored.",
    ),
    w(
        "partial_ttl_ms",
        "Unfinished resumable uploads left this long are removed.",
    ),
    w("max_partials", "Unfinished resumable uploads per account."),
    w("max_tries", "Sign-in attempts per connection."),
    w(
        "max_failures_per_minute",
        "Failed sign-ins per peer address a minute, then a pause.",
    ),
    choice(
        "prompts",
        "The prompts: plain English lines, or the tutorial's, without newlines.",
        &["plain", "tutorial"],
    ),
    w(
        "answer_pause_ms",
        "An answer without a newline ends after this much silence.",
    ),
    w(
        "argv",
        "The program and its arguments, one per connection (on the allowed list).",
    ),
    w(
        "env",
        "The program's environment, NAME=value (values are never shown again).",
    ),
    w("max_instances", "Programs running at once."),
    w(
        "upstream",
        "Where to forward to: IP:PORT, [IPv6]:PORT or unix:/path (TCP).",
    ),
    w(
        "connect_timeout_ms",
        "How long connecting to the upstream may take.",
    ),
    choice(
        "proxy_protocol",
        "Send a PROXY header naming the client to the upstream.",
        &["off", "v1", "v2"],
    ),
    w("max_reply_bytes", "Longest reply datagram."),
    w(
        "reply_timeout_ms",
        "How long a message waits for the dashboard's reply.",
    ),
];

/// The keys that have no default for an added instance.
fn required(key: &str, shape: &Shape) -> bool {
    matches!(shape, Shape::Address { default: None })
        || overlay::SAMPLE_REQUIRED.iter().any(|(k, _)| *k == key)
}

/// Every key an instance of `kind` takes, described; `listen` and
/// `enabled` first, then by name. A key without words (a test catches it)
/// is still listed, with an empty description.
pub fn keys(kind: ServiceKind) -> Vec<KeyInfo> {
    overlay::shapes_of(super::registry::read, kind)
        .into_iter()
        .map(|(key, shape)| {
            let words = WORDS.iter().find(|w| w.key == key);
            KeyInfo {
                required: required(&key, &shape),
                description: words.map_or("", |w| w.text),
                choices: words.map_or(&[], |w| w.choices),
                secret: SECRET.contains(&key.as_str()),
                key,
                shape,
            }
        })
        .collect()
}

/// One kind for the form: its protocol and its keys.
#[derive(Debug, Serialize)]
pub struct KindInfo {
    pub kind: ServiceKind,
    pub proto: Proto,
    pub keys: Vec<KeyInfo>,
}

/// Every kind, described.
pub fn kinds() -> Vec<KindInfo> {
    ServiceKind::ALL
        .iter()
        .map(|&kind| KindInfo {
            kind,
            proto: kind.proto(),
            keys: keys(kind),
        })
        .collect()
}

#[cfg(test)]
mod tests;
