//! `GET /api/v1/connections/{id}/capture/decoded` against the real
//! services over loopback: a real exec session (our test client's
//! handshake and requests, the service's replies) decodes into the HMAC
//! challenge and answer and messages with their length prefixes, headers
//! and bodies; files-classic uploads into name + size; a hostile client's
//! bytes into "undecodable" with the reason; admins only, and the key is
//! never in the answer.

mod common;

use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use common::message::{frame, handshake, read_message};
use common::web::Web;
use common::{TEST_KEY, guard};

/// The one connection of `service` the registry lists (waits for it).
async fn conn_id(w: &Web, service: &str) -> u64 {
    let snap =
        w.h.wait_for("the connection opens", |s| {
            s.connections_of(service).count() == 1
        })
        .await;
    snap.connections_of(service).next().expect("one").id
}

/// The decoding of connection `id`, once it holds `want` messages.
async fn decoded(w: &Web, admin: &common::web::Signed, id: u64, want: usize) -> Value {
    guard("the decoding", async {
        loop {
            let r = w
                .send(admin.get(&format!("/api/v1/connections/{id}/capture/decoded")))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            assert!(!r.body.contains(TEST_KEY), "the key in {}", r.body);
            let v = r.json();
            if v["messages"].as_array().map_or(0, Vec::len) >= want {
                return v;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
}

fn labels(v: &Value) -> Vec<(String, String, String)> {
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["dir"].as_str().unwrap().to_owned(),
                m["kind"].as_str().unwrap().to_owned(),
                m["label"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_real_exec_session_decodes_into_handshake_and_messages_for_admins_only() {
    let w = Web::start_with(|c| c.service_mut("exec").capture.on = true).await;
    let (viewer, operator, admin) = w.roles().await;
    let (mut raw, verdict) = handshake(w.h.addr("exec"), TEST_KEY.as_bytes()).await;
    assert_eq!(verdict["ok"], true);
    let id = conn_id(&w, "exec").await;
    raw.write_all(&frame(&json!({"op": "run", "argv": ["echo", "hi"]}), &[]))
        .await
        .unwrap();
    loop {
        let (header, _) = read_message(&mut raw).await;
        if header["type"] == "exit" {
            break;
        }
    }
    let v = decoded(&w, &admin, id, 6).await;
    assert_eq!(v["kind"], "exec");
    assert_eq!(v["plan"], "hmac handshake + length-prefixed messages");
    let got = labels(&v);
    let want = |d: &str, k: &str, l: &str| (d.to_owned(), k.to_owned(), l.to_owned());
    assert_eq!(
        got[..4],
        [
            want("out", "challenge", "HMAC challenge (random bytes)"),
            want("in", "answer", "HMAC answer (HMAC-SHA256 of the challenge)"),
            want("out", "message", "handshake verdict: ok"),
            want("in", "message", "run request"),
        ],
        "{v}"
    );
    let run = &v["messages"][3];
    assert_eq!(run["header"], json!({"op": "run", "argv": ["echo", "hi"]}));
    let prefix = run["prefix"]["value"].as_u64().unwrap();
    assert_eq!(run["len"].as_u64().unwrap(), 4 + prefix);
    let stdout = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["label"] == "stdout")
        .expect("a stdout message");
    assert_eq!(stdout["body"]["hex"], "68690a", "{stdout}");
    assert_eq!(stdout["complete"], true);
    assert!(got.iter().any(|(_, _, l)| l == "exit"), "{got:?}");

    for who in [&viewer, &operator] {
        let r = w
            .send(who.get(&format!("/api/v1/connections/{id}/capture/decoded")))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    let r = w
        .send(admin.get("/api/v1/connections/999999/capture/decoded"))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_hostile_length_prefix_is_shown_undecodable_with_the_reason() {
    let w = Web::start_with(|c| c.service_mut("exec").capture.on = true).await;
    let admin = w.admin().await;
    let (mut raw, _) = handshake(w.h.addr("exec"), TEST_KEY.as_bytes()).await;
    let id = conn_id(&w, "exec").await;
    // 4 GiB of header announced: the service refuses it and closes.
    raw.write_all(b"\xff\xff\xff\xff{\"op\":").await.unwrap();
    let v = decoded(&w, &admin, id, 4).await;
    let last = v["messages"].as_array().unwrap().last().unwrap().clone();
    let last = if last["dir"] == "in" {
        last
    } else {
        decoded(&w, &admin, id, 5).await["messages"]
            .as_array()
            .unwrap()
            .iter()
            .rfind(|m| m["dir"] == "in")
            .unwrap()
            .clone()
    };
    assert_eq!(last["kind"], "undecodable", "{v}");
    assert!(
        last["note"].as_str().unwrap().contains("ffffffff"),
        "{last}"
    );
}

#[tokio::test]
async fn files_classic_uploads_decode_as_name_and_size() {
    let w = Web::start_with(|c| c.service_mut("files-classic").capture.on = true).await;
    let admin = w.admin().await;
    let mut s = TcpStream::connect(w.h.addr("files-classic")).await.unwrap();
    let id = conn_id(&w, "files-classic").await;
    let mut bytes = switchboard::wire::classic::encode(b"notes.txt", 5)
        .unwrap()
        .to_vec();
    bytes.extend_from_slice(b"hello");
    s.write_all(&bytes).await.unwrap();
    let v = decoded(&w, &admin, id, 1).await;
    assert_eq!(v["plan"], "files-classic 128sq headers");
    let m = &v["messages"][0];
    assert_eq!(m["kind"], "classic-header", "{v}");
    assert_eq!(m["fields"][0], json!(["name", "notes.txt"]));
    assert_eq!(m["fields"][1], json!(["size", "5"]));
    assert_eq!(m["len"], 136 + 5);
    // The whole upload may come in more than one read.
    guard("the whole file", async {
        loop {
            let v = decoded(&w, &admin, id, 1).await;
            if v["messages"][0]["complete"] == true {
                assert_eq!(v["messages"][0]["body"]["hex"], "68656c6c6f");
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// Our own tcp-proxy sends the PROXY header (v1 and v2) to a capturing
/// echo: the echo's capture decodes it, naming our client.
#[tokio::test]
async fn our_tcp_proxys_proxy_headers_decode_in_the_upstreams_capture() {
    let w = Web::start_with(|c| c.service_mut("echo").capture.on = true).await;
    let admin = w.admin().await;
    let echo = w.h.addr("echo");
    for (name, key, version) in [("pp1", "v1", "v1"), ("pp2", "v2", "v2")] {
        let text = format!(
            "[services.{name}]\nkind = \"tcp-proxy\"\nlisten = \"127.0.0.1:0\"\n\
             upstream = \"{echo}\"\nproxy_protocol = \"{key}\"\n"
        );
        let config = common::resolve_file(&text).expect("the instance's config resolves");
        let service = config.service(name).expect("declared").clone();
        w.h.supervisor
            .add(service)
            .await
            .expect("the instance starts");
        let mut c = TcpStream::connect(w.h.target(name)).await.unwrap();
        let client = c.local_addr().unwrap().to_string();
        c.write_all(b"hi").await.unwrap();
        let mut got = Vec::new();
        guard("the echo through the proxy", async {
            while !got.ends_with(b"HI") {
                let mut buf = [0u8; 256];
                let n = tokio::io::AsyncReadExt::read(&mut c, &mut buf)
                    .await
                    .unwrap();
                assert!(n > 0, "closed early");
                got.extend_from_slice(&buf[..n]);
            }
        })
        .await;
        // The echo capture whose PROXY header names our client.
        let found = guard("the decoded header", async {
            loop {
                let ids: Vec<u64> = w.send(admin.get("/api/v1/captures")).await.json()["captures"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|c| c["service"] == "echo")
                    .map(|c| c["id"].as_u64().unwrap())
                    .collect();
                for id in ids {
                    let v = decoded(&w, &admin, id, 0).await;
                    let first = &v["messages"][0];
                    let names = first["fields"]
                        .as_array()
                        .is_some_and(|f| f.contains(&json!(["client (source)", client])));
                    if first["kind"] == "proxy" && names {
                        return first.clone();
                    }
                }
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(
            found["fields"]
                .as_array()
                .unwrap()
                .contains(&json!(["version", version])),
            "{found}"
        );
        assert_eq!(found["label"], format!("PROXY {version} header"));
    }
}

/// A real TLS client (rustls) through a capturing tcp-proxy: the
/// ClientHello's server name and versions are decoded, and what follows is
/// said to be TLS records rather than read as anything else.
#[tokio::test]
async fn a_rustls_client_hello_through_a_tcp_proxy_names_its_server() {
    let w = Web::start().await;
    let admin = w.admin().await;
    let text = format!(
        "[services.tlsp]\nkind = \"tcp-proxy\"\nlisten = \"127.0.0.1:0\"\n\
         upstream = \"{}\"\ncapture = true\n",
        w.h.addr("echo")
    );
    let config = common::resolve_file(&text).expect("the instance's config resolves");
    let service = config.service("tlsp").expect("declared").clone();
    w.h.supervisor
        .add(service)
        .await
        .expect("the instance starts");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let tcp = TcpStream::connect(w.h.target("tlsp")).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("inspect.example").unwrap();
    // echo answers the hello with its own bytes upper-cased: the handshake
    // fails, after the hello was sent.
    let outcome = guard(
        "the handshake to fail",
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls)).connect(name, tcp),
    )
    .await;
    assert!(outcome.is_err(), "echo is no TLS server");
    let ids: Vec<u64> = w.send(admin.get("/api/v1/captures")).await.json()["captures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["service"] == "tlsp")
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 1);
    let v = decoded(&w, &admin, ids[0], 1).await;
    let hello = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["dir"] == "in")
        .expect("the client's bytes")
        .clone();
    assert_eq!(hello["kind"], "client-hello", "{v}");
    let fields = hello["fields"].as_array().unwrap();
    assert!(
        fields.contains(&json!(["server name (SNI)", "inspect.example"])),
        "{hello}"
    );
    assert!(
        fields.contains(&json!(["supported versions", "TLS 1.3, TLS 1.2"])),
        "{hello}"
    );
    assert_eq!(hello["complete"], true);
}

/// exec with the tutorial's `framing = "struct"`: the output after its
/// `struct.pack('i')` length, as the real service sends it.
#[tokio::test]
async fn exec_struct_framing_decodes_each_output_after_its_length() {
    let file = common::resolve_file("[services.exec]\nframing = \"struct\"\ncapture = true\n")
        .expect("a valid config");
    let exec = file.service("exec").expect("built in").clone();
    let w = Web::start_with(move |c| *c.service_mut("exec") = exec).await;
    let admin = w.admin().await;
    let mut s = TcpStream::connect(w.h.addr("exec")).await.unwrap();
    let id = conn_id(&w, "exec").await;
    s.write_all(b"echo hi").await.unwrap();
    let mut got = [0u8; 7];
    guard(
        "the answer",
        tokio::io::AsyncReadExt::read_exact(&mut s, &mut got),
    )
    .await
    .unwrap();
    assert_eq!(&got, b"\x03\x00\x00\x00hi\n");
    let v = decoded(&w, &admin, id, 2).await;
    assert_eq!(
        v["plan"],
        "tutorial framing: struct.pack('i') lengths from the server"
    );
    let output = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["dir"] == "out")
        .expect("the output")
        .clone();
    assert_eq!(output["label"], "output", "{v}");
    assert_eq!(output["prefix"]["value"], 3);
    assert_eq!(output["body"]["hex"], "68690a");
}
