//! A working day in a real headless Chromium, against the real binary: one
//! signed-in person visits every dashboard page in turn, three rounds, a
//! second on each, while echo traffic flows; on every page the live
//! indicator must turn green within [`LIVE_WITHIN`], with no stale banner,
//! and the server must never have refused a live stream (no 429 or 503 on
//! `/api/v1/live` in `/metrics`). Streams of pages already left must not
//! count against the person's cap: that is what made the ninth page's
//! stream fail before.
//!
//! Needs `chromium` and `chromedriver` (the README's test command installs
//! them); without them the test fails and says so, unless
//! `SWITCHBOARD_SKIP_BROWSER=1` is set.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use common::{ADMIN_PASSWORD, GUARD, Served, TEST_KEY, guard};
use switchboard::kind::ServiceKind;

const CHROMEDRIVER: &str = "chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Every page of the dashboard's menu, in its order.
const PAGES: [&str; 9] = [
    "/",
    "/connections",
    "/traffic",
    "/send",
    "/files",
    "/console",
    "/services",
    "/audit",
    "/tokens",
];
/// How soon after arriving a page's live indicator must be green.
const LIVE_WITHIN: Duration = Duration::from_secs(2);
/// How long the person stays on each page.
const DWELL: Duration = Duration::from_secs(1);
const ROUNDS: usize = 3;

/// chromedriver on a free loopback port, in a process group of its own
/// that its Chromium joins; dropping this kills the group.
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
        let spawned = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
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
                "binary": CHROMIUM,
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

/// What the page shows about its live stream: the indicator's state and
/// whether the stale banner is up.
async fn live_state(browser: &Client) -> (String, bool) {
    let v = browser
        .execute(
            "const s = document.getElementById('live-status');
             return [s ? s.dataset.state : 'none', document.body.dataset.stale === 'true'];",
            vec![],
        )
        .await
        .unwrap_or_else(|_| serde_json::json!(["loading", false]));
    (
        v[0].as_str().unwrap_or("none").to_owned(),
        v[1].as_bool().unwrap_or(false),
    )
}

/// The page's own GET of `path` (same origin, its cookie): status and text.
async fn fetch_in_page(browser: &Client, path: &str) -> (u64, String) {
    let v = browser
        .execute_async(
            "const [path, done] = arguments;
             fetch(path).then(async (r) => done([r.status, await r.text()]),
                              (e) => done([0, String(e)]));",
            vec![serde_json::json!(path)],
        )
        .await
        .unwrap();
    (
        v[0].as_u64().unwrap_or(0),
        v[1].as_str().unwrap_or("").to_owned(),
    )
}

/// How many `/api/v1/live` requests the server answered with `status`,
/// from its request histogram.
fn live_answers(metrics: &str, status: u16) -> u64 {
    metrics
        .lines()
        .filter(|l| {
            l.contains("_count{")
                && l.contains("route=\"/api/v1/live\"")
                && l.contains(&format!("status=\"{status}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Echo round trips from four connections, until `stop` fires: the
/// traffic the pages show while the person browses.
async fn traffic(addr: String, stop: tokio_util::sync::CancellationToken) -> u64 {
    let mut rounds = 0u64;
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(TcpStream::connect(&addr).await.expect("echo answers"));
    }
    let mut i = 0usize;
    while !stop.is_cancelled() {
        let c = &mut conns[i % 4];
        c.write_all(b"journey traffic").await.expect("echo write");
        let mut back = [0u8; 15];
        c.read_exact(&mut back).await.expect("echo read");
        rounds += 1;
        i += 1;
        // A steady trickle, not a flood: the point is that pages have
        // something to show.
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    rounds
}

#[tokio::test]
async fn one_person_visits_every_page_three_times_and_every_page_is_live() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let served = Served::start(
        &data_dir,
        ServiceKind::BUILTIN,
        &[
            ("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("SWITCHBOARD_KEY", TEST_KEY),
        ],
    )
    .await;
    let base = served.web_url();
    let browser = driver.browser(&dir.path().join("profile")).await;

    // Sign in as a person does.
    browser.goto(&format!("{base}/login")).await.unwrap();
    guard("the sign-in page's script", async {
        browser
            .wait()
            .at_most(GUARD)
            .for_element(Locator::XPath("//body[@data-ready='true']"))
            .await
            .unwrap()
    })
    .await;
    let user = browser.find(Locator::Id("username")).await.unwrap();
    user.send_keys("admin").await.unwrap();
    let password = browser.find(Locator::Id("password")).await.unwrap();
    password.send_keys(ADMIN_PASSWORD).await.unwrap();
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .at_most(GUARD)
        .for_element(Locator::XPath("//article[@data-service='echo']"))
        .await
        .expect("the overview after signing in");

    let stop = tokio_util::sync::CancellationToken::new();
    let flowing = tokio::spawn(traffic(served.addr(ServiceKind::Echo), stop.clone()));

    let mut timings: Vec<(String, Duration)> = Vec::new();
    for round in 1..=ROUNDS {
        for page in PAGES {
            let arrived = Instant::now();
            browser.goto(&format!("{base}{page}")).await.unwrap();
            let live_after = loop {
                let state = live_state(&browser).await;
                if state.0 == "live" && !state.1 {
                    break arrived.elapsed();
                }
                assert!(
                    arrived.elapsed() < LIVE_WITHIN,
                    "round {round}, {page}: not live within {LIVE_WITHIN:?} \
                     (indicator {:?}, stale banner {}); live so far: {timings:?}",
                    state.0,
                    state.1
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            timings.push((format!("{round}{page}"), live_after));
            // The person reads the page for a second; it must stay live.
            tokio::time::sleep(DWELL.saturating_sub(arrived.elapsed())).await;
            let (state, stale) = live_state(&browser).await;
            assert!(
                state == "live" && !stale,
                "round {round}, {page}: the live stream dropped while on the page \
                 (indicator {state:?}, stale banner {stale})"
            );
        }
    }
    stop.cancel();
    let rounds = flowing.await.expect("the traffic task");
    assert!(rounds > 0, "no echo traffic flowed during the journey");

    // The server never refused a stream, even one the page then retried.
    let (status, metrics) = fetch_in_page(&browser, "/metrics").await;
    assert_eq!(status, 200, "{metrics}");
    let (ok, too_many, busy) = (
        live_answers(&metrics, 200),
        live_answers(&metrics, 429),
        live_answers(&metrics, 503),
    );
    assert_eq!(
        (too_many, busy),
        (0, 0),
        "live streams refused during the journey ({ok} accepted)"
    );
    assert!(
        ok >= (ROUNDS * PAGES.len()) as u64,
        "only {ok} live streams accepted for {} page visits",
        ROUNDS * PAGES.len()
    );
    let slowest = timings.iter().map(|t| t.1).max().unwrap_or_default();
    let mean = timings.iter().map(|t| t.1).sum::<Duration>() / timings.len() as u32;
    eprintln!(
        "journey: {} page visits, every one live; time to live: mean {mean:?}, slowest {slowest:?}; \
         {ok} live streams accepted, {rounds} echo round trips meanwhile",
        timings.len()
    );
    drop(served);
}
