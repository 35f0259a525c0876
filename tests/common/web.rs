//! Helpers for the dashboard tests: the router driven directly
//! (`oneshot`), or a real server on port 0 spoken to over a raw socket.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

use switchboard::web::{AppState, router};

use super::{ADMIN_PASSWORD, Harness};

/// Services, plus the dashboard's router over them.
pub struct Web {
    pub h: Harness,
    pub state: AppState,
    pub app: Router,
}

/// The `Host` header the tests send (the dashboard answers loopback names).
pub const HOST: &str = "127.0.0.1:8080";

/// The operator account [`Web::roles`] and [`Web::add_operator`] add: name, password.
pub const OPERATOR: (&str, &str) = ("otto", "operator-password-1");

impl Web {
    pub async fn start() -> Web {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut switchboard::config::Config)) -> Web {
        let h = Harness::start_with(tweak).await;
        let state = AppState::new(h.supervisor.clone(), &h.config, h.root.clone());
        let app = router(state.clone());
        Web { h, state, app }
    }

    /// Sends a request; answers its status, headers and body text.
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let res = self.app.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let body = axum::body::to_bytes(res.into_body(), 16 << 20)
            .await
            .expect("a body");
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// Adds a viewer `vera` and an operator `otto` and signs in as each
    /// and as the admin: (viewer, operator, admin).
    pub async fn roles(&self) -> (Signed, Signed, Signed) {
        self.h
            .supervisor
            .users()
            .add(
                "vera",
                switchboard::users::Role::Viewer,
                "viewer-password-1",
            )
            .expect("a viewer");
        self.add_operator();
        (
            self.sign_in("vera", "viewer-password-1").await,
            self.sign_in(OPERATOR.0, OPERATOR.1).await,
            self.admin().await,
        )
    }

    /// Adds the operator account [`OPERATOR`] names (not signed in).
    pub fn add_operator(&self) {
        self.h
            .supervisor
            .users()
            .add(OPERATOR.0, switchboard::users::Role::Operator, OPERATOR.1)
            .expect("an operator");
    }

    /// Signs in; panics unless it works.
    pub async fn sign_in(&self, user: &str, password: &str) -> Signed {
        let r = self
            .send(json_request(
                "POST",
                "/api/v1/session",
                &serde_json::json!({"username": user, "password": password}),
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "sign-in failed: {}", r.body);
        Signed::from_reply(&r)
    }

    pub async fn admin(&self) -> Signed {
        self.sign_in("admin", ADMIN_PASSWORD).await
    }
}

/// A signed-in session: its cookie pair and CSRF token.
pub struct Signed {
    pub cookie: String,
    pub csrf: String,
}

impl Signed {
    /// The session a successful sign-in's reply `r` opened.
    pub fn from_reply(r: &Reply) -> Signed {
        let cookie = r
            .headers
            .get(header::SET_COOKIE)
            .expect("a cookie")
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        Signed {
            cookie,
            csrf: r.json()["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    /// A request with the cookie, and the CSRF token when `csrf`.
    pub fn request(&self, method: &str, path: &str, csrf: bool) -> Request<Body> {
        let mut b = base(method, path).header(header::COOKIE, &self.cookie);
        if csrf {
            b = b.header("x-csrf-token", &self.csrf);
        }
        b.body(Body::empty()).unwrap()
    }

    pub fn get(&self, path: &str) -> Request<Body> {
        self.request("GET", path, false)
    }

    /// A state-changing request carrying the token, as the pages send it.
    pub fn act(&self, method: &str, path: &str) -> Request<Body> {
        self.request(method, path, true)
    }

    /// A state-changing request with a JSON body (cookie and CSRF token).
    pub fn act_json(&self, method: &str, path: &str, body: &Value) -> Request<Body> {
        base(method, path)
            .header(header::COOKIE, &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The `error` message of a JSON error reply.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message in {}", self.body))
            .to_owned()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or(""))
    }
}

pub fn base(method: &str, path: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, HOST)
}

pub fn get(path: &str) -> Request<Body> {
    base("GET", path).body(Body::empty()).unwrap()
}

pub fn json_request(method: &str, path: &str, body: &Value) -> Request<Body> {
    base(method, path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// A TCP connection to `addr` from the loopback address `from` (any of
/// 127.0.0.0/8 on Linux), so a test can play several peers.
pub async fn connect_from(
    from: std::net::IpAddr,
    addr: std::net::SocketAddr,
) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(std::net::SocketAddr::new(from, 0))
        .unwrap_or_else(|e| panic!("bind to {from}: {e}"));
    socket
        .connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect from {from} to {addr}: {e}"))
}

/// `127.0.0.<last>`.
pub fn loopback(last: u8) -> std::net::IpAddr {
    std::net::IpAddr::from([127, 0, 0, last])
}

/// A response read off a raw socket.
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawReply {
    pub fn parse(bytes: &[u8]) -> RawReply {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no response head in {text:?}"));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}"));
        RawReply {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Writes `request` (which should say `Connection: close`) from `from` and
/// reads the reply to the end, with the hang guard.
pub async fn raw_request(
    addr: std::net::SocketAddr,
    from: std::net::IpAddr,
    request: &str,
) -> RawReply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = connect_from(from, addr).await;
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    super::guard("a reply", stream.read_to_end(&mut buf))
        .await
        .expect("read");
    RawReply::parse(&buf)
}

/// `POST /api/v1/session` as raw HTTP.
pub fn sign_in_request(user: &str, password: &str) -> String {
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    format!(
        "POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// `GET path` as raw HTTP, closing after the reply.
pub fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
}

/// Polls `cond` every few milliseconds until it holds, with the hang guard
/// (for state no signal announces, e.g. a server's connection table).
pub async fn poll_until(what: &str, mut cond: impl FnMut() -> bool) {
    super::guard(what, async {
        while !cond() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// Reads until the peer closes (EOF or reset); returns what came first.
pub async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// The lines of the audit log, parsed, once everything recorded so far is
/// written.
pub async fn audit_lines(w: &Web) -> Vec<Value> {
    w.h.supervisor.audit().flush().await;
    std::fs::read_to_string(switchboard::audit::path(w.h.dir.path()))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
        .collect()
}

/// A real dashboard server for `w` on an ephemeral loopback port.
pub async fn serve(w: &Web) -> std::net::SocketAddr {
    let listener =
        switchboard::service::listen::bind_inet("127.0.0.1:0".parse().expect("an address"))
            .expect("bind");
    let addr = listener.local_addr().expect("bound");
    w.h.root
        .tasks
        .spawn(switchboard::web::serve(listener, w.state.clone()));
    addr
}
