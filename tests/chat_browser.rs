//! The Chat page in a real headless Chromium (chromedriver, fantoccini): a
//! person on the dashboard types the replies while the tutorials' chat
//! clients (000's UDP client, and the TCP client written to 004's
//! description, from tests/seeds/) hold a conversation with them.
//!
//! The steps go through the page object in tests/common/dashboard.rs.
//! Needs `chromium`, `chromedriver` and python3 (scripts/test.sh installs
//! them); without them it fails and says so, unless
//! `SWITCHBOARD_SKIP_BROWSER=1`.

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use common::dashboard::{Dashboard, Screen};
use common::guard;
use common::web::Web;

const INSTANCES: &str = r#"
[services.talk]
kind = "chat"
listen = "127.0.0.1:0"

[services.utalk]
kind = "udp-chat"
listen = "127.0.0.1:0"
"#;

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
async fn type_reply(ui: &Dashboard, service: &str, text: &str) {
    let xpath = format!(
        "//section[@data-chat-service='{service}']//div[@data-waiting='true']//form//input"
    );
    // A redraw (a new line) may replace the box between finding and typing:
    // find it again then.
    for _ in 0..5 {
        let input = ui.wait_for("a waiting thread's reply box", &xpath).await;
        if input.send_keys(&format!("{text}\n")).await.is_ok() {
            return;
        }
    }
    panic!("could not type into the reply box of {service}");
}

#[tokio::test]
async fn a_person_on_the_chat_page_answers_the_tutorials_chat_clients() {
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
    let Some(ui) = Dashboard::open(&base, Screen::Desktop).await else {
        return;
    };
    ui.sign_in_as_admin().await;
    ui.visit("/chat", "//section[@data-chat-service='utalk']")
        .await;

    // 000's UDP chat: hello → the person's 你好 → q ends it.
    let port = w.h.addr("utalk").port();
    let udp = start_client(
        "000_udp_chat_client.py",
        port,
        format!("127.0.0.1\n{port}\nhello\nq\n"),
    );
    type_reply(&ui, "utalk", "你好").await;
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
    type_reply(&ui, "talk", "hi").await;
    ui.wait_for(
        "the second message",
        "//section[@data-chat-service='talk']//li[contains(., 'how are you')]",
    )
    .await;
    type_reply(&ui, "talk", "fine").await;
    assert_eq!(tcp.await.unwrap(), ">>:服务端: hi\n>>:服务端: fine\n>>:");
    // The page shows both conversations, ended.
    ui.wait_for(
        "the ended TCP thread",
        "//section[@data-chat-service='talk']//div[@data-open='false']",
    )
    .await;
    let text = ui.text_at("//main").await;
    assert!(text.contains("你好") && text.contains("fine"), "{text}");
    ui.close().await;
}
