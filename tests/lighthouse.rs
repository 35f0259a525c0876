//! Lighthouse, Chrome's own page auditor, over every dashboard page at a
//! desktop and a phone size: accessibility, best practices and SEO at 95
//! or better (the dashboard's floor), each failing audit named.
//!
//! The pages come from the signed-in Overview's navigation (so a new page
//! is audited without touching this file), plus the sign-in page signed out
//! and the wire inspector on a live echo connection; Send, Traffic,
//! Services, Tokens and the inspector again after their main action (a
//! Lighthouse snapshot of the page as it left them). Lighthouse's
//! performance score is a timing and is not asserted here (speed is
//! measured in benchmarks); `SWITCHBOARD_LIGHTHOUSE_PERFORMANCE=1` adds it
//! to the printed scores.
//!
//! Needs Node and the `lighthouse` npm package, which scripts/test.sh
//! installs into `target/lighthouse` (`SWITCHBOARD_LIGHTHOUSE_MODULES` names
//! another `node_modules`); skipped only with `SWITCHBOARD_SKIP_LIGHTHOUSE=1`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::web::{get_request, loopback, raw_request, sign_in_request};
use common::{ADMIN_PASSWORD, Served, TEST_KEY, guard, skip_allowed};
use serde_json::Value;
use switchboard::kind::ServiceKind;

/// Each page takes several seconds in Lighthouse on a busy machine; this
/// only stops a hung Chromium from hanging the suite.
const AUDIT_GUARD: Duration = Duration::from_secs(30 * 60);
const FLOOR: f64 = 0.95;
const CATEGORIES: [&str; 3] = ["accessibility", "best-practices", "seo"];
const CHROMIUM: &str = "/usr/bin/chromium";

fn lighthouse_modules() -> PathBuf {
    #[allow(clippy::disallowed_methods)] // the test run's own setting
    std::env::var_os("SWITCHBOARD_LIGHTHOUSE_MODULES").map_or_else(
        || {
            #[allow(clippy::disallowed_methods)] // the test run's own setting
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
                || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
                PathBuf::from,
            );
            target.join("lighthouse/node_modules")
        },
        PathBuf::from,
    )
}

/// The session cookie (`name=value`) from a sign-in's `Set-Cookie`.
fn session_cookie(head: &str) -> String {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, value)| value.trim().split(';').next())
        .find(|pair| pair.starts_with("switchboard_session="))
        .unwrap_or_else(|| panic!("no session cookie in {head}"))
        .to_owned()
}

/// The `href`s of the links inside the page's `<nav>`.
fn nav_paths(html: &str) -> Vec<String> {
    let nav = html
        .split_once("<nav>")
        .and_then(|(_, rest)| rest.split_once("</nav>"))
        .map(|(nav, _)| nav)
        .unwrap_or_else(|| panic!("no <nav> in the Overview: {html}"));
    nav.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"'))
        .map(|(href, _)| href.to_owned())
        .collect()
}

fn with_cookie(request: &str, cookie: &str) -> String {
    request.replacen("\r\n\r\n", &format!("\r\nCookie: {cookie}\r\n\r\n"), 1)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_scores_at_least_95_in_lighthouse_on_desktop_and_phone() {
    let modules = lighthouse_modules();
    if !modules.join("lighthouse/package.json").is_file() {
        skip_allowed(
            "LIGHTHOUSE",
            &format!(
                "no lighthouse npm package in {}: run scripts/test.sh, which installs it, \
                 or set SWITCHBOARD_LIGHTHOUSE_MODULES",
                modules.display()
            ),
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        &dir.path().join("data"),
        ServiceKind::BUILTIN,
        &[
            ("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("SWITCHBOARD_KEY", TEST_KEY),
            ("SWITCHBOARD_ECHO_CAPTURE", "true"),
        ],
    )
    .await;
    let base = served.web_url();
    let web: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let signed = raw_request(web, loopback(1), &sign_in_request("admin", ADMIN_PASSWORD)).await;
    assert_eq!(signed.status, 200, "sign-in: {}", signed.body);
    let cookie = session_cookie(&signed.head);

    // A live echo connection, so the inspector has one to show.
    let echo = tokio::net::TcpStream::connect(served.addr("echo"))
        .await
        .unwrap();
    let local = echo.local_addr().unwrap().to_string();
    // Listed once the server has accepted it: asked until then.
    let conn_id = guard("the echo connection listed", async {
        loop {
            let conns = raw_request(
                web,
                loopback(1),
                &with_cookie(&get_request("/api/v1/connections"), &cookie),
            )
            .await;
            let id = conns
                .json()
                .as_array()
                .and_then(|all| all.iter().find(|c| c["peer"] == local.as_str()))
                .and_then(|c| c["id"].as_u64());
            if let Some(id) = id {
                break id;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    let overview = raw_request(web, loopback(1), &with_cookie(&get_request("/"), &cookie)).await;
    assert_eq!(overview.status, 200, "the Overview: {}", overview.head);
    let mut paths = nav_paths(&overview.body);
    assert!(paths.len() >= 10, "the navigation lists {paths:?}");
    paths.push(format!("/inspect/{conn_id}"));

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/lighthouse/audit.mjs");
    let run = |cookie: String, paths: Vec<String>| {
        let mut command = tokio::process::Command::new("node");
        command
            .arg(&script)
            .arg(&base)
            .arg(cookie)
            .arg(CHROMIUM)
            .args(paths)
            .env("SWITCHBOARD_LIGHTHOUSE_MODULES", &modules)
            .kill_on_drop(true);
        async move {
            let out = tokio::time::timeout(AUDIT_GUARD, command.output())
                .await
                .expect("Lighthouse finishes within the guard")
                .expect("node runs (scripts/test.sh installs it)");
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "Lighthouse failed ({}): {stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        }
    };
    let mut report = run(cookie, paths.clone()).await;
    // Signed out, with no cookie: the sign-in page itself.
    report.push_str(&run(String::new(), vec!["/login".into()]).await);
    drop(echo);

    let mut audited = 0;
    let mut acted = std::collections::BTreeSet::new();
    let mut below = Vec::new();
    for line in report.lines() {
        let result: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a result line ({e}): {line}"));
        eprintln!("lighthouse: {result}");
        let path = result["path"].as_str().unwrap();
        let after = result["after_action"] == true;
        assert!(result["error"].is_null(), "{path}: {result}");
        let url = result["url"].as_str().unwrap();
        assert!(
            url.strip_prefix(base.as_str())
                .is_some_and(|at| at.starts_with(path)),
            "{path} ({}) was audited at {url}: a redirect (signed out?)",
            result["form"]
        );
        for category in CATEGORIES {
            let score = result["scores"][category]
                .as_f64()
                .unwrap_or_else(|| panic!("{path}: no {category} score in {result}"));
            if score < FLOOR {
                below.push(format!(
                    "{path}{} {} {category} {score}: {}",
                    if after { " after its main action" } else { "" },
                    result["form"],
                    result["failing"]
                ));
            }
        }
        if after {
            acted.insert(path.to_owned());
        } else {
            audited += 1;
        }
    }
    assert_eq!(
        audited,
        (paths.len() + 1) * 2,
        "one result per page and size:\n{report}"
    );
    // Send, Traffic, Services, Tokens and the inspector, at both sizes.
    let inspect = format!("/inspect/{conn_id}");
    let expected: std::collections::BTreeSet<String> = [
        "/send",
        "/traffic",
        "/services",
        "/tokens",
        inspect.as_str(),
    ]
    .map(String::from)
    .into();
    assert_eq!(
        acted, expected,
        "pages audited after their main action:\n{report}"
    );
    assert_eq!(
        report.lines().count(),
        audited + 2 * expected.len(),
        "each action audited at both sizes:\n{report}"
    );
    assert!(below.is_empty(), "below {FLOOR}:\n{}", below.join("\n"));
}
