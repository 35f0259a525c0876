//! Where sign-in returns to: a page asked for without a session redirects
//! to `/login?next=PATH`, and signing in goes back there. `next` is only
//! ever a path on this site (`/traffic?x=1`): anything that could leave it
//! (`//host`, `/\host`, `https://…`, control characters) is dropped and the
//! overview used instead, so the parameter cannot send anyone elsewhere.
//!
//! Not here: the sign-in itself ([`super::session`]); the page's script
//! applies the same rule before it follows `next`.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Longest `next` kept; a longer one is dropped (the overview instead).
pub const MAX_NEXT: usize = 2048;

/// What a query value escapes: everything but unreserved characters and `/`.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// `next` if it is a path on this site, else `None`.
pub fn safe_next(next: &str) -> Option<&str> {
    let b = next.as_bytes();
    let ok = next.len() <= MAX_NEXT
        && b.first() == Some(&b'/')
        // `//host` and `/\host` are other hosts to a browser.
        && !matches!(b.get(1), Some(b'/' | b'\\'))
        && !next.contains('\\')
        && !next.bytes().any(|c| c.is_ascii_control() || c == b' ')
        // Back to the sign-in page would be a loop.
        && !next.starts_with("/login");
    ok.then_some(next)
}

/// The sign-in page's address that returns to `here` (the overview needs
/// no `next`).
pub fn login_returning_to(here: &str) -> String {
    match safe_next(here) {
        Some(path) if path != "/" => {
            format!("/login?next={}", utf8_percent_encode(path, QUERY_VALUE))
        }
        _ => "/login".to_owned(),
    }
}

/// Middleware on the pages: a page's "sign in first" redirect to `/login`
/// names the page asked for as `next`.
pub async fn remember_page(req: Request, next: Next) -> Response {
    let here = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let mut response = next.run(req).await;
    let to_login = response.status() == StatusCode::SEE_OTHER
        && response.headers().get(header::LOCATION) == Some(&HeaderValue::from_static("/login"));
    if to_login && let Ok(v) = HeaderValue::from_str(&login_returning_to(&here)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_site_are_kept() {
        for good in ["/", "/traffic", "/inspect/7?x=1&y=2", "/services#px"] {
            assert_eq!(safe_next(good), Some(good), "{good}");
        }
        for bad in [
            "",
            "traffic",
            "//evil.example/",
            "/\\evil.example",
            "/a\\b",
            "https://evil.example/",
            "javascript:alert(1)",
            "/a\nb",
            "/a b",
            "/login",
            "/login?next=/x",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
        assert_eq!(safe_next(&format!("/{}", "a".repeat(MAX_NEXT))), None);
    }

    #[test]
    fn the_login_address_carries_the_page_escaped() {
        assert_eq!(login_returning_to("/"), "/login");
        assert_eq!(login_returning_to("/traffic"), "/login?next=/traffic");
        assert_eq!(
            login_returning_to("/connections?service=echo&x=%20"),
            "/login?next=/connections%3Fservice%3Decho%26x%3D%2520"
        );
        assert_eq!(login_returning_to("//evil.example"), "/login");
    }
}
