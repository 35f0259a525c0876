//! Unit tests for the accounts file: password hashing, name and password checks, the account lifecycle.

use super::*;

#[test]
fn dummy_hash_uses_the_default_parameters() {
    let real = hash("some password").unwrap();
    let params = |h: &str| h.rsplitn(3, '$').nth(2).unwrap().to_owned();
    assert_eq!(params(DUMMY_HASH), params(&real));
    // A dummy that failed to parse would answer at once: a timing leak.
    argon2::PasswordHash::new(DUMMY_HASH).unwrap();
    assert!(!matches_in(DUMMY_HASH, "", &mut Vec::new()));
}

#[test]
fn checking_in_kept_memory_agrees_with_argon2_and_reuses_it() {
    use argon2::PasswordVerifier;
    let real = hash("some password").unwrap();
    let mut memory = Vec::new();
    assert!(matches_in(&real, "some password", &mut memory));
    let kept = (memory.as_ptr(), memory.capacity());
    assert_eq!(memory.len(), KEPT_BLOCKS);
    assert!(!matches_in(&real, "some passwore", &mut memory));
    assert!(!matches_in(&real, "", &mut memory));
    assert_eq!((memory.as_ptr(), memory.capacity()), kept, "no new buffer");
    assert!(
        Argon2::default()
            .verify_password(b"some password", real.as_str())
            .is_ok()
    );
    // Other parameters (more memory than kept, other algorithm) work,
    // in memory of their own.
    let params = Params::new(KEPT_BLOCKS as u32 + 1024, 1, 1, None).unwrap();
    let bigger = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
        .hash_password(b"pw")
        .unwrap()
        .to_string();
    assert!(matches_in(&bigger, "pw", &mut memory));
    assert!(!matches_in(&bigger, "px", &mut memory));
    assert_eq!(memory.len(), KEPT_BLOCKS);
    assert!(!matches_in("$argon2id$garbage", "pw", &mut memory));
}

#[test]
fn names_and_passwords_are_checked() {
    for good in ["admin", "bob.smith", "a", "x_1-2"] {
        check_name(good).unwrap();
    }
    for bad in ["", "-x", ".x", "a b", "a/b", "é", &"a".repeat(33), "a\n"] {
        assert!(check_name(bad).is_err(), "{bad:?}");
    }
    assert!(check_password("short").is_err());
    assert!(check_password(&"x".repeat(129)).is_err());
    assert!(check_password("long enough\n").is_err());
    check_password("long enough").unwrap();
    let p = generate_password().unwrap();
    assert_eq!(p.len(), 20);
    check_password(&p).unwrap();
    assert_ne!(p, generate_password().unwrap());
}

#[tokio::test]
async fn accounts_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let users = Users::open(dir.path()).unwrap();
    assert!(matches!(
        users.add("bob", Role::Viewer, "password1"),
        Err(UsersError::AdminFirst)
    ));
    let generated = users.ensure_admin(None).unwrap().expect("generated");
    assert_eq!(users.ensure_admin(None).unwrap(), None, "only once");
    assert_eq!(
        users.verify("admin", &generated).await.unwrap(),
        Some(Role::Admin)
    );
    assert_eq!(users.verify("admin", "wrong password").await.unwrap(), None);
    assert_eq!(users.verify("nobody", &generated).await.unwrap(), None);

    users.add("bob", Role::Operator, "bob's password").unwrap();
    assert!(matches!(
        users.add("bob", Role::Viewer, "another one"),
        Err(UsersError::Exists(_))
    ));
    // Another process (a second handle) sees the change.
    let other = Users::open(dir.path()).unwrap();
    assert_eq!(other.role("bob"), Some(Role::Operator));
    other.set_password("bob", "new password").unwrap();
    assert_eq!(users.verify("bob", "bob's password").await.unwrap(), None);
    assert_eq!(
        users.verify("bob", "new password").await.unwrap(),
        Some(Role::Operator)
    );

    assert!(matches!(
        users.remove("admin"),
        Err(UsersError::LastAdmin(_))
    ));
    assert!(matches!(
        users.set_role("admin", Role::Viewer),
        Err(UsersError::LastAdmin(_))
    ));
    users.set_role("bob", Role::Admin).unwrap();
    users.remove("admin").unwrap();
    assert_eq!(
        users
            .list()
            .iter()
            .map(|u| u.name.as_str())
            .collect::<Vec<_>>(),
        ["bob"]
    );

    let text = std::fs::read_to_string(path(dir.path())).unwrap();
    assert!(text.contains("$argon2id$"));
    assert!(!text.contains("new password"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path(dir.path()))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0);
}

#[test]
fn a_broken_file_is_an_error_not_an_empty_store() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(path(dir.path()), "{not json").unwrap();
    assert!(matches!(
        Users::open(dir.path()),
        Err(UsersError::Corrupt { .. })
    ));
}
