//! The dashboard as people meet it between pages, in a real headless
//! Chromium (chromedriver) against the real binary: sign-in returns to the
//! page asked for and never leaves the site; while the server is down the
//! pages say "switchboard is not answering — retrying" (never the
//! browser's "Failed to fetch"); on a 390 px phone every table reads as
//! cards with its actions in view, a toast covers no control, and text
//! fields' borders are at least 3:1 against what is behind them. axe-core
//! finds nothing on the phone's card tables.
//!
//! Needs `chromium`, `chromedriver` and axe-core (`SWITCHBOARD_AXE_JS`, as
//! scripts/test.sh sets it). Without them the tests fail and say so,
//! unless `SWITCHBOARD_SKIP_BROWSER=1` (or `SWITCHBOARD_SKIP_AXE=1`).

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use fantoccini::{Client, ClientBuilder, Locator};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use common::{ADMIN_PASSWORD, GUARD, Served, TEST_KEY, guard};
use switchboard::kind::ServiceKind;

/// What the pages say while the server does not answer.
const NOT_ANSWERING: &str = "switchboard is not answering — retrying";

/// chromedriver on a free loopback port, in a process group of its own
/// (its Chromium joins it); dropping this kills the group.
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
                    &format!(
                        "cannot run chromedriver ({e}): install chromium and \
                         chromium-driver (scripts/test.sh does)"
                    ),
                );
                return None;
            }
        };
        let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
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

    async fn browser(&self, profile: &std::path::Path, phone: bool) -> Client {
        let mut caps = serde_json::Map::new();
        let mut options = serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
        });
        if phone {
            // A 390×844 phone, as tests/browser.rs emulates it.
            options["mobileEmulation"] = serde_json::json!({
                "deviceMetrics": {
                    "width": 390, "height": 844, "pixelRatio": 3.0,
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
            common::skip_allowed(
                "AXE",
                &format!(
                    "cannot read axe-core at {} ({e}): run scripts/test.sh, or point \
                     SWITCHBOARD_AXE_JS at axe.min.js",
                    path.display()
                ),
            );
            None
        }
    }
}

/// axe-core's violations on the current page, one line each.
async fn axe_violations(browser: &Client, axe: &str) -> Vec<String> {
    // Run as the script body: outside the page's CSP, which forbids eval.
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
            Err(e) if e.to_string().contains("navigation") && !left.is_zero() => continue,
            other => break other,
        }
    };
    match found {
        Ok(found) => found,
        Err(e) => {
            let text = match browser.find(Locator::Css("body")).await {
                Ok(body) => body.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            let text: String = text.chars().take(800).collect();
            panic!("waiting for {what} ({xpath}): {e}\nshowing:\n{text}")
        }
    }
}

async fn click(browser: &Client, xpath: &str) {
    browser
        .find(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("no {xpath}: {e}"))
        .click()
        .await
        .unwrap();
}

/// The dashboard binary with the built-in services, and a browser.
async fn open(dir: &std::path::Path, driver: &Driver, phone: bool) -> (Served, Client, String) {
    let served = Served::start(
        &dir.join("data"),
        ServiceKind::BUILTIN,
        &[
            ("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("SWITCHBOARD_KEY", TEST_KEY),
        ],
    )
    .await;
    let base = served.web_url();
    let browser = driver.browser(&dir.join("profile"), phone).await;
    (served, browser, base)
}

/// Fills and sends the sign-in form of the page the browser is on.
async fn sign_in(browser: &Client) {
    wait_for(
        browser,
        "the sign-in page's script",
        "//body[@data-page='login' and @data-ready='true']",
    )
    .await;
    let user = wait_for(browser, "the sign-in form", "//input[@id='username']").await;
    user.send_keys("admin").await.unwrap();
    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(ADMIN_PASSWORD)
        .await
        .unwrap();
    click(browser, "//button[@type='submit']").await;
}

/// The page's path, query and fragment.
async fn here(browser: &Client) -> String {
    let url = browser.current_url().await.unwrap();
    let mut out = url.path().to_owned();
    if let Some(q) = url.query() {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[tokio::test]
async fn sign_in_returns_to_the_page_asked_for_and_a_server_down_is_said_plainly() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (served, browser, base) = open(dir.path(), &driver, false).await;

    // Asked for a page without a session: the sign-in page, then that page.
    browser
        .goto(&format!("{base}/connections?service=echo"))
        .await
        .unwrap();
    wait_for(&browser, "the sign-in page", "//form[@id='sign-in']").await;
    assert_eq!(
        here(&browser).await,
        "/login?next=/connections%3Fservice%3Decho"
    );
    sign_in(&browser).await;
    wait_for(
        &browser,
        "the Connections page",
        "//body[@data-page='connections' and @data-ready='true']",
    )
    .await;
    assert_eq!(here(&browser).await, "/connections?service=echo");

    // A `next` that leaves the site is not followed: the overview instead.
    for evil in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example/",
    ] {
        click(&browser, "//button[@id='sign-out']").await;
        wait_for(&browser, "signed out", "//form[@id='sign-in']").await;
        let url = format!(
            "{base}/login?next={}",
            evil.replace('/', "%2F")
                .replace(':', "%3A")
                .replace('\\', "%5C")
        );
        browser.goto(&url).await.unwrap();
        sign_in(&browser).await;
        wait_for(
            &browser,
            "the overview",
            "//body[@data-page='overview' and @data-ready='true']",
        )
        .await;
        let url = browser.current_url().await.unwrap();
        assert_eq!(url.as_str().trim_end_matches('/'), base, "{evil}");
    }

    // The server goes away under an open page: what the page says.
    browser.goto(&format!("{base}/send")).await.unwrap();
    wait_for(
        &browser,
        "the Send page",
        "//body[@data-page='send' and @data-ready='true']",
    )
    .await;
    wait_for(
        &browser,
        "live",
        "//*[@id='live-status' and @data-state='live']",
    )
    .await;
    let (status, _) = served.terminate().await;
    assert!(status.success(), "{status}");
    let said = format!("//*[@id='toast-text' and text()='{NOT_ANSWERING}']");
    wait_for(
        &browser,
        "the live stream's word that the server is down",
        &said,
    )
    .await;
    // Dismissed, then an action: the same words, not the browser's.
    click(&browser, "//button[@id='toast-close']").await;
    click(&browser, "//button[@id='send-button']").await;
    wait_for(&browser, "the Send button's failure", &said).await;
    let body = browser
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!body.contains("Failed to fetch"), "{body}");
}

/// Each visible text field's border against the background behind it:
/// `(what, ratio)` for every one under 3:1.
async fn weak_field_borders(browser: &Client) -> Vec<String> {
    let found = browser
        .execute(
            "const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
             const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
               .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
             const behind = (el) => { for (let e = el.parentElement; e; e = e.parentElement) {
               const c = rgb(getComputedStyle(e).backgroundColor); if (c.length === 3 || c[3] > 0) return c; }
               return [255, 255, 255]; };
             const weak = [];
             for (const f of document.querySelectorAll('input:not([type=checkbox]):not([type=radio]):not([type=file]):not([type=hidden]), select, textarea')) {
               if (!f.getClientRects().length) continue;
               const a = lum(rgb(getComputedStyle(f).borderTopColor)), b = lum(behind(f));
               const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
               if (ratio < 3) weak.push(`${f.id || f.name || f.tagName}: ${ratio.toFixed(2)}:1`);
             }
             return weak;",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(found).unwrap()
}

#[tokio::test]
async fn on_a_phone_tables_are_cards_with_their_actions_and_toasts_cover_nothing() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let Some(axe) = axe_source() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (served, browser, base) = open(dir.path(), &driver, true).await;
    browser.goto(&format!("{base}/login")).await.unwrap();
    wait_for(&browser, "the sign-in page", "//form[@id='sign-in']").await;
    assert_eq!(
        weak_field_borders(&browser).await,
        Vec::<String>::new(),
        "/login"
    );
    sign_in(&browser).await;
    wait_for(
        &browser,
        "the overview",
        "//body[@data-page='overview' and @data-ready='true']",
    )
    .await;

    // A connection to list, held open.
    let mut echo = TcpStream::connect(served.addr("echo")).await.unwrap();
    echo.write_all(b"hello").await.unwrap();
    let mut reply = [0u8; 5];
    echo.read_exact(&mut reply).await.unwrap();
    let peer = echo.local_addr().unwrap().to_string();

    browser.goto(&format!("{base}/connections")).await.unwrap();
    let row = format!("//table[@id='connections']//tr[td[normalize-space()='{peer}']]");
    wait_for(&browser, "our connection's row", &row).await;
    let layout = browser
        .execute(
            "const [xpath] = arguments;
             const row = document.evaluate(xpath, document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
             const actions = [...row.querySelectorAll('a, button')].map((a) => a.getBoundingClientRect());
             return {
               display: getComputedStyle(row).display,
               labels: [...row.cells].map((c) => c.dataset.label),
               page: [document.documentElement.scrollWidth, innerWidth],
               actions: actions.length,
               inView: actions.every((r) => r.left >= 0 && r.right <= innerWidth && r.width > 0),
             };",
            vec![row.clone().into()],
        )
        .await
        .unwrap();
    assert_eq!(layout["display"], "block", "{layout}");
    assert!(
        layout["labels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "Peer"),
        "{layout}"
    );
    assert!(
        layout["page"][0].as_u64() <= layout["page"][1].as_u64(),
        "sideways scroll: {layout}"
    );
    assert!(
        layout["actions"].as_u64().unwrap() >= 2,
        "Inspect and Close: {layout}"
    );
    assert_eq!(layout["inView"], true, "{layout}");
    let violations = axe_violations(&browser, &axe).await;
    assert!(
        violations.is_empty(),
        "axe on the phone's card table:\n{}",
        violations.join("\n")
    );

    browser.goto(&format!("{base}/send")).await.unwrap();
    wait_for(
        &browser,
        "the Send page",
        "//body[@data-page='send' and @data-ready='true']",
    )
    .await;
    assert_eq!(
        weak_field_borders(&browser).await,
        Vec::<String>::new(),
        "/send"
    );
    // An error toast (the server gone) next to the buttons it is about.
    let (status, _) = served.terminate().await;
    assert!(status.success(), "{status}");
    browser
        .execute(
            "document.getElementById('sticky-button').scrollIntoView({ block: 'end' });",
            vec![],
        )
        .await
        .unwrap();
    click(&browser, "//button[@id='sticky-button']").await;
    wait_for(
        &browser,
        "the toast",
        &format!("//*[@id='toast-text' and text()='{NOT_ANSWERING}']"),
    )
    .await;
    let covered = browser
        .execute(
            "const t = document.getElementById('toast').getBoundingClientRect();
             const hit = [];
             for (const c of document.querySelectorAll('button, input, select, textarea, a')) {
               if (c.closest('#toast') || !c.getClientRects().length) continue;
               const r = c.getBoundingClientRect();
               if (r.right > t.left && r.left < t.right && r.bottom > t.top && r.top < t.bottom) hit.push(c.id || c.textContent.trim());
             }
             return hit;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(covered, serde_json::json!([]), "the toast covers these");
    drop(echo);
}
