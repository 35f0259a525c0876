//! The one `Config`, and how it is merged from (later wins) built-in
//! defaults, the TOML file, `SWITCHBOARD_*` environment variables and flags.
//!
//! Every layer is first flattened to dotted keys (`services.echo.listen`) and
//! checked against one schema, so an unknown key or a bad value is reported
//! with its exact name and where it came from, whichever layer set it.
//! Nothing here reads the process environment or the disk: `main` passes the
//! file's text and the `SWITCHBOARD_*` variables in, so [`Config::resolve`] is
//! a pure function.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::kind::{Proto, ServiceKind};

/// Where a TCP or UDP service listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// `127.0.0.1:9000` or `[::1]:9000`.
    Inet(SocketAddr),
    /// `unix:/run/switchboard/echo.sock` (TCP services only).
    Unix(PathBuf),
}

impl ListenAddr {
    pub fn inet(&self) -> Option<SocketAddr> {
        match self {
            ListenAddr::Inet(a) => Some(*a),
            ListenAddr::Unix(_) => None,
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Inet(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("`unix:` needs a path, as in unix:/tmp/echo.sock".into());
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        // A bare port means loopback, as the clients read it: safe by default.
        if let Ok(port) = s.parse::<u16>() {
            return Ok(loopback(port));
        }
        s.parse::<SocketAddr>().map(ListenAddr::Inet).map_err(|_| {
            "expected IP:PORT, [IPv6]:PORT, PORT (on 127.0.0.1) or unix:/path \
             (an IP address, not a host name)"
                .into()
        })
    }
}

/// A secret that never prints: `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Limits a peer can run into. One struct for every service; the schema only
/// accepts the keys that apply to a service's protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// TCP: open connections at once; more are refused with a message.
    pub max_connections: usize,
    /// TCP: open connections at once from one IP address.
    pub max_connections_per_peer: usize,
    /// TCP: a connection with no byte either way for this long is closed,
    /// including one whose peer stopped reading our replies.
    pub idle_timeout: Duration,
    /// TCP: when `max_connections` are open, the connection idle longest is
    /// closed to admit a new one, if it has been idle at least this long;
    /// only when none has is the newcomer refused. Squatters cannot lock
    /// others out for a whole idle timeout.
    pub evict_idle: Duration,
    /// UDP: distinct peers tracked at once; datagrams from new peers beyond
    /// this are dropped until old ones expire.
    pub max_peers: usize,
    /// UDP: datagrams per second answered for one source address.
    pub peer_rate: u32,
    /// UDP: how many datagrams one source may send at once above the rate.
    pub peer_burst: u32,
    /// UDP: a peer is shown (and tracked) for this long after its last datagram.
    pub peer_ttl: Duration,
    /// time: the longest reply sent; a format that would produce more gets an error.
    pub max_reply_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_connections_per_peer: 64,
            idle_timeout: Duration::from_secs(120),
            evict_idle: Duration::from_secs(10),
            max_peers: 4096,
            peer_rate: 5000,
            peer_burst: 1000,
            peer_ttl: Duration::from_secs(30),
            max_reply_bytes: 512,
        }
    }
}

/// One service's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    pub kind: ServiceKind,
    pub listen: ListenAddr,
    pub enabled: bool,
    pub limits: Limits,
    /// TLS on this TCP service (`services.<name>.tls`, off by default).
    pub tls: ServiceTls,
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Whether and how the dashboard speaks HTTPS (`web.tls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebTls {
    /// Plain HTTP: for loopback, or behind a proxy that terminates TLS.
    Off,
    /// A certificate generated in `data_dir` on first start.
    SelfSigned,
    /// The PEM files `web.tls_cert` and `web.tls_key`.
    Files(CertFiles),
}

/// Whether and with which certificate a TCP service speaks TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceTls {
    Off,
    /// The dashboard's certificate (the self-signed one when the
    /// dashboard has none).
    Shared,
    /// Its own `tls_cert` and `tls_key`.
    Own(CertFiles),
}

/// The `exec` service's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecConfig {
    /// Program names that `run` may start, looked up in a fixed PATH at start.
    pub allow: Vec<String>,
    /// Whether `shell` requests (`/bin/sh -c LINE`) are allowed. Off by default.
    pub shell: bool,
    /// The longest a command may run; a request may ask for less, not more.
    pub timeout: Duration,
    /// Output (stdout and stderr together) sent per command before it is killed.
    pub max_output_bytes: u64,
    /// Commands running at once across all connections.
    pub max_commands: usize,
    /// The working directory (and HOME) of every command.
    pub workdir: PathBuf,
}

/// The `files` and `files-classic` services' settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesConfig {
    /// Largest upload `files` accepts.
    pub max_file_bytes: u64,
    /// Largest upload `files-classic` accepts.
    pub classic_max_file_bytes: u64,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            max_file_bytes: 2 << 30,
            classic_max_file_bytes: 2 << 30,
        }
    }
}

/// The `login` service's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginConfig {
    /// Attempts per connection before it is closed.
    pub max_tries: u32,
    /// Failed logins allowed per peer address per minute (a token bucket).
    pub max_failures_per_minute: u32,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            max_tries: 3,
            max_failures_per_minute: 10,
        }
    }
}

/// The dashboard's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    pub listen: SocketAddr,
    /// `Host` names (with or without a port) the dashboard answers to. Empty:
    /// loopback names only while it listens on loopback (which stops DNS
    /// rebinding), any name when it listens elsewhere.
    pub allowed_hosts: Vec<String>,
    /// A client must send a whole request head within this time; also how
    /// long a kept-alive connection may sit idle between requests.
    pub header_timeout: Duration,
    /// A new connection that sends no byte within this time is closed. Short,
    /// because a silent socket costs a connection slot and tells us nothing:
    /// a browser sends its request at once.
    pub first_byte_timeout: Duration,
    /// Longest an ordinary request may take (live streams are exempt).
    pub request_timeout: Duration,
    /// A session unused for this long is signed out.
    pub session_idle: Duration,
    /// Failed sign-ins allowed per address per minute (a token bucket).
    pub max_failures_per_minute: u32,
    /// Open HTTP connections at once. When full, a new connection takes the
    /// slot of the oldest idle or silent one; if every slot is busy with a
    /// request, the newcomer is refused with a 503.
    pub max_connections: usize,
    /// Open HTTP connections per peer IP address; beyond it a new one is
    /// refused with a 429, so one address cannot hold every slot.
    pub max_connections_per_peer: usize,
    /// Live streams (`/api/v1/live`) one session may hold at once; the
    /// process-wide cap is 64, so one viewer cannot take them all.
    pub max_streams_per_session: usize,
    /// When the session cookie carries `Secure`.
    pub secure_cookie: SecureCookie,
    /// HTTPS on the dashboard. Off only suits loopback or a TLS proxy in
    /// front: a non-loopback `listen` without it refuses to start unless
    /// `behind_proxy` says a proxy terminates TLS.
    pub tls: WebTls,
    /// A proxy in front terminates TLS (`web.behind_proxy`): with
    /// `web.tls = "off"`, allows a non-loopback `listen` without TLS.
    pub behind_proxy: bool,
}

/// When the session cookie is marked `Secure` (sent over HTTPS only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecureCookie {
    /// When the request came over HTTPS through a proxy (`X-Forwarded-Proto:
    /// https`, or an `https://` Origin).
    Auto,
    Always,
    Never,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            allowed_hosts: Vec::new(),
            header_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(30),
            session_idle: Duration::from_secs(12 * 3600),
            max_failures_per_minute: 10,
            max_connections: 1024,
            max_connections_per_peer: 64,
            max_streams_per_session: 4,
            secure_cookie: SecureCookie::Auto,
            tls: WebTls::Off,
            behind_proxy: false,
        }
    }
}

/// Everything switchboard runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where files/, the user accounts, the generated key and the audit log live.
    pub data_dir: PathBuf,
    /// The HMAC key for exec and files; `None` until generated at first start.
    pub key: Option<Secret>,
    pub web: WebConfig,
    /// Indexed by [`ServiceKind::index`].
    pub services: Vec<ServiceConfig>,
    pub exec: ExecConfig,
    pub files: FilesConfig,
    pub login: LoginConfig,
    /// How long shutdown waits for connections to finish before giving up.
    pub shutdown_grace: Duration,
    /// After a service panics it is restarted after this long, doubling with
    /// each further panic up to [`Config::restart_backoff_max`]. Not a key:
    /// fixed at 1 s; tests shorten it.
    pub restart_backoff: Duration,
    /// The longest wait between restarts after panics (60 s).
    pub restart_backoff_max: Duration,
    /// Things worth telling the operator that did not stop the start.
    pub warnings: Vec<String>,
}

/// Why a configuration was refused. Each names the key and its origin.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot parse config file {path}: {message}")]
    FileSyntax { path: PathBuf, message: String },
    #[error("unknown config key `{key}` ({origin})")]
    UnknownKey { key: String, origin: Origin },
    #[error("bad value for `{key}` ({origin}): {message}")]
    BadValue {
        key: String,
        origin: Origin,
        message: String,
    },
    #[error("`--set` takes KEY=VALUE, got `{0}`")]
    BadFlag(String),
}

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Env(String),
    Flag,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "in {}", p.display()),
            Origin::Env(name) => write!(f, "from environment variable {name}"),
            Origin::Flag => f.write_str("from the command line"),
        }
    }
}

/// The type a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Str,
    Bool,
    Int,
    StrList,
}

/// Every key the config accepts, with its type.
fn schema() -> Vec<(String, Ty)> {
    let mut keys = vec![
        ("data_dir".to_owned(), Ty::Str),
        ("key".to_owned(), Ty::Str),
        ("shutdown_grace_ms".to_owned(), Ty::Int),
        ("web.listen".to_owned(), Ty::Str),
        ("web.allowed_hosts".to_owned(), Ty::StrList),
        ("web.header_timeout_ms".to_owned(), Ty::Int),
        ("web.first_byte_timeout_ms".to_owned(), Ty::Int),
        ("web.request_timeout_ms".to_owned(), Ty::Int),
        ("web.session_idle_ms".to_owned(), Ty::Int),
        ("web.max_failures_per_minute".to_owned(), Ty::Int),
        ("web.max_connections".to_owned(), Ty::Int),
        ("web.max_connections_per_peer".to_owned(), Ty::Int),
        ("web.max_streams_per_session".to_owned(), Ty::Int),
        ("web.secure_cookie".to_owned(), Ty::Str),
        ("web.tls".to_owned(), Ty::Str),
        ("web.tls_cert".to_owned(), Ty::Str),
        ("web.tls_key".to_owned(), Ty::Str),
        ("web.behind_proxy".to_owned(), Ty::Bool),
    ];
    for kind in ServiceKind::ALL {
        let mut fields = vec![("listen", Ty::Str), ("enabled", Ty::Bool)];
        match kind.proto() {
            Proto::Tcp => fields.extend([
                ("tls", Ty::Bool),
                ("tls_cert", Ty::Str),
                ("tls_key", Ty::Str),
                ("max_connections", Ty::Int),
                ("max_connections_per_peer", Ty::Int),
                ("idle_timeout_ms", Ty::Int),
                ("evict_idle_ms", Ty::Int),
            ]),
            Proto::Udp => fields.extend([
                ("max_peers", Ty::Int),
                ("peer_rate", Ty::Int),
                ("peer_burst", Ty::Int),
                ("peer_ttl_ms", Ty::Int),
            ]),
        }
        if kind == ServiceKind::Time {
            fields.push(("max_reply_bytes", Ty::Int));
        }
        keys.extend(
            fields
                .into_iter()
                .map(|(f, t)| (format!("services.{kind}.{f}"), t)),
        );
    }
    keys.extend([
        ("services.exec.allow".to_owned(), Ty::StrList),
        ("services.exec.shell".to_owned(), Ty::Bool),
        ("services.exec.timeout_ms".to_owned(), Ty::Int),
        ("services.exec.max_output_bytes".to_owned(), Ty::Int),
        ("services.exec.max_commands".to_owned(), Ty::Int),
        ("services.exec.workdir".to_owned(), Ty::Str),
        ("services.files.max_file_bytes".to_owned(), Ty::Int),
        ("services.files-classic.max_file_bytes".to_owned(), Ty::Int),
        ("services.login.max_tries".to_owned(), Ty::Int),
        ("services.login.max_failures_per_minute".to_owned(), Ty::Int),
    ]);
    keys
}

/// The environment variable for a key: `services.udp-echo.listen` is
/// `SWITCHBOARD_UDP_ECHO_LISTEN`, `web.listen` is `SWITCHBOARD_WEB_LISTEN`.
pub fn env_name(key: &str) -> String {
    let key = key.strip_prefix("services.").unwrap_or(key);
    format!(
        "SWITCHBOARD_{}",
        key.replace(['.', '-'], "_").to_ascii_uppercase()
    )
}

/// Environment variables read by `main` itself rather than mapped to keys.
pub const ENV_CONFIG: &str = "SWITCHBOARD_CONFIG";
pub const ENV_ADMIN_PASSWORD: &str = "SWITCHBOARD_ADMIN_PASSWORD";
/// The command line's own variables (`--log-format`, `--port-base`).
pub const ENV_LOG_FORMAT: &str = "SWITCHBOARD_LOG_FORMAT";
pub const ENV_PORT_BASE: &str = "SWITCHBOARD_PORT_BASE";

/// How far above `--port-base` the dashboard goes.
pub const WEB_PORT_OFFSET: u16 = 80;

/// `--port-base N` as `--set` flags: the seven services on N…N+6 in
/// [`ServiceKind::ALL`] order and the dashboard on N+80, each keeping the IP
/// address `config` gives it (a `unix:` listen is left alone). Placed
/// before the person's own `--set` flags, which win.
///
/// # Errors
/// When N+80 is beyond the last port.
pub fn port_base_flags(config: &Config, base: u16) -> Result<Vec<String>, String> {
    let top = base.checked_add(WEB_PORT_OFFSET).filter(|_| base > 0).ok_or_else(|| {
        format!(
            "--port-base {base} is out of range: it needs ports {base}..{base}+{WEB_PORT_OFFSET} (1 to {})",
            u16::MAX - WEB_PORT_OFFSET
        )
    })?;
    let at = |ip: std::net::IpAddr, port: u16| SocketAddr::new(ip, port).to_string();
    let mut flags: Vec<String> = ServiceKind::ALL
        .into_iter()
        .zip(base..)
        .filter_map(|(kind, port)| {
            let ip = config.service(kind).listen.inet()?.ip();
            Some(format!("services.{kind}.listen={}", at(ip, port)))
        })
        .collect();
    flags.push(format!("web.listen={}", at(config.web.listen.ip(), top)));
    Ok(flags)
}

/// A config file's path and text, as read by `main`.
#[derive(Clone, Copy)]
pub struct FileSource<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

type Layer = BTreeMap<String, (toml::Value, Origin)>;

fn flatten(prefix: &str, table: &toml::Table, origin: &Origin, out: &mut Layer) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&key, t, origin, out),
            other => {
                out.insert(key, (other.clone(), origin.clone()));
            }
        }
    }
}

/// Parses a value given as text (environment or `--set`) as the key's type.
fn parse_text(ty: Ty, text: &str) -> Result<toml::Value, String> {
    let text = text.trim();
    match ty {
        Ty::Str => Ok(toml::Value::String(text.to_owned())),
        Ty::Bool => match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("expected true or false, got `{text}`")),
        },
        Ty::Int => text
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("expected a whole number, got `{text}`")),
        Ty::StrList => Ok(toml::Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        )),
    }
}

/// The merged layers, with typed getters that name the key on error.
struct Merged {
    values: Layer,
}

impl Merged {
    fn bad(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let origin = self
            .values
            .get(key)
            .map_or(Origin::Flag, |(_, o)| o.clone());
        ConfigError::BadValue {
            key: key.to_owned(),
            origin,
            message: message.into(),
        }
    }

    fn str(&self, key: &str) -> Result<Option<&str>, ConfigError> {
        match self.values.get(key) {
            None => Ok(None),
            Some((toml::Value::String(s), _)) => Ok(Some(s)),
            Some(_) => Err(self.bad(key, "expected a string")),
        }
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.values.get(key) {
            None => Ok(default),
            Some((toml::Value::Boolean(b), _)) => Ok(*b),
            Some(_) => Err(self.bad(key, "expected true or false")),
        }
    }

    fn int(&self, key: &str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        match self.values.get(key) {
            None => Ok(default),
            Some((toml::Value::Integer(i), _)) => u64::try_from(*i)
                .ok()
                .filter(|v| (min..=max).contains(v))
                .ok_or_else(|| self.bad(key, format!("expected {min} to {max}, got {i}"))),
            Some(_) => Err(self.bad(key, "expected a whole number")),
        }
    }

    fn usize(&self, key: &str, default: usize, min: u64, max: u64) -> Result<usize, ConfigError> {
        // Bounds are far below usize::MAX on every platform we build for.
        self.int(key, default as u64, min, max).map(|v| v as usize)
    }

    fn ms(
        &self,
        key: &str,
        default: Duration,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.int(key, default.as_millis() as u64, min, max)
            .map(Duration::from_millis)
    }

    fn str_list(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        match self.values.get(key) {
            None => Ok(None),
            Some((toml::Value::Array(items), _)) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s.clone()),
                    _ => Err(self.bad(key, "expected a list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(self.bad(key, "expected a list of strings")),
        }
    }

    fn listen(
        &self,
        key: &str,
        default: ListenAddr,
        proto: Proto,
    ) -> Result<ListenAddr, ConfigError> {
        let Some(text) = self.str(key)? else {
            return Ok(default);
        };
        let addr: ListenAddr = text.parse().map_err(|e: String| self.bad(key, e))?;
        if proto == Proto::Udp && matches!(addr, ListenAddr::Unix(_)) {
            return Err(self.bad(key, "a UDP service cannot listen on a unix: path"));
        }
        Ok(addr)
    }
}

/// An unknown key's error; TLS keys on a UDP service say why they are unknown.
fn unknown_key(key: String, origin: Origin) -> ConfigError {
    let udp_tls = ServiceKind::ALL
        .into_iter()
        .filter(|k| k.proto() == Proto::Udp)
        .any(|k| {
            ["tls", "tls_cert", "tls_key"]
                .iter()
                .any(|f| key == format!("services.{k}.{f}"))
        });
    if udp_tls {
        return ConfigError::BadValue {
            key,
            origin,
            message: "TLS is for the TCP services only; udp-echo and time speak UDP, \
                      which has no TLS"
                .into(),
        };
    }
    ConfigError::UnknownKey { key, origin }
}

/// The UDP service TLS key an environment variable would name, if any: such
/// a variable is an error rather than an ignored unknown one.
fn udp_tls_key_for_env(name: &str) -> Option<String> {
    ServiceKind::ALL
        .into_iter()
        .filter(|k| k.proto() == Proto::Udp)
        .flat_map(|k| ["tls", "tls_cert", "tls_key"].map(|f| format!("services.{k}.{f}")))
        .find(|key| env_name(key) == name)
}

/// `web.tls`, with the PEM paths `files` needs.
fn web_tls(m: &Merged) -> Result<WebTls, ConfigError> {
    let cert = m.str("web.tls_cert")?;
    let key = m.str("web.tls_key")?;
    let tls = match m.str("web.tls")? {
        None | Some("off") => WebTls::Off,
        Some("self-signed") => WebTls::SelfSigned,
        Some("files") => match (cert, key) {
            (Some(cert), Some(key)) if !cert.is_empty() && !key.is_empty() => {
                WebTls::Files(CertFiles {
                    cert: PathBuf::from(cert),
                    key: PathBuf::from(key),
                })
            }
            _ => {
                return Err(m.bad(
                    "web.tls",
                    "`files` needs web.tls_cert and web.tls_key (PEM paths)",
                ));
            }
        },
        Some(other) => {
            return Err(m.bad(
                "web.tls",
                format!("`{other}`: use off, self-signed or files"),
            ));
        }
    };
    if !matches!(tls, WebTls::Files(_)) && (cert.is_some() || key.is_some()) {
        let which = if cert.is_some() {
            "web.tls_cert"
        } else {
            "web.tls_key"
        };
        return Err(m.bad(which, "is only read with web.tls = \"files\""));
    }
    Ok(tls)
}

/// `services.<name>.tls`, `tls_cert` and `tls_key`.
fn service_tls(m: &Merged, kind: ServiceKind) -> Result<ServiceTls, ConfigError> {
    let key = |field: &str| format!("services.{kind}.{field}");
    if kind.proto() == Proto::Udp {
        // Not in the schema, so a file or flag fails as an unknown key first;
        // this names the reason for anyone reading the code.
        return Ok(ServiceTls::Off);
    }
    let on = m.bool(&key("tls"), false)?;
    let cert = m.str(&key("tls_cert"))?;
    let tls_key = m.str(&key("tls_key"))?;
    match (on, cert, tls_key) {
        (false, None, None) => Ok(ServiceTls::Off),
        (false, _, _) => Err(m.bad(
            &key("tls"),
            "tls_cert and tls_key are set but tls is not true",
        )),
        (true, None, None) => Ok(ServiceTls::Shared),
        (true, Some(cert), Some(k)) if !cert.is_empty() && !k.is_empty() => {
            Ok(ServiceTls::Own(CertFiles {
                cert: PathBuf::from(cert),
                key: PathBuf::from(k),
            }))
        }
        (true, _, _) => Err(m.bad(
            &key("tls"),
            "give both tls_cert and tls_key (PEM paths), or neither to use the dashboard's certificate",
        )),
    }
}

fn loopback(port: u16) -> ListenAddr {
    ListenAddr::Inet(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

impl Config {
    /// Merges the layers (file, then environment, then `--set KEY=VALUE`
    /// flags, later wins) over the built-in defaults and checks every value.
    ///
    /// `env` holds the `SWITCHBOARD_*` variables; the ones `main` handles
    /// itself (`SWITCHBOARD_CONFIG`, `SWITCHBOARD_ADMIN_PASSWORD`) are skipped,
    /// and other unknown ones produce a warning rather than an error, since an
    /// environment is often shared with other tools.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad key.
    pub fn resolve(
        file: Option<FileSource<'_>>,
        env: &BTreeMap<String, String>,
        flags: &[String],
    ) -> Result<Config, ConfigError> {
        let schema: BTreeMap<String, Ty> = schema().into_iter().collect();
        let mut values = Layer::new();
        let mut warnings = Vec::new();

        if let Some(FileSource { path, text }) = file {
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::FileSyntax {
                        path: path.to_owned(),
                        message: e.to_string(),
                    })?;
            let origin = Origin::File(path.to_owned());
            let mut layer = Layer::new();
            flatten("", &table, &origin, &mut layer);
            for (key, (value, origin)) in layer {
                let Some(&ty) = schema.get(&key) else {
                    return Err(unknown_key(key, origin));
                };
                // Accept an integer where a list is expected? No: TOML has
                // types, so a file value must already have the right one.
                if ty == Ty::Str && !value.is_str() {
                    return Err(ConfigError::BadValue {
                        key,
                        origin,
                        message: "expected a string".into(),
                    });
                }
                values.insert(key, (value, origin));
            }
        }

        let by_env: BTreeMap<String, (&String, Ty)> = schema
            .iter()
            .map(|(k, ty)| (env_name(k), (k, *ty)))
            .collect();
        for (name, text) in env {
            if [
                ENV_CONFIG,
                ENV_ADMIN_PASSWORD,
                ENV_LOG_FORMAT,
                ENV_PORT_BASE,
            ]
            .contains(&name.as_str())
            {
                continue;
            }
            let Some(&(key, ty)) = by_env.get(name) else {
                if let Some(key) = udp_tls_key_for_env(name) {
                    return Err(unknown_key(key, Origin::Env(name.clone())));
                }
                warnings.push(format!("ignoring unknown environment variable {name}"));
                continue;
            };
            let origin = Origin::Env(name.clone());
            let value = parse_text(ty, text).map_err(|message| ConfigError::BadValue {
                key: key.clone(),
                origin: origin.clone(),
                message,
            })?;
            values.insert(key.clone(), (value, origin));
        }

        for flag in flags {
            let (key, text) = flag
                .split_once('=')
                .ok_or_else(|| ConfigError::BadFlag(flag.clone()))?;
            let key = key.trim();
            let Some(&ty) = schema.get(key) else {
                return Err(unknown_key(key.to_owned(), Origin::Flag));
            };
            let value = parse_text(ty, text).map_err(|message| ConfigError::BadValue {
                key: key.to_owned(),
                origin: Origin::Flag,
                message,
            })?;
            values.insert(key.to_owned(), (value, Origin::Flag));
        }

        let mut config = Config::from_merged(&Merged { values })?;
        config.warnings = warnings;
        Ok(config)
    }

    fn from_merged(m: &Merged) -> Result<Config, ConfigError> {
        let defaults = Config::default();
        let data_dir = m.str("data_dir")?.map_or(defaults.data_dir, PathBuf::from);
        if data_dir.as_os_str().is_empty() {
            return Err(m.bad("data_dir", "must not be empty"));
        }
        let key = match m.str("key")? {
            Some("") => return Err(m.bad("key", "must not be empty")),
            Some(k) => Some(Secret::new(k)),
            None => None,
        };
        let web_listen = m
            .listen(
                "web.listen",
                ListenAddr::Inet(defaults.web.listen),
                Proto::Tcp,
            )?
            .inet()
            .ok_or_else(|| {
                m.bad(
                    "web.listen",
                    "the dashboard listens on IP:PORT, not a unix: path",
                )
            })?;

        let web_tls = web_tls(m)?;
        let behind_proxy = m.bool("web.behind_proxy", false)?;
        if web_tls == WebTls::Off && !web_listen.ip().is_loopback() {
            let explicit_off = m.str("web.tls")? == Some("off");
            if !(explicit_off && behind_proxy) {
                return Err(m.bad(
                    "web.listen",
                    format!(
                        "{web_listen} is not a loopback address and the dashboard would serve \
                         plain HTTP (passwords and session cookies in clear). Set web.tls = \
                         \"self-signed\" (or \"files\" with web.tls_cert and web.tls_key); or, if a \
                         proxy in front terminates TLS, set both web.tls = \"off\" and \
                         web.behind_proxy = true"
                    ),
                ));
            }
        }
        let d = WebConfig::default();
        let web = WebConfig {
            listen: web_listen,
            allowed_hosts: m.str_list("web.allowed_hosts")?.unwrap_or_default(),
            header_timeout: m.ms("web.header_timeout_ms", d.header_timeout, 100, 600_000)?,
            first_byte_timeout: m.ms(
                "web.first_byte_timeout_ms",
                d.first_byte_timeout,
                100,
                600_000,
            )?,
            request_timeout: m.ms("web.request_timeout_ms", d.request_timeout, 100, 3_600_000)?,
            session_idle: m.ms("web.session_idle_ms", d.session_idle, 1000, 30 * 86_400_000)?,
            max_failures_per_minute: m.int(
                "web.max_failures_per_minute",
                u64::from(d.max_failures_per_minute),
                1,
                1_000_000,
            )? as u32,
            max_connections: m.usize("web.max_connections", d.max_connections, 1, 1_000_000)?,
            max_connections_per_peer: m.usize(
                "web.max_connections_per_peer",
                d.max_connections_per_peer,
                1,
                1_000_000,
            )?,
            max_streams_per_session: m.usize(
                "web.max_streams_per_session",
                d.max_streams_per_session,
                1,
                64,
            )?,
            secure_cookie: match m.str("web.secure_cookie")? {
                // Over HTTPS of our own, every request is secure.
                None if web_tls != WebTls::Off => SecureCookie::Always,
                None | Some("auto") => SecureCookie::Auto,
                Some("always") => SecureCookie::Always,
                Some("never") => SecureCookie::Never,
                Some(other) => {
                    return Err(m.bad(
                        "web.secure_cookie",
                        format!("`{other}`: use auto, always or never"),
                    ));
                }
            },
            tls: web_tls,
            behind_proxy,
        };

        let mut services = Vec::with_capacity(ServiceKind::ALL.len());
        for kind in ServiceKind::ALL {
            let key = |field: &str| format!("services.{kind}.{field}");
            let d = Limits::default();
            let limits = Limits {
                max_connections: m.usize(
                    &key("max_connections"),
                    d.max_connections,
                    1,
                    1_000_000,
                )?,
                max_connections_per_peer: m.usize(
                    &key("max_connections_per_peer"),
                    d.max_connections_per_peer,
                    1,
                    1_000_000,
                )?,
                idle_timeout: m.ms(&key("idle_timeout_ms"), d.idle_timeout, 100, 86_400_000)?,
                evict_idle: m.ms(&key("evict_idle_ms"), d.evict_idle, 0, 86_400_000)?,
                max_peers: m.usize(&key("max_peers"), d.max_peers, 1, 1_000_000)?,
                peer_rate: m.int(&key("peer_rate"), u64::from(d.peer_rate), 1, 10_000_000)? as u32,
                peer_burst: m.int(&key("peer_burst"), u64::from(d.peer_burst), 1, 10_000_000)?
                    as u32,
                peer_ttl: m.ms(&key("peer_ttl_ms"), d.peer_ttl, 100, 86_400_000)?,
                max_reply_bytes: m.usize(&key("max_reply_bytes"), d.max_reply_bytes, 16, 65_000)?,
            };
            services.push(ServiceConfig {
                kind,
                listen: m.listen(&key("listen"), loopback(kind.default_port()), kind.proto())?,
                enabled: m.bool(&key("enabled"), true)?,
                limits,
                tls: service_tls(m, kind)?,
            });
        }

        let exec = ExecConfig {
            allow: m
                .str_list("services.exec.allow")?
                .unwrap_or(defaults.exec.allow),
            shell: m.bool("services.exec.shell", false)?,
            timeout: m.ms(
                "services.exec.timeout_ms",
                defaults.exec.timeout,
                10,
                86_400_000,
            )?,
            max_output_bytes: m.int(
                "services.exec.max_output_bytes",
                defaults.exec.max_output_bytes,
                1,
                1 << 40,
            )?,
            max_commands: m.usize(
                "services.exec.max_commands",
                defaults.exec.max_commands,
                1,
                10_000,
            )?,
            workdir: m
                .str("services.exec.workdir")?
                .map_or(defaults.exec.workdir, PathBuf::from),
        };
        if let Some(bad) = exec.allow.iter().find(|p| p.is_empty() || p.contains('/')) {
            return Err(m.bad(
                "services.exec.allow",
                format!(
                    "`{bad}`: list program names, not paths (they are looked up in PATH at start)"
                ),
            ));
        }

        let d = LoginConfig::default();
        let login = LoginConfig {
            max_tries: m.int("services.login.max_tries", u64::from(d.max_tries), 1, 100)? as u32,
            max_failures_per_minute: m.int(
                "services.login.max_failures_per_minute",
                u64::from(d.max_failures_per_minute),
                1,
                1_000_000,
            )? as u32,
        };

        let d = FilesConfig::default();
        let files = FilesConfig {
            max_file_bytes: m.int(
                "services.files.max_file_bytes",
                d.max_file_bytes,
                0,
                1 << 50,
            )?,
            classic_max_file_bytes: m.int(
                "services.files-classic.max_file_bytes",
                d.classic_max_file_bytes,
                0,
                1 << 50,
            )?,
        };

        Ok(Config {
            data_dir,
            key,
            web,
            services,
            exec,
            files,
            login,
            shutdown_grace: m.ms("shutdown_grace_ms", defaults.shutdown_grace, 0, 600_000)?,
            restart_backoff: defaults.restart_backoff,
            restart_backoff_max: defaults.restart_backoff_max,
            warnings: Vec::new(),
        })
    }

    /// Settings of one service.
    pub fn service(&self, kind: ServiceKind) -> &ServiceConfig {
        &self.services[kind.index()]
    }

    pub fn service_mut(&mut self, kind: ServiceKind) -> &mut ServiceConfig {
        &mut self.services[kind.index()]
    }

    /// Every service on 127.0.0.1 port 0 (an ephemeral port) with `data_dir`:
    /// what tests start from.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Config {
        let mut config = Config {
            data_dir: data_dir.into(),
            ..Config::default()
        };
        for s in &mut config.services {
            s.listen = loopback(0);
        }
        config.web.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        config
    }
}

impl Default for Config {
    /// The built-in defaults: every service enabled on loopback at its port.
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("switchboard-data"),
            key: None,
            web: WebConfig::default(),
            services: ServiceKind::ALL
                .into_iter()
                .map(|kind| ServiceConfig {
                    kind,
                    listen: loopback(kind.default_port()),
                    enabled: true,
                    limits: Limits::default(),
                    tls: ServiceTls::Off,
                })
                .collect(),
            exec: ExecConfig {
                allow: ["date", "uptime", "uname", "ls", "df", "echo", "whoami"]
                    .map(String::from)
                    .to_vec(),
                shell: false,
                timeout: Duration::from_secs(10),
                max_output_bytes: 1 << 20,
                max_commands: 8,
                workdir: PathBuf::from("/tmp"),
            },
            files: FilesConfig::default(),
            login: LoginConfig::default(),
            shutdown_grace: Duration::from_secs(5),
            restart_backoff: Duration::from_secs(1),
            restart_backoff_max: Duration::from_secs(60),
            warnings: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(text: &str) -> Option<FileSource<'_>> {
        Some(FileSource {
            path: Path::new("/etc/sb.toml"),
            text,
        })
    }

    #[test]
    fn defaults_bind_loopback_at_the_design_ports() {
        let c = Config::resolve(None, &BTreeMap::new(), &[]).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("switchboard-data"));
        assert_eq!(c.web.listen.to_string(), "127.0.0.1:8080");
        let ports: Vec<String> = c.services.iter().map(|s| s.listen.to_string()).collect();
        assert_eq!(
            ports,
            [
                "127.0.0.1:9000",
                "127.0.0.1:9001",
                "127.0.0.1:9002",
                "127.0.0.1:9003",
                "127.0.0.1:9004",
                "127.0.0.1:9005",
                "127.0.0.1:9006"
            ]
        );
        assert!(c.services.iter().all(|s| s.enabled));
        assert!(c.key.is_none());
        assert!(!c.exec.shell);
    }

    #[test]
    fn web_settings_resolve_from_env_and_flags() {
        let env = BTreeMap::from([
            (
                "SWITCHBOARD_WEB_ALLOWED_HOSTS".to_owned(),
                "a.example, b.example".to_owned(),
            ),
            (
                "SWITCHBOARD_WEB_SECURE_COOKIE".to_owned(),
                "always".to_owned(),
            ),
        ]);
        let c = Config::resolve(None, &env, &["web.header_timeout_ms=500".to_owned()]).unwrap();
        assert_eq!(c.web.allowed_hosts, ["a.example", "b.example"]);
        assert_eq!(c.web.max_connections_per_peer, 64);
        assert_eq!(c.web.first_byte_timeout, Duration::from_secs(2));
        assert_eq!(c.web.max_streams_per_session, 4);
        assert_eq!(c.web.secure_cookie, SecureCookie::Always);
        assert_eq!(c.web.header_timeout, Duration::from_millis(500));
        assert_eq!(c.web.session_idle, WebConfig::default().session_idle);
        let err = Config::resolve(
            None,
            &BTreeMap::new(),
            &["web.secure_cookie=maybe".to_owned()],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("use auto, always or never"), "{err}");
        let err = Config::resolve(
            None,
            &BTreeMap::new(),
            &["web.header_timeout_ms=0".to_owned()],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("web.header_timeout_ms"), "{err}");
    }

    #[test]
    fn web_connection_and_stream_limits_resolve() {
        let env = BTreeMap::from([
            (
                "SWITCHBOARD_WEB_MAX_CONNECTIONS_PER_PEER".to_owned(),
                "16".to_owned(),
            ),
            (
                "SWITCHBOARD_WEB_FIRST_BYTE_TIMEOUT_MS".to_owned(),
                "750".to_owned(),
            ),
        ]);
        let c = Config::resolve(None, &env, &["web.max_streams_per_session=2".to_owned()]).unwrap();
        assert_eq!(c.web.max_connections_per_peer, 16);
        assert_eq!(c.web.first_byte_timeout, Duration::from_millis(750));
        assert_eq!(c.web.max_streams_per_session, 2);
        for bad in [
            "web.max_connections_per_peer=0",
            "web.first_byte_timeout_ms=10",
            "web.max_streams_per_session=65",
        ] {
            let key = bad.split('=').next().unwrap();
            let err = Config::resolve(None, &BTreeMap::new(), &[bad.to_owned()])
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn later_layers_win_file_then_env_then_flags() {
        let text = r#"
            data_dir = "/var/lib/sb"
            key = "from-file"
            [web]
            listen = "127.0.0.1:8081"
            [services.echo]
            listen = "127.0.0.1:7000"
            enabled = false
            [services.udp-echo]
            listen = "[::1]:7001"
        "#;
        let e = env(&[
            ("SWITCHBOARD_ECHO_LISTEN", "127.0.0.1:7100"),
            ("SWITCHBOARD_KEY", "from-env"),
        ]);
        let flags = vec!["services.echo.listen=unix:/tmp/e.sock".to_string()];
        let c = Config::resolve(file(text), &e, &flags).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/sb"));
        assert_eq!(c.key.as_ref().unwrap().expose(), b"from-env");
        assert_eq!(c.web.listen.port(), 8081);
        let echo = c.service(ServiceKind::Echo);
        assert_eq!(echo.listen, ListenAddr::Unix("/tmp/e.sock".into()));
        assert!(!echo.enabled);
        assert_eq!(
            c.service(ServiceKind::UdpEcho).listen.to_string(),
            "[::1]:7001"
        );
    }

    #[test]
    fn unknown_keys_are_rejected_by_name_from_every_layer() {
        let err = Config::resolve(
            file("[services.echo]\nlisten_addr = \"x\"\n"),
            &BTreeMap::new(),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "unknown config key `services.echo.listen_addr` (in /etc/sb.toml)"
        );
        let err = Config::resolve(
            file("[services.nope]\nenabled = true\n"),
            &BTreeMap::new(),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`services.nope.enabled`"), "{err}");
        let err = Config::resolve(None, &BTreeMap::new(), &["web.port=1".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "unknown config key `web.port` (from the command line)");
        // UDP-only keys are not accepted on a TCP service.
        assert!(
            Config::resolve(
                file("[services.echo]\npeer_rate = 5\n"),
                &BTreeMap::new(),
                &[]
            )
            .is_err()
        );
    }

    #[test]
    fn unknown_env_vars_warn_instead_of_failing() {
        let c = Config::resolve(
            None,
            &env(&[("SWITCHBOARD_NOPE", "1"), ("SWITCHBOARD_CONFIG", "x")]),
            &[],
        )
        .unwrap();
        assert_eq!(
            c.warnings,
            ["ignoring unknown environment variable SWITCHBOARD_NOPE"]
        );
    }

    #[test]
    fn bad_values_name_the_key_and_origin() {
        let err = Config::resolve(
            None,
            &env(&[("SWITCHBOARD_ECHO_LISTEN", "localhost:9000")]),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("bad value for `services.echo.listen` (from environment variable SWITCHBOARD_ECHO_LISTEN)"), "{err}");
        let err = Config::resolve(
            file("[services.time]\nlisten = \"unix:/tmp/t\"\n"),
            &BTreeMap::new(),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("UDP service cannot listen on a unix: path"),
            "{err}"
        );
        let err = Config::resolve(
            file("[services.echo]\nmax_connections = 0\n"),
            &BTreeMap::new(),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("expected 1 to 1000000, got 0"), "{err}");
        let err = Config::resolve(
            file("[services.echo]\nenabled = \"yes\"\n"),
            &BTreeMap::new(),
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("expected true or false"), "{err}");
        assert!(matches!(
            Config::resolve(file("data_dir = ["), &BTreeMap::new(), &[]),
            Err(ConfigError::FileSyntax { .. })
        ));
        assert!(matches!(
            Config::resolve(None, &BTreeMap::new(), &["novalue".into()]),
            Err(ConfigError::BadFlag(_))
        ));
    }

    #[test]
    fn the_design_example_parses() {
        let text = r#"
            data_dir = "switchboard-data"
            key = "..."
            [web]
            listen = "127.0.0.1:8080"
            [services.echo]
            listen = "127.0.0.1:9000"
            enabled = true
            [services.exec]
            listen = "127.0.0.1:9003"
            allow = ["date", "uptime", "uname", "ls", "df", "echo", "whoami"]
            shell = false
            timeout_ms = 10000
        "#;
        let c = Config::resolve(file(text), &BTreeMap::new(), &[]).unwrap();
        assert_eq!(c.exec.allow.len(), 7);
        assert_eq!(c.exec.timeout, Duration::from_secs(10));
    }

    #[test]
    fn tls_keys_resolve_and_udp_services_refuse_them() {
        let flags = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let none = BTreeMap::new();
        let c = Config::resolve(
            None,
            &none,
            &flags(&["web.tls=self-signed", "services.echo.tls=true"]),
        )
        .unwrap();
        assert_eq!(c.web.tls, WebTls::SelfSigned);
        assert_eq!(c.web.secure_cookie, SecureCookie::Always);
        assert_eq!(c.service(ServiceKind::Echo).tls, ServiceTls::Shared);
        assert_eq!(c.service(ServiceKind::Exec).tls, ServiceTls::Off);
        let c = Config::resolve(
            None,
            &none,
            &flags(&[
                "services.login.tls=true",
                "services.login.tls_cert=/c.pem",
                "services.login.tls_key=/k.pem",
            ]),
        )
        .unwrap();
        assert_eq!(
            c.service(ServiceKind::Login).tls,
            ServiceTls::Own(CertFiles {
                cert: "/c.pem".into(),
                key: "/k.pem".into()
            })
        );
        for (bad, names) in [
            (&["services.time.tls=true"][..], "UDP"),
            (&["web.tls=files", "web.tls_cert=/c.pem"][..], "web.tls_key"),
            (&["web.tls=https"][..], "off, self-signed or files"),
            (&["web.tls_cert=/c.pem"][..], "only read with web.tls"),
            (
                &["services.echo.tls=true", "services.echo.tls_cert=/c.pem"][..],
                "both",
            ),
        ] {
            let err = Config::resolve(None, &none, &flags(bad))
                .unwrap_err()
                .to_string();
            assert!(err.contains(names), "{bad:?}: {err}");
        }
        let err = Config::resolve(None, &env(&[("SWITCHBOARD_UDP_ECHO_TLS", "true")]), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("services.udp-echo.tls") && err.contains("UDP"),
            "{err}"
        );
    }

    #[test]
    fn env_names_follow_the_keys() {
        assert_eq!(
            env_name("services.udp-echo.listen"),
            "SWITCHBOARD_UDP_ECHO_LISTEN"
        );
        assert_eq!(
            env_name("services.files-classic.enabled"),
            "SWITCHBOARD_FILES_CLASSIC_ENABLED"
        );
        assert_eq!(env_name("web.listen"), "SWITCHBOARD_WEB_LISTEN");
        assert_eq!(env_name("data_dir"), "SWITCHBOARD_DATA_DIR");
        assert_eq!(env_name("key"), "SWITCHBOARD_KEY");
        let c = Config::resolve(
            None,
            &env(&[
                ("SWITCHBOARD_EXEC_ALLOW", "date, ls"),
                ("SWITCHBOARD_TIME_ENABLED", "no"),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(c.exec.allow, ["date", "ls"]);
        assert!(!c.service(ServiceKind::Time).enabled);
    }

    #[test]
    fn secrets_never_print() {
        let c = Config::resolve(None, &env(&[("SWITCHBOARD_KEY", "hunter2")]), &[]).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn port_base_moves_every_port_and_keeps_each_address() {
        let mut config = Config::default();
        config.service_mut(ServiceKind::Echo).listen = "0.0.0.0:9000".parse().unwrap();
        config.service_mut(ServiceKind::Login).listen = "unix:/tmp/l.sock".parse().unwrap();
        let flags = port_base_flags(&config, 20000).unwrap();
        assert_eq!(
            flags,
            [
                "services.echo.listen=0.0.0.0:20000",
                "services.udp-echo.listen=127.0.0.1:20001",
                "services.time.listen=127.0.0.1:20002",
                "services.exec.listen=127.0.0.1:20003",
                "services.files.listen=127.0.0.1:20004",
                "services.files-classic.listen=127.0.0.1:20005",
                "web.listen=127.0.0.1:20080",
            ]
        );
        assert!(
            port_base_flags(&config, 65500)
                .unwrap_err()
                .contains("out of range")
        );
        assert!(port_base_flags(&config, 0).is_err());
    }

    #[test]
    fn listen_addrs_parse_and_print() {
        for s in [
            "127.0.0.1:9000",
            "[::1]:9000",
            "unix:/tmp/x.sock",
            "0.0.0.0:1",
        ] {
            assert_eq!(s.parse::<ListenAddr>().unwrap().to_string(), s);
        }
        for s in [
            "localhost:9000",
            "unix:",
            "127.0.0.1",
            "[::1]",
            "70000",
            "-1",
        ] {
            assert!(s.parse::<ListenAddr>().is_err(), "{s}");
        }
        assert_eq!(
            "9000".parse::<ListenAddr>().unwrap().to_string(),
            "127.0.0.1:9000",
            "a bare port is loopback"
        );
    }
}

/// Property tests: no text, environment or flag makes resolving panic.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Text that is often TOML, sometimes almost: real keys and tables,
    /// values of every type (and wrong ones), stray brackets and quotes.
    fn tomlish() -> impl Strategy<Value = String> {
        let keys: Vec<String> = schema().into_iter().map(|(k, _)| k).collect();
        let key = prop_oneof![
            prop::sample::select(keys),
            Just("services.echo".to_owned()),
            "[a-z_.-]{1,10}",
        ];
        let value = prop_oneof![
            Just("\"127.0.0.1:0\"".to_owned()),
            Just("\"unix:/tmp/x.sock\"".to_owned()),
            Just("\"unix:\"".to_owned()),
            Just("\"\"".to_owned()),
            any::<i64>().prop_map(|i| i.to_string()),
            Just("99999999999999999999".to_owned()),
            Just("1.5".to_owned()),
            Just("true".to_owned()),
            Just("[\"ls\", 1]".to_owned()),
            Just("{ a = 1 }".to_owned()),
            "\"[^\"\\\\]{0,8}\"",
        ];
        let line = prop_oneof![
            (key.clone(), value).prop_map(|(k, v)| format!("{k} = {v}")),
            key.clone().prop_map(|k| format!("[{k}]")),
            key.prop_map(|k| format!("[[{k}]]")),
            "[\\[\\]{}=\"#. a-z0-9\n]{0,12}",
        ];
        prop::collection::vec(line, 0..8).prop_map(|lines| lines.join("\n"))
    }

    fn resolve(
        text: &str,
        env: &[(String, String)],
        flags: &[String],
    ) -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = env.iter().cloned().collect();
        Config::resolve(
            Some(FileSource {
                path: Path::new("/etc/sb.toml"),
                text,
            }),
            &env,
            flags,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn tomlish_text_resolves_or_names_the_problem(text in tomlish()) {
            if let Err(e) = resolve(&text, &[], &[]) {
                prop_assert!(!e.to_string().is_empty());
            }
        }

        #[test]
        fn any_text_env_and_flags_resolve_or_name_the_problem(
            text in ".{0,200}",
            env in prop::collection::vec(("SWITCHBOARD_[A-Z_]{0,24}", ".{0,12}"), 0..4),
            flags in prop::collection::vec("[a-z_.-]{0,24}=?.{0,12}", 0..4),
        ) {
            if let Err(e) = resolve(&text, &env, &flags) {
                prop_assert!(!e.to_string().is_empty());
            }
        }

        #[test]
        fn a_value_set_by_flag_resolves_like_the_same_value_in_the_file(
            port in any::<u16>(),
            max in any::<i64>(),
        ) {
            let flags = [
                format!("services.echo.listen=127.0.0.1:{port}"),
                format!("services.echo.max_connections={max}"),
            ];
            let text = format!("[services.echo]\nlisten = \"127.0.0.1:{port}\"\nmax_connections = {max}\n");
            let by_flag = resolve("", &[], &flags).map(|c| format!("{:?}", c.service(ServiceKind::Echo)));
            let by_file = resolve(&text, &[], &[]).map(|c| format!("{:?}", c.service(ServiceKind::Echo)));
            match (by_flag, by_file) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(ConfigError::BadValue { key: a, .. }), Err(ConfigError::BadValue { key: b, .. })) => {
                    prop_assert_eq!(a, b);
                }
                (a, b) => prop_assert!(false, "flag gave {a:?}, file gave {b:?}"),
            }
        }
    }
}
