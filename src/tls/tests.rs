//! Unit tests for TLS: pins, certificate names and the self-signed key file.

use super::*;

#[test]
fn pins_parse_with_or_without_colons_and_refuse_garbage() {
    let hex = "ab".repeat(32);
    assert_eq!(parse_pin(&hex).unwrap(), [0xab; 32]);
    let colons = vec!["AB"; 32].join(":");
    assert_eq!(parse_pin(&colons).unwrap(), [0xab; 32]);
    assert!(parse_pin("abcd").is_err());
    assert!(parse_pin(&"zz".repeat(32)).is_err());
    assert!(parse_pin(&"é".repeat(32)).is_err());
}

#[test]
fn names_cover_loopback_listen_and_allowed_hosts() {
    let allowed_hosts = vec![
        "dash.example:8443".into(),
        "[2001:db8::1]:8443".into(),
        "LOCALHOST".into(),
    ];
    assert_eq!(
        self_signed_names("192.0.2.7".parse().unwrap(), &allowed_hosts),
        [
            "localhost",
            "127.0.0.1",
            "::1",
            "192.0.2.7",
            "dash.example",
            "2001:db8::1"
        ]
    );
}

#[test]
fn self_signed_key_is_owner_only_and_reused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (files, created) = ensure_self_signed(dir.path(), vec!["localhost".into()]).unwrap();
    assert!(created);
    let mode = std::fs::metadata(&files.key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let first = ServerTls::load(&files).unwrap().fingerprint();
    let (_, created) = ensure_self_signed(dir.path(), vec!["localhost".into()]).unwrap();
    assert!(!created);
    assert_eq!(ServerTls::load(&files).unwrap().fingerprint(), first);
}
