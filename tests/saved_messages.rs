//! Saved messages (`/api/v1/saved-messages`) over the real router: kept per
//! account in the data directory (and read back by a fresh dashboard over
//! the same directory, as after a restart), saved, replaced, deleted,
//! exported as a file and imported all-or-nothing; and every bound and
//! hostile input: names, targets, modes, payloads, counts, total size,
//! import shapes and sizes, CSRF, API tokens, signed-out requests.

mod common;

use axum::body::Body;
use axum::http::{StatusCode, header};
use serde_json::{Value, json};

use common::web::{Web, base};

const LIST: &str = "/api/v1/saved-messages";
const IMPORT: &str = "/api/v1/saved-messages/import";

fn one(name: &str) -> String {
    format!("{LIST}/{}", urlencoding(name))
}

/// Percent-encodes what a path segment cannot hold as it is.
fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn names(v: &Value) -> Vec<String> {
    v["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages in {v}"))
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn saved_messages_are_kept_per_account_replaced_by_name_and_survive_a_new_dashboard() {
    let w = Web::start().await;
    let (viewer, _, admin) = w.roles().await;

    let r = w.send(admin.get(LIST)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json(), json!({"version": 1, "messages": []}));

    let hello = json!({"target": "echo", "mode": "text", "payload": "hello"});
    let r = w
        .send(admin.act_json("PUT", &one("greeting"), &hello))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let bytes = json!({"target": "udp-echo", "mode": "hex", "payload": "68 69 00 ff"});
    // A name is any text: slashes and dots name a message, never a file.
    let r = w
        .send(admin.act_json("PUT", &one("../two bytes/é"), &bytes))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(names(&r.json()), ["greeting", "../two bytes/é"]);

    // The same name replaces, in place.
    let again = json!({"name": "greeting", "target": "echo", "payload": "hello again"});
    let r = w
        .send(admin.act_json("PUT", &one("greeting"), &again))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    assert_eq!(names(&v), ["greeting", "../two bytes/é"]);
    assert_eq!(v["messages"][0]["payload"], "hello again");
    assert_eq!(v["messages"][0]["mode"], "text", "text is the default mode");

    // Another account sees its own (none).
    let r = w.send(viewer.get(LIST)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(names(&r.json()), Vec::<String>::new());
    // A viewer keeps messages too (sending them is the operator's).
    let r = w.send(viewer.act_json("PUT", &one("mine"), &hello)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // On disk, one owner-only file per account, nothing else in the folder.
    let dir = w.h.config.data_dir.join("saved-messages");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    assert_eq!(files, ["admin.json", "vera.json"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("admin.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "owner-only: {mode:o}");

    // Export: the same shape, as a file to download.
    let r = w.send(admin.get(&format!("{LIST}?download=1"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.header("content-disposition").starts_with("attachment;"),
        "{:?}",
        r.headers
    );
    let exported = r.json();
    assert_eq!(exported["version"], 1);
    assert_eq!(names(&exported), ["greeting", "../two bytes/é"]);

    // Delete one; a second delete of it is a 404.
    let r = w.send(admin.act("DELETE", &one("greeting"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(names(&r.json()), ["../two bytes/é"]);
    let r = w.send(admin.act("DELETE", &one("greeting"))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    // The export imports back (merged by name), and replace starts afresh.
    let mut import = exported.clone();
    let r = w.send(admin.act_json("POST", IMPORT, &import)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["imported"], 2);
    assert_eq!(names(&r.json()), ["../two bytes/é", "greeting"]);
    import["messages"] = json!([{"name": "only", "target": "time", "payload": "%H"}]);
    import["replace"] = json!(true);
    let r = w.send(admin.act_json("POST", IMPORT, &import)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(names(&r.json()), ["only"]);

    // A fresh dashboard over the same data directory (a restart) has them.
    let Web { h, .. } = w;
    let state = switchboard::web::AppState::new(h.supervisor.clone(), &h.config, h.root.clone());
    let again = Web {
        app: switchboard::web::router(state.clone()),
        state,
        h,
    };
    let admin2 = again.admin().await;
    let r = again.send(admin2.get(LIST)).await;
    assert_eq!(names(&r.json()), ["only"], "{}", r.body);
}

#[tokio::test]
async fn a_bad_message_is_refused_with_what_is_wrong_and_nothing_changes() {
    let w = Web::start().await;
    let admin = w.admin().await;
    let good = json!({"target": "echo", "mode": "text", "payload": "x"});
    let r = w.send(admin.act_json("PUT", &one("kept"), &good)).await;
    assert_eq!(r.status, StatusCode::OK);

    let long_name = "n".repeat(65);
    let cases: Vec<(String, Value, &str)> = vec![
        (one(" "), good.clone(), "name"),
        (one(&long_name), good.clone(), "name"),
        (one("tab\there"), good.clone(), "control"),
        (
            one("a"),
            json!({"target": "Echo", "payload": "x"}),
            "target",
        ),
        (
            one("a"),
            json!({"target": "../etc", "payload": "x"}),
            "target",
        ),
        (
            one("a"),
            json!({"target": "e".repeat(33), "payload": "x"}),
            "target",
        ),
        (one("a"), json!({"target": "echo"}), "payload"),
        (
            one("a"),
            json!({"target": "echo", "payload": ""}),
            "payload",
        ),
        (
            one("a"),
            json!({"target": "echo", "payload": "x".repeat(8193)}),
            "8192",
        ),
        (
            one("a"),
            json!({"target": "echo", "mode": "hex", "payload": "6"}),
            "hex",
        ),
        (
            one("a"),
            json!({"target": "echo", "mode": "hex", "payload": "zz"}),
            "hex",
        ),
        (
            one("a"),
            json!({"target": "echo", "mode": "hex", "payload": "00".repeat(8193)}),
            "8192",
        ),
        (
            one("a"),
            json!({"target": "echo", "mode": "hex", "payload": " ".repeat(40000)}),
            "hex digits",
        ),
        (
            one("a"),
            json!({"target": "echo", "mode": "base64", "payload": "x"}),
            "mode",
        ),
        (one("a"), json!({"target": "echo", "payload": 5}), "payload"),
        (
            one("a"),
            json!({"target": "echo", "payload": "x", "host": "10.0.0.1"}),
            "host",
        ),
        (one("a"), json!(["echo", "x"]), "object"),
    ];
    for (path, body, says) in &cases {
        let r = w.send(admin.act_json("PUT", path, body)).await;
        assert!(
            r.status == StatusCode::UNPROCESSABLE_ENTITY || r.status == StatusCode::BAD_REQUEST,
            "{path} {body}: {} {}",
            r.status,
            r.body
        );
        assert!(r.error().contains(says), "{path} {body}: {}", r.body);
    }
    // The body's name must be the path's.
    let r = w
        .send(admin.act_json(
            "PUT",
            &one("a"),
            &json!({"name": "b", "target": "echo", "payload": "x"}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    let r = w.send(admin.get(LIST)).await;
    assert_eq!(names(&r.json()), ["kept"], "nothing else was kept");
}

#[tokio::test]
async fn counts_and_total_size_are_bounded_and_say_so() {
    let w = Web::start().await;
    let admin = w.admin().await;
    for i in 0..100 {
        let body = json!({"target": "echo", "payload": format!("message {i}")});
        let r = w
            .send(admin.act_json("PUT", &one(&format!("m{i}")), &body))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{i}: {}", r.body);
    }
    let body = json!({"target": "echo", "payload": "one too many"});
    let r = w.send(admin.act_json("PUT", &one("m100"), &body)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.error().contains("at most 100"), "{}", r.body);
    // Replacing one is still fine at the cap.
    let r = w.send(admin.act_json("PUT", &one("m0"), &body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The total: eight 8 KiB payloads are more than 60 KiB.
    let w = Web::start().await;
    let admin = w.admin().await;
    let big = "x".repeat(8192);
    let mut refused = None;
    for i in 0..8 {
        let body = json!({"target": "echo", "payload": big});
        let r = w
            .send(admin.act_json("PUT", &one(&format!("big{i}")), &body))
            .await;
        if r.status != StatusCode::OK {
            refused = Some((i, r));
            break;
        }
    }
    let (i, r) = refused.expect("the total is bounded");
    assert_eq!(i, 7, "seven fit in 60 KiB, the eighth does not");
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.error().contains("61440"), "{}", r.body);
    // What is kept still exports and imports back whole.
    let exported = w.send(admin.get(LIST)).await;
    assert!(exported.body.len() < 64 * 1024);
    let r = w
        .send(admin.act_json("POST", IMPORT, &exported.json()))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn an_import_with_bad_entries_imports_nothing_and_names_each_one() {
    let w = Web::start().await;
    let admin = w.admin().await;
    let good = json!({"name": "fine", "target": "echo", "payload": "hi"});
    let file = json!({"version": 1, "messages": [
        good,
        {"name": "", "target": "echo", "payload": "x"},
        {"name": "hexy", "target": "echo", "mode": "hex", "payload": "xyz"},
        {"name": "fine", "target": "echo", "payload": "dup"},
        "just text",
        {"name": "extra", "target": "echo", "payload": "x", "run": "rm -rf /"},
    ]});
    let r = w.send(admin.act_json("POST", IMPORT, &file)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let v = r.json();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("nothing was imported: 5 of 6"),
        "{v}"
    );
    let problems = v["problems"].as_array().unwrap();
    let entries: Vec<u64> = problems
        .iter()
        .map(|p| p["entry"].as_u64().unwrap())
        .collect();
    assert_eq!(entries, [2, 3, 4, 5, 6], "{v}");
    let words: Vec<&str> = problems
        .iter()
        .map(|p| p["problem"].as_str().unwrap())
        .collect();
    assert!(
        words[0].contains("entry 2 has a name of 0 characters"),
        "{words:?}"
    );
    assert!(words[1].contains("not hex"), "{words:?}");
    assert!(words[2].contains("same name"), "{words:?}");
    assert!(words[3].contains("not an object"), "{words:?}");
    assert!(words[4].contains("`run`"), "{words:?}");
    let r = w.send(admin.get(LIST)).await;
    assert_eq!(names(&r.json()), Vec::<String>::new(), "all or nothing");

    // Shapes that are not an export at all.
    for (body, status, says) in [
        (json!([good]), StatusCode::BAD_REQUEST, "\"version\": 1"),
        (
            json!({"version": 2, "messages": []}),
            StatusCode::BAD_REQUEST,
            "version 2",
        ),
        (
            json!({"messages": {"a": 1}}),
            StatusCode::BAD_REQUEST,
            "\"messages\"",
        ),
        (
            json!({"messages": [], "replace": "yes"}),
            StatusCode::BAD_REQUEST,
            "true or false",
        ),
        (
            json!({"messages": [], "owner": "admin"}),
            StatusCode::BAD_REQUEST,
            "`owner`",
        ),
        (
            json!({"messages": vec![good.clone(); 101]}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "at most 100",
        ),
    ] {
        let r = w.send(admin.act_json("POST", IMPORT, &body)).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(r.error().contains(says), "{body}: {}", r.body);
    }
    // A body over the JSON cap is refused before it is read.
    let huge = format!(
        "{{\"messages\": [], \"pad\": \"{}\"}}",
        "x".repeat(70 * 1024)
    );
    let req = base("POST", IMPORT)
        .header(header::COOKIE, &admin.cookie)
        .header("x-csrf-token", &admin.csrf)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(huge))
        .unwrap();
    let r = w.send(req).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    // Not JSON.
    let req = base("POST", IMPORT)
        .header(header::COOKIE, &admin.cookie)
        .header("x-csrf-token", &admin.csrf)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"messages\": ["))
        .unwrap();
    let r = w.send(req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}

#[tokio::test]
async fn csrf_sign_in_and_accounts_guard_the_saved_messages() {
    let w = Web::start().await;
    let admin = w.admin().await;
    let body = json!({"target": "echo", "payload": "x"});
    // No CSRF token on a change.
    let req = base("PUT", &one("a"))
        .header(header::COOKIE, &admin.cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let r = w.send(req).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // Signed out.
    let r = w.send(base("GET", LIST).body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    // An API token is no account: it has no saved messages.
    let tokens = switchboard::tokens::Tokens::open(&w.h.config.data_dir).unwrap();
    let token = tokens
        .create("script", switchboard::users::Role::Admin, None)
        .unwrap()
        .0;
    let req = base("GET", LIST)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let r = w.send(req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.error().contains("API token"), "{}", r.body);
    // Nothing was written for either.
    assert!(
        !w.h.config
            .data_dir
            .join("saved-messages/admin.json")
            .exists()
    );
}

#[tokio::test]
async fn a_corrupt_file_is_reported_not_overwritten() {
    let w = Web::start().await;
    let admin = w.admin().await;
    let dir = w.h.config.data_dir.join("saved-messages");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("admin.json"), "{not json").unwrap();
    let r = w.send(admin.get(LIST)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.body);
    let body = json!({"target": "echo", "payload": "x"});
    let r = w.send(admin.act_json("PUT", &one("a"), &body)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.body);
    assert_eq!(
        std::fs::read_to_string(dir.join("admin.json")).unwrap(),
        "{not json",
        "the person's file is left for them to look at"
    );
}
