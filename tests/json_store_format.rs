//! The store under the accounts and the tokens. Files as the code before
//! the shared JSON store wrote them (`tests/fixtures/store/`, made by that
//! code through its public API) still load, answer as they did, and are
//! written back byte for byte: a data directory survives the upgrade
//! untouched. Changes made at once through separate handles (each its own
//! lock file descriptor, as separate processes have) all land.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use switchboard::tokens::{Tokens, Verdict};
use switchboard::users::{Role, Users};

/// The token whose SHA-256 the fixture holds as `ci` (a test token, valid
/// nowhere else).
const CI_TOKEN: &str = "sbt_08bed7187ab3827e5bf025c96516778ffc8077b299da1e90cd6447f6cdf34b8c";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/store")
        .join(name)
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A data directory holding a copy of fixture `name`, owner-only like the
/// real one.
fn data_dir_with(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let to = dir.path().join(name);
    std::fs::copy(fixture(name), &to).expect("the fixture copies");
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    dir
}

#[test]
fn a_tokens_file_from_before_loads_checks_and_is_rewritten_byte_for_byte() {
    let dir = data_dir_with("tokens.json");
    let tokens = Tokens::open(dir.path()).expect("the old tokens file loads");
    let listed: Vec<_> = tokens
        .list()
        .into_iter()
        .map(|t| (t.name, t.role, t.expires_unix, t.last_used_unix))
        .collect();
    assert_eq!(
        listed,
        [
            (
                "ci".to_owned(),
                Role::Operator,
                Some(2_111_905_558),
                Some(1_796_545_558)
            ),
            ("deploy".to_owned(), Role::Admin, None, None),
        ]
    );
    assert_eq!(
        tokens.check(CI_TOKEN).0,
        Verdict::Valid {
            name: "ci".into(),
            role: Role::Operator
        }
    );
    tokens.revoke("deploy").expect("revoke");
    assert_eq!(
        text(&dir.path().join("tokens.json")),
        text(&fixture("tokens-after-revoke.json")),
        "the file as the old code wrote it after the same revoke"
    );
    // A server's lazy store reads the same file on its first check.
    let lazy = Tokens::lazy(dir.path());
    assert!(matches!(lazy.check(CI_TOKEN).0, Verdict::Valid { .. }));
}

#[tokio::test]
async fn an_accounts_file_from_before_loads_verifies_and_is_rewritten_byte_for_byte() {
    let dir = data_dir_with("users.json");
    let users = Users::open(dir.path()).expect("the old accounts file loads");
    let listed: Vec<_> = users
        .list()
        .into_iter()
        .map(|u| (u.name, u.role, u.created_unix))
        .collect();
    assert_eq!(
        listed,
        [
            ("admin".to_owned(), Role::Admin, 1_796_545_558),
            ("bob".to_owned(), Role::Viewer, 1_796_545_558),
        ]
    );
    assert_eq!(
        users.verify("bob", "bob's password").await.expect("verify"),
        Some(Role::Viewer)
    );
    assert_eq!(
        users
            .verify("admin", "bob's password")
            .await
            .expect("verify"),
        None
    );
    // A change that changes nothing writes the file it read.
    users.set_role("bob", Role::Viewer).expect("set_role");
    assert_eq!(
        text(&dir.path().join("users.json")),
        text(&fixture("users.json"))
    );
}

#[test]
fn changes_made_at_once_through_separate_handles_all_land() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    Users::open(dir.path())
        .expect("open")
        .add("admin", Role::Admin, "correct horse battery")
        .expect("the first account");
    std::thread::scope(|s| {
        for t in 0..4 {
            let dir = dir.path();
            s.spawn(move || {
                let tokens = Tokens::open(dir).expect("open tokens");
                let users = Users::open(dir).expect("open users");
                for i in 0..25 {
                    tokens
                        .create(&format!("t{t}-{i}"), Role::Viewer, None)
                        .expect("create");
                }
                users
                    .add(&format!("u{t}"), Role::Viewer, "a long password")
                    .expect("add");
                users
                    .set_role(&format!("u{t}"), Role::Operator)
                    .expect("set_role");
            });
        }
    });
    assert_eq!(Tokens::open(dir.path()).expect("open").list().len(), 100);
    let users = Users::open(dir.path()).expect("open").list();
    assert_eq!(users.len(), 5, "{users:?}");
    assert_eq!(users.iter().filter(|u| u.role == Role::Operator).count(), 4);
}
