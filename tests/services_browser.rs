//! The Services page and the Captures page in a real headless Chromium
//! (chromedriver), against the real binary: Edit through the typed form
//! keeps every setting the person did not touch (a tcp-proxy's
//! `proxy_protocol` and `connect_timeout_ms` across a change of
//! `idle_timeout_ms`); a row shows running and enabled apart, switches
//! capture on (and a connection is then captured) and opens the
//! instance's log; axe-core finds nothing on the page with the form and
//! the log open.
//!
//! Needs `chromium`, `chromedriver` and axe-core (`SWITCHBOARD_AXE_JS`, as
//! scripts/test.sh sets it). Without them the test fails and says so,
//! unless `SWITCHBOARD_SKIP_BROWSER=1` (or `SWITCHBOARD_SKIP_AXE=1`).

mod common;

use std::path::PathBuf;
use std::process::Stdio;

use fantoccini::{Client, ClientBuilder, Locator};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use common::{ADMIN_PASSWORD, GUARD, Served, TEST_KEY, guard};
use switchboard::kind::ServiceKind;

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

    async fn browser(&self, profile: &std::path::Path) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
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

/// A JSON call made by the page itself (its cookie and CSRF token): the
/// status.
async fn api_in_page(browser: &Client, method: &str, path: &str, body: serde_json::Value) -> u64 {
    let status = browser
        .execute_async(
            "const [method, path, body, done] = arguments;
             const token = document.querySelector('meta[name=\"csrf-token\"]').content;
             fetch(path, { method, headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': token },
                           body: body === null ? undefined : JSON.stringify(body) })
               .then((r) => done(r.status), (e) => done(String(e)));",
            vec![method.into(), path.into(), body],
        )
        .await
        .unwrap();
    status
        .as_u64()
        .unwrap_or_else(|| panic!("{method} {path} from the page: {status}"))
}

/// A GET made by the page itself: the JSON answer.
async fn json_in_page(browser: &Client, path: &str) -> serde_json::Value {
    browser
        .execute_async(
            "const [path, done] = arguments;
             fetch(path).then((r) => r.json()).then(done, (e) => done(String(e)));",
            vec![path.into()],
        )
        .await
        .unwrap()
}

fn screenshots_dir() -> PathBuf {
    #[allow(clippy::disallowed_methods)] // a test's own setting
    let dir = std::env::var_os("SWITCHBOARD_SCREENSHOTS").map_or_else(
        || PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../test-output/screenshots"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("the screenshots folder");
    dir
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("a screenshot");
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).expect("written");
}

/// The real binary with the built-in instances, `env` added, and a
/// browser signed in as the admin on the overview.
struct Open {
    served: Served,
    browser: Client,
    base: String,
    dir: tempfile::TempDir,
    _driver: Driver,
}

async fn open(env: &[(&str, &str)]) -> Option<Open> {
    let driver = Driver::start().await?;
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![
        ("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("SWITCHBOARD_KEY", TEST_KEY),
    ];
    all.extend_from_slice(env);
    let served = Served::start(&dir.path().join("data"), ServiceKind::BUILTIN, &all).await;
    let base = served.web_url();
    let browser = driver.browser(&dir.path().join("profile")).await;
    browser.goto(&format!("{base}/login")).await.unwrap();
    wait_for(&browser, "the page's script", "//body[@data-ready='true']").await;
    let user = wait_for(&browser, "the sign-in form", "//input[@id='username']").await;
    user.send_keys("admin").await.unwrap();
    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(ADMIN_PASSWORD)
        .await
        .unwrap();
    click(&browser, "//button[@type='submit']").await;
    wait_for(&browser, "the overview", "//article[@data-service='echo']").await;
    Some(Open {
        served,
        browser,
        base,
        dir,
        _driver: driver,
    })
}

async fn services_page(o: &Open) {
    o.browser
        .goto(&format!("{}/services", o.base))
        .await
        .unwrap();
    wait_for(
        &o.browser,
        "the page's script",
        "//body[@data-ready='true']",
    )
    .await;
}

#[tokio::test]
async fn editing_a_proxy_in_the_form_keeps_what_the_form_did_not_change() {
    let Some(o) = open(&[]).await else { return };
    let b = &o.browser;
    let made = api_in_page(
        b,
        "POST",
        "/api/v1/services",
        serde_json::json!({"name": "front", "kind": "tcp-proxy", "settings": {
            "listen": "127.0.0.1:0", "upstream": o.served.addr(ServiceKind::Echo),
            "proxy_protocol": "v1", "connect_timeout_ms": 2000}}),
    )
    .await;
    assert_eq!(made, 200);
    services_page(&o).await;
    click(b, "//button[@data-edit='front']").await;
    wait_for(
        b,
        "the edit form",
        "//h2[@id='instance-form-title' and .='Edit front']",
    )
    .await;
    // The form shows what is saved, typed: a select, a number in ms, a switch.
    let protocol = wait_for(
        b,
        "proxy_protocol's select",
        "//select[@name='proxy_protocol']",
    )
    .await;
    assert_eq!(protocol.prop("value").await.unwrap().as_deref(), Some("v1"));
    let timeout = b
        .find(Locator::XPath(
            "//input[@name='connect_timeout_ms' and @type='number']",
        ))
        .await
        .unwrap();
    assert_eq!(
        timeout.prop("value").await.unwrap().as_deref(),
        Some("2000")
    );
    wait_for(
        b,
        "capture as a switch",
        "//input[@name='capture' and @type='checkbox' and @role='switch']",
    )
    .await;
    wait_for(
        b,
        "the unit and default",
        "//span[@id='hint-idle_timeout_ms' and contains(., 'Milliseconds') \
         and contains(., 'default 120000 (2 min)')]",
    )
    .await;
    let idle = b
        .find(Locator::XPath("//input[@name='idle_timeout_ms']"))
        .await
        .unwrap();
    idle.clear().await.unwrap();
    idle.send_keys("30000").await.unwrap();
    screenshot(b, "services-edit-typed-form").await;
    click(b, "//button[@id='instance-save']").await;
    // The message is seen after the reload.
    wait_for(
        b,
        "the saved message",
        "//*[@id='toast' and not(@hidden)][contains(., 'saved front: idle_timeout_ms changed')]",
    )
    .await;
    let kept = std::fs::read_to_string(o.dir.path().join("data/services.toml")).unwrap();
    let table: toml::Table = kept.parse().unwrap();
    let front = &table["services"]["front"];
    assert_eq!(front["proxy_protocol"].as_str(), Some("v1"), "{kept}");
    assert_eq!(
        front["connect_timeout_ms"].as_integer(),
        Some(2000),
        "{kept}"
    );
    assert_eq!(front["idle_timeout_ms"].as_integer(), Some(30000), "{kept}");
}

#[tokio::test]
async fn a_row_shows_running_and_enabled_apart_switches_capture_and_opens_its_log() {
    // `time` off at boot; started by hand below it runs while disabled.
    let Some(o) = open(&[("SWITCHBOARD_TIME_ENABLED", "false")]).await else {
        return;
    };
    let Some(axe) = axe_source() else { return };
    let b = &o.browser;
    assert_eq!(
        api_in_page(
            b,
            "POST",
            "/api/v1/services/time/start",
            serde_json::Value::Null
        )
        .await,
        200
    );
    services_page(&o).await;
    let now = wait_for(b, "time's state", "//span[@data-running='time']").await;
    assert_eq!(now.text().await.unwrap(), "running");
    let boot = b
        .find(Locator::XPath("//td[@data-boot='time']"))
        .await
        .unwrap();
    assert_eq!(boot.text().await.unwrap(), "disabled");
    wait_for(
        b,
        "Enable offered",
        "//button[@data-enable='true' and @data-name='time']",
    )
    .await;
    wait_for(
        b,
        "Stop offered",
        "//button[@data-action='stop' and @data-name='time']",
    )
    .await;

    // Capture on from echo's row, then a conversation is captured.
    let switch = wait_for(
        b,
        "echo's capture switch",
        "//button[@data-capture='echo' and @aria-checked='false']",
    )
    .await;
    switch.click().await.unwrap();
    wait_for(
        b,
        "the switch on",
        "//button[@data-capture='echo' and @aria-checked='true']",
    )
    .await;
    let mut echo = TcpStream::connect(o.served.addr(ServiceKind::Echo))
        .await
        .unwrap();
    echo.write_all(b"row switch\n").await.unwrap();
    let mut got = [0u8; 11];
    guard("echo's answer", echo.read_exact(&mut got))
        .await
        .unwrap();
    drop(echo);
    guard("the capture listed", async {
        loop {
            let list = json_in_page(b, "/api/v1/captures").await;
            let found = list["captures"].as_array().is_some_and(|all| {
                all.iter()
                    .any(|c| c["service"] == "echo" && c["bytes_in"] == 11)
            });
            if found {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    // Kept: the page read again shows it on.
    services_page(&o).await;
    wait_for(
        b,
        "still on",
        "//button[@data-capture='echo' and @aria-checked='true']",
    )
    .await;

    // The log, one click away: the connection and the capture switch.
    click(b, "//button[@data-log='echo']").await;
    wait_for(
        b,
        "echo's log",
        "//section[@id='service-log' and not(@hidden)]//li[contains(., 'connected')]",
    )
    .await;
    wait_for(
        b,
        "its audit line",
        "//ol[@id='service-log-lines']/li[contains(., 'audit: admin')]",
    )
    .await;
    screenshot(b, "services-row-log").await;
    let found = axe_violations(b, &axe).await;
    assert!(
        found.is_empty(),
        "axe on the Services page with the log open:\n{}",
        found.join("\n")
    );
}

/// Whether the page is no wider than its window (nothing past the edge).
async fn fits(browser: &Client) -> (u64, u64) {
    let sizes = browser
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .unwrap();
    (sizes[0].as_u64().unwrap(), sizes[1].as_u64().unwrap())
}

#[tokio::test]
async fn the_captures_page_lists_a_closed_connection_with_inspect_export_and_replay() {
    let Some(o) = open(&[("SWITCHBOARD_ECHO_CAPTURE", "true")]).await else {
        return;
    };
    let Some(axe) = axe_source() else { return };
    let b = &o.browser;
    let mut echo = TcpStream::connect(o.served.addr(ServiceKind::Echo))
        .await
        .unwrap();
    echo.write_all(b"kept after close\n").await.unwrap();
    let mut got = [0u8; 17];
    guard("echo's answer", echo.read_exact(&mut got))
        .await
        .unwrap();
    drop(echo);

    // Reached from the navigation; the closed connection is listed.
    b.set_window_size(1440, 900).await.unwrap();
    services_page(&o).await;
    click(b, "//a[@id='nav-captures']").await;
    wait_for(b, "the page's script", "//body[@data-ready='true']").await;
    let row = guard("the closed capture listed", async {
        loop {
            if let Ok(row) = b
                .find(Locator::XPath(
                    "//tr[@data-instance='echo' and @data-open='false']",
                ))
                .await
            {
                return row;
            }
            b.refresh().await.unwrap();
        }
    })
    .await;
    let text = row.text().await.unwrap();
    assert!(
        text.contains("127.0.0.1") && text.contains("closed") && text.contains("17 B"),
        "{text}"
    );
    let id = row.attr("data-capture-id").await.unwrap().unwrap();
    let export = format!(
        "//tr[@data-capture-id='{id}']//a[@href='/api/v1/connections/{id}/capture.pcapng']"
    );
    wait_for(b, "the pcapng link", &export).await;
    wait_for(
        b,
        "the inspect link",
        &format!("//tr[@data-capture-id='{id}']//a[@href='/inspect/{id}']"),
    )
    .await;
    let found = axe_violations(b, &axe).await;
    assert!(
        found.is_empty(),
        "axe on Captures at 1440:\n{}",
        found.join("\n")
    );
    screenshot(b, "16-captures-1440").await;

    // Replay from the row, to echo again: the same replies.
    click(b, &format!("//button[@data-replay='{id}']")).await;
    wait_for(
        b,
        "the replay's outcome",
        "//p[@id='captures-status' and @data-outcome='equal' and contains(., 'the same as recorded')]",
    )
    .await;
    let found = axe_violations(b, &axe).await;
    assert!(
        found.is_empty(),
        "axe after a replay:\n{}",
        found.join("\n")
    );

    // A phone's width: nothing past the edge, and still no violation.
    b.set_window_size(390, 844).await.unwrap();
    b.refresh().await.unwrap();
    wait_for(b, "the page's script", "//body[@data-ready='true']").await;
    let (page, window) = fits(b).await;
    assert!(
        page <= window,
        "Captures is {page} px wide in a {window} px window"
    );
    let found = axe_violations(b, &axe).await;
    assert!(
        found.is_empty(),
        "axe on Captures at 390:\n{}",
        found.join("\n")
    );
    screenshot(b, "16-captures-390").await;
}

#[tokio::test]
async fn the_stats_table_sorts_by_a_column_and_offers_its_csv() {
    let Some(o) = open(&[]).await else { return };
    let Some(axe) = axe_source() else { return };
    let b = &o.browser;
    // Traffic on exec's port (a line it cannot parse is an error or a
    // refusal there); echo gets bytes.
    let mut echo = TcpStream::connect(o.served.addr(ServiceKind::Echo))
        .await
        .unwrap();
    echo.write_all(b"many bytes for echo\n").await.unwrap();
    let mut got = [0u8; 20];
    guard("echo's answer", echo.read_exact(&mut got))
        .await
        .unwrap();
    b.set_window_size(1440, 900).await.unwrap();
    services_page(&o).await;
    click(b, "//a[@id='nav-stats']").await;
    wait_for(b, "the page's script", "//body[@data-ready='true']").await;
    wait_for(
        b,
        "echo's bytes, formatted by the script",
        "//tr[@data-instance='echo']/td[@data-field='bytes_in' and @data-value='20']",
    )
    .await;
    // Sorted by bytes in, largest first: echo leads.
    click(b, "//button[@data-sort='bytes_in']").await;
    wait_for(
        b,
        "echo first",
        "//th[@aria-sort='descending']//button[@data-sort='bytes_in'] \
         | //table[@id='stats']/tbody/tr[1][@data-instance='echo']",
    )
    .await;
    let first = b
        .find(Locator::XPath("//table[@id='stats']/tbody/tr[1]"))
        .await
        .unwrap()
        .attr("data-instance")
        .await
        .unwrap();
    assert_eq!(first.as_deref(), Some("echo"));
    // Again: smallest first, echo no longer leads.
    click(b, "//button[@data-sort='bytes_in']").await;
    wait_for(
        b,
        "ascending",
        "//th[@aria-sort='ascending']//button[@data-sort='bytes_in']",
    )
    .await;
    let first = b
        .find(Locator::XPath("//table[@id='stats']/tbody/tr[1]"))
        .await
        .unwrap()
        .attr("data-instance")
        .await
        .unwrap();
    assert_ne!(first.as_deref(), Some("echo"));
    wait_for(
        b,
        "the CSV link",
        "//a[@id='stats-csv' and @href='/api/v1/stats.csv']",
    )
    .await;
    let found = axe_violations(b, &axe).await;
    assert!(found.is_empty(), "axe on Stats:\n{}", found.join("\n"));
    screenshot(b, "17-stats-1440").await;
    drop(echo);
}
