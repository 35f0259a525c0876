//! The dashboard as people meet it between pages, in a real headless
//! Chromium (chromedriver) against the real binary: sign-in returns to the
//! page asked for and never leaves the site; while the server is down the
//! pages say "switchboard is not answering — retrying" (never the
//! browser's "Failed to fetch"); on a 390 px phone every table reads as
//! cards with its actions in view, a toast covers no control, and text
//! fields' borders are at least 3:1 against what is behind them. axe-core
//! finds nothing on the phone's card tables.
//!
//! Every step goes through the page object in tests/common/dashboard.rs;
//! what is only asked here (the field-border contrast, the card layout,
//! what a toast covers) is a script in this file.
//!
//! Needs `chromium`, `chromedriver` and axe-core (`SWITCHBOARD_AXE_JS`, as
//! scripts/test.sh sets it). Without them the tests fail and say so,
//! unless `SWITCHBOARD_SKIP_BROWSER=1` (or `SWITCHBOARD_SKIP_AXE=1`).

mod common;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::ADMIN_PASSWORD;
use common::dashboard::{Dashboard, Screen, Site, axe_source};

/// What the pages say while the server does not answer.
const NOT_ANSWERING: &str = "switchboard is not answering — retrying";

#[tokio::test]
async fn sign_in_returns_to_the_page_asked_for_and_a_server_down_is_said_plainly() {
    let Some(Site {
        ui,
        served,
        dir: _dir,
        ..
    }) = Site::open(Screen::Desktop).await
    else {
        return;
    };

    // Asked for a page without a session: the sign-in page, then that page.
    ui.visit("/connections?service=echo", "//form[@id='sign-in']")
        .await;
    assert_eq!(ui.here().await, "/login?next=/connections%3Fservice%3Decho");
    ui.wait_page("login").await;
    ui.sign_in(ADMIN_PASSWORD).await;
    ui.wait_page("connections").await;
    assert_eq!(ui.here().await, "/connections?service=echo");

    // A `next` that leaves the site is not followed: the overview instead.
    for evil in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example/",
    ] {
        ui.click("sign-out").await;
        ui.wait_for("signed out", "//form[@id='sign-in']").await;
        let next = evil
            .replace('/', "%2F")
            .replace(':', "%3A")
            .replace('\\', "%5C");
        ui.go_to(&format!("/login?next={next}")).await;
        ui.wait_page("login").await;
        ui.sign_in(ADMIN_PASSWORD).await;
        ui.wait_page("overview").await;
        assert_eq!(ui.url().await, ui.base(), "{evil}");
    }

    // The server goes away under an open page: what the page says.
    ui.go_to("/send").await;
    ui.wait_page("send").await;
    ui.wait_live().await;
    let (status, _) = served.terminate().await;
    assert!(status.success(), "{status}");
    let said = format!("//*[@id='toast-text' and text()='{NOT_ANSWERING}']");
    ui.wait_for("the live stream's word that the server is down", &said)
        .await;
    // Dismissed, then an action: the same words, not the browser's. The
    // live stream says them again on each retry, so what the Send button
    // said is read the moment its request ends (when the button comes back
    // on, in the same turn as its error shows), not later.
    ui.click("toast-close").await;
    ui.script(
        "const b = document.getElementById('send-button');
         new MutationObserver((_, seen) => {
           if (b.disabled) return;
           seen.disconnect();
           document.body.dataset.sendSaid = document.getElementById('toast-text').textContent;
         }).observe(b, { attributes: true, attributeFilter: ['disabled'] });",
        vec![],
    )
    .await;
    ui.click("send-button").await;
    let send_said = ui
        .wait_for("the Send button's failure", "//body[@data-send-said]")
        .await
        .attr("data-send-said")
        .await
        .expect("the attribute read");
    assert_eq!(
        send_said.as_deref(),
        Some(NOT_ANSWERING),
        "what the Send button said"
    );
    let body = ui.text_at("//body").await;
    assert!(!body.contains("Failed to fetch"), "{body}");
}

/// Each visible text field's border against the background behind it:
/// `(what, ratio)` for every one under 3:1.
async fn weak_field_borders(ui: &Dashboard) -> Vec<String> {
    let found = ui
        .script(
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
        .await;
    serde_json::from_value(found.clone())
        .unwrap_or_else(|e| panic!("the field borders ({e}): {found}"))
}

#[tokio::test]
async fn on_a_phone_tables_are_cards_with_their_actions_and_toasts_cover_nothing() {
    let Some(axe) = axe_source() else { return };
    let Some(Site {
        ui,
        served,
        dir: _dir,
        ..
    }) = Site::open(Screen::Phone).await
    else {
        return;
    };
    ui.visit("/login", "//form[@id='sign-in']").await;
    ui.wait_page("login").await;
    assert_eq!(
        weak_field_borders(&ui).await,
        Vec::<String>::new(),
        "/login"
    );
    ui.sign_in(ADMIN_PASSWORD).await;
    ui.wait_page("overview").await;

    // A connection to list, held open.
    let mut echo = TcpStream::connect(served.addr("echo")).await.unwrap();
    echo.write_all(b"hello").await.unwrap();
    let mut reply = [0u8; 5];
    echo.read_exact(&mut reply).await.unwrap();
    let peer = echo.local_addr().unwrap().to_string();

    let row = format!("//table[@id='connections']//tr[td[normalize-space()='{peer}']]");
    ui.visit("/connections", &row).await;
    let layout = ui
        .script(
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
            vec![json!(row)],
        )
        .await;
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
    let violations = ui.axe_violations(&axe).await;
    assert!(
        violations.is_empty(),
        "axe on the phone's card table:\n{}",
        violations.join("\n")
    );

    ui.go_to("/send").await;
    ui.wait_page("send").await;
    assert_eq!(weak_field_borders(&ui).await, Vec::<String>::new(), "/send");
    // An error toast (the server gone) next to the buttons it is about.
    let (status, _) = served.terminate().await;
    assert!(status.success(), "{status}");
    ui.script(
        "document.getElementById('sticky-button').scrollIntoView({ block: 'end' });",
        vec![],
    )
    .await;
    ui.click("sticky-button").await;
    ui.wait_for(
        "the toast",
        &format!("//*[@id='toast-text' and text()='{NOT_ANSWERING}']"),
    )
    .await;
    let covered = ui
        .script(
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
        .await;
    assert_eq!(covered, json!([]), "the toast covers these");
    drop(echo);
}
