//! The dashboard in a real headless Chromium, driven over WebDriver
//! (chromedriver), against the real binary: sign in, see every service,
//! watch a raw TCP connection appear live with its bytes, stop and start a
//! service from its card. Every page is saved as a PNG under
//! `$SWITCHBOARD_SCREENSHOTS` (default `target/test-output/screenshots`).
//! A second session emulates a 390 px phone: every page must fit its width
//! (`*-mobile.png` beside the desktop shots). axe-core checks every page,
//! light and dark, on both screens (`dark-*.png`), and on the phone every
//! control must be a 44 px tap target.
//!
//! Needs `chromium` and `chromedriver`, and axe-core from npm (the README's
//! test command installs them). Without them the test fails and says so,
//! unless `SWITCHBOARD_SKIP_BROWSER=1` (or `SWITCHBOARD_SKIP_AXE=1`) is set.

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

/// chromedriver on a free loopback port. It runs in a process group of
/// its own, which the Chromium it starts joins; dropping this kills the
/// whole group, so a test that panics leaves no browser behind.
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
            .process_group(0)
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
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    async fn browser(&self, profile: &std::path::Path, screen: Screen) -> Client {
        let mut caps = serde_json::Map::new();
        let mut options = serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
        });
        if screen == Screen::Phone {
            // chromedriver applies this to every page of the session, as
            // DevTools' device mode does: a mobile viewport and `screen`.
            options["mobileEmulation"] = serde_json::json!({
                "deviceMetrics": {
                    "width": PHONE_WIDTH, "height": 844, "pixelRatio": 3.0,
                    "mobile": true, "touch": true,
                },
            });
        }
        caps.insert("goog:chromeOptions".into(), options);
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

/// The screen a browser session emulates.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Screen {
    /// The 1280×900 window.
    Desktop,
    /// A 390×844 phone (mobile emulation).
    Phone,
}

/// A phone's width in CSS pixels (an iPhone 12 to 15).
const PHONE_WIDTH: u32 = 390;

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("a screenshot");
    let path = screenshots_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).expect("the screenshot written");
}

async fn wait_for(browser: &Client, what: &str, xpath: &str) -> fantoccini::elements::Element {
    let deadline = std::time::Instant::now() + GUARD;
    let found = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match browser
            .wait()
            .at_most(left)
            .for_element(Locator::XPath(xpath))
            .await
        {
            // A page reloading under the query (after a save): ask again.
            Err(e) if e.to_string().contains("navigation") && !left.is_zero() => continue,
            other => break other,
        }
    };
    match found {
        Ok(found) => found,
        Err(e) => {
            // Where the browser is and what it shows, to see why.
            let url = browser.current_url().await.map(|u| u.to_string());
            let text = match browser.find(Locator::Css("body")).await {
                Ok(body) => body.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            let text: String = text.chars().take(600).collect();
            panic!("waiting for {what} ({xpath}): {e}\nat {url:?}, showing:\n{text}")
        }
    }
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

/// The status of a GET made by the page itself (same origin, its cookie).
async fn status_in_page(browser: &Client, path: &str) -> u64 {
    let status = browser
        .execute_async(
            "const [path, done] = arguments; \
             fetch(path).then((r) => done(r.status), (e) => done(String(e)));",
            vec![serde_json::json!(path)],
        )
        .await
        .unwrap();
    status
        .as_u64()
        .unwrap_or_else(|| panic!("GET {path} from the page: {status}"))
}

/// The page names an icon, so the browser never asks for a missing
/// `/favicon.ico`, and that icon is served.
async fn assert_icon(browser: &Client, page: &str) {
    let href = browser
        .execute(
            "return document.querySelector('link[rel~=icon]')?.getAttribute('href') ?? null;",
            vec![],
        )
        .await
        .unwrap();
    let href = href
        .as_str()
        .unwrap_or_else(|| panic!("{page} has no <link rel=icon>"));
    assert_eq!(
        status_in_page(browser, href).await,
        200,
        "{page}'s icon {href}"
    );
}

/// The page is no wider than the phone's screen: nothing scrolls sideways
/// and the browser need not zoom out. `screen.width`, not `innerWidth`: on
/// a mobile viewport the layout viewport grows with a page too wide for it.
async fn assert_fits_phone(browser: &Client, page: &str) {
    let sizes = browser
        .execute(
            "const w = screen.width;
             const wide = [...document.querySelectorAll('body *')]
               .filter((e) => e.getBoundingClientRect().right > w + 0.5)
               .slice(0, 6)
               .map((e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${e.getAttribute('class') || ''}`
                 + ` ends at ${Math.round(e.getBoundingClientRect().right)}`);
             return { screen: w, page: document.documentElement.scrollWidth, wide };",
            vec![],
        )
        .await
        .unwrap();
    let screen = sizes["screen"].as_u64().unwrap();
    let width = sizes["page"].as_u64().unwrap();
    assert_eq!(
        screen,
        u64::from(PHONE_WIDTH),
        "the emulated phone's screen"
    );
    assert!(
        width <= screen,
        "{page} is {width} px wide on a {screen} px phone; past the edge: {}",
        sizes["wide"]
    );
}

/// On the overview, no figure's text runs into another's or out of its
/// card (`in 293.0 KiB` used to run into `out`).
async fn assert_figures_apart(browser: &Client) {
    let clashes = browser
        .execute(
            "const out = [];
             for (const card of document.querySelectorAll('article.card')) {
               const c = card.getBoundingClientRect();
               const texts = [...card.querySelectorAll('.figures dt, .figures dd')].map((e) => {
                 const r = document.createRange();
                 r.selectNodeContents(e);
                 return [e.textContent.trim(), r.getBoundingClientRect()];
               });
               texts.forEach(([a, p], i) => {
                 if (p.left < c.left || p.right > c.right) out.push(`${card.dataset.service}: ${a} leaves its card`);
                 for (const [b, q] of texts.slice(i + 1)) {
                   if (p.left < q.right && q.left < p.right && p.top < q.bottom && q.top < p.bottom) {
                     out.push(`${card.dataset.service}: ${a} runs into ${b}`);
                   }
                 }
               });
             }
             return out;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(clashes, serde_json::json!([]), "figures overlap");
}

/// Writes `n` bytes to an echo connection and reads the `n` back.
async fn echo_bytes(echo: &mut TcpStream, n: usize) {
    let data = vec![b'x'; n];
    let mut back = vec![0u8; n];
    let (mut rx, mut tx) = echo.split();
    guard("the bytes echoed", async {
        tokio::try_join!(tx.write_all(&data), rx.read_exact(&mut back))
    })
    .await
    .expect("echo answers");
}

/// Clicks the element at `xpath` in a table the live stream redraws: a
/// redraw between finding it and clicking leaves it stale, and then it is
/// found again (under the hang guard).
async fn click_in_live_table(browser: &Client, what: &str, xpath: &str) {
    guard(what, async {
        loop {
            let found = wait_for(browser, what, xpath).await;
            match found.click().await {
                Ok(_) => return,
                Err(fantoccini::error::CmdError::Standard(e))
                    if e.error == fantoccini::error::ErrorStatus::StaleElementReference => {}
                Err(e) => panic!("clicking {what}: {e}"),
            }
        }
    })
    .await;
}

/// From the sign-in page to the overview, as the admin.
async fn sign_in_to_overview(browser: &Client, base: &str) {
    browser.goto(&format!("{base}/login")).await.unwrap();
    sign_in(browser, ADMIN_PASSWORD).await;
    wait_for(browser, "the overview", "//article[@data-service='echo']").await;
}

/// Fills in the sign-in form on the current page and submits it.
async fn sign_in(browser: &Client, password: &str) {
    // Only once the script has attached its handler: a click before that
    // would submit the form natively.
    wait_for(browser, "the page's script", "//body[@data-ready='true']").await;
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
    async fn open(screen: Screen) -> Option<Dashboard> {
        let driver = Driver::start().await?;
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let served = Served::start(
            &data_dir,
            ServiceKind::BUILTIN,
            &[
                ("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
                ("SWITCHBOARD_KEY", TEST_KEY),
                // The wire inspector has echo's bytes to show.
                ("SWITCHBOARD_ECHO_CAPTURE", "true"),
            ],
        )
        .await;
        let base = served.web_url();
        let browser = driver.browser(&dir.path().join("profile"), screen).await;
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
    }) = Dashboard::open(Screen::Desktop).await
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
    for kind in ServiceKind::BUILTIN {
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
    click_in_live_table(
        &browser,
        "the second connection's close button",
        &format!("//tr[td[normalize-space()='{doomed_peer}']]//button[@data-close]"),
    )
    .await;
    let mut sink = Vec::new();
    guard(
        "the closed connection to end",
        doomed.read_to_end(&mut sink),
    )
    .await
    .ok();
    // Its row fades for a moment, marked closed, then goes.
    wait_for(
        &browser,
        "the closed connection's row, faded",
        &format!("//tr[@data-gone='true'][td[normalize-space()='{doomed_peer}']][td[.='closed']]"),
    )
    .await;
    wait_for(
        &browser,
        "the closed connection's row to go",
        &format!("//tbody[not(tr[td[normalize-space()='{doomed_peer}']])]"),
    )
    .await;
    // Sorting by a header: the newest id first by default, the oldest first
    // after a click on `#`.
    let ids = |text: String| -> Vec<u64> {
        text.lines()
            .filter_map(|l| l.trim().strip_prefix('#'))
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect()
    };
    browser
        .find(Locator::Css("button.sort[data-sort='id']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&browser, "ascending ids", "//th[@aria-sort='ascending']").await;
    let order = ids(text_at(&browser, "//table[@id='connections']/tbody").await);
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    // A filter that hides every row says so, rather than "no connections".
    type_into(
        &browser.find(Locator::Id("conn-filter")).await.unwrap(),
        "no-such-peer",
    )
    .await;
    wait_for(
        &browser,
        "the filtered-out empty state",
        "//p[@id='conn-empty' and not(@hidden)]/span[@id='conn-filtered' and not(@hidden)]",
    )
    .await;
    assert!(displayed(&browser, "conn-filtered").await);
    assert!(!displayed(&browser, "conn-none").await);

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

    // Figures that grow stay apart: 300 KiB each way on a desktop card.
    echo_bytes(&mut again, 300 * 1024).await;
    wait_for(
        &browser,
        "echo's bytes in KiB",
        "//article[@data-service='echo']//dd[@data-field='bytes_in' and contains(., 'KiB')]",
    )
    .await;
    assert_figures_apart(&browser).await;
    screenshot(&browser, "4-overview-busy").await;

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
    }) = Dashboard::open(Screen::Desktop).await
    else {
        return;
    };
    sign_in_to_overview(&browser, &base).await;

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

    // The same lab through exec's framings: here the one `header` instance,
    // whose replies come back whole, one per command.
    let commands = wait_for(
        &browser,
        "the commands",
        "//textarea[@id='sticky-exec-text']",
    )
    .await;
    type_into(&commands, "echo one\necho two").await;
    click(&browser, "sticky-exec-button").await;
    wait_for(
        &browser,
        "two whole replies on header",
        "//div[@id='sticky-exec-result']/div[@data-framing='header' and @data-whole='true']\
         //ol[count(li) = 2]/li[2][contains(., 'two')]",
    )
    .await;

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
    input.send_keys(upload.to_str().unwrap()).await.unwrap();
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
        &format!(
            "//table[@id='files']//tr[@data-name='several.bin'][td[@data-sha256='{expected}' and code[.='{}']]]",
            &expected[..12]
        ),
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
    assert!(out.starts_with("$ date"), "the command is echoed: {out:?}");
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
    // Scrollback: the earlier output is still there, after it the new line.
    let out = text_at(&browser, "//*[@id='exec-output']").await;
    assert!(
        out.starts_with("$ date") && out.contains("$ rm -rf /"),
        "{out:?}"
    );
    // Shell characters without a shell get a hint; Clear empties the output.
    type_into(&line, "ls | wc -l").await;
    wait_for(
        &browser,
        "the no-shell hint",
        "//p[@id='exec-hint' and not(@hidden) and contains(., 'plain arguments')]",
    )
    .await;
    click(&browser, "exec-clear").await;
    assert_eq!(text_at(&browser, "//*[@id='exec-output']").await, "");
    browser.close().await.unwrap();
}

#[tokio::test]
async fn every_page_fits_a_phone_screen_and_has_an_icon() {
    let Some(Dashboard {
        served,
        browser,
        base,
        data_dir: _,
        dir,
        _driver,
    }) = Dashboard::open(Screen::Phone).await
    else {
        return;
    };
    browser.goto(&format!("{base}/login")).await.unwrap();
    wait_for(&browser, "the sign-in form", "//input[@id='username']").await;
    assert_fits_phone(&browser, "sign-in").await;
    assert_icon(&browser, "sign-in").await;
    // Tools that ask for the conventional path get the icon too.
    assert_eq!(status_in_page(&browser, "/favicon.ico").await, 200);
    screenshot(&browser, "1-sign-in-mobile").await;
    sign_in(&browser, ADMIN_PASSWORD).await;
    wait_for(
        &browser,
        "the overview",
        "//article[@data-service='echo' and @data-state='running']",
    )
    .await;

    // No connection yet: the empty state names where echo really listens
    // (here a port the kernel chose), not a default.
    let echo_addr = served.addr(ServiceKind::Echo);
    browser.goto(&format!("{base}/connections")).await.unwrap();
    wait_for(
        &browser,
        "the empty state with echo's address",
        &format!(
            "//p[@id='conn-empty' and not(@hidden)]//span[@id='conn-try' and not(@hidden)]\
             /code[normalize-space()='switchboard echo {echo_addr} hello']"
        ),
    )
    .await;
    assert!(!displayed(&browser, "conn-filtered").await);
    assert_fits_phone(&browser, "connections (empty)").await;
    screenshot(&browser, "3-connections-empty-mobile").await;

    // Big figures: 300 KiB each way, on a connection left open.
    let mut echo = TcpStream::connect(&echo_addr).await.unwrap();
    echo_bytes(&mut echo, 300 * 1024).await;

    let small = dir.path().join("small.txt");
    std::fs::write(&small, "a file from a phone\n").unwrap();
    let pages = [
        (
            "/",
            "2-overview",
            "//article[@data-service='echo']//dd[@data-field='bytes_in' and contains(., 'KiB')]",
        ),
        (
            "/connections",
            "3-connections",
            "//tr[@data-service='echo'][td[@data-field='bytes_in' and contains(., 'KiB')]]",
        ),
        ("/traffic", "5-traffic", "//div[@id='chart']//canvas"),
        ("/send", "6-send", "//textarea[@id='send-text']"),
        ("/files", "8-files", "//input[@id='file-input']"),
        ("/console", "9-console", "//input[@id='exec-input']"),
        ("/tokens", "11-tokens", "//form[@id='token-form']"),
        (
            "/services",
            "12-services",
            "//form[@id='instance-form']//input[@name='listen']",
        ),
        ("/audit", "13-audit", "//table[@id='audit']//tbody/tr"),
        ("/captures", "16-captures", "//h1[.='Captures']"),
        (
            "/stats",
            "17-stats",
            "//table[@id='stats']//tr[@data-instance='echo']",
        ),
        ("/chat", "14-chat", "//p[@id='chat-none']"),
        (
            "/tutorials",
            "15-tutorials",
            "//table[@id='tutorials']//tbody/tr",
        ),
    ];
    for (path, shot, ready) in pages {
        browser.goto(&format!("{base}{path}")).await.unwrap();
        let marker = wait_for(&browser, path, ready).await;
        assert_fits_phone(&browser, path).await;
        assert_icon(&browser, path).await;
        // Each page again with what an action adds: results, code, tables.
        match path {
            "/" => assert_figures_apart(&browser).await,
            "/send" => {
                click(&browser, "send-button").await;
                wait_for(
                    &browser,
                    "the reply",
                    "//code[@id='send-reply' and .='HELLO, SWITCHBOARD']",
                )
                .await;
                click(&browser, "sticky-button").await;
                wait_for(
                    &browser,
                    "four framed messages",
                    "//div[@id='sticky-framed']//ol[@data-field='messages' and count(li) = 4]",
                )
                .await;
                // The three-path comparison: its table and chart checked too.
                let repeat = browser.find(Locator::Id("send-repeat")).await.unwrap();
                type_into(&repeat, "3").await;
                click(&browser, "compare-button").await;
                wait_for(
                    &browser,
                    "the comparison",
                    "//div[@id='compare-result' and not(@hidden)]",
                )
                .await;
            }
            "/files" => {
                marker.send_keys(small.to_str().unwrap()).await.unwrap();
                wait_for(
                    &browser,
                    "the upload verified",
                    "//tr[@data-file='small.txt' and @data-state='verified']",
                )
                .await;
                wait_for(
                    &browser,
                    "the file listed",
                    "//table[@id='files']//tr[@data-name='small.txt']",
                )
                .await;
            }
            "/console" => {
                click(&browser, "exec-run").await;
                wait_for(
                    &browser,
                    "exit 0",
                    "//p[@id='exec-status' and @data-state='ok' and starts-with(., 'exit 0')]",
                )
                .await;
            }
            "/tokens" => {
                type_into(
                    &browser.find(Locator::Id("token-name")).await.unwrap(),
                    "phone",
                )
                .await;
                click(&browser, "token-create").await;
                wait_for(
                    &browser,
                    "the new token",
                    "//div[@id='token-new' and not(@hidden)]/pre[starts-with(., 'sbt_')]",
                )
                .await;
            }
            _ => {}
        }
        assert_fits_phone(&browser, path).await;
        screenshot(&browser, &format!("{shot}-mobile")).await;
    }
    drop(echo);
    browser.close().await.unwrap();
}

/// axe-core's browser build. scripts/test.sh installs it from npm into
/// `target/axe-core` and names it in `SWITCHBOARD_AXE_JS`; `None` (after
/// logging the allowed skip) only with `SWITCHBOARD_SKIP_AXE=1`.
fn axe_source() -> Option<String> {
    #[allow(clippy::disallowed_methods)] // a test's own setting
    let path = std::env::var_os("SWITCHBOARD_AXE_JS").map_or_else(
        || {
            PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join("../axe-core/node_modules/axe-core/axe.min.js")
        },
        PathBuf::from,
    );
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(e) => {
            // Panics unless SWITCHBOARD_SKIP_AXE=1; the skip is listed.
            common::skip_allowed(
                "AXE",
                &format!(
                    "cannot read axe-core at {} ({e}): run scripts/test.sh, which \
                     installs it from npm, or point SWITCHBOARD_AXE_JS at axe.min.js",
                    path.display()
                ),
            );
            None
        }
    }
}

/// Emulates `prefers-color-scheme: <scheme>` in the session's tab through
/// chromedriver's DevTools passthrough (WebDriver has no command for it).
async fn emulate_color_scheme(driver: &Driver, browser: &Client, scheme: &str) {
    use http_body_util::BodyExt;
    let session = browser
        .session_id()
        .await
        .unwrap()
        .expect("a started session has an id");
    let body = serde_json::json!({
        "cmd": "Emulation.setEmulatedMedia",
        "params": { "features": [{ "name": "prefers-color-scheme", "value": scheme }] },
    });
    let request =
        hyper::Request::post(format!("{}/session/{session}/goog/cdp/execute", driver.url))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_string(),
            )))
            .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let response = guard(
        "chromedriver's DevTools passthrough",
        client.request(request),
    )
    .await
    .unwrap();
    let status = response.status();
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        status.is_success(),
        "Emulation.setEmulatedMedia: {status} {}",
        String::from_utf8_lossy(&text)
    );
    let applied = browser
        .execute(
            "return matchMedia(`(prefers-color-scheme: ${arguments[0]})`).matches;",
            vec![serde_json::json!(scheme)],
        )
        .await
        .unwrap();
    assert_eq!(applied, serde_json::json!(true), "{scheme} mode emulated");
}

/// Runs axe-core on the current page and returns one line per violation:
/// rule, impact, the elements it found, and what is wrong.
async fn axe_violations(browser: &Client, axe: &str) -> Vec<String> {
    // The script body is axe itself: WebDriver runs it outside the page's
    // Content-Security-Policy, which forbids inline scripts and eval.
    let loaded = browser
        .execute(&format!("{axe}\n;return typeof window.axe;"), vec![])
        .await
        .unwrap();
    assert_eq!(loaded, serde_json::json!("object"), "axe-core loaded");
    let found = browser
        .execute_async(
            "const done = arguments[0];
             axe.run(document, { resultTypes: ['violations'] }).then(
               (r) => done(r.violations.map((v) => v.nodes.map((n) =>
                 `${v.id} (${v.impact}) at ${n.target.join(' ')}: ${n.failureSummary.replace(/\\s+/g, ' ')}`)).flat()),
               (e) => done(`axe failed: ${e}`));",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(found.clone()).unwrap_or_else(|e| panic!("axe's answer ({e}): {found}"))
}

/// On a touch screen every visible control is at least 44 px square.
async fn assert_tap_targets(browser: &Client, page: &str) {
    let small = browser
        .execute(
            "if (!matchMedia('(pointer: coarse)').matches) return 'not a touch screen';
             return [...document.querySelectorAll('a, button, select, input, textarea, summary')]
               .filter((e) => e.getClientRects().length > 0 && !['checkbox', 'radio', 'file'].includes(e.type))
               .map((e) => [e, e.getBoundingClientRect()])
               .filter(([, r]) => r.width < 43.5 || r.height < 43.5)
               .map(([e, r]) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''} \
                 '${e.textContent.trim().slice(0, 20)}' ${Math.round(r.width)}x${Math.round(r.height)}`);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        small,
        serde_json::json!([]),
        "{page}: tap targets under 44 px"
    );
}

/// Every page, signed in as admin with live data (an open connection, a
/// stopped service, a stored file, a command run, a token, a send and an
/// error toast), has no axe-core violation in light or dark mode.
async fn assert_no_axe_violations(screen: Screen) {
    let Some(Dashboard {
        served,
        browser,
        base,
        data_dir: _,
        dir,
        _driver: driver,
    }) = Dashboard::open(screen).await
    else {
        return;
    };
    let Some(axe) = axe_source() else { return };
    let suffix = if screen == Screen::Phone {
        "-mobile"
    } else {
        ""
    };
    let mut violations = Vec::new();
    let mut checks = 0;
    let mut check = async |page: &str| {
        for scheme in ["light", "dark"] {
            emulate_color_scheme(&driver, &browser, scheme).await;
            violations.extend(
                axe_violations(&browser, &axe)
                    .await
                    .into_iter()
                    .map(|v| format!("{page} {scheme}{suffix}: {v}")),
            );
            checks += 1;
        }
        // The light scheme is in the other tests' screenshots.
        let name = page.trim_start_matches('/');
        let name = if name.is_empty() { "overview" } else { name };
        screenshot(&browser, &format!("dark-{name}{suffix}")).await;
    };

    browser.goto(&format!("{base}/login")).await.unwrap();
    // With its error shown.
    sign_in(&browser, "wrong password").await;
    wait_for(
        &browser,
        "the sign-in error",
        "//p[@id='sign-in-error' and not(@hidden)]",
    )
    .await;
    check("/login").await;
    sign_in(&browser, ADMIN_PASSWORD).await;
    wait_for(
        &browser,
        "the overview",
        "//article[@data-service='echo' and @data-state='running']",
    )
    .await;

    // Live data: bytes on an open connection, and a stopped service.
    let mut echo = TcpStream::connect(served.addr(ServiceKind::Echo))
        .await
        .unwrap();
    echo_bytes(&mut echo, 4096).await;
    let stop = wait_for(
        &browser,
        "time's stop button",
        "//article[@data-service='time']//button[@data-action='stop' and not(@disabled)]",
    )
    .await;
    stop.click().await.unwrap();
    wait_for(
        &browser,
        "time stopped",
        "//article[@data-service='time' and @data-state='stopped']",
    )
    .await;
    wait_for(
        &browser,
        "echo's bytes",
        "//article[@data-service='echo']//dd[@data-field='bytes_in' and .!='0 B']",
    )
    .await;
    check("/").await;
    if screen == Screen::Phone {
        assert_tap_targets(&browser, "/").await;
    }

    let small = dir.path().join("small.txt");
    std::fs::write(&small, "checked by axe\n").unwrap();
    let pages = [
        (
            "/connections",
            "//tr[@data-service='echo'][td[@data-field='bytes_in' and .!='0 B']]",
        ),
        ("/traffic", "//div[@id='chart']//canvas"),
        ("/send", "//textarea[@id='send-text']"),
        ("/files", "//input[@id='file-input']"),
        ("/console", "//input[@id='exec-input']"),
        ("/tokens", "//form[@id='token-form']"),
        (
            "/services",
            "//form[@id='instance-form']//input[@name='listen']",
        ),
        ("/audit", "//table[@id='audit']//tbody/tr"),
        ("/captures", "//h1[.='Captures']"),
        ("/stats", "//table[@id='stats']//tr[@data-instance='echo']"),
        ("/chat", "//p[@id='chat-none']"),
        ("/tutorials", "//table[@id='tutorials']//tbody/tr"),
    ];
    for (path, ready) in pages {
        browser.goto(&format!("{base}{path}")).await.unwrap();
        let marker = wait_for(&browser, path, ready).await;
        // What an action adds: results, code, tables, toasts.
        match path {
            "/send" => {
                click(&browser, "send-button").await;
                wait_for(&browser, "the reply", "//code[@id='send-reply' and .!='']").await;
                click(&browser, "sticky-button").await;
                wait_for(
                    &browser,
                    "four framed messages",
                    "//div[@id='sticky-framed']//ol[@data-field='messages' and count(li) = 4]",
                )
                .await;
            }
            "/files" => {
                marker.send_keys(small.to_str().unwrap()).await.unwrap();
                wait_for(
                    &browser,
                    "the file listed",
                    "//table[@id='files']//tr[@data-name='small.txt']",
                )
                .await;
                wait_for(
                    &browser,
                    "the compare panel",
                    "//div[@id='put-compare' and not(@hidden)]",
                )
                .await;
            }
            "/console" => {
                click(&browser, "exec-run").await;
                wait_for(
                    &browser,
                    "exit 0",
                    "//p[@id='exec-status' and @data-state='ok']",
                )
                .await;
                // A past command comes back from the history by keyboard:
                // each is a button, and Enter on it fills the line.
                let line = browser.find(Locator::Id("exec-input")).await.unwrap();
                type_into(&line, "uptime").await;
                let past = wait_for(
                    &browser,
                    "the history's button",
                    "//ol[@id='exec-history']/li/button[code='date']",
                )
                .await;
                past.send_keys("\u{e007}").await.unwrap(); // WebDriver's Enter key
                assert_eq!(line.prop("value").await.unwrap().as_deref(), Some("date"));
            }
            "/tokens" => {
                let name = browser.find(Locator::Id("token-name")).await.unwrap();
                type_into(&name, "axe").await;
                click(&browser, "token-create").await;
                wait_for(
                    &browser,
                    "the new token",
                    "//div[@id='token-new' and not(@hidden)]/pre[starts-with(., 'sbt_')]",
                )
                .await;
                // The same name again: refused, in an error toast.
                type_into(&name, "axe").await;
                click(&browser, "token-create").await;
                wait_for(
                    &browser,
                    "the error toast",
                    "//div[@id='toast' and not(@hidden) and @data-kind='error']",
                )
                .await;
            }
            _ => {}
        }
        check(path).await;
        if screen == Screen::Phone {
            assert_tap_targets(&browser, path).await;
        }
        if path == "/tokens" {
            // An error stays up, through both checks, until dismissed.
            assert!(
                displayed(&browser, "toast").await,
                "the error toast went by itself"
            );
            click(&browser, "toast-close").await;
            assert!(
                !displayed(&browser, "toast").await,
                "the error toast dismissed"
            );
        }
    }
    // The wire inspector, reached from the connection's row, with its
    // segments drawn.
    browser.goto(&format!("{base}/connections")).await.unwrap();
    // Followed by its address: the live table's redraws can leave a found
    // link stale before a click lands.
    // The link is read again when a redraw replaced it between the find
    // and the read (a stale element), a bounded number of times.
    let mut tries = 0;
    let link = loop {
        let found = wait_for(
            &browser,
            "echo's Inspect link",
            "//tr[@data-service='echo']//a[@data-inspect]",
        )
        .await;
        match found.attr("href").await {
            Ok(href) => break href.expect("the link has an address"),
            Err(e) if tries < 20 => {
                tries += 1;
                eprintln!("the Inspect link went stale ({e}); reading it again");
            }
            Err(e) => panic!("the Inspect link stayed stale: {e}"),
        }
    };
    browser.goto(&format!("{base}{link}")).await.unwrap();
    wait_for(
        &browser,
        "the inspector's segments",
        "//ol[@id='inspect-segments']/li[@data-dir='out']",
    )
    .await;
    check("/inspect").await;
    if screen == Screen::Phone {
        assert_tap_targets(&browser, "/inspect").await;
    }
    drop(echo);
    eprintln!(
        "axe-core: {} violation(s) on {checks} page checks{suffix}",
        violations.len()
    );
    assert!(
        violations.is_empty(),
        "{} axe-core violation(s):\n{}",
        violations.len(),
        violations.join("\n")
    );
    browser.close().await.unwrap();
}

#[tokio::test]
async fn every_page_passes_axe_in_light_and_dark_on_a_desktop() {
    assert_no_axe_violations(Screen::Desktop).await;
}

#[tokio::test]
async fn every_page_passes_axe_in_light_and_dark_on_a_phone() {
    assert_no_axe_violations(Screen::Phone).await;
}

#[tokio::test]
async fn the_inspector_follows_a_raw_connections_bytes_live() {
    let Some(Dashboard {
        served,
        browser,
        base,
        data_dir: _,
        dir: _dir,
        _driver,
    }) = Dashboard::open(Screen::Desktop).await
    else {
        return;
    };
    browser.goto(&format!("{base}/login")).await.unwrap();
    sign_in(&browser, ADMIN_PASSWORD).await;
    wait_for(
        &browser,
        "the overview",
        "//article[@data-service='echo' and @data-state='running']",
    )
    .await;
    // A raw TCP connection made here, captured (echo has capture = true).
    let mut echo = TcpStream::connect(served.addr(ServiceKind::Echo))
        .await
        .unwrap();
    echo.write_all(b"hello, inspector").await.unwrap();
    let mut reply = [0u8; 16];
    echo.read_exact(&mut reply).await.unwrap();
    let peer = echo.local_addr().unwrap().to_string();
    browser.goto(&format!("{base}/connections")).await.unwrap();
    // Followed by its address, not clicked: the live table redraws its
    // rows every second, which can leave a found element stale.
    let link = wait_for(
        &browser,
        "our connection's Inspect link",
        &format!("//tr[td[normalize-space()='{peer}']]//a[@data-inspect]"),
    )
    .await
    .attr("href")
    .await
    .unwrap()
    .expect("the link has an address");
    browser.goto(&format!("{base}{link}")).await.unwrap();
    wait_for(
        &browser,
        "the warning about secrets",
        "//p[@id='inspect-warning' and contains(., 'passwords')]",
    )
    .await;
    let segment = |dir: &str, text: &str| {
        format!(
            "//ol[@id='inspect-segments']/li[@data-dir='{dir}']\
             [.//pre[@data-field='text' and .='{text}']]"
        )
    };
    wait_for(&browser, "the request", &segment("in", "hello, inspector")).await;
    wait_for(&browser, "the reply", &segment("out", "HELLO, INSPECTOR")).await;
    // Hex beside the text, and the length in the block's head.
    wait_for(
        &browser,
        "the request in hex",
        "//li[@data-dir='in'][.//span[@data-field='len' and .='16 B']]\
         //pre[@data-field='hex' and starts-with(., '68 65 6c 6c 6f')]",
    )
    .await;

    // Live: more bytes while the page is open.
    echo.write_all(b"more").await.unwrap();
    let mut more = [0u8; 4];
    echo.read_exact(&mut more).await.unwrap();
    wait_for(&browser, "the new reply", &segment("out", "MORE")).await;

    // Search by hex: "MORE" is 4d4f5245; the rest is hidden.
    type_into(
        &browser.find(Locator::Id("inspect-search")).await.unwrap(),
        "4d4f5245",
    )
    .await;
    wait_for(
        &browser,
        "only the match shown",
        "//ol[@id='inspect-segments'][li[@data-dir='in' and @hidden]]\
         /li[@data-dir='out' and not(@hidden)][.//pre[@data-field='text' and .='MORE']]",
    )
    .await;
    screenshot(&browser, "14-inspect").await;
    type_into(
        &browser.find(Locator::Id("inspect-search")).await.unwrap(),
        "",
    )
    .await;

    // Pause holds the view; resuming catches up, the close included.
    click(&browser, "inspect-pause").await;
    wait_for(
        &browser,
        "paused",
        "//button[@id='inspect-pause' and @aria-pressed='true']",
    )
    .await;
    echo.write_all(b"later").await.unwrap();
    let mut later = [0u8; 5];
    echo.read_exact(&mut later).await.unwrap();
    drop(echo);
    click(&browser, "inspect-pause").await;
    wait_for(&browser, "what came while paused", &segment("in", "later")).await;
    wait_for(
        &browser,
        "the connection closed",
        "//span[@id='inspect-state' and .='closed']",
    )
    .await;
    click(&browser, "inspect-top").await;

    // Replay it to echo again: the same replies, said equal, shown beside
    // the recorded ones.
    click(&browser, "replay-run").await;
    wait_for(
        &browser,
        "the replay's verdict",
        "//p[@id='replay-summary' and @data-equal='true' and contains(., 'equal the recorded')]",
    )
    .await;
    wait_for(
        &browser,
        "the new replies",
        "//pre[@id='replay-replies' and contains(., 'HELLO, INSPECTOR') and contains(., 'LATER')]",
    )
    .await;
    browser.close().await.unwrap();
}

/// The text an instance's row shows as its address.
async fn row_address(browser: &Client, name: &str) -> String {
    wait_for(
        browser,
        "the instance's row",
        &format!("//tr[@data-instance='{name}']/td[3]"),
    )
    .await
    .text()
    .await
    .unwrap()
    .trim()
    .to_owned()
}

/// One round trip of `line` through `addr`; what came back.
async fn through(addr: &str, line: &[u8]) -> Vec<u8> {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(line).await.unwrap();
    let mut reply = vec![0u8; line.len()];
    guard("the reply", conn.read_exact(&mut reply))
        .await
        .unwrap();
    reply
}

#[tokio::test]
async fn a_tcp_proxy_is_added_used_edited_and_removed_from_the_services_page() {
    let Some(Dashboard {
        served,
        browser,
        base,
        data_dir,
        dir: _dir,
        _driver,
    }) = Dashboard::open(Screen::Desktop).await
    else {
        return;
    };
    browser.goto(&format!("{base}/login")).await.unwrap();
    sign_in(&browser, ADMIN_PASSWORD).await;
    wait_for(
        &browser,
        "the overview",
        "//article[@data-service='echo' and @data-state='running']",
    )
    .await;
    browser.goto(&format!("{base}/services")).await.unwrap();
    wait_for(
        &browser,
        "the form's fields",
        "//form[@id='instance-form']//input[@name='listen']",
    )
    .await;
    type_into(
        &browser.find(Locator::Id("instance-name")).await.unwrap(),
        "front",
    )
    .await;
    browser
        .find(Locator::Css("#instance-kind option[value='tcp-proxy']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let upstream = wait_for(
        &browser,
        "the proxy's fields",
        "//form[@id='instance-form']//input[@name='upstream']",
    )
    .await;
    type_into(&upstream, &served.addr(ServiceKind::Echo)).await;
    let listen = browser
        .find(Locator::XPath(
            "//form[@id='instance-form']//input[@name='listen']",
        ))
        .await
        .unwrap();
    // A port in use (exec's: echo's own would be refused first as a loop,
    // the proxy listening where it sends): the error shows at the field,
    // and nothing is added.
    type_into(&listen, &served.addr(ServiceKind::Exec)).await;
    click(&browser, "instance-save").await;
    wait_for(
        &browser,
        "the error at the address",
        "//span[@data-error-for='listen' and not(@hidden) and contains(., 'address in use')]",
    )
    .await;
    type_into(&listen, "127.0.0.1:0").await;
    click(&browser, "instance-save").await;
    // Through the proxy to echo, on the address the page shows.
    let addr = row_address(&browser, "front").await;
    assert_eq!(through(&addr, b"from the page").await, b"FROM THE PAGE");
    let kept = std::fs::read_to_string(data_dir.join("services.toml")).unwrap();
    assert!(
        kept.contains("[services.front]") && kept.contains("tcp-proxy"),
        "{kept}"
    );
    screenshot(&browser, "12-services-added").await;

    // Edited: a new upstream that answers differently.
    let other = switchboard::service::listen::bind_inet(([127, 0, 0, 1], 0).into()).unwrap();
    let other_addr = other.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = other.accept().await {
            let mut buf = [0u8; 5];
            if conn.read_exact(&mut buf).await.is_ok() {
                let _ = conn.write_all(b"other").await;
            }
        }
    });
    browser
        .find(Locator::XPath("//button[@data-edit='front']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        &browser,
        "the edit form",
        "//h2[@id='instance-form-title' and .='Edit front']",
    )
    .await;
    let upstream = browser
        .find(Locator::XPath(
            "//form[@id='instance-form']//input[@name='upstream']",
        ))
        .await
        .unwrap();
    type_into(&upstream, &other_addr).await;
    click(&browser, "instance-save").await;
    wait_for(
        &browser,
        "the page again",
        "//h2[@id='instance-form-title' and .='Add an instance']",
    )
    .await;
    let addr = row_address(&browser, "front").await;
    assert_eq!(through(&addr, b"hello").await, b"other");
    let kept = std::fs::read_to_string(data_dir.join("services.toml")).unwrap();
    assert!(kept.contains(&other_addr), "{kept}");

    browser
        .find(Locator::XPath("//button[@data-remove='front']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.accept_alert().await.unwrap();
    wait_for(
        &browser,
        "the row gone",
        "//table[@id='instances' and not(.//tr[@data-instance='front'])]",
    )
    .await;
    let kept = std::fs::read_to_string(data_dir.join("services.toml")).unwrap();
    assert!(!kept.contains("front"), "{kept}");
}

#[tokio::test]
async fn send_compares_three_paths_and_helps_with_time_formats_and_length_prefixes() {
    let Some(Dashboard {
        served: _served,
        browser,
        base,
        data_dir: _,
        dir: _dir,
        _driver,
    }) = Dashboard::open(Screen::Desktop).await
    else {
        return;
    };
    sign_in_to_overview(&browser, &base).await;
    browser.goto(&format!("{base}/send")).await.unwrap();
    wait_for(&browser, "the page's script", "//body[@data-ready='true']").await;
    assert!(!displayed(&browser, "compare-result").await);

    // Five messages over each path: three medians, one unit, 15 dots.
    let repeat = wait_for(&browser, "the repeat field", "//input[@id='send-repeat']").await;
    assert_eq!(repeat.prop("value").await.unwrap().as_deref(), Some("20"));
    type_into(&repeat, "5").await;
    click(&browser, "compare-button").await;
    wait_for(
        &browser,
        "the comparison",
        "//div[@id='compare-result' and not(@hidden)]",
    )
    .await;
    let mut units = Vec::new();
    for path in ["http", "ws", "cs"] {
        let median = text_at(
            &browser,
            &format!("//tr[@data-path='{path}']/td[@data-field='median']"),
        )
        .await;
        let (value, unit) = median
            .split_once(' ')
            .unwrap_or_else(|| panic!("{path}: {median:?}"));
        assert!(
            value.parse::<f64>().is_ok_and(|v| v > 0.0),
            "{path}: {median:?}"
        );
        units.push(unit.to_owned());
        let ratio = text_at(
            &browser,
            &format!("//tr[@data-path='{path}']/td[@data-field='ratio']"),
        )
        .await;
        assert!(ratio.ends_with('×'), "{path}: {ratio:?}");
    }
    assert!(units.iter().all(|u| *u == units[0]), "one unit: {units:?}");
    assert_eq!(
        text_at(
            &browser,
            "//div[@id='compare-result']//span[@data-field='n']"
        )
        .await,
        "5"
    );
    wait_for(
        &browser,
        "15 dots in an accessible chart",
        "//*[local-name()='svg' and @id='compare-chart' and @role='img' and count(*[local-name()='circle']) = 15]",
    )
    .await;
    screenshot(&browser, "6b-send-three-paths").await;

    // `time`: the field asks for a strftime format, and examples fill it.
    let time = browser
        .find(Locator::XPath(
            "//select[@id='send-service']/option[@value='time']",
        ))
        .await
        .unwrap();
    time.click().await.unwrap();
    wait_for(
        &browser,
        "the format help",
        "//div[@id='time-help' and not(@hidden)]",
    )
    .await;
    let text = browser.find(Locator::Id("send-text")).await.unwrap();
    assert_eq!(
        text.attr("placeholder").await.unwrap().as_deref(),
        Some("%Y-%m-%d %H:%M:%S")
    );
    browser
        .find(Locator::XPath(
            "//div[@id='time-examples']/button[@data-format='%H:%M:%S']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        text.prop("value").await.unwrap().as_deref(),
        Some("%H:%M:%S")
    );
    click(&browser, "send-button").await;
    wait_for(
        &browser,
        "a formatted time",
        "//code[@id='send-reply' and string-length(.) = 8 and substring(., 3, 1) = ':']",
    )
    .await;

    // The sticky lab draws each length prefix as a chip.
    click(&browser, "sticky-button").await;
    wait_for(
        &browser,
        "hello's length as a chip",
        "//div[@id='sticky-framed']//ol[@data-field='reads']//span[contains(@class, 'prefix') and .='[00 00 00 05]']",
    )
    .await;
}

#[tokio::test]
async fn the_files_list_follows_uploads_and_deletes_without_a_reload() {
    let Some(Dashboard {
        served,
        browser,
        base,
        data_dir,
        dir,
        _driver,
    }) = Dashboard::open(Screen::Desktop).await
    else {
        return;
    };
    sign_in_to_overview(&browser, &base).await;
    browser.goto(&format!("{base}/files")).await.unwrap();
    wait_for(&browser, "the page's script", "//body[@data-ready='true']").await;
    wait_for(
        &browser,
        "the live stream",
        "//*[@id='live-status' and .='live']",
    )
    .await;
    // Marks this page load: a reload would lose it.
    browser
        .execute("document.body.dataset.loadMark = 'same';", vec![])
        .await
        .unwrap();

    // A file stored by another client (straight into the folder's service)
    // shows up from its event alone.
    let mut client = switchboard::client::FilesClient::connect(
        &served.addr(ServiceKind::Files),
        TEST_KEY.as_bytes(),
        GUARD,
    )
    .await
    .unwrap();
    let body = b"from a script".to_vec();
    client
        .put("script.txt", body.len() as u64, &body[..], |_| {})
        .await
        .unwrap();
    wait_for(
        &browser,
        "a file stored elsewhere, listed live",
        "//table[@id='files']//tr[@data-name='script.txt']",
    )
    .await;

    // Uploaded through the page, listed with a short hash and the full one on hover.
    let upload = dir.path().join("doomed.txt");
    std::fs::write(&upload, b"short-lived").unwrap();
    let input = wait_for(&browser, "the file input", "//input[@id='file-input']").await;
    input.send_keys(upload.to_str().unwrap()).await.unwrap();
    let hash = switchboard::wire::hex(&sha2::Sha256::digest(b"short-lived"));
    wait_for(
        &browser,
        "the upload listed with its short hash",
        &format!(
            "//table[@id='files']//tr[@data-name='doomed.txt']/td[@title='{hash}']/code[.='{}']",
            &hash[..12]
        ),
    )
    .await;
    // The Python is there, folded away.
    wait_for(
        &browser,
        "the Python snippet, collapsed",
        "//details[@id='put-python-box' and not(@open)]",
    )
    .await;

    // The filter.
    let search = browser.find(Locator::Id("files-search")).await.unwrap();
    type_into(&search, "doom").await;
    wait_for(
        &browser,
        "only the match",
        "//table[@id='files']/tbody[count(tr) = 1]/tr[@data-name='doomed.txt']",
    )
    .await;
    browser
        .execute(
            "const s = document.getElementById('files-search'); s.value = ''; s.dispatchEvent(new Event('input'));",
            vec![],
        )
        .await
        .unwrap();
    wait_for(
        &browser,
        "both again",
        "//table[@id='files']/tbody[count(tr) = 2]",
    )
    .await;

    // Deleted from the page (after the confirmation): gone from list and disk.
    browser
        .find(Locator::XPath(
            "//tr[@data-name='doomed.txt']//button[@data-action='delete']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.accept_alert().await.unwrap();
    wait_for(
        &browser,
        "the deleted file gone from the list",
        "//table[@id='files']/tbody[count(tr) = 1 and not(tr[@data-name='doomed.txt'])]",
    )
    .await;
    assert!(!data_dir.join("files/doomed.txt").exists());

    // Deleted by someone else (the API with this session): the page hears it.
    let gone = browser
        .execute_async(
            "const done = arguments[0]; \
             fetch('/api/v1/files/script.txt', {method: 'DELETE', headers: {'X-CSRF-Token': document.querySelector('meta[name=\"csrf-token\"]').content}}) \
               .then((r) => done(r.status), (e) => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(gone, serde_json::json!(204));
    wait_for(
        &browser,
        "the other delete, heard live",
        "//table[@id='files']/tbody[count(tr) = 0]",
    )
    .await;
    wait_for(
        &browser,
        "the same page load",
        "//body[@data-load-mark='same']",
    )
    .await;
    screenshot(&browser, "8b-files-live").await;
}

#[tokio::test]
async fn traffic_reads_in_binary_ticks_per_service_on_either_scale_and_its_log_pauses() {
    let Some(Dashboard {
        served,
        browser,
        base,
        data_dir: _,
        dir: _dir,
        _driver,
    }) = Dashboard::open(Screen::Desktop).await
    else {
        return;
    };
    sign_in_to_overview(&browser, &base).await;
    browser.goto(&format!("{base}/traffic")).await.unwrap();
    wait_for(
        &browser,
        "the live stream",
        "//*[@id='live-status' and .='live']",
    )
    .await;

    // Linear: whole numbers of one binary unit (20 KiB/s, never 48.8).
    // Enough through echo that the axis runs into tens of KiB/s; the chart
    // takes one sample a second, so on a busy machine a burst can fall
    // between samples: send again until one lands (ten times at most).
    let mut echo = TcpStream::connect(served.addr(ServiceKind::Echo))
        .await
        .unwrap();
    let in_kib = "//div[@id='chart' and contains(@data-y-ticks, '0 KiB/s')]";
    let mut ticks = None;
    for _ in 0..10 {
        echo_bytes(&mut echo, 300 * 1024).await;
        if let Ok(found) = browser
            .wait()
            .at_most(std::time::Duration::from_secs(3))
            .for_element(Locator::XPath(in_kib))
            .await
        {
            ticks = Some(found);
            break;
        }
    }
    let ticks = ticks.expect("tens of KiB/s on the axis after ten bursts");
    let whole = |labels: &str| {
        labels.split('|').all(|l| {
            l.split_once(' ').is_some_and(|(n, unit)| {
                n.parse::<u64>().is_ok() && ["B/s", "KiB/s", "MiB/s", "GiB/s"].contains(&unit)
            })
        })
    };
    let linear = ticks.attr("data-y-ticks").await.unwrap().unwrap();
    assert!(whole(&linear), "{linear}");

    // One service: its in and out as two lines.
    browser
        .find(Locator::XPath(
            "//select[@id='traffic-view']/option[@value='echo']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        &browser,
        "echo in and out in the legend",
        "//div[@id='chart']//*[contains(@class, 'u-legend')][.//*[.='echo in'] and .//*[.='echo out']]",
    )
    .await;
    // Log scale: powers of two, from 1 B/s up.
    click(&browser, "traffic-log").await;
    let ticks = wait_for(
        &browser,
        "log ticks",
        &format!("//div[@id='chart' and @data-y-ticks != '{linear}']"),
    )
    .await;
    let log = ticks.attr("data-y-ticks").await.unwrap().unwrap();
    assert!(log.starts_with("1 B/s"), "{log}");
    assert!(whole(&log), "{log}");
    for label in log.split('|') {
        let n: u64 = label.split(' ').next().unwrap().parse().unwrap();
        assert!(n.is_power_of_two(), "{log}");
    }
    screenshot(&browser, "5b-traffic-log").await;

    // The log's time: local 24-hour with milliseconds, UTC on hover.
    let time = wait_for(
        &browser,
        "a logged event",
        "//table[@id='log']//tr[1]/td[1]",
    )
    .await;
    let shown = time.text().await.unwrap();
    assert!(
        shown.len() == 12 && shown.as_bytes()[2] == b':' && shown.as_bytes()[8] == b'.',
        "{shown:?}"
    );
    assert!(time.attr("title").await.unwrap().unwrap().ends_with(" UTC"));

    // Paused, new events are counted, not shown; resumed, they are shown.
    click(&browser, "log-pause").await;
    let rows_before = browser
        .find_all(Locator::XPath("//table[@id='log']/tbody/tr"))
        .await
        .unwrap()
        .len();
    let probe = TcpStream::connect(served.addr(ServiceKind::Echo))
        .await
        .unwrap();
    let peer = probe.local_addr().unwrap().to_string();
    wait_for(
        &browser,
        "new events counted while paused",
        "//*[@id='log-new' and not(@hidden) and contains(., ' new') and not(starts-with(., '0 '))]",
    )
    .await;
    let rows_paused = browser
        .find_all(Locator::XPath("//table[@id='log']/tbody/tr"))
        .await
        .unwrap()
        .len();
    assert_eq!(rows_paused, rows_before, "the log held still");
    click(&browser, "log-pause").await;
    wait_for(
        &browser,
        "the held event shown on resume",
        &format!("//table[@id='log']//tr[@data-type='opened'][td[contains(., '{peer}')]]"),
    )
    .await;
    drop(probe);
}
