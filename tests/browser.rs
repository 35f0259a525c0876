//! The dashboard in a real headless Chromium, driven over WebDriver
//! (chromedriver), against the real binary: sign in, see every service,
//! watch a raw TCP connection appear live with its bytes, stop and start a
//! service from its card. Every page is saved as a PNG under
//! `$SWITCHBOARD_SCREENSHOTS` (default `target/test-output/screenshots`).
//!
//! Needs `chromium` and `chromedriver` (the README's test command installs
//! them). Without them the test fails and says so, unless
//! `SWITCHBOARD_SKIP_BROWSER=1` is set.

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use fantoccini::{Client, ClientBuilder, Locator};
use sha2::Digest;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use common::{ADMIN_PASSWORD, GUARD, Served, TEST_KEY, guard};
use switchboard::kind::ServiceKind;

const CHROMEDRIVER: &str = "chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

fn screenshots_dir() -> PathBuf {
    #[allow(clippy::disallowed_methods)] // a test's own setting
    let dir = std::env::var_os("SWITCHBOARD_SCREENSHOTS").map_or_else(
        || PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../test-output/screenshots"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("the screenshots folder");
    dir
}

/// chromedriver on a free loopback port, killed when dropped.
struct Driver {
    _child: tokio::process::Child,
    url: String,
}

impl Driver {
    async fn start() -> Option<Driver> {
        // Ask the kernel for a free port, then hand it to chromedriver.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                // Panics unless SWITCHBOARD_SKIP_BROWSER=1; the skip is listed.
                common::skip_allowed(
                    "BROWSER",
                    &format!(
                        "cannot run {CHROMEDRIVER} ({e}): install chromium and \
                         chromium-driver (scripts/test.sh does)"
                    ),
                );
                return None;
            }
        };
        // It says when it listens.
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
        // Keep draining its stdout so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(Driver {
            _child: child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    async fn browser(&self, profile: &std::path::Path) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        guard(
            "a browser session",
            ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(&self.url),
        )
        .await
        .expect("chromium starts under chromedriver")
    }
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("a screenshot");
    let path = screenshots_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).expect("the screenshot written");
}

async fn wait_for(browser: &Client, what: &str, xpath: &str) -> fantoccini::elements::Element {
    browser
        .wait()
        .at_most(GUARD)
        .for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("waiting for {what} ({xpath}): {e}"))
}

/// Clicks the element with this id.
async fn click(browser: &Client, id: &str) {
    browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id}: {e}"))
        .click()
        .await
        .unwrap();
}

/// The text of the element with this XPath.
async fn text_at(browser: &Client, xpath: &str) -> String {
    browser
        .find(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("no {xpath}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Replaces what a text field holds.
async fn type_into(field: &fantoccini::elements::Element, text: &str) {
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Whether the element with this id is displayed (not `display: none`,
/// itself or through an ancestor).
async fn displayed(browser: &Client, id: &str) -> bool {
    browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id}: {e}"))
        .is_displayed()
        .await
        .unwrap()
}

/// Fills in the sign-in form on the current page and submits it.
async fn sign_in(browser: &Client, password: &str) {
    let user = wait_for(browser, "the sign-in form", "//input[@id='username']").await;
    type_into(&user, "admin").await;
    type_into(
        &browser.find(Locator::Id("password")).await.unwrap(),
        password,
    )
    .await;
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The real binary with every service, and a browser on its dashboard.
struct Dashboard {
    served: Served,
    browser: Client,
    base: String,
    data_dir: PathBuf,
    dir: tempfile::TempDir,
    _driver: Driver,
}

impl Dashboard {
    /// `None` only when browser tests are explicitly skipped.
    async fn open() -> Option<Dashboard> {
        let driver = Driver::start().await?;
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let served = Served::start(
            &data_dir,
            &ServiceKind::ALL,
            &[
                ("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
                ("SWITCHBOARD_KEY", TEST_KEY),
            ],
        )
        .await;
        let base = served.web_url();
        let browser = driver.browser(&dir.path().join("profile")).await;
        Some(Dashboard {
            served,
            browser,
            base,
            data_dir,
            dir,
            _driver: driver,
        })
    }
}

#[tokio::test]
async fn the_dashboard_works_in_a_real_browser() {
    let Some(Dashboard {
        served,
        browser,
        base,
        data_dir: _,
        dir: _dir,
        _driver,
    }) = Dashboard::open().await
    else {
        return;
    };

    // Signing in: a wrong password is told, the right one lands on the overview.
    browser.goto(&format!("{base}/")).await.unwrap();
    wait_for(&browser, "the sign-in form", "//input[@id='username']").await;
    screenshot(&browser, "1-sign-in").await;
    sign_in(&browser, "wrong password").await;
    wait_for(
        &browser,
        "the sign-in error",
        "//p[@id='sign-in-error' and not(@hidden) and contains(., 'wrong user name or password')]",
    )
    .await;
    sign_in(&browser, ADMIN_PASSWORD).await;

    // Every service's card, running; the live stream connected.
    for kind in ServiceKind::ALL {
        wait_for(
            &browser,
            &format!("the {kind} card running"),
            &format!("//article[@data-service='{kind}' and @data-state='running']"),
        )
        .await;
    }
    wait_for(
        &browser,
        "the live stream",
        "//span[@id='live-status' and @data-state='live']",
    )
    .await;
    screenshot(&browser, "2-overview").await;

    // A raw TCP connection from this test shows up live, with its bytes.
    let mut echo = TcpStream::connect(served.addr(ServiceKind::Echo))
        .await
        .unwrap();
    echo.write_all(b"hello, browser").await.unwrap();
    let mut reply = [0u8; 14];
    echo.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"HELLO, BROWSER");
    let peer = echo.local_addr().unwrap().to_string();
    browser.goto(&format!("{base}/connections")).await.unwrap();
    wait_for(
        &browser,
        "our connection with its 14 bytes each way",
        &format!(
            "//tr[@data-service='echo'][td[normalize-space()='{peer}']]\
             [td[@data-field='bytes_in' and normalize-space()='14 B']]\
             [td[@data-field='bytes_out' and normalize-space()='14 B']]"
        ),
    )
    .await;
    // More bytes arrive while the page is open: the row follows without a reload.
    echo.write_all(&[b'x'; 1000]).await.unwrap();
    let mut more = [0u8; 1000];
    echo.read_exact(&mut more).await.unwrap();
    wait_for(
        &browser,
        "the row updated live",
        &format!("//tr[td[normalize-space()='{peer}']][td[@data-field='bytes_in' and normalize-space()='1014 B']]"),
    )
    .await;
    screenshot(&browser, "3-connections").await;

    // An admin closes a second connection from its row.
    let mut doomed = TcpStream::connect(served.addr(ServiceKind::Echo))
        .await
        .unwrap();
    doomed.write_all(b"bye").await.unwrap();
    let doomed_peer = doomed.local_addr().unwrap().to_string();
    let close = wait_for(
        &browser,
        "the second connection's close button",
        &format!("//tr[td[normalize-space()='{doomed_peer}']]//button[@data-close]"),
    )
    .await;
    close.click().await.unwrap();
    let mut sink = Vec::new();
    guard(
        "the closed connection to end",
        doomed.read_to_end(&mut sink),
    )
    .await
    .ok();
    wait_for(
        &browser,
        "the closed connection's row to go",
        &format!("//tbody[not(tr[td[normalize-space()='{doomed_peer}']])]"),
    )
    .await;

    // Stop echo from its card, watch the state change, start it again.
    browser.goto(&format!("{base}/")).await.unwrap();
    let stop = wait_for(
        &browser,
        "echo's stop button",
        "//article[@data-service='echo']//button[@data-action='stop' and not(@disabled)]",
    )
    .await;
    stop.click().await.unwrap();
    wait_for(
        &browser,
        "echo stopped",
        "//article[@data-service='echo' and @data-state='stopped']//span[@data-field='state' and .='stopped']",
    )
    .await;
    // Really stopped: its connection is gone and its port refuses.
    let mut buf = [0u8; 1];
    let closed = guard("our connection closed by the stop", echo.read(&mut buf)).await;
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    assert!(
        TcpStream::connect(served.addr(ServiceKind::Echo))
            .await
            .is_err()
    );
    screenshot(&browser, "4-echo-stopped").await;
    let start = wait_for(
        &browser,
        "echo's start button",
        "//article[@data-service='echo']//button[@data-action='start' and not(@disabled)]",
    )
    .await;
    start.click().await.unwrap();
    wait_for(
        &browser,
        "echo running again",
        "//article[@data-service='echo' and @data-state='running']",
    )
    .await;
    // The test config listens on port 0, so the restart bound a new port:
    // the card shows which.
    let addr = text_at(
        &browser,
        "//article[@data-service='echo']//p[@data-field='addr']",
    )
    .await;
    let mut again = TcpStream::connect(addr.trim()).await.unwrap();
    again.write_all(b"back").await.unwrap();
    let mut back = [0u8; 4];
    again.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"BACK");

    // The traffic page: the chart drawn, the stop and start in the event log.
    browser.goto(&format!("{base}/traffic")).await.unwrap();
    wait_for(&browser, "the chart", "//div[@id='chart']//canvas").await;
    wait_for(
        &browser,
        "the stop in the event log",
        "//table[@id='log']//tr[@data-type='service_state' and @data-service='echo'][td[.='now stopped']]",
    )
    .await;
    screenshot(&browser, "5-traffic").await;

    // Signing out ends the session: the overview sends us back to sign in.
    click(&browser, "sign-out").await;
    wait_for(&browser, "the sign-in page", "//form[@id='sign-in']").await;
    browser.goto(&format!("{base}/")).await.unwrap();
    wait_for(&browser, "the sign-in page again", "//form[@id='sign-in']").await;

    // Shutdown does not wait on a page's open live stream.
    sign_in(&browser, ADMIN_PASSWORD).await;
    wait_for(
        &browser,
        "the live stream",
        "//span[@id='live-status' and @data-state='live']",
    )
    .await;
    let (status, stderr) = served.terminate().await;
    assert!(status.success(), "{status}");
    assert!(!stderr.contains("outlived"), "{stderr}");
    browser.close().await.unwrap();
}

#[tokio::test]
async fn send_sticky_upload_and_console_panels_work_in_a_real_browser() {
    let Some(Dashboard {
        served,
        browser,
        base,
        data_dir,
        dir,
        _driver,
    }) = Dashboard::open().await
    else {
        return;
    };
    browser.goto(&format!("{base}/login")).await.unwrap();
    sign_in(&browser, ADMIN_PASSWORD).await;
    wait_for(&browser, "the overview", "//article[@data-service='echo']").await;

    // A test message to echo, and its reply, bytes and equivalents.
    browser.goto(&format!("{base}/send")).await.unwrap();
    let text = wait_for(&browser, "the message box", "//textarea[@id='send-text']").await;
    // No empty result panel before anything was sent.
    for panel in ["send-result", "sticky-result"] {
        assert!(
            !displayed(&browser, panel).await,
            "#{panel} shown before an action"
        );
    }
    type_into(&text, "hello from chromium").await;
    click(&browser, "send-button").await;
    wait_for(
        &browser,
        "the reply",
        "//code[@id='send-reply' and .='HELLO FROM CHROMIUM']",
    )
    .await;
    let cli = text_at(&browser, "//*[@id='send-cli']").await;
    assert_eq!(
        cli,
        format!(
            "switchboard echo {} 'hello from chromium'",
            served.addr(ServiceKind::Echo)
        )
    );
    wait_for(
        &browser,
        "the C/S time",
        "//p[@id='send-cs' and contains(., 's')]",
    )
    .await;
    screenshot(&browser, "6-send").await;

    // Sticky packets: the raw reads merge, the framed ones come apart.
    click(&browser, "sticky-button").await;
    wait_for(
        &browser,
        "merged raw reads",
        "//div[@id='sticky-raw']//ol[@data-field='reads' and count(li) >= 1 and count(li) < 4]",
    )
    .await;
    wait_for(
        &browser,
        "four framed messages",
        "//div[@id='sticky-framed']//ol[@data-field='messages' and count(li) = 4]/li[4][.='PACKETS']",
    )
    .await;
    screenshot(&browser, "7-sticky").await;

    // An upload of several MiB, checked in the browser and found on disk.
    let upload = dir.path().join("several.bin");
    let data: Vec<u8> = (0..6 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(&upload, &data).unwrap();
    browser.goto(&format!("{base}/files")).await.unwrap();
    let input = wait_for(&browser, "the file input", "//input[@id='file-input']").await;
    for panel in ["uploads", "put-compare"] {
        assert!(
            !displayed(&browser, panel).await,
            "#{panel} shown before an upload"
        );
    }
    input.send_keys(upload.to_str().unwrap())
        .await
        .unwrap();
    wait_for(
        &browser,
        "the upload verified by the browser's own SHA-256",
        "//tr[@data-file='several.bin' and @data-state='verified']",
    )
    .await;
    let expected = switchboard::wire::hex(&sha2::Sha256::digest(&data));
    let stored = std::fs::read(data_dir.join("files/several.bin")).unwrap();
    assert_eq!(
        switchboard::wire::hex(&sha2::Sha256::digest(&stored)),
        expected
    );
    wait_for(
        &browser,
        "the file in the list with its hash",
        &format!("//table[@id='files']//tr[@data-name='several.bin'][td[.='{expected}']]"),
    )
    .await;
    screenshot(&browser, "8-files").await;

    // The console: `date` runs, exit 0; a program off the allowlist is refused.
    browser.goto(&format!("{base}/console")).await.unwrap();
    let line = wait_for(&browser, "the command line", "//input[@id='exec-input']").await;
    type_into(&line, "date").await;
    click(&browser, "exec-run").await;
    wait_for(
        &browser,
        "exit 0",
        "//p[@id='exec-status' and @data-state='ok' and starts-with(., 'exit 0')]",
    )
    .await;
    let out = text_at(&browser, "//*[@id='exec-output']").await;
    assert!(
        out.chars().any(|c| c.is_ascii_digit()),
        "date printed something: {out:?}"
    );
    screenshot(&browser, "9-console").await;
    // A streamed response on a kept-alive connection is not held back by
    // Nagle until the browser's delayed ACK (≥ 40 ms on Linux, each time):
    // the dashboard sets TCP_NODELAY. Six commands in a row from the page;
    // the best of the last five (the first may open the connection) must
    // spend well under 40 ms outside the command's own C/S leg.
    let gaps = browser
        .execute_async(
            "const done = arguments[0];
             (async () => {
               const csrf = document.querySelector('meta[name=\"csrf-token\"]').content;
               const gaps = [];
               for (let i = 0; i < 6; i++) {
                 const t0 = performance.now();
                 const r = await fetch('/api/v1/exec', {
                   method: 'POST', credentials: 'same-origin',
                   headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
                   body: JSON.stringify({ argv: ['date'] }),
                 });
                 const lines = (await r.text()).trim().split('\\n').map((l) => JSON.parse(l));
                 const exit = lines.find((m) => m.type === 'exit');
                 gaps.push(performance.now() - t0 - exit.cs_us / 1000);
               }
               return gaps;
             })().then(done, (e) => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    let gaps: Vec<f64> = serde_json::from_value(gaps.clone())
        .unwrap_or_else(|e| panic!("the page's timings ({e}): {gaps}"));
    let best = gaps[1..].iter().copied().fold(f64::INFINITY, f64::min);
    assert!(
        best < 30.0,
        "every kept-alive exec spent ≥ 30 ms outside C/S (Nagle?): {gaps:?}"
    );
    type_into(&line, "rm -rf /").await;
    click(&browser, "exec-run").await;
    wait_for(
        &browser,
        "the refusal",
        "//p[@id='exec-status' and @data-state='failed' and contains(., '`rm` is not allowed')]",
    )
    .await;
    screenshot(&browser, "10-console-refused").await;
    browser.close().await.unwrap();
}
