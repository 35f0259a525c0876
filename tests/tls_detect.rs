//! A client and a port that disagree about TLS, over real sockets against
//! the real binary: every client without `--tls` that meets a TLS service,
//! and with `--tls` that meets a plain one, says which and how to fix it,
//! exits non-zero, prints no TLS record as a reply, and does so well before
//! its `--timeout`. `health` against an HTTPS dashboard it was not told of
//! says the dashboard speaks HTTPS; the banner's `try:` line for a TLS echo
//! works as printed.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Served, guard};
use switchboard::kind::ServiceKind::{self, Echo, Exec, Files, FilesClassic, Login};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// The TCP services that take TLS.
const TLS_KINDS: [ServiceKind; 5] = [Echo, Exec, Files, FilesClassic, Login];

/// Well below the 10 s `--timeout` every client is given here: an answer
/// that waited for the timeout fails.
const AT_ONCE: Duration = Duration::from_secs(4);

/// `switchboard ARGS` with no SWITCHBOARD_* settings of the test's own;
/// (exit code, stdout, stderr, how long it took).
async fn client(args: &[&str]) -> (Option<i32>, String, String, Duration) {
    let started = Instant::now();
    let out = guard(
        "the client",
        tokio::process::Command::new(BIN)
            .args(args)
            .env_remove("SWITCHBOARD_WEB_TLS")
            .env_remove("SWITCHBOARD_CONFIG")
            .env_remove("SWITCHBOARD_KEY")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

/// Every client command for each service at `served`, with `extra` (TLS
/// options or none) and the server's data dir for the key.
fn commands(served: &Served, data: &Path, upload: &Path, extra: &[&str]) -> Vec<Vec<String>> {
    let data = data.to_str().unwrap().to_owned();
    let upload = upload.to_str().unwrap().to_owned();
    let key = ["--data-dir".to_owned(), data];
    let with = |mut v: Vec<String>, key_too: bool| {
        v.extend(["--timeout".to_owned(), "10s".to_owned()]);
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        if key_too {
            v.extend(key.iter().cloned());
        }
        v
    };
    let s = |x: &str| x.to_owned();
    vec![
        with(vec![s("echo"), served.addr(Echo), s("hello")], false),
        with(vec![s("exec"), served.addr(Exec)], true)
            .into_iter()
            .chain([s("--"), s("echo"), s("hi")])
            .collect(),
        with(vec![s("put"), served.addr(Files), upload.clone()], true),
        with(vec![s("get"), served.addr(Files), s("x.txt")], true),
        with(vec![s("list"), served.addr(Files)], true),
        with(
            vec![s("put"), s("--classic"), served.addr(FilesClassic), upload],
            false,
        ),
        with(
            vec![s("login"), served.addr(Login), s("--user"), s("admin")],
            false,
        ),
    ]
}

fn env_for_tls() -> Vec<(String, String)> {
    let mut env = vec![
        ("SWITCHBOARD_WEB_TLS".to_owned(), "self-signed".to_owned()),
        (
            "SWITCHBOARD_ADMIN_PASSWORD".to_owned(),
            "detect-password".to_owned(),
        ),
    ];
    for kind in TLS_KINDS {
        let var = format!(
            "SWITCHBOARD_{}_TLS",
            kind.name().to_uppercase().replace('-', "_")
        );
        env.push((var, "true".to_owned()));
    }
    env
}

#[tokio::test]
async fn plain_clients_on_tls_ports_and_tls_clients_on_plain_ports_say_so_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (tls_data, plain_data) = (dir.path().join("tls"), dir.path().join("plain"));
    let upload = dir.path().join("x.txt");
    std::fs::write(&upload, b"some bytes").unwrap();
    let env = env_for_tls();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let on_tls = Served::start(&tls_data, &TLS_KINDS, &env).await;
    let plain = Served::start(
        &plain_data,
        &TLS_KINDS,
        &[("SWITCHBOARD_ADMIN_PASSWORD", "detect-password")],
    )
    .await;
    let pin = on_tls
        .banner
        .iter()
        .find(|l| l.starts_with("TLS ("))
        .and_then(|l| l.rsplit(' ').next())
        .expect("a TLS line")
        .to_owned();

    for command in commands(&on_tls, &tls_data, &upload, &[]) {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        let (code, out, err, took) = client(&args).await;
        // exec keeps 1 for the remote command's own exit code: its own
        // failure to run one is 125 (see the README's exit statuses).
        let failed = if args[0] == "exec" { 125 } else { 1 };
        assert_eq!(code, Some(failed), "{args:?}: {out} {err}");
        assert!(err.contains("speaks TLS"), "{args:?}: {err}");
        assert!(err.contains(&pin), "names the certificate: {args:?}: {err}");
        assert!(err.contains("add --tls"), "{args:?}: {err}");
        assert!(!out.contains('\u{15}'), "no TLS alert as output: {out:?}");
        assert!(took < AT_ONCE, "{args:?} took {took:?}");
        eprintln!("{}: plain on TLS answered in {took:?}", args[0]);
    }
    // A text of one or two bytes reads back only the alert's first bytes.
    for text in ["a", "hi"] {
        let (code, out, err, _) = client(&["echo", &on_tls.addr(Echo), text]).await;
        assert_eq!(code, Some(1), "{text}: {out:?} {err}");
        assert!(err.contains("speaks TLS"), "{text}: {err}");
        assert!(!out.contains('\u{15}'), "no TLS alert as output: {out:?}");
    }
    // Dialled by name with --ca: the plain echo sends back a greeting that
    // still parses (the name in it upper-cased).
    let port = plain.addr(Echo).rsplit(':').next().unwrap().to_owned();
    let cert = tls_data.join("tls-cert.pem");
    let cert = cert.to_str().unwrap();
    let by_name = format!("localhost:{port}");
    let (code, _, err, _) = client(&["echo", &by_name, "hello", "--tls", "--ca", cert]).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("does not speak TLS"), "{err}");
    let tls = ["--tls", "--pin", &pin];
    for command in commands(&plain, &plain_data, &upload, &tls) {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        let (code, out, err, took) = client(&args).await;
        let failed = if args[0] == "exec" { 125 } else { 1 };
        assert_eq!(code, Some(failed), "{args:?}: {out} {err}");
        assert!(err.contains("does not speak TLS"), "{args:?}: {err}");
        assert!(err.contains("drop --tls"), "{args:?}: {err}");
        assert!(took < AT_ONCE, "{args:?} took {took:?}");
    }

    // `health` told nothing of the HTTPS dashboard.
    let web = on_tls.web_url();
    let web = web.trim_start_matches("https://");
    let (code, _, err, took) = client(&["health", web]).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("the dashboard speaks HTTPS"), "{err}");
    assert!(err.contains("--config"), "{err}");
    assert!(took < AT_ONCE, "{took:?}");
    // Given the server's settings, it passes.
    let data = tls_data.to_str().unwrap();
    let (code, out, err, _) = client(&[
        "health",
        web,
        "--data-dir",
        data,
        "--set",
        "web.tls=self-signed",
    ])
    .await;
    assert_eq!(code, Some(0), "{out} {err}");

    // The banner's `try:` line, run as printed (the program as a path or
    // `switchboard`, then its words).
    let try_line = on_tls
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("try:"))
        .expect("a try: line")
        .trim()
        .to_owned();
    assert!(
        try_line.contains(&format!("--tls --pin {pin}")),
        "{try_line}"
    );
    let words: Vec<&str> = try_line.split_whitespace().skip(1).collect();
    let (code, out, err, _) = client(&words).await;
    assert_eq!(code, Some(0), "{try_line}: {err}");
    assert_eq!(out, "HELLO\n");
    on_tls.terminate().await;
    plain.terminate().await;
}

/// An `https://` dashboard URL with no certificate to trust is refused
/// before anything is sent: a token must not go out in plain text to what
/// the person asked to reach over HTTPS.
#[tokio::test]
async fn an_https_url_without_a_certificate_to_trust_sends_nothing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let url = format!("https://127.0.0.1:{port}/");
    for args in [
        vec![
            "service",
            "list",
            "--url",
            &url,
            "--token",
            "sbt_not_to_be_sent",
        ],
        vec![
            "toxic",
            "list",
            "px",
            "--url",
            &url,
            "--token",
            "sbt_not_to_be_sent",
        ],
        vec!["health", &url],
    ] {
        let args = [&args[..], &["--data-dir", data]].concat();
        let (code, _, err, _) = client(&args).await;
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains("is an https:// address"), "{args:?}: {err}");
        assert!(err.contains("--data-dir"), "says what to give: {err}");
    }
    // The client has exited: a connection it made would be queued here.
    let queued = listener.accept();
    assert!(
        matches!(&queued, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "nothing connected: {queued:?}"
    );
}
