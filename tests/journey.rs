//! A working day in a real headless Chromium, against the real binary: one
//! signed-in person visits every dashboard page in turn, three rounds, a
//! second on each, while echo traffic flows; on every page the live
//! indicator must turn green within [`LIVE_WITHIN`], with no stale banner,
//! and the server must never have refused a live stream (no 429 or 503 on
//! `/api/v1/live` in `/metrics`). Streams of pages already left must not
//! count against the person's cap: that is what made the ninth page's
//! stream fail before.
//!
//! Then the same person again, through HAProxy in HTTP mode: there the
//! stream's `Connection: close` stops at the proxy and the browser keeps
//! its connections to the proxy open, so the page's beacon must end the
//! streams it leaves (tests/common/haproxy.rs; needs `haproxy`).
//!
//! The steps go through the page object in tests/common/dashboard.rs.
//! Needs `chromium` and `chromedriver` (the README's test command installs
//! them); without them the test fails and says so, unless
//! `SWITCHBOARD_SKIP_BROWSER=1` is set.

mod common;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::dashboard::{Dashboard, Screen};
use common::haproxy::Haproxy;
use common::{ADMIN_PASSWORD, Served, TEST_KEY};
use switchboard::kind::ServiceKind;

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

/// Asserts from the server's `/metrics` that no `/api/v1/live` request was
/// refused (429, 503) and at least one was accepted for each of `visits`
/// page visits; how many were accepted.
async fn streams_never_refused(ui: &Dashboard, visits: u64) -> u64 {
    let (status, metrics) = ui.fetch("/metrics").await;
    assert_eq!(status, 200, "{metrics}");
    let (ok, too_many, busy) = (
        live_answers(&metrics, 200),
        live_answers(&metrics, 429),
        live_answers(&metrics, 503),
    );
    assert_eq!(
        (too_many, busy),
        (0, 0),
        "live streams refused ({ok} accepted)"
    );
    assert!(
        ok >= visits,
        "only {ok} live streams accepted for {visits} page visits"
    );
    ok
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
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        &dir.path().join("data"),
        ServiceKind::BUILTIN,
        &[
            ("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("SWITCHBOARD_KEY", TEST_KEY),
        ],
    )
    .await;
    let Some(ui) = Dashboard::open(&served.web_url(), Screen::Desktop).await else {
        return;
    };
    // Sign in as a person does.
    ui.sign_in_as_admin().await;

    let stop = tokio_util::sync::CancellationToken::new();
    let flowing = tokio::spawn(traffic(served.addr(ServiceKind::Echo), stop.clone()));

    let mut timings: Vec<(String, Duration)> = Vec::new();
    for round in 1..=ROUNDS {
        for page in PAGES {
            let arrived = Instant::now();
            ui.go_to(page).await;
            let at = format!("round {round}, {page} (live so far: {timings:?})");
            let live_after = live_after(&ui, arrived, &at).await;
            timings.push((format!("{round}{page}"), live_after));
            // The person reads the page for a second; it must stay live.
            tokio::time::sleep(DWELL.saturating_sub(arrived.elapsed())).await;
            let (state, stale) = ui.live_state().await;
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
    let ok = streams_never_refused(&ui, (ROUNDS * PAGES.len()) as u64).await;
    let slowest = timings.iter().map(|t| t.1).max().unwrap_or_default();
    let mean = timings.iter().map(|t| t.1).sum::<Duration>() / timings.len() as u32;
    eprintln!(
        "journey: {} page visits, every one live; time to live: mean {mean:?}, slowest {slowest:?}; \
         {ok} live streams accepted, {rounds} echo round trips meanwhile",
        timings.len()
    );
    drop(served);
}

/// Waits until the page's live indicator is green with no stale banner;
/// how long that took from `arrived`. Fails past [`LIVE_WITHIN`].
async fn live_after(ui: &Dashboard, arrived: Instant, at: &str) -> Duration {
    loop {
        let state = ui.live_state().await;
        if state.0 == "live" && !state.1 {
            return arrived.elapsed();
        }
        assert!(
            arrived.elapsed() < LIVE_WITHIN,
            "{at}: not live within {LIVE_WITHIN:?} (indicator {:?}, stale banner {})",
            state.0,
            state.1
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_brisk_tour_through_an_http_proxy_is_never_refused_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        &dir.path().join("data"),
        &[ServiceKind::Echo],
        &[
            ("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("SWITCHBOARD_KEY", TEST_KEY),
        ],
    )
    .await;
    let web = served.web_url();
    let backend = web.trim_start_matches("http://").to_owned();
    let Some(proxy) = Haproxy::start("http", &[backend]).await else {
        return;
    };
    let Some(ui) = Dashboard::open(&format!("http://{}", proxy.fronts[0]), Screen::Desktop).await
    else {
        return;
    };
    ui.sign_in_as_admin().await;
    // Page after page, on to the next as soon as one is live: more pages
    // left within a few seconds than the account has streams.
    let mut slowest = Duration::ZERO;
    for round in 1..=2 {
        for page in PAGES {
            let arrived = Instant::now();
            ui.go_to(page).await;
            let took = live_after(&ui, arrived, &format!("round {round}, {page}")).await;
            slowest = slowest.max(took);
        }
    }
    let ok = streams_never_refused(&ui, 2 * PAGES.len() as u64).await;
    eprintln!("through haproxy: {ok} live streams accepted, slowest page to live {slowest:?}");
    drop(proxy);
    drop(served);
}
