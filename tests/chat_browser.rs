//! The Chat page in a real headless Chromium (chromedriver, fantoccini): a
//! person on the dashboard types the replies while the tutorials' chat
//! clients (000's UDP client, and the TCP client written to 004's
//! description, from tests/seeds/) hold a conversation with them.
//!
//! Needs `chromium`, `chromedriver` and python3 (scripts/test.sh installs
//! them); without them it fails and says so, unless
//! `SWITCHBOARD_SKIP_BROWSER=1`.

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use fantoccini::{Client, ClientBuilder, Locator};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use common::web::Web;
use common::{ADMIN_PASSWORD, GUARD, guard};

const INSTANCES: &str = r#"
[services.talk]
kind = "chat"
listen = "127.0.0.1:0"

[services.utalk]
kind = "udp-chat"
listen = "127.0.0.1:0"
"#;

/// chromedriver in a process group of its own (Chromium joins it);
/// dropping this kills the group.
struct Driver {
    child: tokio::process::Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            let group = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

async fn driver() -> Option<Driver> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = tokio::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            common::skip_allowed(
                "BROWSER",
                &format!("cannot run chromedriver ({e}): scripts/test.sh installs it"),
            );
            return None;
        }
    };
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    guard("chromedriver to start", async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("started successfully") {
                return;
            }
        }
        panic!("chromedriver exited before listening");
    })
    .await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

async fn browser(d: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-dev-shm-usage",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    guard(
        "a browser session",
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&d.url),
    )
    .await
    .expect("chromium starts under chromedriver")
}

async fn wait_for(browser: &Client, what: &str, xpath: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(GUARD)
        .for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("{what} ({xpath}): {e}"))
}

fn seeds_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/seeds"))
}

/// A tutorial chat client with all of `input`; what it printed.
fn start_client(file: &str, port: u16, input: String) -> tokio::task::JoinHandle<String> {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(seeds_dir().join(file)).unwrap();
    let text = text.replace("('127.0.0.1', 8000)", &format!("('127.0.0.1', {port})"));
    let script = dir.path().join(file);
    std::fs::write(&script, text).unwrap();
    let mut child = tokio::process::Command::new("python3")
        .arg(&script)
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    tokio::spawn(async move {
        let _dir = dir;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).await.unwrap();
        drop(stdin);
        let out = guard("the chat client ends", child.wait_with_output())
            .await
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    })
}

/// Types `text` into the reply box of the thread waiting on `service`'s
/// panel, and sends it.
async fn type_reply(browser: &Client, service: &str, text: &str) {
    let xpath = format!(
        "//section[@data-chat-service='{service}']//div[@data-waiting='true']//form//input"
    );
    // A redraw (a new line) may replace the box between finding and typing:
    // find it again then.
    for _ in 0..5 {
        let input = wait_for(browser, "a waiting thread's reply box", &xpath).await;
        if input.send_keys(&format!("{text}\n")).await.is_ok() {
            return;
        }
    }
    panic!("could not type into the reply box of {service}");
}

#[tokio::test]
async fn a_person_on_the_chat_page_answers_the_tutorials_chat_clients() {
    let Some(driver) = driver().await else { return };
    let w = Web::start_with(|c| {
        let extra = common::resolve_file(INSTANCES).expect("the instances resolve");
        c.services.extend(
            extra
                .services
                .into_iter()
                .filter(|s| ["talk", "utalk"].contains(&s.id.name())),
        );
    })
    .await;
    let base = format!("http://{}", common::web::serve(&w).await);
    let profile = tempfile::tempdir().unwrap();
    let b = browser(&driver, profile.path()).await;
    b.goto(&format!("{base}/login")).await.unwrap();
    wait_for(&b, "the page's script", "//body[@data-ready='true']").await;
    let user = wait_for(&b, "the sign-in form", "//input[@id='username']").await;
    user.send_keys("admin").await.unwrap();
    b.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(ADMIN_PASSWORD)
        .await
        .unwrap();
    b.find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&b, "the overview", "//article[@data-service='echo']").await;
    b.goto(&format!("{base}/chat")).await.unwrap();
    wait_for(
        &b,
        "the udp-chat panel",
        "//section[@data-chat-service='utalk']",
    )
    .await;

    // 000's UDP chat: hello → the person's 你好 → q ends it.
    let port = w.h.addr("utalk").port();
    let udp = start_client(
        "000_udp_chat_client.py",
        port,
        format!("127.0.0.1\n{port}\nhello\nq\n"),
    );
    type_reply(&b, "utalk", "你好").await;
    assert_eq!(
        udp.await.unwrap(),
        "输入要连接的ip地址:输入端口号:>>>你好\n>>>您已断开连接!\n输入要连接的ip地址:"
    );

    // 004's TCP chat: two turns, then the client's exit.
    let tcp = start_client(
        "004_chat_client.py",
        w.h.addr("talk").port(),
        "hello\nhow are you\nexit\n".into(),
    );
    type_reply(&b, "talk", "hi").await;
    wait_for(
        &b,
        "the second message",
        "//section[@data-chat-service='talk']//li[contains(., 'how are you')]",
    )
    .await;
    type_reply(&b, "talk", "fine").await;
    assert_eq!(tcp.await.unwrap(), ">>:服务端: hi\n>>:服务端: fine\n>>:");
    // The page shows both conversations, ended.
    wait_for(
        &b,
        "the ended TCP thread",
        "//section[@data-chat-service='talk']//div[@data-open='false']",
    )
    .await;
    let text = b
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("你好") && text.contains("fine"), "{text}");
    b.close().await.unwrap();
}
