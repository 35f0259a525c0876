//! Unit tests for API tokens: name and expiry checks, token randomness, the token lifecycle and a broken file.

use super::*;

#[test]
fn names_and_expiries_are_checked() {
    for good in ["ci", "deploy-bot-2", "a", &"x".repeat(32)] {
        check_name(good).unwrap();
    }
    for bad in ["", "CI", "a_b", "a.b", "a b", "é", &"a".repeat(33), "a\n"] {
        assert!(check_name(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        parse_expiry("30d").unwrap(),
        Duration::from_secs(30 * 86_400)
    );
    assert_eq!(parse_expiry("12h").unwrap(), Duration::from_secs(12 * 3600));
    assert_eq!(parse_expiry("90m").unwrap(), Duration::from_secs(90 * 60));
    assert_eq!(parse_expiry("3650d").unwrap(), MAX_EXPIRY);
    for bad in [
        "",
        "d",
        "0d",
        "3651d",
        "87601h",
        "-1d",
        "1.5d",
        "10",
        "10s",
        "1w",
        "+1d",
        "99999999999999999999d",
    ] {
        assert!(parse_expiry(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn tokens_have_256_random_bits_and_a_prefix() {
    let a = generate().unwrap();
    assert_eq!(a.len(), TOKEN_LEN);
    assert!(well_formed(&a), "{a}");
    assert_ne!(a, generate().unwrap());
    assert!(!well_formed(&a.to_uppercase()));
    assert!(!well_formed(&a[..TOKEN_LEN - 1]));
    assert!(!well_formed(&format!("xyz_{}", &a[4..])));
    assert_eq!(
        hex_digest_bytes(&digest_hex(&a)),
        <[u8; 32]>::from(Sha256::digest(a.as_bytes()))
    );
}

#[test]
fn lifecycle_create_check_revoke_expire() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = Tokens::open(dir.path()).unwrap();
    let (ci, never) = tokens.create("ci", Role::Operator, None).unwrap();
    assert_eq!(never, None);
    assert!(matches!(
        tokens.create("ci", Role::Viewer, None),
        Err(TokensError::Exists(_))
    ));
    let (verdict, due) = tokens.check(&ci);
    assert_eq!(
        verdict,
        Verdict::Valid {
            name: "ci".into(),
            role: Role::Operator
        }
    );
    assert!(due, "the first use is written at once");
    assert!(!tokens.check(&ci).1, "the next within a minute is not");
    tokens.flush_used().unwrap();

    // Another process (a second handle) sees the use, and its revoke
    // takes effect in the first.
    let other = Tokens::open(dir.path()).unwrap();
    let listed = other.list();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_unix.is_some());
    other.revoke("ci").unwrap();
    assert_eq!(tokens.check(&ci).0, Verdict::Unknown);
    assert!(matches!(
        other.revoke("ci"),
        Err(TokensError::NoSuchToken(_))
    ));
    // A flush of uses noted before the revoke does not bring it back.
    tokens.flush_used().unwrap();
    assert!(other.list().is_empty());

    let (old, at) = tokens
        .create("old", Role::Admin, Some(Duration::ZERO))
        .unwrap();
    assert!(at.is_some_and(|at| at <= now_unix()));
    assert_eq!(
        tokens.check(&old).0,
        Verdict::Expired { name: "old".into() }
    );
    assert!(tokens.list()[0].expired);
    assert_eq!(tokens.check("sbt_nope").0, Verdict::Malformed);
    let unknown = generate().unwrap();
    assert_eq!(tokens.check(&unknown).0, Verdict::Unknown);

    let text = std::fs::read_to_string(path(dir.path())).unwrap();
    assert!(!text.contains(&ci) && !text.contains(&old));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path(dir.path()))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

#[test]
fn a_broken_file_is_an_error_for_the_cli_and_nothing_valid_for_the_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(path(dir.path()), "{not json").unwrap();
    assert!(matches!(
        Tokens::open(dir.path()),
        Err(TokensError::Corrupt { .. })
    ));
    let lazy = Tokens::lazy(dir.path());
    assert_eq!(lazy.check(&generate().unwrap()).0, Verdict::Unknown);
}
