//! The wire inspector's follow-stream view and its decoded messages, in a
//! real headless Chromium (chromedriver) against the real binary, on a
//! desktop and on a 390 px phone:
//!
//! - a live echo conversation of many lines is followed to its end (the
//!   last line in view with no scrolling), stops following when the reader
//!   scrolls up and says how many came since, follows again on request;
//!   search marks every match with next/previous and a count; a direction
//!   hides; hex rows keep 16 bytes (8 on the phone) and never overflow;
//! - an exec session from a raw client that writes two requests in one
//!   write is decoded into the HMAC challenge and answer and messages
//!   (length prefix, JSON header, body), and the segment holding both
//!   requests is marked as a sticky packet; once closed, the capture is
//!   listed on the Captures page.
//!
//! axe-core finds nothing on the page after each of these actions.
//! Needs `chromium`, `chromedriver` and axe-core (scripts/test.sh installs
//! them); without them the tests fail and say so, unless
//! `SWITCHBOARD_SKIP_BROWSER=1` (or `SWITCHBOARD_SKIP_AXE=1`).

mod common;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::dashboard::{Dashboard, Screen, axe_source};
use common::message::{frame, handshake, read_message};
use common::{ADMIN_PASSWORD, Served, TEST_KEY, guard};
use switchboard::kind::ServiceKind;

/// The real binary with echo and exec capturing, and an admin signed in.
async fn open(screen: Screen) -> Option<(Served, Dashboard, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        &dir.path().join("data"),
        ServiceKind::BUILTIN,
        &[
            ("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("SWITCHBOARD_KEY", TEST_KEY),
            ("SWITCHBOARD_ECHO_CAPTURE", "true"),
            ("SWITCHBOARD_EXEC_CAPTURE", "true"),
        ],
    )
    .await;
    let ui = Dashboard::open(&served.web_url(), screen).await?;
    ui.sign_in_as_admin().await;
    Some((served, ui, dir))
}

/// The id of `service`'s capture of the connection from `peer`, once the
/// server lists it.
async fn capture_id(ui: &Dashboard, service: &str, peer: &str) -> u64 {
    guard("the capture listed", async {
        loop {
            let (status, body) = ui.fetch("/api/v1/captures").await;
            assert_eq!(status, 200, "{body}");
            let list: Value = serde_json::from_str(&body).unwrap();
            let found = list["captures"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["service"] == service && c["peer"].as_str() == Some(peer));
            if let Some(c) = found {
                return c["id"].as_u64().unwrap();
            }
            tokio::task::yield_now().await;
        }
    })
    .await
}

/// axe-core finds nothing; on a touch screen, every visible control is
/// at least 44 px square too.
async fn no_axe_violations(ui: &Dashboard, axe: &str, when: &str) {
    let found = ui.axe_violations(axe).await;
    assert!(found.is_empty(), "axe-core, {when}:\n{}", found.join("\n"));
    let small = ui
        .script(
            "if (!matchMedia('(pointer: coarse)').matches) return [];
             return [...document.querySelectorAll('a, button, select, input, textarea, summary')]
               .filter((e) => e.getClientRects().length > 0 && !['checkbox', 'radio', 'file'].includes(e.type))
               .map((e) => [e, e.getBoundingClientRect()])
               .filter(([, r]) => r.width < 43.5 || r.height < 43.5)
               .map(([e, r]) => `${e.tagName} '${e.textContent.trim().slice(0, 20)}' ${r.width}x${r.height}`);",
            vec![],
        )
        .await;
    assert_eq!(small, json!([]), "tap targets under 44 px, {when}");
}

/// Where the transcript's last block is: inside the transcript's visible
/// box, inside the window, and what it says.
const LAST_BLOCK: &str = "
    const list = document.getElementById('inspect-segments');
    const blocks = list.querySelectorAll('li.seg');
    const last = blocks[blocks.length - 1];
    const l = list.getBoundingClientRect(), r = last.getBoundingClientRect();
    return {
        in_box: r.top >= l.top - 1 && r.bottom <= l.bottom + 1,
        in_window: r.top >= -1 && r.bottom <= window.innerHeight + 1,
        text: last.querySelector('[data-field=text]').textContent,
        pinned: list.dataset.pinned,
        scrolls: list.scrollHeight > list.clientHeight,
    };";

/// Scrolls the window (not the transcript) so the transcript's bottom
/// edge is in view, as a reader who came to watch it would.
const TRANSCRIPT_IN_VIEW: &str = "
    const list = document.getElementById('inspect-segments');
    const r = list.getBoundingClientRect();
    window.scrollBy(0, r.bottom - window.innerHeight + 4);";

/// Each hex row's byte count, and whether any hex block overflows its box
/// or the page scrolls sideways.
const HEX_ROWS: &str = "
    const pres = [...document.querySelectorAll('#inspect-segments pre[data-field=hex]')];
    const widths = pres.flatMap((p) => p.textContent.split('\\n').map((row) => row.split(' ').length));
    return {
        widest: Math.max(...widths),
        overflowing: pres.filter((p) => p.scrollWidth > p.clientWidth + 1).length,
        page_sideways: document.documentElement.scrollWidth > window.innerWidth,
    };";

/// Line `i` of the conversation, sent and its echo read back.
async fn talk(echo: &mut TcpStream, i: usize) {
    let sent = format!("line {i:03} of a long conversation, long enough for a row\n");
    echo.write_all(sent.as_bytes()).await.unwrap();
    let mut reply = vec![0u8; sent.len()];
    guard("the echo", echo.read_exact(&mut reply))
        .await
        .unwrap();
}

async fn follows_a_live_echo_conversation(screen: Screen, shot: &str) {
    let Some(axe) = axe_source() else { return };
    let Some((served, ui, _dir)) = open(screen).await else {
        return;
    };
    let mut echo = TcpStream::connect(served.addr(ServiceKind::Echo))
        .await
        .unwrap();
    talk(&mut echo, 0).await;
    let peer = echo.local_addr().unwrap().to_string();
    let id = capture_id(&ui, "echo", &peer).await;
    ui.visit(
        &format!("/inspect/{id}"),
        "//ol[@id='inspect-segments']/li[@data-dir='out']",
    )
    .await;
    ui.script(TRANSCRIPT_IN_VIEW, vec![]).await;

    // Many lines while the page is open: it follows them to the last.
    const LINES: usize = 60;
    for i in 1..=LINES {
        talk(&mut echo, i).await;
    }
    let last = format!("LINE {LINES:03}");
    ui.wait_for(
        "the last reply",
        &format!("//ol[@id='inspect-segments']/li[@data-dir='out'][.//pre[@data-field='text' and contains(., '{last}')]]"),
    )
    .await;
    let at = ui.script(LAST_BLOCK, vec![]).await;
    assert_eq!(at["scrolls"], true, "{at}: the transcript should be long");
    assert_eq!(at["in_box"], true, "the last line is not in view: {at}");
    assert_eq!(
        at["in_window"], true,
        "the last line is not in the window: {at}"
    );
    assert!(at["text"].as_str().unwrap().contains(&last), "{at}");
    assert_eq!(at["pinned"], "true");

    // Scrolled up, it stays where the reader is and counts what came.
    ui.script(
        "document.getElementById('inspect-segments').scrollTop = 0;",
        vec![],
    )
    .await;
    ui.wait_for(
        "unpinned",
        "//ol[@id='inspect-segments' and @data-pinned='false']",
    )
    .await;
    talk(&mut echo, LINES + 1).await;
    ui.wait_for(
        "the follow control counting",
        "//button[@id='inspect-bottom' and @aria-pressed='false' and contains(., '2 new')]",
    )
    .await;
    let at = ui.script(LAST_BLOCK, vec![]).await;
    assert_eq!(at["in_box"], false, "it followed though scrolled up: {at}");
    ui.click("inspect-bottom").await;
    ui.wait_for(
        "following again",
        "//button[@id='inspect-bottom' and @aria-pressed='true']",
    )
    .await;
    let at = ui.script(LAST_BLOCK, vec![]).await;
    assert_eq!(at["in_box"], true, "jump to end: {at}");

    // Search: every match marked, a count, next and previous.
    ui.type_in("inspect-search", "line 05").await;
    let count = ui
        .wait_for(
            "the count",
            "//span[@id='inspect-matches' and contains(., 'matches')]",
        )
        .await
        .text()
        .await
        .unwrap();
    // "line 050" .. "line 059" from the client, "LINE 05x" back.
    assert_eq!(count, "20 matches");
    assert_eq!(
        ui.count("//ol[@id='inspect-segments']//pre[@data-field='text']/mark")
            .await,
        20
    );
    ui.click("inspect-next").await;
    ui.wait_for(
        "the first match",
        "//span[@id='inspect-matches' and .='1 of 20']",
    )
    .await;
    ui.click("inspect-prev").await;
    ui.wait_for(
        "back round to the last",
        "//span[@id='inspect-matches' and .='20 of 20']",
    )
    .await;
    ui.wait_for(
        "the current match marked",
        "//li[@data-dir='out'][.//pre[@data-field='text' and contains(., 'LINE 059')]]\
         //pre[@data-field='text']/mark[@class='current']",
    )
    .await;
    // One direction hidden: its matches go too.
    ui.click("inspect-show-out").await;
    ui.wait_for(
        "only the client's",
        "//span[@id='inspect-matches' and .='10 matches']",
    )
    .await;
    assert!(
        !ui.displayed_xpath("//ol[@id='inspect-segments']/li[@data-dir='out']")
            .await
    );
    no_axe_violations(&ui, &axe, "with a search and one direction hidden").await;
    ui.emulate_color_scheme("dark").await;
    no_axe_violations(&ui, &axe, "with a search, dark").await;
    ui.emulate_color_scheme("light").await;
    ui.screenshot(&format!("{shot}-search")).await;
    ui.click("inspect-show-out").await;

    // Hex rows: 16 bytes, 8 on a phone; none wraps or overflows.
    ui.choose("inspect-view", "hex").await;
    let rows = ui.script(HEX_ROWS, vec![]).await;
    let want = if screen == Screen::Phone { 8 } else { 16 };
    assert_eq!(rows["widest"], want, "{rows}");
    assert_eq!(rows["overflowing"], 0, "{rows}");
    assert_eq!(rows["page_sideways"], false, "{rows}");
    assert!(
        !ui.displayed_xpath("//li[@data-dir='in']//pre[@data-field='text']")
            .await
    );
    no_axe_violations(&ui, &axe, "in the hex view").await;
    ui.screenshot(&format!("{shot}-hex")).await;
    drop(echo);
    ui.close().await;
}

#[tokio::test]
async fn inspect_follows_a_live_echo_conversation_to_the_end_on_a_desktop() {
    follows_a_live_echo_conversation(Screen::Desktop, "inspect-follow-desktop").await;
}

#[tokio::test]
async fn inspect_follows_a_live_echo_conversation_to_the_end_on_a_phone() {
    follows_a_live_echo_conversation(Screen::Phone, "inspect-follow-phone").await;
}

async fn decodes_an_exec_session(screen: Screen, shot: &str) {
    let Some(axe) = axe_source() else { return };
    let Some((served, ui, _dir)) = open(screen).await else {
        return;
    };
    let addr = served.addr(ServiceKind::Exec).parse().unwrap();
    let (mut raw, verdict) = handshake(addr, TEST_KEY.as_bytes()).await;
    assert_eq!(verdict["ok"], true);
    // Two requests in one write: a sticky packet for the server to split.
    let mut two = frame(&json!({"op": "run", "argv": ["echo", "one"]}), &[]);
    two.extend(frame(&json!({"op": "run", "argv": ["echo", "two"]}), &[]));
    raw.write_all(&two).await.unwrap();
    let mut exits = 0;
    while exits < 2 {
        let (header, _) = read_message(&mut raw).await;
        if header["type"] == "exit" {
            exits += 1;
        }
    }
    let peer = raw.local_addr().unwrap().to_string();
    let id = capture_id(&ui, "exec", &peer).await;
    ui.visit(
        &format!("/inspect/{id}"),
        "//ol[@id='inspect-segments']/li[@data-dir='in']",
    )
    .await;

    // The handshake, labelled; the answer is a MAC, the key is not shown.
    ui.wait_for(
        "the challenge",
        "//ol[@id='decoded-messages']/li[@data-kind='challenge' and @data-dir='out']",
    )
    .await;
    ui.wait_for(
        "the answer",
        "//ol[@id='decoded-messages']/li[@data-kind='answer' and @data-dir='in'][contains(., 'HMAC answer')]",
    )
    .await;
    // Each request: length prefix, JSON header; each reply's body.
    for word in ["one", "two"] {
        ui.wait_for(
            &format!("the request running echo {word}"),
            &format!(
                "//ol[@id='decoded-messages']/li[@data-kind='message' and @data-dir='in']\
                 [.//strong[contains(., 'run request')]]\
                 [.//dd[@data-field='prefix']/code]\
                 [.//pre[@data-field='header' and contains(., '\"{word}\"')]]"
            ),
        )
        .await;
        ui.wait_for(
            &format!("the output {word}"),
            &format!(
                "//ol[@id='decoded-messages']/li[@data-kind='message' and @data-dir='out']\
                 [.//strong[contains(., 'stdout')]][.//pre[@data-field='body-text' and contains(., '{word}')]]"
            ),
        )
        .await;
    }
    // The segment that carried both requests is marked on the transcript.
    ui.wait_for(
        "the sticky segment",
        "//ol[@id='inspect-segments']/li[@data-dir='in' and @data-sticky='2']\
         //span[@data-field='holds' and contains(., 'holds 2 messages')]",
    )
    .await;
    ui.wait_for(
        "the sticky packet named",
        "//p[@id='decoded-shared' and contains(., 'hold several messages')]",
    )
    .await;
    // The marks made blocks taller; the view still shows the end.
    let at = ui.script(LAST_BLOCK, vec![]).await;
    assert_eq!(at["pinned"], "true", "{at}");
    assert_eq!(
        at["in_box"], true,
        "the marks pushed the end out of view: {at}"
    );
    let (_, page) = ui
        .fetch(&format!("/api/v1/connections/{id}/capture/decoded"))
        .await;
    assert!(!page.contains(TEST_KEY), "the key leaked into the decoding");
    no_axe_violations(&ui, &axe, "with the decoded messages").await;
    ui.emulate_color_scheme("dark").await;
    no_axe_violations(&ui, &axe, "with the decoded messages, dark").await;
    ui.emulate_color_scheme("light").await;
    ui.screenshot(&format!("{shot}-decoded")).await;

    // Closed, it is listed on the Captures page.
    drop(raw);
    ui.wait_for("closed", "//span[@id='inspect-state' and .='closed']")
        .await;
    ui.visit(
        "/captures",
        &format!("//tr[@data-capture-id='{id}' and @data-open='false']//a[@href='/inspect/{id}']"),
    )
    .await;
    no_axe_violations(&ui, &axe, "on the Captures page").await;
    ui.close().await;
}

#[tokio::test]
async fn inspect_decodes_an_exec_session_and_marks_a_sticky_segment_on_a_desktop() {
    decodes_an_exec_session(Screen::Desktop, "inspect-exec-desktop").await;
}

#[tokio::test]
async fn inspect_decodes_an_exec_session_and_marks_a_sticky_segment_on_a_phone() {
    decodes_an_exec_session(Screen::Phone, "inspect-exec-phone").await;
}
