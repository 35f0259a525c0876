//! The dashboard's sticky-packet lab through `exec`'s framings, over the
//! real router and real `exec` instances on loopback: the same two
//! commands back to back glue on `raw` and come back whole on
//! `length-ready`, `struct` (behind its HMAC challenge) and `header`; and
//! the route's limits, roles and hostile input.

mod common;

use axum::http::StatusCode;
use serde_json::{Value, json};

use common::web::Web;

const INSTANCES: &str = r#"
[services.lab-raw]
kind = "exec"
listen = "127.0.0.1:0"
framing = "raw"
allow = ["echo", "seq"]

[services.lab-ready]
kind = "exec"
listen = "127.0.0.1:0"
framing = "length-ready"
allow = ["echo", "seq"]

[services.lab-struct]
kind = "exec"
listen = "127.0.0.1:0"
framing = "struct"
allow = ["echo", "seq"]
auth = "hmac-md5"
auth_key = "ni hao ma"

[services.lab-header]
kind = "exec"
listen = "127.0.0.1:0"
allow = ["echo", "seq"]
"#;

const NAMES: [&str; 4] = ["lab-raw", "lab-ready", "lab-struct", "lab-header"];

async fn web() -> Web {
    Web::start_with(|c| {
        let extra = common::resolve_file(INSTANCES).expect("the instances resolve");
        c.services.extend(
            extra
                .services
                .into_iter()
                .filter(|s| NAMES.contains(&s.id.name())),
        );
    })
    .await
}

fn side<'a>(v: &'a Value, instance: &str) -> &'a Value {
    v["sides"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["instance"] == instance)
        .unwrap_or_else(|| panic!("no side for {instance}: {v}"))
}

#[tokio::test]
async fn raw_glues_back_to_back_replies_and_the_framings_keep_them_whole() {
    let w = web().await;
    let admin = w.admin().await;
    // 1492 bytes of output, more than the naive client's recv(1024).
    let seq: String = (1..=400).map(|i| format!("{i}\n")).collect();
    let body = json!({"commands": ["seq 1 400", "echo after"], "instances": NAMES});
    let r = w
        .send(admin.act_json("POST", "/api/v1/sticky/exec", &body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();

    let raw = side(&v, "lab-raw");
    assert_eq!(raw["framing"], "raw");
    assert_eq!(raw["whole"], false, "{raw}");
    assert!(raw["verdict"].as_str().unwrap().starts_with("split/glued"));
    let first = raw["replies"][0].as_str().unwrap();
    let second = raw["replies"][1].as_str().unwrap();
    assert!(first.len() <= 1024 && seq.starts_with(first), "{first}");
    // The second command's reply begins with the first one's tail.
    assert!(
        second.starts_with(&seq[first.len()..first.len() + 10]),
        "{second}"
    );
    let stream = format!("{first}{second}{}", raw["leftover"].as_str().unwrap());
    assert_eq!(stream, format!("{seq}after\n"), "nothing lost, only glued");

    for (name, framing) in [
        ("lab-ready", "length-ready"),
        ("lab-struct", "struct"),
        ("lab-header", "header"),
    ] {
        let s = side(&v, name);
        assert_eq!(s["framing"], framing);
        assert_eq!(s["error"], Value::Null, "{s}");
        assert_eq!(s["whole"], true, "{s}");
        assert_eq!(s["replies"], json!([seq, "after\n"]), "{name}");
        assert_eq!(s["leftover_size"], 0);
    }

    // Audited, without the tutorial key.
    w.h.supervisor.audit().flush().await;
    let log = std::fs::read_to_string(switchboard::audit::path(w.h.dir.path())).unwrap();
    assert!(log.contains("web_sticky_exec"), "{log}");
    assert!(!log.contains("ni hao ma"));
    assert!(!r.body.contains("ni hao ma"));
}

#[tokio::test]
async fn the_lab_refuses_hostile_input_other_kinds_and_lesser_roles() {
    let w = web().await;
    let (viewer, operator, _) = w.roles().await;
    let admin = w.admin().await;
    for bad in [
        json!({"commands": []}),
        json!({"commands": vec!["echo x"; 9]}),
        json!({"commands": ["a".repeat(201)]}),
        json!({"commands": ["   "]}),
        json!({"commands": ["echo a\necho b"]}),
        json!({"commands": ["echo\u{0}x"]}),
        json!({"commands": ["echo x"], "instances": []}),
        json!({"commands": ["echo x"], "instances": vec!["lab-raw"; 9]}),
        json!({"commands": ["echo x"], "instances": ["echo"]}),
        json!({"commands": ["echo x"], "instances": ["no-such"]}),
        json!({"commands": ["echo x"], "host": "10.0.0.1"}),
        json!({"commands": "echo x"}),
    ] {
        let r = w
            .send(admin.act_json("POST", "/api/v1/sticky/exec", &bad))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    // A command off the allowlist is answered with why, framed as usual.
    let body = json!({"commands": ["rm -rf /", "echo 'open"], "instances": ["lab-struct"]});
    let r = w
        .send(admin.act_json("POST", "/api/v1/sticky/exec", &body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let s = side(&r.json(), "lab-struct").clone();
    assert!(
        s["replies"][0].as_str().unwrap().contains("not allowed"),
        "{s}"
    );
    assert!(
        s["replies"][1]
            .as_str()
            .unwrap()
            .starts_with("cannot read the command"),
        "{s}"
    );
    // Running commands is the admin's, as the exec relay is.
    for who in [&viewer, &operator] {
        let r = w
            .send(who.act_json("POST", "/api/v1/sticky/exec", &body))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
}

/// A hostile server behind an instance's address cannot make the lab's
/// client allocate what it claims or wait forever.
#[tokio::test]
async fn the_client_refuses_hostile_lengths_and_silence() {
    use std::time::Duration;
    use switchboard::client::TutorialExecClient;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let replies: [Vec<u8>; 4] = [
        i32::MAX.to_ne_bytes().to_vec(),
        (-5i32).to_ne_bytes().to_vec(),
        b"lots".to_vec(),
        Vec::new(),
    ];
    for (n, reply) in replies.into_iter().enumerate() {
        let listener =
            switchboard::service::listen::bind_inet("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf).await;
            s.write_all(&reply).await.unwrap();
            // Hold the connection open, silent, until the client leaves.
            let _ = s.read(&mut buf).await;
        });
        let mut c = TutorialExecClient::connect(&addr, Duration::from_millis(500))
            .await
            .unwrap();
        let err = common::guard("the client gives up", async {
            match n {
                0 | 1 => c.struct_framed("echo x", 16 * 1024).await,
                2 => c.length_ready("echo x", 16 * 1024).await,
                _ => c.raw("echo x").await,
            }
        })
        .await
        .unwrap_err()
        .to_string();
        let expected = [
            "at most 16384",
            "expected a length",
            "expected a length",
            "no reply",
        ];
        assert!(err.contains(expected[n]), "case {n}: {err}");
        drop(c);
        common::guard("the server ends", server).await.unwrap();
    }
}

/// No lab proxy is left: not in the supervisor, not in the toxics, not in
/// `services.toml`.
async fn no_lab_proxy_left(w: &Web) {
    common::web::poll_until("the lab's proxy to be removed", || {
        !w.h.supervisor
            .ids()
            .iter()
            .any(|id| id.name().starts_with("toxic-lab-"))
    })
    .await;
    for n in 1..=4 {
        let name = format!("toxic-lab-{n}");
        assert!(w.h.supervisor.toxics().list(&name).is_empty(), "{name}");
    }
    let kept =
        std::fs::read_to_string(w.h.config.data_dir.join("services.toml")).unwrap_or_default();
    assert!(!kept.contains("toxic-lab"), "{kept}");
}

fn slicer(delay_us: u64) -> Value {
    json!({"type": "slicer", "stream": "downstream",
           "attributes": {"average_size": 1, "size_variation": 0, "delay": delay_us}})
}

#[tokio::test]
async fn through_a_slicer_raw_falls_apart_while_struct_and_header_survive_and_the_proxy_goes() {
    let w = web().await;
    let admin = w.admin().await;
    let instances = ["lab-raw", "lab-struct", "lab-header"];
    let commands = ["echo one", "echo two"];

    // Straight to the instances, small replies come back whole even on raw.
    let body = json!({"commands": commands, "instances": instances});
    let r = w
        .send(admin.act_json("POST", "/api/v1/sticky/exec", &body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    assert_eq!(v["through"], Value::Null);
    assert_eq!(side(&v, "lab-raw")["whole"], true, "{v}");

    // Through the lab's proxy, cut into 1-byte segments 10 ms apart.
    let body = json!({"commands": commands, "instances": instances, "through": slicer(10_000)});
    let r = w
        .send(admin.act_json("POST", "/api/v1/sticky/exec", &body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    assert!(
        v["through"]
            .as_str()
            .unwrap()
            .starts_with("slicer on downstream"),
        "{v}"
    );
    let raw = side(&v, "lab-raw");
    assert_eq!(raw["error"], Value::Null, "{raw}");
    assert_eq!(raw["whole"], false, "{raw}");
    assert_ne!(raw["replies"][0], "one\n", "{raw}");
    // Nothing lost, only cut: the pieces still make the stream.
    let stream = format!(
        "{}{}{}",
        raw["replies"][0].as_str().unwrap(),
        raw["replies"][1].as_str().unwrap(),
        raw["leftover"].as_str().unwrap()
    );
    assert_eq!(stream, "one\ntwo\n");
    for name in ["lab-struct", "lab-header"] {
        let s = side(&v, name);
        assert_eq!(s["error"], Value::Null, "{s}");
        assert_eq!(s["whole"], true, "{s}");
        assert_eq!(s["replies"], json!(["one\n", "two\n"]), "{name}");
    }
    no_lab_proxy_left(&w).await;
    // The audit line says what the commands went through.
    w.h.supervisor.audit().flush().await;
    let log = std::fs::read_to_string(switchboard::audit::path(w.h.dir.path())).unwrap();
    let line = log
        .lines()
        .rfind(|l| l.contains("web_sticky_exec"))
        .expect("the lab's line");
    let line: Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["through"], v["through"], "{line}");
}

#[tokio::test]
async fn the_echo_lab_through_a_slicer_reads_in_pieces_and_the_framed_side_still_recovers() {
    let w = web().await;
    let (_, operator, _) = w.roles().await;
    let body = json!({"messages": ["hello", "world"], "through": slicer(5_000)});
    let r = w
        .send(operator.act_json("POST", "/api/v1/sticky", &body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    assert!(v["through"].as_str().unwrap().starts_with("slicer"), "{v}");
    let reads = v["raw"]["reads"].as_array().unwrap();
    assert!(reads.len() > 2, "10 bytes in 1-byte segments: {v}");
    let joined: String = reads.iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(joined, "HELLOWORLD");
    assert_eq!(v["framed"]["messages"], json!(["HELLO", "WORLD"]), "{v}");
    no_lab_proxy_left(&w).await;
}

#[tokio::test]
async fn the_lab_takes_only_the_lessons_toxics_with_good_attributes() {
    let w = web().await;
    let admin = w.admin().await;
    for bad in [
        json!("slicer"),
        json!({"type": "timeout"}),
        json!({"type": "reset_peer", "attributes": {"timeout": 0}}),
        json!({"type": ""}),
        json!({"type": "slicer", "stream": "sideways"}),
        json!({"type": "slicer", "attributes": {"average_size": -1}}),
        json!({"type": "slicer", "attributes": {"average_size": 1e12}}),
        json!({"type": "slicer", "attributes": {"bogus": 1}}),
        json!({"type": "latency", "attributes": {"latency": "100"}}),
        json!({"type": "latency", "attributes": {"latency": 1e15}}),
        json!({"type": "slicer", "upstream": "10.0.0.1:22"}),
    ] {
        let body = json!({"commands": ["echo x"], "instances": ["lab-raw"], "through": bad});
        let r = w
            .send(admin.act_json("POST", "/api/v1/sticky/exec", &body))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        let body = json!({"messages": ["x"], "through": bad});
        let r = w
            .send(admin.act_json("POST", "/api/v1/sticky", &body))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    no_lab_proxy_left(&w).await;
}

/// A run whose request goes away half-way (the browser closed) still
/// removes its proxy: the owner's `Drop` does.
#[tokio::test]
async fn a_lab_run_dropped_half_way_leaves_no_proxy_behind() {
    use tower::ServiceExt;
    let w = web().await;
    let admin = w.admin().await;
    // One byte a second: the run outlives the moment it is dropped.
    let body = json!({"commands": ["seq 1 400"], "instances": ["lab-struct"], "through": slicer(1_000_000)});
    let run = tokio::spawn(w.app.clone().oneshot(admin.act_json(
        "POST",
        "/api/v1/sticky/exec",
        &body,
    )));
    common::web::poll_until("the lab's proxy to run", || {
        w.h.supervisor
            .ids()
            .iter()
            .any(|id| id.name().starts_with("toxic-lab-"))
    })
    .await;
    run.abort();
    let _ = run.await;
    no_lab_proxy_left(&w).await;
}

/// The tutorial's `length-ready` client reads the decimal length with one
/// `recv`: a slicer that cuts the length in two breaks it too, as the
/// Tutorials page says. (Segments 50 ms apart, so the first read holds the
/// first digit alone even on a loaded machine.)
#[tokio::test]
async fn through_a_slicer_length_ready_breaks_when_its_length_is_cut() {
    let w = web().await;
    let admin = w.admin().await;
    // 21 bytes of output: the length "21" is two segments.
    let body = json!({"commands": ["seq 1 10", "echo two"], "instances": ["lab-ready"],
                      "through": slicer(50_000)});
    let r = w
        .send(admin.act_json("POST", "/api/v1/sticky/exec", &body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    let ready = side(&v, "lab-ready");
    assert_eq!(ready["whole"], false, "{ready}");
    assert_ne!(
        ready["replies"][0], "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n",
        "{ready}"
    );
    no_lab_proxy_left(&w).await;
}

/// The pages carry the lesson: the Send page's labs offer the toxics, and
/// the Tutorials page explains them.
#[tokio::test]
async fn the_send_and_tutorials_pages_carry_the_lesson() {
    let w = web().await;
    let admin = w.admin().await;
    let r = w.send(admin.get("/send")).await;
    assert_eq!(r.status, StatusCode::OK);
    for marker in [
        "id=\"sticky-toxic-type\"",
        "id=\"exec-toxic-type\"",
        "<option value=\"slicer\">",
        "<option value=\"latency\">",
        "id=\"compare-wrap\" tabindex=\"0\" role=\"region\" aria-label=",
        "id=\"saved-table\"",
        "id=\"history-table\" data-max=\"25\"",
    ] {
        assert!(r.body.contains(marker), "/send lacks {marker}");
    }
    let r = w.send(admin.get("/tutorials")).await;
    assert_eq!(r.status, StatusCode::OK);
    let lesson = r
        .body
        .split("id=\"lesson-toxics\"")
        .nth(1)
        .expect("the lesson's section");
    for words in [
        "slicer",
        "<code>raw</code>",
        "<code>struct</code>",
        "<code>length-ready</code>",
    ] {
        assert!(lesson.contains(words), "the lesson lacks {words}");
    }
}
