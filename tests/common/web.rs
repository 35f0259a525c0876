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
