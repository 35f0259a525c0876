//! Where a proxy forwards to (`upstream = "host:port" | "[v6]:port" |
//! "unix:/path"`), how it connects there within a deadline, and whether the
//! upstream looks up or down.
//!
//! Shared by `tcp-proxy` and `udp-proxy`. A host name is resolved when it is
//! used (each TCP connect, a UDP proxy's start), not when the config is
//! read, so a config naming a host that is not up yet still loads.
//!
//! [`Health`] is what the operator sees of an upstream: each change (up to
//! down, down to up) is logged once and recorded as a `service_state` event
//! on the instance (`upstream 127.0.0.1:6379 down: connection refused`),
//! never once per failed client. Its inputs are every client connect and a
//! periodic probe ([`probe`]), so a proxy nobody uses still notices.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::net::{TcpStream, UnixStream};
use tokio_util::either::Either;

use super::listen::Plain;
use crate::kind::{Proto, ServiceId};
use crate::settings::{ConfigError, Section};
use crate::stats::Stats;

/// An upstream address as configured.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Upstream {
    /// `127.0.0.1:6379`, `[::1]:6379`.
    Inet(SocketAddr),
    /// `redis.internal:6379`: resolved at each use.
    Host { host: String, port: u16 },
    /// `unix:/run/redis.sock` (TCP only).
    Unix(PathBuf),
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Upstream::Inet(a) => write!(f, "{a}"),
            Upstream::Host { host, port } => write!(f, "{host}:{port}"),
            Upstream::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl FromStr for Upstream {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage = || format!("`{s}` is not an upstream: use HOST:PORT, [IPv6]:PORT or unix:PATH");
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("`unix:` needs a path, as in unix:/run/app.sock".into());
            }
            return Ok(Upstream::Unix(PathBuf::from(path)));
        }
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(Upstream::Inet(addr));
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(usage)?;
        let port: u16 = port.parse().map_err(|_| usage())?;
        // A host name: letters, digits, `-` and `.` (an IPv6 literal
        // without brackets lands here and is refused).
        let name_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !name_ok {
            return Err(usage());
        }
        Ok(Upstream::Host {
            host: host.to_owned(),
            port,
        })
    }
}

impl Upstream {
    /// Reads the required `upstream` key; a UDP proxy cannot use `unix:`.
    ///
    /// # Errors
    /// Missing, not an address, or `unix:` for UDP.
    pub fn read(s: &Section<'_>, proto: Proto) -> Result<Self, ConfigError> {
        let Some(text) = s.opt_str("upstream")? else {
            return Err(s.bad(
                "upstream",
                "is required: where to forward to (e.g. \"127.0.0.1:6379\")",
            ));
        };
        let upstream: Upstream = text.parse().map_err(|e: String| s.bad("upstream", e))?;
        if proto == Proto::Udp && matches!(upstream, Upstream::Unix(_)) {
            return Err(s.bad("upstream", "a UDP proxy cannot forward to a unix: path"));
        }
        Ok(upstream)
    }

    /// Connects within `within` (name lookup included). `ours`: mark the
    /// connection as this process's own when the upstream is one of our
    /// services on loopback (see `service::internal`), so it holds no slot
    /// of 127.0.0.1's; not for a proxy that sends a PROXY header, whose
    /// header the service must read.
    ///
    /// # Errors
    /// Refused, unreachable, unresolvable, or `TimedOut`.
    pub async fn connect(&self, within: Duration, ours: bool) -> io::Result<Plain> {
        let connect = async {
            let tcp = match self {
                Upstream::Inet(a) if ours => super::internal::connect(*a).await?,
                Upstream::Inet(a) => TcpStream::connect(*a).await?,
                Upstream::Host { host, port } => TcpStream::connect((host.as_str(), *port)).await?,
                Upstream::Unix(p) => return Ok(Either::Right(UnixStream::connect(p).await?)),
            };
            // Interactive protocols behind a proxy are latency-bound too.
            tcp.set_nodelay(true)?;
            Ok(Either::Left(tcp))
        };
        tokio::time::timeout(within, connect)
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer within {} ms", within.as_millis()),
                ))
            })
    }

    /// The first address a name resolves to (an IP address as it is).
    ///
    /// # Errors
    /// The name does not resolve, or this is a unix path.
    pub async fn resolve(&self) -> io::Result<SocketAddr> {
        match self {
            Upstream::Inet(a) => Ok(*a),
            Upstream::Host { host, port } => tokio::net::lookup_host((host.as_str(), *port))
                .await?
                .next()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")),
            Upstream::Unix(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a unix: path has no IP address",
            )),
        }
    }
}

/// A short reason for a failed connect, for events and logs.
pub fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::NotFound => format!("not found ({e})"),
        _ => e.to_string(),
    }
}

/// What is known of an upstream: nothing yet, up, or down.
pub struct Health {
    state: AtomicU8,
    /// Held while a change is recorded, so two connects that disagree at
    /// once leave the event log and the typed state in the same order.
    change: std::sync::Mutex<()>,
}

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

impl Default for Health {
    fn default() -> Self {
        Health {
            state: AtomicU8::new(UNKNOWN),
            change: std::sync::Mutex::new(()),
        }
    }
}

impl Health {
    /// Whether the last connect (a client's or the probe's) succeeded;
    /// `None` before the first.
    pub fn is_up(&self) -> Option<bool> {
        match self.state.load(Ordering::Relaxed) {
            UP => Some(true),
            DOWN => Some(false),
            _ => None,
        }
    }

    /// Records a connect's outcome; a change is logged, becomes a
    /// `service_state` event of `id`, and is `id`'s typed upstream state
    /// ([`Stats::upstream`]) that the dashboard reads.
    pub fn report(
        &self,
        upstream: &Upstream,
        outcome: Result<(), &io::Error>,
        id: &ServiceId,
        stats: &Stats,
    ) {
        let new = if outcome.is_ok() { UP } else { DOWN };
        // No change (every connect but the first after a flip): no lock.
        if self.state.load(Ordering::Relaxed) == new {
            return;
        }
        let _one_change_at_a_time = crate::sync::lock(&self.change);
        let old = self.state.swap(new, Ordering::Relaxed);
        if old == new {
            return;
        }
        if old == UNKNOWN {
            // This run's first word on it: nothing from an earlier run holds.
            stats.upstream_forget(id);
        }
        match outcome {
            Ok(()) => {
                tracing::info!(service = %id, %upstream, "upstream is up");
                stats.upstream_changed(id, upstream.to_string(), None);
                stats.service_state(id, format!("upstream {upstream} up"));
            }
            Err(e) => {
                let why = describe(e);
                tracing::warn!(service = %id, %upstream, "upstream is down: {why}");
                stats.upstream_changed(id, upstream.to_string(), Some(why.clone()));
                stats.service_state(id, format!("upstream {upstream} down: {why}"));
            }
        }
    }
}

/// How often [`probe`] connects to the upstream.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);

/// Connects to `upstream` now and every [`PROBE_EVERY`] (each connect
/// bounded by `within`, at most the period), sends `hello` when given,
/// closes, and reports the outcome. Runs until dropped.
///
/// `hello` is for an upstream that expects a PROXY header on every
/// connection (haproxy's `accept-proxy`): without one it logs each probe
/// as a broken connection. A failed write does not mark the upstream down:
/// the connect answered, which is what the check asks.
pub async fn probe(
    upstream: &Upstream,
    within: Duration,
    hello: Option<&[u8]>,
    health: &Health,
    id: &ServiceId,
    stats: &Stats,
) {
    use tokio::io::AsyncWriteExt;
    let within = within.min(PROBE_EVERY);
    let mut every = tokio::time::interval(PROBE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        // Marked as ours unless it sends a header (`hello`) to be read.
        match upstream.connect(within, hello.is_none()).await {
            Ok(mut conn) => {
                if let Some(hello) = hello {
                    let _ = tokio::time::timeout(within, async {
                        conn.write_all(hello).await?;
                        conn.shutdown().await
                    })
                    .await;
                }
                health.report(upstream, Ok(()), id, stats);
            }
            Err(e) => health.report(upstream, Err(&e), id, stats),
        }
        stats.upstream_probed(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_parse_in_every_documented_form() {
        let ok = |s: &str| s.parse::<Upstream>().unwrap();
        assert_eq!(
            ok("127.0.0.1:6379"),
            Upstream::Inet("127.0.0.1:6379".parse().unwrap())
        );
        assert_eq!(ok("[::1]:7"), Upstream::Inet("[::1]:7".parse().unwrap()));
        assert_eq!(
            ok("redis.internal:6379"),
            Upstream::Host {
                host: "redis.internal".into(),
                port: 6379
            }
        );
        assert_eq!(ok("unix:/run/a.sock"), Upstream::Unix("/run/a.sock".into()));
        for s in [
            "127.0.0.1:6379",
            "[::1]:7",
            "redis.internal:6379",
            "unix:/run/a.sock",
        ] {
            assert_eq!(ok(s).to_string(), s);
        }
        for bad in [
            "",
            "6379",
            "host",
            "host:",
            "host:70000",
            "::1:7",
            "unix:",
            "a b:1",
            ":80",
        ] {
            assert!(bad.parse::<Upstream>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn health_reports_changes_only() {
        let stats = Stats::new();
        let id = ServiceId::new("p", crate::kind::ServiceKind::Echo);
        let up: Upstream = "127.0.0.1:1".parse().unwrap();
        let health = Health::default();
        assert_eq!(health.is_up(), None);
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        for _ in 0..3 {
            health.report(&up, Err(&refused), &id, &stats);
        }
        health.report(&up, Ok(()), &id, &stats);
        health.report(&up, Ok(()), &id, &stats);
        assert_eq!(health.is_up(), Some(true));
        let states: Vec<String> = stats
            .recent_events()
            .into_iter()
            .filter_map(|e| match e.kind {
                crate::stats::EventKind::ServiceState { state, .. } => Some(state),
                _ => None,
            })
            .collect();
        assert_eq!(
            states,
            [
                "upstream 127.0.0.1:1 down: connection refused",
                "upstream 127.0.0.1:1 up"
            ]
        );
    }
}
