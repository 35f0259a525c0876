//! The Toxics panel of the Services page in a real headless Chromium
//! (chromedriver), against the real binary: a slicer toxic added from the
//! dashboard cuts an echo conversation through a tcp-proxy into 1-byte
//! segments, which the wire inspector then shows; the on/off switch and
//! Remove reach the proxy's live toxics; axe-core finds nothing wrong with
//! the open panel. The form is generated from `/api/v1/toxics/types`,
//! which this test does not restate: it only picks a type and fills the
//! field that type's description names.
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

/// The proxy's toxics as the API lists them.
async fn toxics_of(browser: &Client, proxy: &str) -> serde_json::Value {
    browser
        .execute_async(
            "const [path, done] = arguments;
             fetch(path).then((r) => r.json()).then(done, (e) => done(String(e)));",
            vec![format!("/api/v1/services/{proxy}/toxics").into()],
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_slicer_added_from_the_dashboard_shows_as_one_byte_segments_in_the_inspector() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let Some(axe) = axe_source() else { return };
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        &dir.path().join("data"),
        ServiceKind::BUILTIN,
        &[
            ("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("SWITCHBOARD_KEY", TEST_KEY),
            // The inspector has echo's side of the conversation to show.
            ("SWITCHBOARD_ECHO_CAPTURE", "true"),
        ],
    )
    .await;
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

    // A tcp-proxy in front of echo.
    let echo = served.addr(ServiceKind::Echo);
    let made = api_in_page(
        &browser,
        "POST",
        "/api/v1/services",
        serde_json::json!({"name": "cut", "kind": "tcp-proxy",
                           "settings": {"listen": "127.0.0.1:0", "upstream": echo}}),
    )
    .await;
    assert!((200..300).contains(&made), "the proxy added: {made}");

    // Its Toxics panel, opened from its row, by the keyboard.
    browser.goto(&format!("{base}/services")).await.unwrap();
    wait_for(&browser, "the page's script", "//body[@data-ready='true']").await;
    let addr = wait_for(
        &browser,
        "the proxy's row",
        "//tr[@data-instance='cut']/td[3]",
    )
    .await
    .text()
    .await
    .unwrap()
    .trim()
    .to_owned();
    let open = browser
        .find(Locator::XPath("//button[@data-toxics='cut']"))
        .await
        .unwrap();
    open.send_keys("\u{e007}").await.unwrap(); // Enter
    wait_for(
        &browser,
        "the panel, opened by Enter",
        "//section[@id='toxics-panel' and not(@hidden) and @data-proxy='cut']\
         [.//p[@id='toxics-empty' and not(@hidden)]]",
    )
    .await;
    // tcp-only types are offered, udp-only ones are not.
    wait_for(
        &browser,
        "slicer offered",
        "//select[@id='toxic-type']/option[@value='slicer']",
    )
    .await;
    assert!(
        browser
            .find(Locator::XPath(
                "//select[@id='toxic-type']/option[@value='loss']"
            ))
            .await
            .is_err(),
        "a udp-only type offered for a tcp-proxy"
    );
    click(
        &browser,
        "//select[@id='toxic-type']/option[@value='slicer']",
    )
    .await;
    click(
        &browser,
        "//select[@id='toxic-stream']/option[@value='upstream']",
    )
    .await;
    // The slicer's fields, generated from its description, labelled.
    let size = wait_for(
        &browser,
        "the average_size field",
        "//label[contains(., 'average_size')]/input[@name='average_size' and @type='number']",
    )
    .await;
    size.clear().await.unwrap();
    size.send_keys("1").await.unwrap();
    // Segments 20 ms apart, so echo reads each alone.
    let delay = wait_for(&browser, "the delay field", "//input[@name='delay']").await;
    delay.clear().await.unwrap();
    delay.send_keys("20000").await.unwrap();

    // A refused value shows at its field first.
    let toxicity = browser.find(Locator::Id("toxic-toxicity")).await.unwrap();
    toxicity.clear().await.unwrap();
    toxicity.send_keys("2").await.unwrap();
    click(&browser, "//button[@id='toxic-save']").await;
    wait_for(
        &browser,
        "the error at toxicity",
        "//span[@data-error-for='toxicity' and not(@hidden) and normalize-space()!='']",
    )
    .await;
    toxicity.clear().await.unwrap();
    toxicity.send_keys("1").await.unwrap();
    click(&browser, "//button[@id='toxic-save']").await;
    wait_for(
        &browser,
        "the slicer listed",
        "//tr[@data-toxic='slicer_upstream' and @data-enabled='true']\
         [td[contains(., 'average_size=1')]]",
    )
    .await;
    let violations = axe_violations(&browser, &axe).await;
    assert!(
        violations.is_empty(),
        "axe on the open panel: {violations:#?}"
    );
    let listed = toxics_of(&browser, "cut").await;
    assert_eq!(listed[0]["attributes"]["average_size"], 1, "{listed}");
    assert_eq!(listed[0]["stream"], "upstream", "{listed}");

    // An echo conversation through the proxy.
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    conn.write_all(b"slice").await.unwrap();
    let mut reply = [0u8; 5];
    guard("the reply through the slicer", conn.read_exact(&mut reply))
        .await
        .unwrap();
    assert_eq!(&reply, b"SLICE");

    // Echo's side of it in the inspector: one byte per segment.
    browser.goto(&format!("{base}/connections")).await.unwrap();
    // The proxy's connection is marked as under toxics; echo's is not.
    wait_for(
        &browser,
        "the proxy's connection marked",
        "//tr[@data-service='cut'][.//span[@data-toxic='on' and .='toxics']]",
    )
    .await;
    assert!(
        browser
            .find(Locator::XPath(
                "//tr[@data-service='echo']//span[@data-toxic]"
            ))
            .await
            .is_err(),
        "echo's connection marked, though echo has no toxics"
    );
    let link = wait_for(
        &browser,
        "echo's connection from the proxy",
        "//tr[@data-service='echo']//a[@data-inspect]",
    )
    .await
    .attr("href")
    .await
    .unwrap()
    .expect("the link has an address");
    browser.goto(&format!("{base}{link}")).await.unwrap();
    for (dir, text) in [
        ("in", "s"),
        ("in", "l"),
        ("in", "e"),
        ("out", "S"),
        ("out", "E"),
    ] {
        wait_for(
            &browser,
            &format!("the 1-byte segment {text}"),
            &format!(
                "//ol[@id='inspect-segments']/li[@data-dir='{dir}']\
                 [.//span[@data-field='len' and .='1 B']][.//pre[@data-field='text' and .='{text}']]"
            ),
        )
        .await;
    }
    let lens = browser
        .execute(
            "return [...document.querySelectorAll('#inspect-segments li.seg[data-dir=in] [data-field=len]')]
               .map((e) => e.textContent);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        lens,
        serde_json::json!(["1 B", "1 B", "1 B", "1 B", "1 B"]),
        "every segment from the proxy is one byte"
    );
    drop(conn);

    // Off by its switch (the keyboard's space), then removed.
    browser.goto(&format!("{base}/services")).await.unwrap();
    wait_for(&browser, "the page's script", "//body[@data-ready='true']").await;
    click(&browser, "//button[@data-toxics='cut']").await;
    let switch = wait_for(
        &browser,
        "the on switch",
        "//input[@type='checkbox' and @data-toggle='slicer_upstream']",
    )
    .await;
    switch.send_keys(" ").await.unwrap();
    wait_for(
        &browser,
        "the slicer off",
        "//tr[@data-toxic='slicer_upstream' and @data-enabled='false']",
    )
    .await;
    assert_eq!(toxics_of(&browser, "cut").await[0]["enabled"], false);
    // By the keyboard (the toast of the switch may cover it for a pointer).
    browser
        .find(Locator::XPath(
            "//button[@data-toxic-remove='slicer_upstream']",
        ))
        .await
        .unwrap()
        .send_keys("\u{e007}")
        .await
        .unwrap();
    browser.accept_alert().await.unwrap();
    wait_for(
        &browser,
        "the list empty",
        "//section[@id='toxics-panel'][.//p[@id='toxics-empty' and not(@hidden)]]\
         [not(.//tr[@data-toxic])]",
    )
    .await;
    assert_eq!(toxics_of(&browser, "cut").await, serde_json::json!([]));
    browser.close().await.unwrap();
}
