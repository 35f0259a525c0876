//! The dashboard's settings (`[web]`), each key declared where it is read.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::kind::Proto;
pub use crate::settings::WebTls;
use crate::settings::{CertFiles, ConfigError, ListenAddr, Section};

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
    /// `web.trusted_proxies` (CIDR ranges): peers whose PROXY protocol
    /// header or `X-Forwarded-For` / `Forwarded` names the client that sign-in
    /// limits, sessions, audit and logs then use. Empty (the default): every
    /// peer is its own client and those headers are ignored.
    pub trusted_proxies: crate::settings::TrustedProxies,
    /// Where Toxiproxy's HTTP API listens (`web.toxiproxy_listen`); off
    /// when unset. Loopback only: Toxiproxy's API and clients have no
    /// authentication.
    pub toxiproxy_listen: Option<SocketAddr>,
    /// `web.toxiproxy_token`: Toxiproxy's API then wants `Authorization:
    /// Bearer <token>`; with `web.tls` it may listen beyond loopback.
    pub toxiproxy_token: Option<crate::settings::Secret>,
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
            trusted_proxies: crate::settings::TrustedProxies::default(),
            toxiproxy_listen: None,
            toxiproxy_token: None,
        }
    }
}

/// `web.tls`, with the PEM paths `files` needs.
fn web_tls(m: &Section<'_>) -> Result<WebTls, ConfigError> {
    let cert = m.opt_str("tls_cert")?;
    let key = m.opt_str("tls_key")?;
    let tls = match m.opt_str("tls")?.as_deref() {
        None | Some("off") => WebTls::Off,
        Some("self-signed") => WebTls::SelfSigned,
        Some("files") => match (cert.as_deref(), key.as_deref()) {
            (Some(cert), Some(key)) if !cert.is_empty() && !key.is_empty() => {
                WebTls::Files(CertFiles {
                    cert: PathBuf::from(cert),
                    key: PathBuf::from(key),
                })
            }
            _ => {
                return Err(m.bad(
                    "tls",
                    "`files` needs web.tls_cert and web.tls_key (PEM paths)",
                ));
            }
        },
        Some(other) => {
            return Err(m.bad("tls", format!("`{other}`: use off, self-signed or files")));
        }
    };
    if !matches!(tls, WebTls::Files(_)) && (cert.is_some() || key.is_some()) {
        let which = if cert.is_some() {
            "tls_cert"
        } else {
            "tls_key"
        };
        return Err(m.bad(which, "is only read with web.tls = \"files\""));
    }
    Ok(tls)
}

/// The shortest `web.toxiproxy_token`: a guessable one would be no guard.
pub const MIN_TOXIPROXY_TOKEN_LEN: usize = 16;

/// `web.allowed_hosts`, each entry one the `Host` check can match: a name
/// or an IP address, with or without a port. An entry that can never match
/// would only turn every request away (or, mistyped, leave a name out)
/// without a word, so it is refused here, saying why.
fn allowed_hosts(m: &Section<'_>) -> Result<Vec<String>, ConfigError> {
    let hosts = m.str_list("allowed_hosts")?.unwrap_or_default();
    for host in &hosts {
        if let Err(why) = check_allowed_host(host) {
            return Err(m.bad("allowed_hosts", format!("{host:?} {why}")));
        }
    }
    Ok(hosts)
}

/// Why `host` is no `Host` name the dashboard could be asked by.
fn check_allowed_host(host: &str) -> Result<(), &'static str> {
    const A_LIST: &str = "is not a host name (it holds a bracket, a quote or a comma). A \
                          list is [\"a\", \"b\"] in the config file and a,b on the command \
                          line and in the environment";
    // A port as a `Host` header writes one: digits only.
    let port_ok =
        |port: &str| port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok();
    // An IPv6 address, maybe with a zone (`fe80::1%eth0`).
    let ipv6_ok = |ip: &str| {
        let (addr, zone) = ip.split_once('%').unwrap_or((ip, "x"));
        addr.parse::<std::net::Ipv6Addr>().is_ok() && !zone.is_empty()
    };
    if host.parse::<std::net::IpAddr>().is_ok() || ipv6_ok(host) {
        return Ok(());
    }
    if let Some(rest) = host.strip_prefix('[') {
        // `[::1]` or `[::1]:8080`, as a Host header writes an IPv6 address.
        let bracketed = rest.split_once(']').is_some_and(|(ip, after)| {
            ipv6_ok(ip) && (after.is_empty() || after.strip_prefix(':').is_some_and(port_ok))
        });
        return if bracketed { Ok(()) } else { Err(A_LIST) };
    }
    if host.contains(['"', ',', '[', ']']) {
        return Err(A_LIST);
    }
    if host.contains('*') {
        return Err("has a wildcard, which is not supported: list each name");
    }
    if !host.is_ascii() {
        return Err("is not ASCII: write an international name as its punycode (xn--…)");
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port_ok(port) => name,
        Some(_) => return Err("has a port that is not a number from 0 to 65535"),
        None => host,
    };
    // A fully qualified name may end in a dot.
    let name = name.strip_suffix('.').unwrap_or(name);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(
            "is not a host name (letters, digits, '-' and '_' in dot-separated labels) \
             or an IP address, with an optional :port",
        );
    }
    Ok(())
}

/// `web.toxiproxy_listen`: a loopback `IP:PORT` (any with `web.tls` and
/// `web.toxiproxy_token`), or unset.
fn toxiproxy_listen(m: &Section<'_>, tls: &WebTls) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(text) = m.opt_str("toxiproxy_listen")? else {
        return Ok(None);
    };
    let text = match text.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => text,
    };
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| m.bad("toxiproxy_listen", "expected IP:PORT, e.g. 127.0.0.1:8474"))?;
    let token = m
        .opt_str("toxiproxy_token")?
        .map(crate::settings::Secret::new);
    if let Some(t) = &token
        && t.expose().len() < MIN_TOXIPROXY_TOKEN_LEN
    {
        return Err(m.bad(
            "toxiproxy_token",
            format!("must be at least {MIN_TOXIPROXY_TOKEN_LEN} characters"),
        ));
    }
    if !addr.ip().is_loopback() && (*tls == WebTls::Off || token.is_none()) {
        return Err(m.bad(
            "toxiproxy_listen",
            format!(
                "{addr} is not a loopback address: Toxiproxy's API has no authentication of \
                 its own, so beyond loopback it needs web.tls (self-signed or files) and \
                 web.toxiproxy_token (its clients then send `Authorization: Bearer <token>`)"
            ),
        ));
    }
    Ok(Some(addr))
}

impl WebConfig {
    /// Reads `[web]`.
    ///
    /// # Errors
    /// A bad value, naming the key and where it came from.
    pub fn read(m: &Section<'_>) -> Result<WebConfig, ConfigError> {
        let d = WebConfig::default();
        let web_listen = m
            .listen("listen", Some(ListenAddr::Inet(d.listen)), Proto::Tcp)?
            .inet()
            .ok_or_else(|| {
                m.bad(
                    "listen",
                    "the dashboard listens on IP:PORT, not a unix: path",
                )
            })?;

        let web_tls = web_tls(m)?;
        let toxiproxy_listen = toxiproxy_listen(m, &web_tls)?;
        let behind_proxy = m.bool("behind_proxy", false)?;
        if web_tls == WebTls::Off && !web_listen.ip().is_loopback() {
            let explicit_off = m.opt_str("tls")?.as_deref() == Some("off");
            if !(explicit_off && behind_proxy) {
                return Err(m.bad(
                    "listen",
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
        let web = WebConfig {
            listen: web_listen,
            allowed_hosts: allowed_hosts(m)?,
            header_timeout: m.ms("header_timeout_ms", d.header_timeout, 100, 600_000)?,
            first_byte_timeout: m.ms(
                "first_byte_timeout_ms",
                d.first_byte_timeout,
                100,
                600_000,
            )?,
            request_timeout: m.ms("request_timeout_ms", d.request_timeout, 100, 3_600_000)?,
            session_idle: m.ms("session_idle_ms", d.session_idle, 1000, 30 * 86_400_000)?,
            max_failures_per_minute: m.u32(
                "max_failures_per_minute",
                d.max_failures_per_minute,
                1,
                1_000_000,
            )?,
            max_connections: m.usize("max_connections", d.max_connections, 1, 1_000_000)?,
            max_connections_per_peer: m.usize(
                "max_connections_per_peer",
                d.max_connections_per_peer,
                1,
                1_000_000,
            )?,
            max_streams_per_session: m.usize(
                "max_streams_per_session",
                d.max_streams_per_session,
                1,
                64,
            )?,
            secure_cookie: match m.opt_str("secure_cookie")?.as_deref() {
                // Over HTTPS of our own, every request is secure.
                None if web_tls != WebTls::Off => SecureCookie::Always,
                None | Some("auto") => SecureCookie::Auto,
                Some("always") => SecureCookie::Always,
                Some("never") => SecureCookie::Never,
                Some(other) => {
                    return Err(m.bad(
                        "secure_cookie",
                        format!("`{other}`: use auto, always or never"),
                    ));
                }
            },
            tls: web_tls,
            behind_proxy,
            trusted_proxies: crate::settings::TrustedProxies::read(m, "trusted_proxies")?
                .unwrap_or_default(),
            toxiproxy_listen,
            toxiproxy_token: m
                .opt_str("toxiproxy_token")?
                .map(crate::settings::Secret::new),
        };

        Ok(web)
    }
}
