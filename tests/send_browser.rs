//! The Send page as a person uses it, in a real headless Chromium
//! (chromedriver) against the real binary, at 1280 px and on a 390 px
//! phone: the three-paths table reachable by the keyboard, the history
//! with its one-click resend, saved messages (kept on the server, so a
//! reload still has them; sent in one click; exported; a bad import
//! refused entry by entry, a good one taken), and both sticky-packet labs
//! through the lab's temporary proxy with a slicer toxic, which is gone
//! afterwards. axe-core finds nothing after each of those actions.
//!
//! The steps go through the page object in tests/common/dashboard.rs.
//! Needs `chromium`, `chromedriver` and axe-core (`SWITCHBOARD_AXE_JS`, as
//! scripts/test.sh sets it). Without them the test fails and says so,
//! unless `SWITCHBOARD_SKIP_BROWSER=1` (or `SWITCHBOARD_SKIP_AXE=1`).

mod common;

use serde_json::json;

use common::dashboard::{Dashboard, Screen, Site, axe_source};

const REPLY: &str = "//code[@id='send-reply' and .='{}']";
const HISTORY_ROWS: &str = "//table[@id='history-table']/tbody/tr";

async fn axe_clean(ui: &Dashboard, axe: &str, after: &str) {
    let violations = ui.axe_violations(axe).await;
    assert!(violations.is_empty(), "axe after {after}: {violations:#?}");
}

/// On a touch screen every visible control of the page is at least 44 px
/// square (the rule tests/browser.rs holds every page to, here with the
/// saved messages, the history and the labs' results drawn).
async fn tap_targets_fit(ui: &Dashboard) {
    let small = ui
        .script(
            "if (!matchMedia('(pointer: coarse)').matches) return [];
             return [...document.querySelectorAll('a, button, select, input, textarea, summary')]
               .filter((e) => e.getClientRects().length > 0 && !['checkbox', 'radio', 'file'].includes(e.type))
               .map((e) => [e, e.getBoundingClientRect()])
               .filter(([, r]) => r.width < 43.5 || r.height < 43.5)
               .map(([e, r]) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''} ${Math.round(r.width)}x${Math.round(r.height)}`);",
            vec![],
        )
        .await;
    assert_eq!(small, json!([]), "tap targets under 44 px");
}

async fn reply_is(ui: &Dashboard, text: &str) {
    ui.wait_for(&format!("the reply {text}"), &REPLY.replace("{}", text))
        .await;
}

async fn send_page(screen: Screen, tag: &str) {
    // Every part bound: a part left to `..` would be dropped (the server
    // stopped) at the end of this statement.
    let Some(Site {
        ui,
        dir,
        served: _served,
        data_dir: _,
    }) = Site::open(screen).await
    else {
        return;
    };
    let Some(axe) = axe_source() else { return };
    ui.sign_in_as_admin().await;
    ui.go_to("/send").await;
    ui.wait_page("send").await;
    axe_clean(&ui, &axe, "opening the page").await;

    // Run N over three paths: the result's table is reachable by the
    // keyboard (it may scroll inside its box) and named.
    ui.type_in("send-repeat", "3").await;
    ui.click("compare-button").await;
    ui.wait_for(
        "the comparison",
        "//div[@id='compare-result' and not(@hidden)]//td[@data-field='median' and .!='–']",
    )
    .await;
    let focus = ui
        .script(
            "const w = document.getElementById('compare-wrap'); w.focus();
             return [document.activeElement === w, w.tabIndex, w.getAttribute('aria-label') || ''];",
            vec![],
        )
        .await;
    assert_eq!(
        focus[0],
        json!(true),
        "the table's box takes focus: {focus}"
    );
    assert_eq!(focus[1], json!(0), "{focus}");
    assert!(!focus[2].as_str().unwrap().is_empty(), "named: {focus}");
    axe_clean(&ui, &axe, "Run N over three paths").await;
    ui.screenshot(&format!("send-{tag}-1-three-paths")).await;

    // Two sends, then the first again from the history, in one click.
    ui.type_in("send-text", "first").await;
    ui.click("send-button").await;
    reply_is(&ui, "FIRST").await;
    ui.type_in("send-text", "second").await;
    ui.click("send-button").await;
    reply_is(&ui, "SECOND").await;
    ui.wait_for(
        "two sends in the history, newest first",
        "//table[@id='history-table']/tbody[count(tr)=2]/tr[1]/td/code[.='second']",
    )
    .await;
    ui.click_on(
        "Resend of the first",
        "//table[@id='history-table']/tbody/tr[td/code[.='first']]//button[@data-resend]",
    )
    .await;
    reply_is(&ui, "FIRST").await;
    ui.wait_for(
        "the resend in the history",
        "//table[@id='history-table']/tbody[count(tr)=3]/tr[1]/td/code[.='first']",
    )
    .await;
    axe_clean(&ui, &axe, "sending and resending").await;

    // Saved on the server: a reload still lists it; one click sends it.
    ui.type_in("send-text", "saved hello").await;
    ui.type_in("saved-name", "greeting").await;
    ui.click("saved-save").await;
    ui.wait_for(
        "the saved message",
        "//table[@id='saved-table']//tr[@data-saved='greeting']",
    )
    .await;
    ui.go_to("/send").await;
    ui.wait_page("send").await;
    ui.wait_for(
        "the saved message after a reload",
        "//table[@id='saved-table']//tr[@data-saved='greeting']",
    )
    .await;
    // The history is the tab's: it is still there after the reload.
    assert_eq!(ui.count(HISTORY_ROWS).await, 3);
    ui.type_in("send-text", "something else").await;
    ui.click_on(
        "Send of the saved message",
        "//tr[@data-saved='greeting']//button[@data-act='send']",
    )
    .await;
    reply_is(&ui, "SAVED HELLO").await;
    axe_clean(&ui, &axe, "sending a saved message").await;
    let (status, body) = ui.fetch("/api/v1/saved-messages?download=1").await;
    assert_eq!(status, 200, "{body}");
    let exported: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        exported["messages"][0],
        json!({"name": "greeting", "target": "echo", "mode": "text", "payload": "saved hello"})
    );

    // A bad import is refused entry by entry; nothing of it is kept.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        json!({"version": 1, "messages": [
            {"name": "fine", "target": "echo", "payload": "x"},
            {"name": "", "target": "echo", "payload": "x"},
        ]})
        .to_string(),
    )
    .unwrap();
    ui.upload("//input[@id='saved-import-file']", &bad).await;
    ui.wait_for(
        "entry 2 named as the problem",
        "//div[@id='saved-problems' and not(@hidden)]//li[contains(., 'entry 2')]",
    )
    .await;
    assert!(ui.absent("//tr[@data-saved='fine']").await);
    axe_clean(&ui, &axe, "a refused import").await;
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        json!({"version": 1, "messages": [
            {"name": "bytes", "target": "echo", "mode": "hex", "payload": "68 69"},
        ]})
        .to_string(),
    )
    .unwrap();
    ui.upload("//input[@id='saved-import-file']", &good).await;
    ui.wait_for("the imported message", "//tr[@data-saved='bytes']")
        .await;
    ui.wait_for(
        "the problems gone",
        "//div[@id='saved-problems' and @hidden]",
    )
    .await;
    ui.script(
        "document.getElementById('saved-heading').scrollIntoView();",
        vec![],
    )
    .await;
    ui.screenshot(&format!("send-{tag}-2-saved")).await;

    // The echo lab through a slicer: the raw side in pieces, the framed
    // side still four messages.
    ui.choose("sticky-toxic-type", "slicer").await;
    ui.type_in("sticky-toxic-delay", "2000").await;
    ui.click("sticky-button").await;
    ui.wait_for(
        "four framed messages through the slicer",
        "//div[@id='sticky-framed']//ol[@data-field='messages' and count(li) = 4]",
    )
    .await;
    ui.wait_for(
        "the toxic named",
        "//p[@id='sticky-through' and not(@hidden) and contains(., 'slicer')]",
    )
    .await;
    assert!(
        ui.count("//div[@id='sticky-raw']//ol[@data-field='reads']/li")
            .await
            > 4,
        "the raw side in pieces"
    );
    axe_clean(&ui, &axe, "the echo lab through a slicer").await;

    // exec's header framing through the same toxic survives.
    ui.choose("exec-toxic-type", "slicer").await;
    ui.type_in("exec-toxic-average_size", "8").await;
    ui.type_in("exec-toxic-delay", "500").await;
    ui.click("sticky-exec-button").await;
    ui.wait_for(
        "header whole through the slicer",
        "//div[@id='sticky-exec-result' and not(@hidden)]/div[@data-framing='header' and @data-whole='true']",
    )
    .await;
    ui.wait_for(
        "the toxic named",
        "//p[@id='sticky-exec-through' and not(@hidden) and contains(., 'slicer')]",
    )
    .await;
    axe_clean(&ui, &axe, "the exec lab through a slicer").await;
    ui.script(
        "document.getElementById('sticky-exec-through').scrollIntoView();",
        vec![],
    )
    .await;
    ui.screenshot(&format!("send-{tag}-3-lab-through-slicer"))
        .await;

    tap_targets_fit(&ui).await;
    // Everything drawn, in dark mode too.
    ui.emulate_color_scheme("dark").await;
    axe_clean(&ui, &axe, "all of it, in dark mode").await;
    // The lab's proxies are gone.
    let (status, body) = ui.fetch("/api/v1/services").await;
    assert_eq!(status, 200);
    assert!(!body.contains("toxic-lab-"), "{body}");
    ui.close().await;
}

#[tokio::test]
async fn the_send_page_saves_resends_and_runs_the_lab_through_a_toxic_on_a_desktop() {
    send_page(Screen::Desktop, "desktop").await;
}

#[tokio::test]
async fn the_send_page_saves_resends_and_runs_the_lab_through_a_toxic_on_a_phone() {
    send_page(Screen::Phone, "phone").await;
}

/// With echo and exec taking connections through a trusted proxy only
/// (`accept_proxy`), the dashboard still reaches them (its relays are let
/// in), but a shell dialling them directly is turned away: "the same from
/// a shell" says so above the command, on the Send page and the Console.
#[tokio::test]
async fn the_same_from_a_shell_says_when_a_port_takes_a_proxy_only() {
    use switchboard::kind::ServiceKind;
    let dir = tempfile::tempdir().unwrap();
    let served = common::Served::start(
        &dir.path().join("data"),
        &[ServiceKind::Echo, ServiceKind::Exec],
        &[
            ("SWITCHBOARD_ADMIN_PASSWORD", common::ADMIN_PASSWORD),
            ("SWITCHBOARD_KEY", common::TEST_KEY),
            ("SWITCHBOARD_ECHO_ACCEPT_PROXY", "true"),
            ("SWITCHBOARD_EXEC_ACCEPT_PROXY", "true"),
        ],
    )
    .await;
    let Some(ui) = Dashboard::open(&served.web_url(), Screen::Desktop).await else {
        return;
    };
    ui.sign_in_as_admin().await;
    ui.visit("/send", "//textarea[@id='send-text']").await;
    ui.type_in("send-text", "behind").await;
    ui.click("send-button").await;
    ui.wait_for("the reply", &REPLY.replace("{}", "BEHIND"))
        .await;
    let note = "takes connections through a trusted proxy only (accept_proxy)";
    let cli = ui.text_at("//*[@id='send-cli']").await;
    let (first, command) = cli.split_once('\n').expect("a note, then the command");
    assert!(
        first.starts_with("# echo ") && first.contains(note),
        "{cli}"
    );
    assert_eq!(
        command,
        format!("switchboard echo {} behind", served.addr(ServiceKind::Echo))
    );

    ui.visit("/console", "//input[@id='exec-input']").await;
    ui.type_in("exec-input", "echo hi").await;
    ui.click("exec-run").await;
    ui.wait_for(
        "exit 0",
        "//p[@id='exec-status' and @data-state='ok' and starts-with(., 'exit 0')]",
    )
    .await;
    let cli = ui.text_at("//*[@id='exec-cli']").await;
    assert!(cli.starts_with("# exec ") && cli.contains(note), "{cli}");
    assert!(cli.ends_with("-- echo hi"), "{cli}");
    ui.close().await;
    let (status, stderr) = served.terminate().await;
    assert!(status.success(), "{stderr}");
}
