//! The Traffic page's history in a real headless Chromium against the real
//! binary: picking 24 hours makes the chart's x axis span 24 hours at one
//! point a minute; dragging across the chart zooms in (and live updates
//! keep the zoom) until "Reset zoom"; a zoom within the last 15 minutes
//! comes back at one second a point; on a 390 px phone the event log's
//! text gets the card's width; the Services row's Log shows the instance's
//! own log lines beside its events. axe-core finds nothing after each.
//!
//! Needs `chromium`, `chromedriver` and axe-core (`SWITCHBOARD_AXE_JS`, as
//! scripts/test.sh sets it). Without them the test fails and says so,
//! unless `SWITCHBOARD_SKIP_BROWSER=1` (or `SWITCHBOARD_SKIP_AXE=1`).

mod common;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::dashboard::{Dashboard, PHONE_WIDTH, Screen, Site, axe_source};
use common::guard;

const CHART: &str = "//div[@id='chart']";

/// The chart's x span in seconds, as the page reports it.
async fn x_span(b: &Dashboard) -> f64 {
    let v = b
        .script(
            "return document.getElementById('chart').dataset.xSpan;",
            vec![],
        )
        .await;
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or(-1.0)
}

async fn covered(b: &Dashboard) -> u64 {
    let v = b
        .script(
            "return document.getElementById('chart').dataset.covered;",
            vec![],
        )
        .await;
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or(0)
}

async fn no_axe_violations(b: &Dashboard, axe: &str, when: &str) {
    let found = b.axe_violations(axe).await;
    assert!(found.is_empty(), "axe {when}:\n{}", found.join("\n"));
}

/// Some bytes through echo, so the chart has a line.
async fn echo_some(site: &Site) {
    let mut s = tokio::net::TcpStream::connect(site.echo()).await.unwrap();
    let mut back = [0u8; 5];
    guard("echoed", async {
        s.write_all(b"hello").await.unwrap();
        s.read_exact(&mut back).await.unwrap();
    })
    .await;
}

/// Signed in, on Traffic with its chart drawn and live.
async fn traffic_page(screen: Screen) -> Option<Site> {
    let site = Site::open(screen).await?;
    site.ui.sign_in_as_admin().await;
    echo_some(&site).await;
    site.ui.go_to("/traffic").await;
    site.ui.wait_page("traffic").await;
    site.ui.wait_live().await;
    site.ui
        .wait_for(
            "the 15-minute chart",
            &format!("{CHART}[@data-x-span='900' and @data-step='1']"),
        )
        .await;
    Some(site)
}

/// Picks 24 hours: the x axis spans a day at a point a minute.
async fn pick_a_day(b: &Dashboard) {
    b.choose("traffic-range", "86400").await;
    b.wait_for(
        "the 24-hour chart",
        &format!("{CHART}[@data-x-span='86400' and @data-step='60']"),
    )
    .await;
    let label = b.text_at(CHART).await;
    let aria = b
        .script(
            "return document.getElementById('chart').getAttribute('aria-label');",
            vec![],
        )
        .await;
    assert!(
        aria.as_str().unwrap_or("").contains("24 hours"),
        "the chart says its range: {aria} {label}"
    );
}

#[tokio::test]
async fn a_day_of_traffic_zooms_and_resets_on_the_desktop() {
    let Some(axe) = axe_source() else { return };
    let Some(site) = traffic_page(Screen::Desktop).await else {
        return;
    };
    let b = &site.ui;
    pick_a_day(b).await;
    // The range is in the address: a reload keeps the day.
    let here = b.here().await;
    assert_eq!(here, "/traffic?range=86400");
    b.go_to(&here).await;
    b.wait_page("traffic").await;
    b.wait_for(
        "the day after a reload",
        &format!("{CHART}[@data-x-span='86400' and @data-step='60']"),
    )
    .await;
    no_axe_violations(b, &axe, "on Traffic with 24 hours picked").await;
    b.screenshot("traffic-24h-1280").await;
    // Drag across the middle third: a zoom onto about a third of the day.
    b.drag_across(
        "the chart's drawing area",
        "//div[@id='chart']//div[contains(@class,'u-over')]",
        0.3,
        0.6,
    )
    .await;
    b.wait_for("the zoom", &format!("{CHART}[@data-zoomed='true']"))
        .await;
    let zoomed = x_span(b).await;
    assert!(
        (0.2 * 86_400.0..0.4 * 86_400.0).contains(&zoomed),
        "a third of the day, not {zoomed} s"
    );
    assert!(b.displayed("traffic-reset").await, "Reset zoom offered");
    // Live seconds keep arriving; the zoom stays.
    let before = covered(b).await;
    guard("a live second after the zoom", async {
        while covered(b).await <= before {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(x_span(b).await, zoomed, "live updates keep the zoom");
    no_axe_violations(b, &axe, "on Traffic zoomed").await;
    b.screenshot("traffic-24h-zoomed-1280").await;
    b.click("traffic-reset").await;
    b.wait_for(
        "the whole day again",
        &format!("{CHART}[@data-x-span='86400' and @data-zoomed='false']"),
    )
    .await;
    assert!(!b.displayed("traffic-reset").await);
    // An hour at 10 s a point; a zoom onto its last 12 minutes comes
    // back at one second a point, and Reset returns to the hour.
    b.choose("traffic-range", "3600").await;
    b.wait_for(
        "the hour's chart",
        &format!("{CHART}[@data-x-span='3600' and @data-step='10']"),
    )
    .await;
    b.drag_across(
        "the chart's drawing area",
        "//div[@id='chart']//div[contains(@class,'u-over')]",
        0.8,
        0.99,
    )
    .await;
    b.wait_for(
        "the zoom at one second a point",
        &format!("{CHART}[@data-zoomed='true' and @data-step='1']"),
    )
    .await;
    let sharp = x_span(b).await;
    assert!(
        (500.0..800.0).contains(&sharp),
        "about 12 minutes, not {sharp} s"
    );
    b.click("traffic-reset").await;
    b.wait_for(
        "the hour again",
        &format!("{CHART}[@data-x-span='3600' and @data-step='10' and @data-zoomed='false']"),
    )
    .await;
    // Back to 15 minutes at one point a second.
    b.choose("traffic-range", "900").await;
    b.wait_for(
        "the 15-minute chart",
        &format!("{CHART}[@data-x-span='900' and @data-step='1']"),
    )
    .await;

    // The Services row's Log: echo's own log lines beside its events.
    b.go_to("/services").await;
    b.wait_page("services").await;
    b.click_in_live_table("echo's Log button", "//button[@data-log='echo']")
        .await;
    let line = b
        .wait_for(
            "echo's log line",
            "//ol[@id='service-log-lines']/li[@data-log-line and contains(., 'listening on')]",
        )
        .await;
    assert!(
        line.text()
            .await
            .unwrap()
            .contains("log info: listening on")
    );
    assert!(
        !b.absent("//ol[@id='service-log-lines']/li[contains(., 'opened')]")
            .await,
        "its events are there too"
    );
    no_axe_violations(b, &axe, "on Services with echo's log open").await;
    b.screenshot("services-log-with-log-lines-1280").await;
}

#[tokio::test]
async fn on_a_phone_the_day_shows_and_the_event_log_text_has_room() {
    let Some(axe) = axe_source() else { return };
    let Some(site) = traffic_page(Screen::Phone).await else {
        return;
    };
    let b = &site.ui;
    pick_a_day(b).await;
    b.wait_for("an event in the log", "//table[@id='log']/tbody/tr")
        .await;
    let widths = b
        .script(
            "const td = document.querySelector('#log tbody tr td:last-child');
             const text = td.getBoundingClientRect().width;
             return [text, document.documentElement.scrollWidth];",
            vec![],
        )
        .await;
    let text = widths[0].as_f64().unwrap();
    eprintln!("the event text is {text} px wide at {PHONE_WIDTH} px");
    let page = widths[1].as_f64().unwrap();
    assert!(
        text >= 250.0,
        "the event text is {text} px wide on a {PHONE_WIDTH} px phone"
    );
    assert!(
        page <= f64::from(PHONE_WIDTH),
        "the page scrolls sideways: {page} px"
    );
    no_axe_violations(b, &axe, "on Traffic at 390 px with 24 hours picked").await;
    b.screenshot("traffic-24h-390").await;
    b.script("document.getElementById('log').scrollIntoView();", vec![])
        .await;
    b.screenshot("traffic-event-log-390").await;
}
