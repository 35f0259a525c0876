//! The framing promise of docs/PROTOCOL.md, over real sockets: every
//! message of exec and files, both ways (handshake verdicts, output,
//! replies, refusals, errors before a close), reads with one generic
//! reader (length, header, then exactly `size` body bytes), and a session
//! of every request type, failing ones included, stays in step to its end.

mod common;

use common::message::{frame, handshake, read_message};
use common::{Harness, TEST_KEY, read_until_closed};
use serde_json::{Value, json};
use switchboard::kind::ServiceKind::{Exec, Files};
use switchboard::service::{exec, files};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The exec cap on output per command, small enough to reach.
const OUTPUT_CAP: u64 = 4096;

async fn harness() -> Harness {
    Harness::start_with(|c| {
        let exec = c.service_mut("exec").settings_mut::<exec::Settings>();
        exec.shell = true;
        exec.allow = ["echo", "ls", "sh"].map(String::from).to_vec();
        exec.max_output_bytes = OUTPUT_CAP;
        c.service_mut("files")
            .settings_mut::<files::Settings>()
            .max_file_bytes = 1000;
    })
    .await
}

/// Reads one exec request's messages up to its final one: stdout, stderr
/// and the final header.
async fn exec_reply(raw: &mut TcpStream) -> (Vec<u8>, Vec<u8>, Value) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    loop {
        let (header, body) = read_message(raw).await;
        match header["type"].as_str() {
            Some("stdout") => out.extend(body),
            Some("stderr") => err.extend(body),
            Some("exit" | "error") => {
                assert!(body.is_empty(), "a final message with a body: {header}");
                return (out, err, header);
            }
            _ => panic!("not an exec message: {header}"),
        }
    }
}

/// Sends `request` (+ `body`), reads the one refusal it gets, and checks
/// that the connection then closes with nothing more to read.
async fn refused_then_closed(raw: &mut TcpStream, request: Value, body: &[u8], why: &str) {
    raw.write_all(&frame(&request, body)).await.unwrap();
    let (reply, rest) = read_message(raw).await;
    let refused = reply["ok"] == false || reply["type"] == "error";
    assert!(refused && rest.is_empty(), "{request} got {reply}");
    assert!(reply["error"].as_str().unwrap().contains(why), "{reply}");
    let (after, _) = read_until_closed(raw).await;
    assert!(after.is_empty(), "bytes after the last message: {after:?}");
}

#[tokio::test]
async fn an_exec_session_of_every_request_stays_in_step() {
    let h = harness().await;
    let (mut raw, verdict) = handshake(h.addr(Exec), TEST_KEY.as_bytes()).await;
    assert_eq!(verdict, json!({"ok": true}));
    let run = |argv: Value| json!({"op": "run", "argv": argv});
    let shell = |line: &str| json!({"op": "shell", "line": line});
    let cap = format!("output cap of {OUTPUT_CAP} bytes");
    // (request, stdout, stderr, a piece of the final message)
    let steps: Vec<(Value, &str, &str, &str)> = vec![
        (run(json!(["echo", "hi"])), "hi\n", "", r#""code":0"#),
        (run(json!(["ls", "/no/such/dir"])), "", "*", r#""code":2"#),
        (
            shell("echo out; echo err >&2"),
            "out\n",
            "err\n",
            r#""code":0"#,
        ),
        (shell("kill -9 $$"), "", "", r#""signal":9"#),
        (
            json!({"op": "run", "argv": ["sh", "-c", "sleep 5"], "timeout_ms": 100}),
            "",
            "",
            "timed out after 100 ms",
        ),
        (shell("while :; do echo y; done"), "*", "", &cap),
        (
            run(json!(["rm", "-rf", "/"])),
            "",
            "",
            "`rm` is not allowed",
        ),
        (run(json!([])), "", "", r#"\"argv\" is empty"#),
        (run(json!("echo hi")), "", "", "must be a list of strings"),
        (json!({"argv": ["echo"]}), "", "", r#"missing \"op\""#),
        (
            json!({"op": "bogus"}),
            "",
            "",
            "unknown op `bogus` (use run or shell)",
        ),
        (json!({"op": "shell"}), "", "", "missing field `line`"),
        (
            json!({"op": "run", "argv": ["echo"], "timeout_ms": "soon"}),
            "",
            "",
            "timeout_ms",
        ),
    ];
    // All pipelined at once: each waits for the one before it to end.
    let mut requests = Vec::new();
    for (request, ..) in &steps {
        requests.extend(frame(request, b""));
    }
    raw.write_all(&requests).await.unwrap();
    for (request, out, err, end) in &steps {
        let (got_out, got_err, last) = exec_reply(&mut raw).await;
        for (want, got) in [(out, &got_out), (err, &got_err)] {
            match *want {
                "*" => assert!(!got.is_empty(), "{request}: no output"),
                text => assert_eq!(String::from_utf8_lossy(got), text, "{request}"),
            }
        }
        assert!(last.to_string().contains(end), "{request} ended {last}");
        if end == &cap {
            assert!(got_out.len() as u64 <= OUTPUT_CAP, "{}", got_out.len());
        }
    }
    // Last, a request with a body: told why, then closed, nothing left over.
    let request = run(json!(["echo"]));
    refused_then_closed(&mut raw, request, b"x", "carry no body").await;
}

#[tokio::test]
async fn a_files_session_of_every_request_stays_in_step() {
    let h = harness().await;
    let (mut raw, verdict) = handshake(h.addr(Files), TEST_KEY.as_bytes()).await;
    assert_eq!(verdict, json!({"ok": true}));
    let put = |name: &str| json!({"op": "put", "name": name});
    let get = |name: &str| json!({"op": "get", "name": name});
    // (request, its body, the reply's body, a piece of the reply)
    let steps: Vec<(Value, &[u8], &[u8], &str)> = vec![
        (put("a.txt"), b"abc", b"", r#""stored_size":3"#),
        (
            json!({"op": "put", "name": "empty.txt", "size": 0}),
            b"",
            b"",
            r#""stored_size":0"#,
        ),
        (get("a.txt"), b"", b"abc", r#""ok":true"#),
        (get("empty.txt"), b"", b"", r#""size":0"#),
        (get("nope"), b"", b"", "no file `nope`"),
        (json!({"op": "list"}), b"", b"", r#""name":"empty.txt""#),
        (put(".."), b"", b"", "bad file name"),
        (json!({"name": "a.txt"}), b"", b"", r#"missing \"op\""#),
        (
            json!({"op": "rm"}),
            b"",
            b"",
            "unknown op `rm` (use put, get or list)",
        ),
        (
            json!({"op": "get", "name": 7}),
            b"",
            b"",
            "must be a string",
        ),
        (json!({"op": "put"}), b"", b"", "missing field `name`"),
    ];
    let mut requests = Vec::new();
    for (request, body, ..) in &steps {
        requests.extend(frame(request, body));
    }
    raw.write_all(&requests).await.unwrap();
    for (request, _, want_body, piece) in &steps {
        let (reply, body) = read_message(&mut raw).await;
        assert_eq!(&body[..], *want_body, "{request} got {reply}");
        assert!(reply.to_string().contains(piece), "{request} got {reply}");
        if reply["ok"] == true && request["op"] == "put" {
            assert!(reply.get("size").is_none(), "no body follows: {reply}");
        }
    }
    refused_then_closed(&mut raw, json!({"op": "list"}), b"x", "carry no body").await;
}

#[tokio::test]
async fn refusals_that_close_the_connection_are_whole_messages_too() {
    let h = harness().await;
    let over_cap = vec![b'x'; 2000];
    let files_cases: [(Value, &[u8], &str); 3] = [
        (
            json!({"op": "put", "name": "big.bin"}),
            &over_cap,
            "file too large",
        ),
        (
            json!({"op": "get", "name": "a"}),
            b"xy",
            "`get` requests carry no body",
        ),
        (json!({"op": "nope"}), b"xy", "unknown op `nope`"),
    ];
    for (request, body, why) in files_cases {
        let (mut raw, _) = handshake(h.addr(Files), TEST_KEY.as_bytes()).await;
        refused_then_closed(&mut raw, request, body, why).await;
    }
    for kind in [Exec, Files] {
        // A wrong key: the verdict is a whole message, then the close.
        let (mut raw, verdict) = handshake(h.addr(kind), b"wrong key").await;
        assert_eq!(verdict["ok"], false, "{kind}: {verdict}");
        assert!(verdict["error"].is_string(), "{kind}: {verdict}");
        assert!(read_until_closed(&mut raw).await.0.is_empty(), "{kind}");
        // Headers that cannot be read: one error message, then the close.
        for (bad, why) in [
            (&[0u8, 0, 0, 3, b'{', b'{', b'{'][..], "not valid JSON"),
            (&[0, 0, 0, 2, b'[', b']'][..], "not an object"),
            (&[0xff; 4][..], "exceeds the 65536-byte limit"),
        ] {
            let (mut raw, _) = handshake(h.addr(kind), TEST_KEY.as_bytes()).await;
            raw.write_all(bad).await.unwrap();
            let (reply, body) = read_message(&mut raw).await;
            let said = reply["error"].as_str().unwrap_or_default();
            assert!(said.contains(why) && body.is_empty(), "{kind}: {reply}");
            assert!(read_until_closed(&mut raw).await.0.is_empty(), "{kind}");
        }
    }
}
