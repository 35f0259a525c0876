//! The `Host` and `Origin` checks in front of every route, against DNS
//! rebinding and cross-site requests; and the refusal of a request whose
//! forwarding headers name two clients (`web::client_addr::Conflict`).

use super::*;

/// A `Host` value or a `web.allowed_hosts` entry as (name, port): the name
/// lower-cased, without IPv6 brackets or a final dot; `None` when empty or
/// malformed. An entry may also be a bare IPv6 address (`::1`), which a
/// `Host` header never is.
pub(crate) fn name_and_port(host: &str) -> Option<(String, Option<u16>)> {
    let host = host.trim().to_ascii_lowercase();
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        match after {
            "" => (inside.to_owned(), None),
            _ => (
                inside.to_owned(),
                Some(after.strip_prefix(':')?.parse().ok()?),
            ),
        }
    } else if host.matches(':').count() > 1 {
        (host, None) // a bare IPv6 address
    } else {
        match host.split_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
                (name.to_owned(), Some(port.parse().ok()?))
            }
            Some(_) => return None,
            None => (host, None),
        }
    };
    let name = name.strip_suffix('.').unwrap_or(&name).to_owned();
    (!name.is_empty()).then_some((name, port))
}

/// A `Host` header's (name, port), as [`name_and_port`] but refusing a
/// bare IPv6 address and a name with a colon in it, which no browser
/// sends (`a::b.localhost` is no loopback name).
pub(super) fn host_value(host: &str) -> Option<(String, Option<u16>)> {
    let (name, port) = name_and_port(host)?;
    let bracketed_v6 = host.trim_start().starts_with('[') && name.parse::<IpAddr>().is_ok();
    (!name.contains(':') || bracketed_v6).then_some((name, port))
}

/// Whether the `web.allowed_hosts` entry `entry` lets in a request whose
/// `Host` is `(name, port)` (a [`name_and_port`]). IP addresses match as
/// addresses (`::0:1` is `::1`); an entry without a port matches any; a
/// `Host` without one is a scheme's default port, which an entry naming 80
/// or 443 matches (a browser leaves it out).
pub(crate) fn entry_allows(entry: &str, name: &str, port: Option<u16>) -> bool {
    let Some((entry_name, entry_port)) = name_and_port(entry) else {
        return false;
    };
    let same_name = match (entry_name.parse::<IpAddr>(), name.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => entry_name == name,
    };
    same_name
        && match (entry_port, port) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            (Some(a), None) => a == 80 || a == 443,
        }
}

/// Whether `name` (a [`name_and_port`]'s) is a loopback name.
pub(crate) fn is_loopback_name(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The routes a machine asks without a session: the HEALTHCHECK, a
/// kubelet's probes, a Prometheus scrape. They answer loopback names even
/// when `web.allowed_hosts` is set, because `switchboard health` asks
/// `127.0.0.1` and a probe or scraper inside the deployment asks by the
/// address it was given. This opens nothing to DNS rebinding: a page whose
/// name was rebound to 127.0.0.1 still sends its own name as `Host`, never
/// a loopback one; and these routes carry no session and change nothing.
/// For the same reason they answer a request with no `Host` at all, as
/// HAProxy's `option httpchk` sends (HTTP/1.0): a browser always sends one.
pub const PROBE_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

impl AppState {
    /// Whether the dashboard answers to this `Host` header value on `path`.
    fn host_allowed(&self, host: &str, path: &str) -> bool {
        let probe = PROBE_PATHS.contains(&path);
        if host.trim().is_empty() {
            return probe;
        }
        let Some((name, port)) = host_value(host) else {
            return false;
        };
        let allowed = &self.web().allowed_hosts;
        if !allowed.is_empty() {
            return allowed.iter().any(|a| entry_allows(a, &name, port))
                || (probe && is_loopback_name(&name));
        }
        if !self.web().listen.ip().is_loopback() {
            return true;
        }
        is_loopback_name(&name)
    }
}

/// The middleware in front of every route: forwarding headers that name
/// one client (else 400), a `Host` the dashboard answers to, and for state-changing requests and live streams, an `Origin` (when
/// the browser sends one) that is this same host. Browsers send `Origin` on
/// every cross-site POST/PUT/DELETE and `EventSource`, so a foreign page
/// cannot act here even if a cookie were sent along.
///
/// A WebSocket upgrade is checked here, before any upgrade: browsers send
/// `Origin` on every WebSocket handshake and `SameSite` does not cover
/// them, so one with the session cookie and no `Origin` is no page of ours.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Found before the router (`web::server`): answered here, so it is
    // logged, timed and given the security headers like any refusal.
    if let Some(conflict) = req.extensions().get::<crate::web::client_addr::Conflict>() {
        return WebError::BadRequest(conflict.to_string()).into_response();
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // A token request with no cookie is no browser's doing (a page cannot
    // set `Authorization` on a cross-site request without CORS, which is
    // not offered): nothing to check the origin of.
    let scripted = bearer(req.headers()).is_some() && !has_session_cookie(req.headers());
    // Nor the Host, on the API: the Host check guards the cookie, an
    // ambient credential a browser attaches to whatever name now resolves
    // here (DNS rebinding). A bearer token is never attached by anyone who
    // does not already hold it, so a rebound page gains nothing here it
    // could not do without us, and a token that is wrong is still refused
    // by the API's own check. The CLI (`service list --token ...`) dials
    // the address it was given, which `allowed_hosts` need not name: making
    // it guess an allowed name would only move the failure.
    let token_api = scripted && req.uri().path().starts_with("/api/");
    if !token_api && !state.host_allowed(&host, req.uri().path()) {
        return WebError::UnknownHost.into_response();
    }
    let websocket = crate::web::is_websocket_path(req.uri().path());
    let live = req.uri().path() == crate::web::LIVE_PATH || websocket;
    if (!is_safe(req.method()) || live) && !scripted {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let same = origin.to_str().is_ok_and(|o| {
                let o = o.to_ascii_lowercase();
                let host = host.to_ascii_lowercase();
                o.strip_prefix("http://")
                    .or_else(|| o.strip_prefix("https://"))
                    .is_some_and(|authority| authority == host)
            });
            if !same {
                return WebError::CrossOrigin.into_response();
            }
        } else if (websocket && has_session_cookie(req.headers()))
            || req
                .headers()
                .get("sec-fetch-site")
                .is_some_and(|s| s != "same-origin" && s != "none")
        {
            return WebError::CrossOrigin.into_response();
        }
    }
    next.run(req).await
}
