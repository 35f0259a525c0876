//! `serve` at start: when the dashboard or an enabled instance cannot bind,
//! it lists every failure (naming the address) and exits non-zero quickly,
//! so systemd's `Restart=on-failure` or a container engine sees it; with
//! `--keep-going` (or `keep_going = true`) it runs on with what did start.
//! A later start or stop from the dashboard is not covered here: it keeps
//! its own behaviour (tests/supervisor.rs).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Served, guard};
use switchboard::kind::ServiceKind::{Echo, Time};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// How soon a failed start must be over: the bound for a person
/// watching, far below any supervisor's start timeout.
const EXIT_WITHIN: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_taken_dashboard_and_service_port_exit_non_zero_naming_each_address() {
    let dir = tempfile::tempdir().unwrap();
    let web = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (web, echo_addr) = (web.local_addr().unwrap(), echo.local_addr().unwrap());
    let mut args = vec!["serve".to_owned(), "--data-dir".to_owned()];
    args.push(dir.path().to_str().unwrap().to_owned());
    args.extend(common::only_services(&[Echo, Time]));
    args.extend([
        "--set".to_owned(),
        format!("web.listen={web}"),
        "--set".to_owned(),
        format!("services.echo.listen={echo_addr}"),
    ]);
    let started = Instant::now();
    let out = guard(
        "serve to exit",
        tokio::process::Command::new(BIN)
            .args(&args)
            .env_remove("SWITCHBOARD_KEEP_GOING")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(took < EXIT_WITHIN, "exited after {took:?}");
    eprintln!("serve exited {took:?} after its start on two taken ports");
    assert!(
        stderr.contains("not started: 2 listeners failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "the dashboard cannot listen on {web}: address in use"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "echo cannot listen on {echo_addr}: address in use"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--keep-going"), "{stderr}");
    // The banner still shows what did start, for a person reading it.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("failed: address in use"), "{stdout}");
}

/// `serve` with the dashboard's port taken plus `extra`: it must keep
/// running, with echo answering.
async fn keeps_going(extra: &[&str], env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let web = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let web = web.local_addr().unwrap().to_string();
    let mut all = vec!["--set".to_owned(), format!("web.listen={web}")];
    all.extend(extra.iter().map(|s| (*s).to_owned()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let mut served = Served::start_with_args(&data, &[Echo], env, &all).await;
    assert!(
        served
            .banner
            .iter()
            .any(|l| l.contains("failed: address in use")),
        "{:?}",
        served.banner
    );
    assert!(served.ready["web"].is_null(), "{}", served.ready);
    let out = tokio::process::Command::new(BIN)
        .args(["echo", &served.addr("echo"), "still here"])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "STILL HERE\n");
    assert!(served.child.try_wait().unwrap().is_none(), "it ran on");
    served.wait_for_log("the dashboard cannot listen").await;
    let (status, log) = served.terminate().await;
    assert!(status.success(), "{log}");
}

#[tokio::test]
async fn keep_going_runs_on_without_the_dashboard() {
    keeps_going(&["--keep-going"], &[]).await;
}

#[tokio::test]
async fn keep_going_in_the_environment_runs_on_too() {
    keeps_going(&[], &[("SWITCHBOARD_KEEP_GOING", "true")]).await;
}

/// `SWITCHBOARD_ADMIN_PASSWORD_FILE`: the first password from a file (its
/// end of line dropped); an empty or missing file stops the start with its
/// name rather than making an account with an empty password.
#[tokio::test]
async fn the_admin_password_comes_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin-password");
    std::fs::write(&file, "from a file\n").unwrap();
    let file_text = file.to_str().unwrap();
    let served = Served::start(
        &dir.path().join("data"),
        &[Echo],
        &[("SWITCHBOARD_ADMIN_PASSWORD_FILE", file_text)],
    )
    .await;
    let url = served.web_url();
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let reply = common::web::raw_request(
        addr,
        common::web::loopback(1),
        &common::web::sign_in_request("admin", "from a file"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    served.terminate().await;

    std::fs::write(&file, "\n").unwrap();
    let out = guard(
        "serve to exit",
        tokio::process::Command::new(BIN)
            .args(["serve", "--data-dir"])
            .arg(dir.path().join("fresh"))
            .args(common::only_services(&[Echo]))
            .env_remove("SWITCHBOARD_ADMIN_PASSWORD")
            .env("SWITCHBOARD_ADMIN_PASSWORD_FILE", &file)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("SWITCHBOARD_ADMIN_PASSWORD_FILE") && stderr.contains("is empty"),
        "{stderr}"
    );
}

/// With `web.allowed_hosts` leaving out the address the dashboard listens
/// on, the banner's `open:` line gives a URL a browser is answered on (the
/// address itself would be refused, 421), and says where it must lead.
#[tokio::test]
async fn the_banner_opens_the_dashboard_by_an_allowed_name() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        &dir.path().join("data"),
        &[Echo],
        &[("SWITCHBOARD_WEB_ALLOWED_HOSTS", "localhost")],
    )
    .await;
    let addr: std::net::SocketAddr = served
        .web_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let open = served
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("open: "))
        .unwrap_or_else(|| panic!("no open: line in {:?}", served.banner));
    let expected = format!("http://localhost:{}/", addr.port());
    assert_eq!(open, expected, "{:?}", served.banner);
    assert!(
        served
            .banner
            .iter()
            .any(|l| l.contains(&format!("it listens on {addr}"))),
        "{:?}",
        served.banner
    );
    let get = |host: String| format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let by_name = common::web::raw_request(
        addr,
        common::web::loopback(1),
        &get(format!("localhost:{}", addr.port())),
    )
    .await;
    assert_ne!(by_name.status, 421, "{}", by_name.body);
    assert!(by_name.status < 400, "{}", by_name.body);
    let by_address =
        common::web::raw_request(addr, common::web::loopback(1), &get(addr.to_string())).await;
    assert_eq!(
        by_address.status, 421,
        "why the banner names it: {}",
        by_address.body
    );
    served.terminate().await;
}
