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
//! The steps go through the page object in tests/common/dashboard.rs.
//! Needs `chromium` and `chromedriver`, and axe-core from npm (the README's
//! test command installs them). Without them the test fails and says so,
//! unless `SWITCHBOARD_SKIP_BROWSER=1` (or `SWITCHBOARD_SKIP_AXE=1`) is set.

mod common;

use serde_json::json;
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::dashboard::{Dashboard, PHONE_WIDTH, Screen, Site, axe_source};
use common::{ADMIN_PASSWORD, GUARD, TEST_KEY, guard};
use switchboard::kind::ServiceKind;

/// The overview with echo running.
const ECHO_RUNNING: &str = "//article[@data-service='echo' and @data-state='running']";

/// The page names an icon, so the browser never asks for a missing
/// `/favicon.ico`, and that icon is served.
async fn assert_icon(ui: &Dashboard, page: &str) {
    let href = ui
        .script(
            "return document.querySelector('link[rel~=icon]')?.getAttribute('href') ?? null;",
            vec![],
        )
        .await;
    let href = href
        .as_str()
        .unwrap_or_else(|| panic!("{page} has no <link rel=icon>"));
    assert_eq!(ui.fetch(href).await.0, 200, "{page}'s icon {href}");
}

/// The page is no wider than the phone's screen: nothing scrolls sideways
/// and the browser need not zoom out. `screen.width`, not `innerWidth`: on
/// a mobile viewport the layout viewport grows with a page too wide for it.
async fn assert_fits_phone(ui: &Dashboard, page: &str) {
    let sizes = ui
        .script(
            "const w = screen.width;
             const wide = [...document.querySelectorAll('body *')]
               .filter((e) => e.getBoundingClientRect().right > w + 0.5)
               .slice(0, 6)
               .map((e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${e.getAttribute('class') || ''}`
                 + ` ends at ${Math.round(e.getBoundingClientRect().right)}`);
             return { screen: w, page: document.documentElement.scrollWidth, wide };",
            vec![],
        )
        .await;
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
async fn assert_figures_apart(ui: &Dashboard) {
    let clashes = ui
        .script(
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
        .await;
    assert_eq!(clashes, json!([]), "figures overlap");
}

/// On a touch screen every visible control is at least 44 px square.
async fn assert_tap_targets(ui: &Dashboard, page: &str) {
    let small = ui
        .script(
            "if (!matchMedia('(pointer: coarse)').matches) return 'not a touch screen';
             return [...document.querySelectorAll('a, button, select, input, textarea, summary')]
               .filter((e) => e.getClientRects().length > 0 && !['checkbox', 'radio', 'file'].includes(e.type))
               .map((e) => [e, e.getBoundingClientRect()])
               .filter(([, r]) => r.width < 43.5 || r.height < 43.5)
               .map(([e, r]) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''} \
                 '${e.textContent.trim().slice(0, 20)}' ${Math.round(r.width)}x${Math.round(r.height)}`);",
            vec![],
        )
        .await;
    assert_eq!(small, json!([]), "{page}: tap targets under 44 px");
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

/// The address an instance's row on the Services page shows.
async fn row_address(ui: &Dashboard, name: &str) -> String {
    ui.text_at(&format!("//tr[@data-instance='{name}']/td[3]"))
        .await
        .trim()
        .to_owned()
}

/// The console's exit line for a command that succeeded.
const EXIT_0: &str = "//p[@id='exec-status' and @data-state='ok' and starts-with(., 'exit 0')]";
/// The sticky lab's framed side, its four messages apart.
const FOUR_FRAMED: &str =
    "//div[@id='sticky-framed']//ol[@data-field='messages' and count(li) = 4]";
/// A new token, shown once.
const NEW_TOKEN: &str = "//div[@id='token-new' and not(@hidden)]/pre[starts-with(., 'sbt_')]";

#[tokio::test]
async fn the_dashboard_works_in_a_real_browser() {
    let Some(Site {
        ui,
        served,
        dir: _dir,
        ..
    }) = Site::open(Screen::Desktop).await
    else {
        return;
    };

    // Signing in: a wrong password is told, the right one lands on the overview.
    ui.visit("/", "//input[@id='username']").await;
    ui.screenshot("1-sign-in").await;
    ui.sign_in("wrong password").await;
    ui.wait_for(
        "the sign-in error",
        "//p[@id='sign-in-error' and not(@hidden) and contains(., 'wrong user name or password')]",
    )
    .await;
    ui.sign_in(ADMIN_PASSWORD).await;

    // Every service's card, running; the live stream connected.
    for kind in ServiceKind::BUILTIN {
        ui.wait_for(
            &format!("the {kind} card running"),
            &format!("//article[@data-service='{kind}' and @data-state='running']"),
        )
        .await;
    }
    ui.wait_live().await;
    ui.screenshot("2-overview").await;

    // A raw TCP connection from this test shows up live, with its bytes.
    let mut echo = TcpStream::connect(served.addr(ServiceKind::Echo))
        .await
        .unwrap();
    echo.write_all(b"hello, browser").await.unwrap();
    let mut reply = [0u8; 14];
    echo.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"HELLO, BROWSER");
    let peer = echo.local_addr().unwrap().to_string();
    ui.visit(
        "/connections",
        &format!(
            "//tr[@data-service='echo'][td[normalize-space()='{peer}']]\
             [td[@data-field='bytes_in' and normalize-space()='14 B']]\
             [td[@data-field='bytes_out' and normalize-space()='14 B']]"
        ),
    )
    .await;
    // More bytes arrive while the page is open: the row follows without a reload.
    echo_bytes(&mut echo, 1000).await;
    ui.wait_for(
        "the row updated live",
        &format!("//tr[td[normalize-space()='{peer}']][td[@data-field='bytes_in' and normalize-space()='1014 B']]"),
    )
    .await;
    ui.screenshot("3-connections").await;

    // An admin closes a second connection from its row.
    let mut doomed = TcpStream::connect(served.addr(ServiceKind::Echo))
        .await
        .unwrap();
    doomed.write_all(b"bye").await.unwrap();
    let doomed_peer = doomed.local_addr().unwrap().to_string();
    ui.click_in_live_table(
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
    ui.wait_for(
        "the closed connection's row, faded",
        &format!("//tr[@data-gone='true'][td[normalize-space()='{doomed_peer}']][td[.='closed']]"),
    )
    .await;
    ui.wait_for(
        "the closed connection's row to go",
        &format!("//tbody[not(tr[td[normalize-space()='{doomed_peer}']])]"),
    )
    .await;
    // Sorting by a header: the newest id first by default, the oldest first
    // after a click on `#`.
    ui.click_on(
        "the # header",
        "//button[contains(@class, 'sort') and @data-sort='id']",
    )
    .await;
    ui.wait_for("ascending ids", "//th[@aria-sort='ascending']")
        .await;
    let order: Vec<u64> = ui
        .text_at("//table[@id='connections']/tbody")
        .await
        .lines()
        .filter_map(|l| l.trim().strip_prefix('#'))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    // A filter that hides every row says so, rather than "no connections".
    ui.type_in("conn-filter", "no-such-peer").await;
    ui.wait_for(
        "the filtered-out empty state",
        "//p[@id='conn-empty' and not(@hidden)]/span[@id='conn-filtered' and not(@hidden)]",
    )
    .await;
    assert!(ui.displayed("conn-filtered").await);
    assert!(!ui.displayed("conn-none").await);

    // Stop echo from its card, watch the state change, start it again.
    ui.go_to("/").await;
    ui.click_on(
        "echo's stop button",
        "//article[@data-service='echo']//button[@data-action='stop' and not(@disabled)]",
    )
    .await;
    ui.wait_for(
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
    ui.screenshot("4-echo-stopped").await;
    ui.click_on(
        "echo's start button",
        "//article[@data-service='echo']//button[@data-action='start' and not(@disabled)]",
    )
    .await;
    ui.wait_for("echo running again", ECHO_RUNNING).await;
    // The test config listens on port 0, so the restart bound a new port:
    // the card shows which.
    let addr = ui
        .text_at("//article[@data-service='echo']//p[@data-field='addr']")
        .await;
    assert_eq!(through(addr.trim(), b"back").await, b"BACK");

    // Figures that grow stay apart: 300 KiB each way on a desktop card.
    let mut again = TcpStream::connect(addr.trim()).await.unwrap();
    echo_bytes(&mut again, 300 * 1024).await;
    ui.wait_for(
        "echo's bytes in KiB",
        "//article[@data-service='echo']//dd[@data-field='bytes_in' and contains(., 'KiB')]",
    )
    .await;
    assert_figures_apart(&ui).await;
    ui.screenshot("4-overview-busy").await;

    // The traffic page: the chart drawn, the stop and start in the event log.
    ui.visit("/traffic", "//div[@id='chart']//canvas").await;
    ui.wait_for(
        "the stop in the event log",
        "//table[@id='log']//tr[@data-type='service_state' and @data-service='echo'][td[.='now stopped']]",
    )
    .await;
    ui.screenshot("5-traffic").await;

    // Signing out ends the session: the overview sends us back to sign in.
    ui.click("sign-out").await;
    ui.wait_for("the sign-in page", "//form[@id='sign-in']")
        .await;
    ui.visit("/", "//form[@id='sign-in']").await;

    // Shutdown does not wait on a page's open live stream.
    ui.sign_in(ADMIN_PASSWORD).await;
    ui.wait_live().await;
    let (status, stderr) = served.terminate().await;
    assert!(status.success(), "{status}");
    assert!(!stderr.contains("outlived"), "{stderr}");
    ui.close().await;
}

#[tokio::test]
async fn send_sticky_upload_and_console_panels_work_in_a_real_browser() {
    let Some(Site {
        ui,
        served,
        data_dir,
        dir,
    }) = Site::open(Screen::Desktop).await
    else {
        return;
    };
    ui.sign_in_as_admin().await;

    // A test message to echo, and its reply, bytes and equivalents.
    ui.visit("/send", "//textarea[@id='send-text']").await;
    // No empty result panel before anything was sent.
    for panel in ["send-result", "sticky-result"] {
        assert!(
            !ui.displayed(panel).await,
            "#{panel} shown before an action"
        );
    }
    ui.type_in("send-text", "hello from chromium").await;
    ui.click("send-button").await;
    ui.wait_for(
        "the reply",
        "//code[@id='send-reply' and .='HELLO FROM CHROMIUM']",
    )
    .await;
    assert_eq!(
        ui.text_at("//*[@id='send-cli']").await,
        format!(
            "switchboard echo {} 'hello from chromium'",
            served.addr(ServiceKind::Echo)
        )
    );
    ui.wait_for("the C/S time", "//p[@id='send-cs' and contains(., 's')]")
        .await;
    ui.screenshot("6-send").await;

    // Sticky packets: the raw reads merge, the framed ones come apart.
    ui.click("sticky-button").await;
    ui.wait_for(
        "merged raw reads",
        "//div[@id='sticky-raw']//ol[@data-field='reads' and count(li) >= 1 and count(li) < 4]",
    )
    .await;
    ui.wait_for(
        "four framed messages",
        &format!("{FOUR_FRAMED}/li[4][.='PACKETS']"),
    )
    .await;
    ui.screenshot("7-sticky").await;

    // The same lab through exec's framings: here the one `header` instance,
    // whose replies come back whole, one per command.
    ui.wait_for("the commands", "//textarea[@id='sticky-exec-text']")
        .await;
    ui.type_in("sticky-exec-text", "echo one\necho two").await;
    ui.click("sticky-exec-button").await;
    ui.wait_for(
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
    ui.visit("/files", "//input[@id='file-input']").await;
    for panel in ["uploads", "put-compare"] {
        assert!(
            !ui.displayed(panel).await,
            "#{panel} shown before an upload"
        );
    }
    ui.upload("//input[@id='file-input']", &upload).await;
    ui.wait_for(
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
    ui.wait_for(
        "the file in the list with its hash",
        &format!(
            "//table[@id='files']//tr[@data-name='several.bin'][td[@data-sha256='{expected}' and code[.='{}']]]",
            &expected[..12]
        ),
    )
    .await;
    ui.screenshot("8-files").await;

    // The console: `date` runs, exit 0; a program off the allowlist is refused.
    ui.visit("/console", "//input[@id='exec-input']").await;
    ui.type_in("exec-input", "date").await;
    ui.click("exec-run").await;
    ui.wait_for("exit 0", EXIT_0).await;
    let out = ui.text_at("//*[@id='exec-output']").await;
    assert!(out.starts_with("$ date"), "the command is echoed: {out:?}");
    assert!(
        out.chars().any(|c| c.is_ascii_digit()),
        "date printed something: {out:?}"
    );
    ui.screenshot("9-console").await;

    // A streamed response on a kept-alive connection is not held back by
    // Nagle until the browser's delayed ACK (≥ 40 ms on Linux, each time):
    // the dashboard sets TCP_NODELAY. 21 commands in a row from the page;
    // the best of the last 20 (the first may open the connection) must
    // spend under those 40 ms outside the command's own C/S leg. With
    // Nagle every one waits for the ACK; without it, one in 20 getting its
    // time on a loaded machine (debug Chromium, two busy cores) is enough.
    let gaps = ui
        .script_async(
            "const done = arguments[0];
             (async () => {
               const csrf = document.querySelector('meta[name=\"csrf-token\"]').content;
               const gaps = [];
               for (let i = 0; i < 21; i++) {
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
        .await;
    let gaps: Vec<f64> = serde_json::from_value(gaps.clone())
        .unwrap_or_else(|e| panic!("the page's timings ({e}): {gaps}"));
    let best = gaps[1..].iter().copied().fold(f64::INFINITY, f64::min);
    assert!(
        best < 40.0,
        "every kept-alive exec spent ≥ 40 ms outside C/S (Nagle?): {gaps:?}"
    );
    ui.type_in("exec-input", "rm -rf /").await;
    ui.click("exec-run").await;
    ui.wait_for(
        "the refusal",
        "//p[@id='exec-status' and @data-state='failed' and contains(., '`rm` is not allowed')]",
    )
    .await;
    ui.screenshot("10-console-refused").await;
    // Scrollback: the earlier output is still there, after it the new line.
    let out = ui.text_at("//*[@id='exec-output']").await;
    assert!(
        out.starts_with("$ date") && out.contains("$ rm -rf /"),
        "{out:?}"
    );
    // Shell characters without a shell get a hint; Clear empties the output.
    ui.type_in("exec-input", "ls | wc -l").await;
    ui.wait_for(
        "the no-shell hint",
        "//p[@id='exec-hint' and not(@hidden) and contains(., 'plain arguments')]",
    )
    .await;
    ui.click("exec-clear").await;
    assert_eq!(ui.text_at("//*[@id='exec-output']").await, "");
    ui.close().await;
}

#[tokio::test]
async fn every_page_fits_a_phone_screen_and_has_an_icon() {
    let Some(Site {
        ui, served, dir, ..
    }) = Site::open(Screen::Phone).await
    else {
        return;
    };
    ui.visit("/login", "//input[@id='username']").await;
    assert_fits_phone(&ui, "sign-in").await;
    assert_icon(&ui, "sign-in").await;
    // Tools that ask for the conventional path get the icon too.
    assert_eq!(ui.fetch("/favicon.ico").await.0, 200);
    ui.screenshot("1-sign-in-mobile").await;
    ui.sign_in(ADMIN_PASSWORD).await;
    ui.wait_for("the overview", ECHO_RUNNING).await;

    // No connection yet: the empty state names where echo really listens
    // (here a port the kernel chose), not a default.
    let echo_addr = served.addr(ServiceKind::Echo);
    ui.visit(
        "/connections",
        &format!(
            "//p[@id='conn-empty' and not(@hidden)]//span[@id='conn-try' and not(@hidden)]\
             /code[normalize-space()='switchboard echo {echo_addr} hello']"
        ),
    )
    .await;
    assert!(!ui.displayed("conn-filtered").await);
    assert_fits_phone(&ui, "connections (empty)").await;
    ui.screenshot("3-connections-empty-mobile").await;

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
        ui.visit(path, ready).await;
        assert_fits_phone(&ui, path).await;
        assert_icon(&ui, path).await;
        // Each page again with what an action adds: results, code, tables.
        match path {
            "/" => assert_figures_apart(&ui).await,
            "/send" => {
                ui.click("send-button").await;
                ui.wait_for(
                    "the reply",
                    "//code[@id='send-reply' and .='HELLO, SWITCHBOARD']",
                )
                .await;
                ui.click("sticky-button").await;
                ui.wait_for("four framed messages", FOUR_FRAMED).await;
                // The three-path comparison: its table and chart checked too.
                ui.type_in("send-repeat", "3").await;
                ui.click("compare-button").await;
                ui.wait_for(
                    "the comparison",
                    "//div[@id='compare-result' and not(@hidden)]",
                )
                .await;
            }
            "/files" => {
                ui.upload(ready, &small).await;
                ui.wait_for(
                    "the upload verified",
                    "//tr[@data-file='small.txt' and @data-state='verified']",
                )
                .await;
                ui.wait_for(
                    "the file listed",
                    "//table[@id='files']//tr[@data-name='small.txt']",
                )
                .await;
            }
            "/console" => {
                ui.click("exec-run").await;
                ui.wait_for("exit 0", EXIT_0).await;
            }
            "/tokens" => {
                ui.type_in("token-name", "phone").await;
                ui.click("token-create").await;
                ui.wait_for("the new token", NEW_TOKEN).await;
            }
            _ => {}
        }
        assert_fits_phone(&ui, path).await;
        ui.screenshot(&format!("{shot}-mobile")).await;
    }
    drop(echo);
    ui.close().await;
}

/// Every page, signed in as admin with live data (an open connection, a
/// stopped service, a stored file, a command run, a token, a send and an
/// error toast), has no axe-core violation in light or dark mode.
async fn assert_no_axe_violations(screen: Screen) {
    let Some(Site {
        ui, served, dir, ..
    }) = Site::open(screen).await
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
            ui.emulate_color_scheme(scheme).await;
            violations.extend(
                ui.axe_violations(&axe)
                    .await
                    .into_iter()
                    .map(|v| format!("{page} {scheme}{suffix}: {v}")),
            );
            checks += 1;
        }
        if screen == Screen::Phone {
            assert_tap_targets(&ui, page).await;
        }
        // The light scheme is in the other tests' screenshots.
        let name = page.trim_start_matches('/');
        let name = if name.is_empty() { "overview" } else { name };
        ui.screenshot(&format!("dark-{name}{suffix}")).await;
    };

    // The sign-in page, with its error shown.
    ui.go_to("/login").await;
    ui.sign_in("wrong password").await;
    ui.wait_for(
        "the sign-in error",
        "//p[@id='sign-in-error' and not(@hidden)]",
    )
    .await;
    check("/login").await;
    ui.sign_in(ADMIN_PASSWORD).await;
    ui.wait_for("the overview", ECHO_RUNNING).await;

    // Live data: bytes on an open connection, and a stopped service.
    let mut echo = TcpStream::connect(served.addr(ServiceKind::Echo))
        .await
        .unwrap();
    echo_bytes(&mut echo, 4096).await;
    ui.click_on(
        "time's stop button",
        "//article[@data-service='time']//button[@data-action='stop' and not(@disabled)]",
    )
    .await;
    ui.wait_for(
        "time stopped",
        "//article[@data-service='time' and @data-state='stopped']",
    )
    .await;
    ui.wait_for(
        "echo's bytes",
        "//article[@data-service='echo']//dd[@data-field='bytes_in' and .!='0 B']",
    )
    .await;
    check("/").await;

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
        ui.visit(path, ready).await;
        // What an action adds: results, code, tables, toasts.
        match path {
            "/send" => {
                ui.click("send-button").await;
                ui.wait_for("the reply", "//code[@id='send-reply' and .!='']")
                    .await;
                ui.click("sticky-button").await;
                ui.wait_for("four framed messages", FOUR_FRAMED).await;
            }
            "/files" => {
                ui.upload(ready, &small).await;
                ui.wait_for(
                    "the file listed",
                    "//table[@id='files']//tr[@data-name='small.txt']",
                )
                .await;
                ui.wait_for(
                    "the compare panel",
                    "//div[@id='put-compare' and not(@hidden)]",
                )
                .await;
            }
            "/console" => {
                ui.click("exec-run").await;
                ui.wait_for("exit 0", "//p[@id='exec-status' and @data-state='ok']")
                    .await;
                // A past command comes back from the history by keyboard:
                // each is a button, and Enter on it fills the line.
                ui.type_in("exec-input", "uptime").await;
                ui.press_enter(
                    "the history's button",
                    "//ol[@id='exec-history']/li/button[code='date']",
                )
                .await;
                assert_eq!(ui.value_of("exec-input").await.as_deref(), Some("date"));
            }
            "/tokens" => {
                ui.type_in("token-name", "axe").await;
                ui.click("token-create").await;
                ui.wait_for("the new token", NEW_TOKEN).await;
                // The same name again: refused, in an error toast.
                ui.type_in("token-name", "axe").await;
                ui.click("token-create").await;
                ui.wait_for(
                    "the error toast",
                    "//div[@id='toast' and not(@hidden) and @data-kind='error']",
                )
                .await;
            }
            _ => {}
        }
        check(path).await;
        if path == "/tokens" {
            // An error stays up, through both checks, until dismissed.
            assert!(
                ui.displayed("toast").await,
                "the error toast went by itself"
            );
            ui.click("toast-close").await;
            assert!(!ui.displayed("toast").await, "the error toast dismissed");
        }
    }
    // The wire inspector, reached from the connection's row, with its
    // segments drawn. Followed by its address: the live table's redraws
    // can leave a found link stale before a click lands.
    ui.go_to("/connections").await;
    let link = ui
        .attr_in_live_table(
            "echo's Inspect link",
            "//tr[@data-service='echo']//a[@data-inspect]",
            "href",
        )
        .await;
    ui.visit(&link, "//ol[@id='inspect-segments']/li[@data-dir='out']")
        .await;
    check("/inspect").await;
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
    ui.close().await;
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
    let Some(Site {
        ui,
        served,
        dir: _dir,
        ..
    }) = Site::open(Screen::Desktop).await
    else {
        return;
    };
    ui.sign_in_as_admin().await;
    // A raw TCP connection made here, captured (echo has capture = true).
    let mut echo = TcpStream::connect(served.addr(ServiceKind::Echo))
        .await
        .unwrap();
    echo.write_all(b"hello, inspector").await.unwrap();
    let mut reply = [0u8; 16];
    echo.read_exact(&mut reply).await.unwrap();
    let peer = echo.local_addr().unwrap().to_string();
    // Followed by its address, not clicked: the live table redraws its
    // rows every second, which can leave a found element stale.
    ui.go_to("/connections").await;
    let link = ui
        .attr_in_live_table(
            "our connection's Inspect link",
            &format!("//tr[td[normalize-space()='{peer}']]//a[@data-inspect]"),
            "href",
        )
        .await;
    ui.visit(
        &link,
        "//p[@id='inspect-warning' and contains(., 'passwords')]",
    )
    .await;
    let segment = |dir: &str, text: &str| {
        format!(
            "//ol[@id='inspect-segments']/li[@data-dir='{dir}']\
             [.//pre[@data-field='text' and .='{text}']]"
        )
    };
    ui.wait_for("the request", &segment("in", "hello, inspector"))
        .await;
    ui.wait_for("the reply", &segment("out", "HELLO, INSPECTOR"))
        .await;
    // Hex beside the text, and the length in the block's head.
    ui.wait_for(
        "the request in hex",
        "//li[@data-dir='in'][.//span[@data-field='len' and .='16 B']]\
         //pre[@data-field='hex' and starts-with(., '68 65 6c 6c 6f')]",
    )
    .await;

    // Live: more bytes while the page is open.
    echo.write_all(b"more").await.unwrap();
    let mut more = [0u8; 4];
    echo.read_exact(&mut more).await.unwrap();
    ui.wait_for("the new reply", &segment("out", "MORE")).await;

    // Search by hex: "MORE" is 4d4f5245 (letters in either case match, so
    // the client's "more" too), marked in the hex and the text.
    ui.type_in("inspect-search", "4d4f5245").await;
    ui.wait_for(
        "both matches counted",
        "//span[@id='inspect-matches' and .='2 matches']",
    )
    .await;
    ui.wait_for(
        "the match marked",
        "//ol[@id='inspect-segments']/li[@data-dir='out']\
         [.//pre[@data-field='hex']/mark[.='4d 4f 52 45']]\
         [.//pre[@data-field='text']/mark[.='MORE']]",
    )
    .await;
    ui.screenshot("14-inspect").await;
    ui.type_in("inspect-search", "").await;

    // Pause holds the view; resuming catches up, the close included.
    ui.click("inspect-pause").await;
    ui.wait_for(
        "paused",
        "//button[@id='inspect-pause' and @aria-pressed='true']",
    )
    .await;
    echo.write_all(b"later").await.unwrap();
    let mut later = [0u8; 5];
    echo.read_exact(&mut later).await.unwrap();
    drop(echo);
    ui.click("inspect-pause").await;
    ui.wait_for("what came while paused", &segment("in", "later"))
        .await;
    ui.wait_for(
        "the connection closed",
        "//span[@id='inspect-state' and .='closed']",
    )
    .await;
    ui.click("inspect-top").await;

    // Replay it to echo again: the same replies, said equal, shown beside
    // the recorded ones.
    ui.click("replay-run").await;
    ui.wait_for(
        "the replay's verdict",
        "//p[@id='replay-summary' and @data-equal='true' and contains(., 'equal the recorded')]",
    )
    .await;
    ui.wait_for(
        "the new replies",
        "//pre[@id='replay-replies' and contains(., 'HELLO, INSPECTOR') and contains(., 'LATER')]",
    )
    .await;
    ui.close().await;
}

#[tokio::test]
async fn a_tcp_proxy_is_added_used_edited_and_removed_from_the_services_page() {
    let Some(Site {
        ui,
        served,
        data_dir,
        dir: _dir,
    }) = Site::open(Screen::Desktop).await
    else {
        return;
    };
    let kept = || std::fs::read_to_string(data_dir.join("services.toml")).unwrap();
    ui.sign_in_as_admin().await;
    ui.visit(
        "/services",
        "//form[@id='instance-form']//input[@name='listen']",
    )
    .await;
    ui.type_in("instance-name", "front").await;
    ui.choose("instance-kind", "tcp-proxy").await;
    let upstream = "//form[@id='instance-form']//input[@name='upstream']";
    let listen = "//form[@id='instance-form']//input[@name='listen']";
    let type_at = async |xpath: &str, text: &str| {
        common::dashboard::type_into(&ui.wait_for(xpath, xpath).await, text).await;
    };
    type_at(upstream, &served.addr(ServiceKind::Echo)).await;
    // A port in use (exec's: echo's own would be refused first as a loop,
    // the proxy listening where it sends): the error shows at the field,
    // and nothing is added.
    type_at(listen, &served.addr(ServiceKind::Exec)).await;
    ui.click("instance-save").await;
    ui.wait_for(
        "the error at the address",
        "//span[@data-error-for='listen' and not(@hidden) and contains(., 'address in use')]",
    )
    .await;
    type_at(listen, "127.0.0.1:0").await;
    ui.click("instance-save").await;
    // Through the proxy to echo, on the address the page shows.
    let addr = row_address(&ui, "front").await;
    assert_eq!(through(&addr, b"from the page").await, b"FROM THE PAGE");
    let file = kept();
    assert!(
        file.contains("[services.front]") && file.contains("tcp-proxy"),
        "{file}"
    );
    ui.screenshot("12-services-added").await;

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
    ui.click_on("front's Edit button", "//button[@data-edit='front']")
        .await;
    ui.wait_for(
        "the edit form",
        "//h2[@id='instance-form-title' and .='Edit front']",
    )
    .await;
    type_at(upstream, &other_addr).await;
    ui.click("instance-save").await;
    ui.wait_for(
        "the page again",
        "//h2[@id='instance-form-title' and .='Add an instance']",
    )
    .await;
    let addr = row_address(&ui, "front").await;
    assert_eq!(through(&addr, b"hello").await, b"other");
    assert!(kept().contains(&other_addr), "{}", kept());

    ui.click_on("front's Remove button", "//button[@data-remove='front']")
        .await;
    ui.confirm().await;
    ui.wait_for(
        "the row gone",
        "//table[@id='instances' and not(.//tr[@data-instance='front'])]",
    )
    .await;
    assert!(!kept().contains("front"), "{}", kept());
}

#[tokio::test]
async fn send_compares_three_paths_and_helps_with_time_formats_and_length_prefixes() {
    let Some(Site {
        ui,
        served: _served,
        dir: _dir,
        ..
    }) = Site::open(Screen::Desktop).await
    else {
        return;
    };
    ui.sign_in_as_admin().await;
    ui.go_to("/send").await;
    ui.wait_ready().await;
    assert!(!ui.displayed("compare-result").await);

    // Five messages over each path: three medians, one unit, 15 dots.
    ui.wait_for("the repeat field", "//input[@id='send-repeat']")
        .await;
    assert_eq!(ui.value_of("send-repeat").await.as_deref(), Some("20"));
    ui.type_in("send-repeat", "5").await;
    ui.click("compare-button").await;
    ui.wait_for(
        "the comparison",
        "//div[@id='compare-result' and not(@hidden)]",
    )
    .await;
    let mut units = Vec::new();
    for path in ["http", "ws", "cs"] {
        let median = ui
            .text_at(&format!(
                "//tr[@data-path='{path}']/td[@data-field='median']"
            ))
            .await;
        let (value, unit) = median
            .split_once(' ')
            .unwrap_or_else(|| panic!("{path}: {median:?}"));
        assert!(
            value.parse::<f64>().is_ok_and(|v| v > 0.0),
            "{path}: {median:?}"
        );
        units.push(unit.to_owned());
        let ratio = ui
            .text_at(&format!(
                "//tr[@data-path='{path}']/td[@data-field='ratio']"
            ))
            .await;
        assert!(ratio.ends_with('×'), "{path}: {ratio:?}");
    }
    assert!(units.iter().all(|u| *u == units[0]), "one unit: {units:?}");
    assert_eq!(
        ui.text_at("//div[@id='compare-result']//span[@data-field='n']")
            .await,
        "5"
    );
    ui.wait_for(
        "15 dots in an accessible chart",
        "//*[local-name()='svg' and @id='compare-chart' and @role='img' and count(*[local-name()='circle']) = 15]",
    )
    .await;
    ui.screenshot("6b-send-three-paths").await;

    // `time`: the field asks for a strftime format, and examples fill it.
    ui.choose("send-service", "time").await;
    ui.wait_for("the format help", "//div[@id='time-help' and not(@hidden)]")
        .await;
    let placeholder = ui
        .wait_for("the message box", "//textarea[@id='send-text']")
        .await
        .attr("placeholder")
        .await
        .unwrap();
    assert_eq!(placeholder.as_deref(), Some("%Y-%m-%d %H:%M:%S"));
    ui.click_on(
        "the %H:%M:%S example",
        "//div[@id='time-examples']/button[@data-format='%H:%M:%S']",
    )
    .await;
    assert_eq!(ui.value_of("send-text").await.as_deref(), Some("%H:%M:%S"));
    ui.click("send-button").await;
    ui.wait_for(
        "a formatted time",
        "//code[@id='send-reply' and string-length(.) = 8 and substring(., 3, 1) = ':']",
    )
    .await;

    // The sticky lab draws each length prefix as a chip.
    ui.click("sticky-button").await;
    ui.wait_for(
        "hello's length as a chip",
        "//div[@id='sticky-framed']//ol[@data-field='reads']//span[contains(@class, 'prefix') and .='[00 00 00 05]']",
    )
    .await;
}

#[tokio::test]
async fn the_files_list_follows_uploads_and_deletes_without_a_reload() {
    let Some(Site {
        ui,
        served,
        data_dir,
        dir,
    }) = Site::open(Screen::Desktop).await
    else {
        return;
    };
    ui.sign_in_as_admin().await;
    ui.go_to("/files").await;
    ui.wait_ready().await;
    ui.wait_live().await;
    // Marks this page load: a reload would lose it.
    ui.script("document.body.dataset.loadMark = 'same';", vec![])
        .await;

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
    ui.wait_for(
        "a file stored elsewhere, listed live",
        "//table[@id='files']//tr[@data-name='script.txt']",
    )
    .await;

    // Uploaded through the page, listed with a short hash and the full one on hover.
    let upload = dir.path().join("doomed.txt");
    std::fs::write(&upload, b"short-lived").unwrap();
    ui.upload("//input[@id='file-input']", &upload).await;
    let hash = switchboard::wire::hex(&sha2::Sha256::digest(b"short-lived"));
    ui.wait_for(
        "the upload listed with its short hash",
        &format!(
            "//table[@id='files']//tr[@data-name='doomed.txt']/td[@title='{hash}']/code[.='{}']",
            &hash[..12]
        ),
    )
    .await;
    // The Python is there, folded away.
    ui.wait_for(
        "the Python snippet, collapsed",
        "//details[@id='put-python-box' and not(@open)]",
    )
    .await;

    // The filter.
    ui.type_in("files-search", "doom").await;
    ui.wait_for(
        "only the match",
        "//table[@id='files']/tbody[count(tr) = 1]/tr[@data-name='doomed.txt']",
    )
    .await;
    ui.script(
        "const s = document.getElementById('files-search'); s.value = ''; s.dispatchEvent(new Event('input'));",
        vec![],
    )
    .await;
    ui.wait_for("both again", "//table[@id='files']/tbody[count(tr) = 2]")
        .await;

    // Deleted from the page (after the confirmation): gone from list and disk.
    ui.click_on(
        "doomed.txt's Delete button",
        "//tr[@data-name='doomed.txt']//button[@data-action='delete']",
    )
    .await;
    ui.confirm().await;
    ui.wait_for(
        "the deleted file gone from the list",
        "//table[@id='files']/tbody[count(tr) = 1 and not(tr[@data-name='doomed.txt'])]",
    )
    .await;
    assert!(!data_dir.join("files/doomed.txt").exists());

    // Deleted by someone else (the API with this session): the page hears it.
    let (status, body) = ui.api("DELETE", "/api/v1/files/script.txt", None).await;
    assert_eq!(status, 204, "{body}");
    ui.wait_for(
        "the other delete, heard live",
        "//table[@id='files']/tbody[count(tr) = 0]",
    )
    .await;
    ui.wait_for("the same page load", "//body[@data-load-mark='same']")
        .await;
    ui.screenshot("8b-files-live").await;
}

#[tokio::test]
async fn traffic_reads_in_binary_ticks_per_service_on_either_scale_and_its_log_pauses() {
    let Some(Site {
        ui,
        served,
        dir: _dir,
        ..
    }) = Site::open(Screen::Desktop).await
    else {
        return;
    };
    ui.sign_in_as_admin().await;
    ui.go_to("/traffic").await;
    ui.wait_live().await;

    // Linear: whole numbers of one binary unit (20 KiB/s, never 48.8).
    // Enough through echo that the axis runs into tens of KiB/s; the chart
    // takes one sample a second, so on a busy machine a burst can fall
    // between samples: send again until one lands (ten times at most).
    let mut echo = TcpStream::connect(served.addr(ServiceKind::Echo))
        .await
        .unwrap();
    let in_kib = "//div[@id='chart' and contains(@data-y-ticks, '0 KiB/s')]";
    let mut landed = false;
    for _ in 0..10 {
        echo_bytes(&mut echo, 300 * 1024).await;
        landed = ui
            .client
            .wait()
            .at_most(std::time::Duration::from_secs(3))
            .for_element(fantoccini::Locator::XPath(in_kib))
            .await
            .is_ok();
        if landed {
            break;
        }
    }
    assert!(landed, "tens of KiB/s on the axis after ten bursts");
    let ticks = async |xpath: &str| {
        ui.wait_for("the chart's ticks", xpath)
            .await
            .attr("data-y-ticks")
            .await
            .unwrap()
            .expect("the chart lists its ticks")
    };
    let whole = |labels: &str| {
        labels.split('|').all(|l| {
            l.split_once(' ').is_some_and(|(n, unit)| {
                n.parse::<u64>().is_ok() && ["B/s", "KiB/s", "MiB/s", "GiB/s"].contains(&unit)
            })
        })
    };
    let linear = ticks(in_kib).await;
    assert!(whole(&linear), "{linear}");

    // One service: its in and out as two lines.
    ui.choose("traffic-view", "echo").await;
    ui.wait_for(
        "echo in and out in the legend",
        "//div[@id='chart']//*[contains(@class, 'u-legend')][.//*[.='echo in'] and .//*[.='echo out']]",
    )
    .await;
    // Log scale: powers of two, from 1 B/s up.
    ui.click("traffic-log").await;
    let log = ticks(&format!(
        "//div[@id='chart' and @data-y-ticks != '{linear}']"
    ))
    .await;
    assert!(log.starts_with("1 B/s"), "{log}");
    assert!(whole(&log), "{log}");
    for label in log.split('|') {
        let n: u64 = label.split(' ').next().unwrap().parse().unwrap();
        assert!(n.is_power_of_two(), "{log}");
    }
    ui.screenshot("5b-traffic-log").await;

    // The log's time: local 24-hour with milliseconds, UTC on hover.
    let time = ui
        .wait_for("a logged event", "//table[@id='log']//tr[1]/td[1]")
        .await;
    let shown = time.text().await.unwrap();
    assert!(
        shown.len() == 12 && shown.as_bytes()[2] == b':' && shown.as_bytes()[8] == b'.',
        "{shown:?}"
    );
    assert!(time.attr("title").await.unwrap().unwrap().ends_with(" UTC"));

    // Paused, new events are counted, not shown; resumed, they are shown.
    ui.click("log-pause").await;
    let rows = "//table[@id='log']/tbody/tr";
    let rows_before = ui.count(rows).await;
    let probe = TcpStream::connect(served.addr(ServiceKind::Echo))
        .await
        .unwrap();
    let peer = probe.local_addr().unwrap().to_string();
    ui.wait_for(
        "new events counted while paused",
        "//*[@id='log-new' and not(@hidden) and contains(., ' new') and not(starts-with(., '0 '))]",
    )
    .await;
    assert_eq!(ui.count(rows).await, rows_before, "the log held still");
    ui.click("log-pause").await;
    ui.wait_for(
        "the held event shown on resume",
        &format!("//table[@id='log']//tr[@data-type='opened'][td[contains(., '{peer}')]]"),
    )
    .await;
    drop(probe);
}
