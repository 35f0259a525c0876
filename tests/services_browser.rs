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

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::dashboard::{Dashboard, Screen, axe_source};
use common::{ADMIN_PASSWORD, Served, TEST_KEY, guard};
use switchboard::kind::ServiceKind;

/// The real binary (with `env` on top of the test's password and key) and
/// an admin signed in at the overview.
struct Open {
    served: Served,
    ui: Dashboard,
    dir: tempfile::TempDir,
}

async fn open(env: &[(&str, &str)]) -> Option<Open> {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![
        ("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("SWITCHBOARD_KEY", TEST_KEY),
    ];
    all.extend_from_slice(env);
    let served = Served::start(&dir.path().join("data"), ServiceKind::BUILTIN, &all).await;
    let ui = Dashboard::open(&served.web_url(), Screen::Desktop).await?;
    ui.sign_in_as_admin().await;
    Some(Open { served, ui, dir })
}

/// A JSON call made by the page itself (its cookie and CSRF token): the
/// status.
async fn api_in_page(b: &Dashboard, method: &str, path: &str, body: serde_json::Value) -> u64 {
    let (status, text) = b.api(method, path, Some(body)).await;
    assert_ne!(status, 0, "{method} {path} from the page: {text}");
    status
}

/// A GET made by the page itself: the JSON answer.
async fn json_in_page(b: &Dashboard, path: &str) -> serde_json::Value {
    let (status, text) = b.fetch(path).await;
    assert_eq!(status, 200, "GET {path} from the page: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {text}"))
}

async fn services_page(o: &Open) {
    o.ui.go_to("/services").await;
    o.ui.wait_ready().await;
}

#[tokio::test]
async fn editing_a_proxy_in_the_form_keeps_what_the_form_did_not_change() {
    let Some(o) = open(&[]).await else { return };
    let b = &o.ui;
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
    b.click_on("front's Edit button", "//button[@data-edit='front']")
        .await;
    b.wait_for(
        "the edit form",
        "//h2[@id='instance-form-title' and .='Edit front']",
    )
    .await;
    // The form shows what is saved, typed: a select, a number in ms, a switch.
    let protocol = b
        .wait_for(
            "proxy_protocol's select",
            "//select[@name='proxy_protocol']",
        )
        .await;
    assert_eq!(protocol.prop("value").await.unwrap().as_deref(), Some("v1"));
    let timeout = b
        .wait_for(
            "connect_timeout_ms's number field",
            "//input[@name='connect_timeout_ms' and @type='number']",
        )
        .await;
    assert_eq!(
        timeout.prop("value").await.unwrap().as_deref(),
        Some("2000")
    );
    b.wait_for(
        "capture as a switch",
        "//input[@name='capture' and @type='checkbox' and @role='switch']",
    )
    .await;
    b.wait_for(
        "the unit and default",
        "//span[@id='hint-idle_timeout_ms' and contains(., 'Milliseconds') \
         and contains(., 'default 120000 (2 min)')]",
    )
    .await;
    let idle = b
        .wait_for(
            "idle_timeout_ms's field",
            "//input[@name='idle_timeout_ms']",
        )
        .await;
    idle.clear().await.unwrap();
    idle.send_keys("30000").await.unwrap();
    b.screenshot("services-edit-typed-form").await;
    b.click_on("the form's Save button", "//button[@id='instance-save']")
        .await;
    // The message is seen after the reload.
    b.wait_for(
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
    let b = &o.ui;
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
    let now = b
        .wait_for("time's state", "//span[@data-running='time']")
        .await;
    assert_eq!(now.text().await.unwrap(), "running");
    let boot = b
        .wait_for("time's At boot cell", "//td[@data-boot='time']")
        .await;
    assert_eq!(boot.text().await.unwrap(), "disabled");
    b.wait_for(
        "Enable offered",
        "//button[@data-enable='true' and @data-name='time']",
    )
    .await;
    b.wait_for(
        "Stop offered",
        "//button[@data-action='stop' and @data-name='time']",
    )
    .await;

    // Capture on from echo's row, then a conversation is captured.
    let switch = b
        .wait_for(
            "echo's capture switch",
            "//button[@data-capture='echo' and @aria-checked='false']",
        )
        .await;
    switch.click().await.unwrap();
    b.wait_for(
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
    b.wait_for(
        "still on",
        "//button[@data-capture='echo' and @aria-checked='true']",
    )
    .await;

    // The log, one click away: the connection and the capture switch.
    b.click_on("echo's Log button", "//button[@data-log='echo']")
        .await;
    b.wait_for(
        "echo's log",
        "//section[@id='service-log' and not(@hidden)]//li[contains(., 'connected')]",
    )
    .await;
    b.wait_for(
        "its audit line",
        "//ol[@id='service-log-lines']/li[contains(., 'audit: admin')]",
    )
    .await;
    b.screenshot("services-row-log").await;
    let found = b.axe_violations(&axe).await;
    assert!(
        found.is_empty(),
        "axe on the Services page with the log open:\n{}",
        found.join("\n")
    );
}

/// Whether the page is no wider than its window (nothing past the edge).
async fn fits(browser: &fantoccini::Client) -> (u64, u64) {
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
    let b = &o.ui;
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
    b.client.set_window_size(1440, 900).await.unwrap();
    services_page(&o).await;
    b.click_on("the Captures link", "//a[@id='nav-captures']")
        .await;
    b.wait_for("the page's script", "//body[@data-ready='true']")
        .await;
    let row = guard("the closed capture listed", async {
        loop {
            if let Ok(row) = b
                .client
                .find(fantoccini::Locator::XPath(
                    "//tr[@data-instance='echo' and @data-open='false']",
                ))
                .await
            {
                return row;
            }
            b.client.refresh().await.unwrap();
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
    b.wait_for("the pcapng link", &export).await;
    b.wait_for(
        "the inspect link",
        &format!("//tr[@data-capture-id='{id}']//a[@href='/inspect/{id}']"),
    )
    .await;
    let found = b.axe_violations(&axe).await;
    assert!(
        found.is_empty(),
        "axe on Captures at 1440:\n{}",
        found.join("\n")
    );
    b.screenshot("16-captures-1440").await;

    // Replay from the row, to echo again: the same replies.
    b.click_on(
        "the Replay button",
        &format!("//button[@data-replay='{id}']"),
    )
    .await;
    b.wait_for("the replay's outcome",
        "//p[@id='captures-status' and @data-outcome='equal' and contains(., 'the same as recorded')]",
    )
    .await;
    let found = b.axe_violations(&axe).await;
    assert!(
        found.is_empty(),
        "axe after a replay:\n{}",
        found.join("\n")
    );

    // A phone's width: nothing past the edge, and still no violation.
    b.client.set_window_size(390, 844).await.unwrap();
    b.client.refresh().await.unwrap();
    b.wait_for("the page's script", "//body[@data-ready='true']")
        .await;
    let (page, window) = fits(&b.client).await;
    assert!(
        page <= window,
        "Captures is {page} px wide in a {window} px window"
    );
    let found = b.axe_violations(&axe).await;
    assert!(
        found.is_empty(),
        "axe on Captures at 390:\n{}",
        found.join("\n")
    );
    b.screenshot("16-captures-390").await;
}

#[tokio::test]
async fn the_stats_table_sorts_by_a_column_and_offers_its_csv() {
    let Some(o) = open(&[]).await else { return };
    let Some(axe) = axe_source() else { return };
    let b = &o.ui;
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
    b.client.set_window_size(1440, 900).await.unwrap();
    services_page(&o).await;
    b.click_on("the Stats link", "//a[@id='nav-stats']").await;
    b.wait_for("the page's script", "//body[@data-ready='true']")
        .await;
    b.wait_for(
        "echo's bytes, formatted by the script",
        "//tr[@data-instance='echo']/td[@data-field='bytes_in' and @data-value='20']",
    )
    .await;
    // Sorted by bytes in, largest first: echo leads.
    b.click_on(
        "the bytes-in column's sort button",
        "//button[@data-sort='bytes_in']",
    )
    .await;
    b.wait_for(
        "echo first",
        "//th[@aria-sort='descending']//button[@data-sort='bytes_in'] \
         | //table[@id='stats']/tbody/tr[1][@data-instance='echo']",
    )
    .await;
    // The table redraws every 2 s: read through the page object's retry.
    let first = b
        .attr_in_live_table(
            "the first row",
            "//table[@id='stats']/tbody/tr[1]",
            "data-instance",
        )
        .await;
    assert_eq!(first, "echo");
    // Again: smallest first, echo no longer leads.
    b.click_on(
        "the bytes-in column's sort button",
        "//button[@data-sort='bytes_in']",
    )
    .await;
    b.wait_for(
        "ascending",
        "//th[@aria-sort='ascending']//button[@data-sort='bytes_in']",
    )
    .await;
    // The table redraws every 2 s: read through the page object's retry.
    let first = b
        .attr_in_live_table(
            "the first row",
            "//table[@id='stats']/tbody/tr[1]",
            "data-instance",
        )
        .await;
    assert_ne!(first, "echo");
    b.wait_for(
        "the CSV link",
        "//a[@id='stats-csv' and @href='/api/v1/stats.csv']",
    )
    .await;
    let found = b.axe_violations(&axe).await;
    assert!(found.is_empty(), "axe on Stats:\n{}", found.join("\n"));
    b.screenshot("17-stats-1440").await;
    drop(echo);
}
