//! Unit tests for web sessions: host parsing, expiry and bounds, stream slots, bearer tokens.

use super::host::name_and_port;
use super::*;

#[test]
fn host_values_split_into_name_and_port() {
    let split = name_and_port;
    let named = |name: &str, port| Some((name.to_owned(), port));
    assert_eq!(split("localhost:8080"), named("localhost", Some(8080)));
    assert_eq!(split("127.0.0.1"), named("127.0.0.1", None));
    assert_eq!(split("[::1]:80"), named("::1", Some(80)));
    assert_eq!(split("Example.COM.:1"), named("example.com", Some(1)));
    assert_eq!(split("[::1]x"), None);
    assert_eq!(split("a:b"), None);
    assert_eq!(split("a:99999"), None);
    assert_eq!(split(""), None);
    assert_eq!(split("."), None);
    // As a Host header: never a bare IPv6 address or a colon in a name.
    use super::host::host_value;
    assert_eq!(host_value("[::1]:8080"), named("::1", Some(8080)));
    assert_eq!(host_value("localhost."), named("localhost", None));
    assert_eq!(host_value("::1"), None);
    assert_eq!(host_value("a::b.localhost"), None);
    assert_eq!(host_value("evil.com:80:x.localhost"), None);
}

#[test]
fn sessions_expire_and_are_bounded() {
    let s = Sessions::new(Duration::from_millis(0), 4);
    let (token, _) = s.create("admin", Role::Admin).unwrap();
    assert!(s.touch(&token).is_none(), "idle 0: expired at once");

    let s = Sessions::new(Duration::from_secs(60), 4);
    let (first, _) = s.create("a", Role::Viewer).unwrap();
    let ticket = s.open_stream(&first).unwrap();
    for _ in 0..MAX_SESSIONS {
        s.create("b", Role::Viewer).unwrap();
    }
    assert_eq!(s.lock().len(), MAX_SESSIONS);
    assert!(s.touch(&first).is_none(), "the oldest made room");
    assert!(ticket.ended.is_cancelled(), "its streams were told");
}

#[test]
fn stream_slots_count_per_account_however_many_sessions_it_holds() {
    let s = Sessions::new(Duration::from_secs(60), 2);
    let (first, _) = s.create("vera", Role::Viewer).unwrap();
    let (second, _) = s.create("vera", Role::Viewer).unwrap();
    let (admin, _) = s.create("admin", Role::Admin).unwrap();
    let one = s.open_stream(&first).unwrap();
    let _two = s.open_stream(&second).unwrap();
    assert!(matches!(
        s.open_stream(&second),
        Err(WebError::TooManyStreams(2))
    ));
    assert!(matches!(
        s.open_stream(&first),
        Err(WebError::TooManyStreams(2))
    ));
    let _admins = s.open_stream(&admin).expect("another account has its own");
    assert_eq!(s.streams.held("vera"), 2);
    drop(one);
    assert_eq!(s.streams.held("vera"), 1);
    let _back = s.open_stream(&second).expect("a slot came back");
}

#[test]
fn a_session_has_a_few_stream_slots_and_ending_it_ends_them() {
    let s = Sessions::new(Duration::from_secs(60), 2);
    let (token, _) = s.create("a", Role::Viewer).unwrap();
    let one = s.open_stream(&token).unwrap();
    let two = s.open_stream(&token).unwrap();
    assert!(matches!(
        s.open_stream(&token),
        Err(WebError::TooManyStreams(2))
    ));
    drop(one);
    let three = s.open_stream(&token).expect("a slot came back");
    assert!(s.still_live(&two.key));
    s.remove(&token);
    assert!(two.ended.is_cancelled() && three.ended.is_cancelled());
    assert!(!s.still_live(&two.key));
    assert!(matches!(
        s.open_stream(&token),
        Err(WebError::SignInRequired)
    ));
}

#[test]
fn bearer_tokens_are_read_only_from_the_bearer_scheme() {
    let mut h = HeaderMap::new();
    assert_eq!(bearer(&h), None);
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer sbt_x"),
    );
    assert_eq!(bearer(&h), Some("sbt_x"));
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("bearer  sbt_y "),
    );
    assert_eq!(bearer(&h), Some("sbt_y"));
    h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer"));
    assert_eq!(
        bearer(&h),
        Some(""),
        "an empty bearer is a bad token, not none"
    );
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Basic YTpi"),
    );
    assert_eq!(bearer(&h), None);
    assert!(!has_session_cookie(&h));
    h.insert(
        header::COOKIE,
        HeaderValue::from_static("x=1; switchboard_session=zz"),
    );
    assert!(
        has_session_cookie(&h),
        "any value: it is a browser's request"
    );
}

#[test]
fn the_cookie_is_found_among_others_and_checked_for_shape() {
    let mut h = HeaderMap::new();
    let token = "ab".repeat(32);
    h.insert(
        header::COOKIE,
        HeaderValue::from_str(&format!("x=1; {COOKIE}={token}; y=2")).unwrap(),
    );
    assert_eq!(cookie_token(&h), Some(token.as_str()));
    h.insert(
        header::COOKIE,
        HeaderValue::from_static("switchboard_session=../x"),
    );
    assert_eq!(cookie_token(&h), None);
}

/// What the `Host` check and the banner's `open:` line share: an entry lets
/// a `Host` in by name (addresses as addresses, brackets and a final dot
/// aside) and by port (any, when the entry names none; a browser's omitted
/// default port, when it names 80 or 443).
#[test]
fn allowed_host_entries_match_as_a_browser_writes_host() {
    use super::host::{entry_allows, name_and_port};
    let allows = |entry: &str, host: &str| {
        let (name, port) = name_and_port(host).unwrap();
        entry_allows(entry, &name, port)
    };
    for (entry, host) in [
        ("dash.example", "Dash.Example:8080"),
        ("Dash.Example", "dash.example"),
        ("dash.example.", "dash.example:1"),
        ("dash.example:8443", "dash.example:8443"),
        ("dash.example:443", "dash.example"),
        ("10.0.0.1:80", "10.0.0.1"),
        ("::1", "[::1]:8080"),
        ("[::1]", "[::1]:8080"),
        ("[::1]:8080", "[::1]:8080"),
        ("::0:1", "[::1]"),
    ] {
        assert!(allows(entry, host), "{entry} lets in {host}");
    }
    for (entry, host) in [
        ("dash.example", "evil.example"),
        ("dash.example", "dash.example.evil"),
        ("dash.example:8443", "dash.example:8444"),
        ("dash.example:8443", "dash.example"),
        ("[::1]:8080", "[::1]:8081"),
        ("::1", "[::2]:8080"),
        ("127.0.0.1", "127.0.0.2"),
    ] {
        assert!(!allows(entry, host), "{entry} keeps out {host}");
    }
}
