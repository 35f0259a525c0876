//! The Files page's resumable uploads in a real headless Chromium
//! (chromedriver) against the real binary: the page speaks tus to
//! `/api/v1/uploads/` (static/tus.js) and resumes from the offset the
//! server holds after its connection is cut, after the server is killed
//! and started again, after Pause, and after the page itself was left and
//! opened again; Cancel frees the partial upload on the server. The stored
//! file's SHA-256 is compared with the one computed here. A refusal (over
//! the size cap, too many unfinished uploads) is said in words on the row.
//!
//! The browser reaches the dashboard through a TCP relay of this test's,
//! which can hold the upload after a number of bytes (so a cut lands
//! mid-body, not by luck of timing), cut what it holds, and point at a new
//! server after a restart while the browser keeps the same address (the
//! page's origin, and so its localStorage, stay the same).
//!
//! The steps go through the page object in tests/common/dashboard.rs.
//! Needs `chromium`, `chromedriver` and axe-core, like the other browser
//! tests; without them the test fails and says so, unless
//! `SWITCHBOARD_SKIP_BROWSER=1` (or `SWITCHBOARD_SKIP_AXE=1`).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use common::dashboard::{Dashboard, PHONE_WIDTH, Screen, axe_source};
use common::{ADMIN_PASSWORD, Served, guard};
use switchboard::kind::ServiceKind;

const MIB: u64 = 1 << 20;

/// The relay's controls, shared by its connections and the test.
struct Ctl {
    upstream: Mutex<SocketAddr>,
    /// Bytes from the browser towards the server, every connection.
    sent: AtomicU64,
    /// When `sent` reaches this, the connection carrying that byte stops
    /// forwarding and is held (once; then it is disarmed).
    hold_at: Mutex<Option<u64>>,
    /// How many connections are held now.
    held: watch::Sender<u64>,
    /// Bumped to cut every held connection.
    cut: watch::Sender<u64>,
}

struct Relay {
    addr: SocketAddr,
    ctl: Arc<Ctl>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> Relay {
        let listener =
            switchboard::service::listen::bind_inet("127.0.0.1:0".parse().unwrap()).expect("bind");
        let addr = listener.local_addr().unwrap();
        let ctl = Arc::new(Ctl {
            upstream: Mutex::new(upstream),
            sent: AtomicU64::new(0),
            hold_at: Mutex::new(None),
            held: watch::channel(0).0,
            cut: watch::channel(0).0,
        });
        let c = Arc::clone(&ctl);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(forward(client, Arc::clone(&c)));
            }
        });
        Relay { addr, ctl }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Holds the connection that carries the byte `more` bytes from now.
    fn hold_after(&self, more: u64) {
        let at = self.ctl.sent.load(Ordering::SeqCst) + more;
        *self.ctl.hold_at.lock().unwrap() = Some(at);
    }

    /// Waits until a connection is held.
    async fn wait_held(&self) {
        let mut held = self.ctl.held.subscribe();
        guard("the relay to hold the upload", held.wait_for(|n| *n > 0))
            .await
            .unwrap();
    }

    /// Cuts every held connection (both ends closed, mid-body), and waits
    /// until none is held (so the next hold is a new one).
    async fn cut(&self) {
        let mut held = self.ctl.held.subscribe();
        self.ctl.cut.send_modify(|n| *n += 1);
        guard("the held connections cut", held.wait_for(|n| *n == 0))
            .await
            .unwrap();
    }

    fn point_at(&self, upstream: SocketAddr) {
        *self.ctl.upstream.lock().unwrap() = upstream;
    }

    fn sent(&self) -> u64 {
        self.ctl.sent.load(Ordering::SeqCst)
    }
}

async fn forward(client: tokio::net::TcpStream, ctl: Arc<Ctl>) {
    let upstream = *ctl.upstream.lock().unwrap();
    // A server that is gone: the browser sees its connection closed.
    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let back = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match cr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let hold = {
            let mut at = ctl.hold_at.lock().unwrap();
            let sent = ctl.sent.load(Ordering::SeqCst);
            match *at {
                Some(t) if sent + n as u64 >= t => {
                    *at = None;
                    Some(usize::try_from(t.saturating_sub(sent)).unwrap())
                }
                _ => None,
            }
        };
        let pass = hold.unwrap_or(n);
        ctl.sent.fetch_add(pass as u64, Ordering::SeqCst);
        if sw.write_all(&buf[..pass]).await.is_err() {
            break;
        }
        if hold.is_some() {
            let mut cut = ctl.cut.subscribe();
            ctl.held.send_modify(|n| *n += 1);
            let _ = cut.changed().await;
            ctl.held.send_modify(|n| *n -= 1);
            back.abort();
            return;
        }
    }
    let _ = sw.shutdown().await;
    let _ = back.await;
}

/// A file of `size` bytes no other call makes, and its SHA-256 (hex).
fn sample(dir: &Path, name: &str, size: u64) -> (PathBuf, String) {
    let mut x: u64 = name.bytes().fold(0x9e37_79b9_7f4a_7c15, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let data: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, &data).unwrap();
    (path, switchboard::wire::hex(&Sha256::digest(&data)))
}

fn sha_of(path: &Path) -> String {
    switchboard::wire::hex(&Sha256::digest(std::fs::read(path).unwrap()))
}

async fn serve(data: &Path) -> Served {
    Served::start(
        data,
        &[ServiceKind::Files],
        &[("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    )
    .await
}

fn web_addr(served: &Served) -> SocketAddr {
    served
        .web_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap()
}

/// The unfinished uploads, as an admin lists them.
async fn partials(ui: &Dashboard) -> Vec<Value> {
    let (status, body) = ui.fetch("/api/v1/uploads/").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn upload_lines(data: &Path, action: &str, name: &str) -> usize {
    std::fs::read_to_string(switchboard::audit::path(data))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["event"] == "upload" && l["action"] == action && l["name"] == name)
        .count()
}

fn row(name: &str) -> String {
    format!("//table[@id='uploads']//tr[@data-file='{name}']")
}

/// Waits until `name`'s row is stored and checked, and says with which hash.
async fn wait_verified(ui: &Dashboard, name: &str) -> String {
    let xpath = format!(
        "{}[@data-state='verified']/td[@data-field='sha256']",
        row(name)
    );
    ui.wait_for(&format!("{name} stored and checked"), &xpath)
        .await
        .attr("data-sha256")
        .await
        .unwrap()
        .unwrap_or_default()
}

#[tokio::test]
async fn the_files_page_resumes_after_a_cut_connection_and_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = serve(&data).await;
    let relay = Relay::start(web_addr(&served)).await;
    let Some(ui) = Dashboard::open(&relay.url(), Screen::Desktop).await else {
        return;
    };
    ui.sign_in_as_admin().await;
    ui.visit("/files", "//input[@id='file-input']").await;
    ui.wait_ready().await;

    let size = 16 * MIB;
    let (file, sha) = sample(dir.path(), "cut.bin", size);
    let before = relay.sent();
    relay.hold_after(5 * MIB);
    ui.upload("//input[@id='file-input']", &file).await;
    // The network drops a third of the way in.
    relay.wait_held().await;
    relay.cut().await;
    // Held again two thirds in: then the server is killed and started again.
    relay.hold_after(5 * MIB);
    ui.wait_for(
        "the page saying it lost the connection and retries",
        &format!(
            "{}[@data-state='retrying' or @data-state='sending']",
            row("cut.bin")
        ),
    )
    .await;
    relay.wait_held().await;
    ui.screenshot("files-resume-sending").await;
    let mut served = served;
    served.child.kill().await.unwrap();
    relay.cut().await;
    // While nothing answers, the row says so in plain words and waits.
    ui.wait_for(
        "the row saying the connection was lost and when it tries again",
        &format!(
            "{}[@data-state='retrying']//span[@class='status' and \
             starts-with(., 'the connection to switchboard was lost; trying again in ')]",
            row("cut.bin")
        ),
    )
    .await;
    ui.screenshot("files-resume-retrying").await;
    let served = serve(&data).await;
    relay.point_at(web_addr(&served));

    let shown = wait_verified(&ui, "cut.bin").await;
    assert_eq!(shown, sha, "the page shows the file's own SHA-256");
    assert_eq!(
        sha_of(&data.join("files/cut.bin")),
        sha,
        "what is stored is the file"
    );
    // The server process writes its audit lines a moment after them.
    common::web::poll_until("the server audited a resumed upload", || {
        upload_lines(&data, "resumed", "cut.bin") >= 1
    })
    .await;
    // Resumed, not started again: far less than twice the file went through.
    let through = relay.sent() - before;
    assert!(
        through < size + size / 2,
        "{through} bytes went through for a {size}-byte file"
    );
    assert!(partials(&ui).await.is_empty(), "nothing left unfinished");
    ui.close().await;
    drop(served);
}

#[tokio::test]
async fn on_a_phone_pause_resume_cancel_and_a_page_opened_again_go_on_from_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = serve(&data).await;
    let relay = Relay::start(web_addr(&served)).await;
    let Some(ui) = Dashboard::open(&relay.url(), Screen::Phone).await else {
        return;
    };
    let Some(axe) = axe_source() else { return };
    ui.sign_in_as_admin().await;
    ui.visit("/files", "//input[@id='file-input']").await;
    ui.wait_ready().await;
    let size = 8 * MIB;

    // Pause mid-way: the server keeps part of it; Resume finishes it.
    let (paused, paused_sha) = sample(dir.path(), "paused.bin", size);
    relay.hold_after(3 * MIB);
    ui.upload("//input[@id='file-input']", &paused).await;
    relay.wait_held().await;
    ui.click_on(
        "Pause",
        &format!("{}//button[@data-action='pause']", row("paused.bin")),
    )
    .await;
    ui.wait_for(
        "paused",
        &format!("{}[@data-state='paused']", row("paused.bin")),
    )
    .await;
    relay.cut().await;
    // The bar and the words give what the server holds, not what the
    // browser handed to its socket.
    ui.wait_for(
        "the paused row saying how much the server holds",
        &format!(
            "{}//span[@class='status' and starts-with(., 'paused at ')]",
            row("paused.bin")
        ),
    )
    .await;
    ui.screenshot("files-resume-paused-phone").await;
    let listed = partials(&ui).await;
    let held = listed
        .iter()
        .find(|p| p["name"] == "paused.bin")
        .unwrap_or_else(|| panic!("paused.bin unfinished on the server: {listed:?}"));
    let offset = held["offset"].as_u64().unwrap();
    assert!(offset > 0 && offset < size, "held {offset} of {size}");
    // The page with a paused row: on a 390 px phone, nothing past the edge;
    // axe finds nothing wrong.
    let wide = ui
        .script("return document.documentElement.scrollWidth;", vec![])
        .await;
    assert!(
        wide.as_u64().unwrap() <= u64::from(PHONE_WIDTH),
        "the Files page is {wide} px wide on a phone"
    );
    let violations = ui.axe_violations(&axe).await;
    assert!(violations.is_empty(), "axe on /files: {violations:#?}");
    ui.click_on(
        "Resume",
        &format!("{}//button[@data-action='resume']", row("paused.bin")),
    )
    .await;
    assert_eq!(wait_verified(&ui, "paused.bin").await, paused_sha);
    assert_eq!(sha_of(&data.join("files/paused.bin")), paused_sha);
    common::web::poll_until("an audit line for the resumed upload", || {
        upload_lines(&data, "resumed", "paused.bin") >= 1
    })
    .await;
    assert_eq!(upload_lines(&data, "resumed", "paused.bin"), 1);

    // Cancel mid-way: the partial upload is gone from the server at once.
    let (cancelled, _) = sample(dir.path(), "cancelled.bin", size);
    relay.hold_after(3 * MIB);
    ui.upload("//input[@id='file-input']", &cancelled).await;
    relay.wait_held().await;
    ui.click_on(
        "Cancel",
        &format!("{}//button[@data-action='cancel']", row("cancelled.bin")),
    )
    .await;
    relay.cut().await;
    ui.wait_for(
        "cancelled",
        &format!("{}[@data-state='cancelled']", row("cancelled.bin")),
    )
    .await;
    let listed = partials(&ui).await;
    assert!(
        listed.iter().all(|p| p["name"] != "cancelled.bin"),
        "a cancelled upload is not listed: {listed:?}"
    );
    common::web::poll_until("an audit line for the cancelled upload", || {
        upload_lines(&data, "terminated", "cancelled.bin") >= 1
    })
    .await;
    assert_eq!(upload_lines(&data, "terminated", "cancelled.bin"), 1);
    let bins = std::fs::read_dir(data.join("files/.partial"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "bin")
            })
            .count()
        })
        .unwrap_or(0);
    assert_eq!(bins, 0, "no partial data left on disk");
    assert!(!data.join("files/cancelled.bin").exists());

    // The page left mid-upload (a closed tab): opened again, it lists what
    // the server holds; the same file chosen again goes on from there.
    let (left, left_sha) = sample(dir.path(), "left.bin", size);
    relay.hold_after(3 * MIB);
    ui.upload("//input[@id='file-input']", &left).await;
    relay.wait_held().await;
    ui.go_to("/").await;
    relay.cut().await;
    // A second one left the same way, to be cancelled from its kept row.
    let (dropped, _) = sample(dir.path(), "dropped.bin", size);
    ui.visit("/files", "//input[@id='file-input']").await;
    ui.wait_ready().await;
    relay.hold_after(3 * MIB);
    ui.upload("//input[@id='file-input']", &dropped).await;
    relay.wait_held().await;
    ui.go_to("/").await;
    relay.cut().await;
    ui.visit("/files", "//input[@id='file-input']").await;
    ui.click_on(
        "Cancel on the kept row",
        &format!(
            "{}[@data-state='held']//button[@data-action='cancel']",
            row("dropped.bin")
        ),
    )
    .await;
    ui.wait_for(
        "the kept upload cancelled",
        &format!("{}[@data-state='cancelled']", row("dropped.bin")),
    )
    .await;
    let listed = partials(&ui).await;
    assert!(
        listed.iter().all(|p| p["name"] != "dropped.bin"),
        "cancelled from its kept row: {listed:?}"
    );
    ui.wait_for(
        "the unfinished upload, with what the server holds",
        &format!(
            "{}[@data-state='held']//span[@class='status' and contains(., '% is on the server')]",
            row("left.bin")
        ),
    )
    .await;
    ui.screenshot("files-resume-held-phone").await;
    let violations = ui.axe_violations(&axe).await;
    assert!(
        violations.is_empty(),
        "axe on /files with a held upload: {violations:#?}"
    );
    let before = relay.sent();
    ui.upload("//input[@id='file-input']", &left).await;
    assert_eq!(wait_verified(&ui, "left.bin").await, left_sha);
    assert_eq!(sha_of(&data.join("files/left.bin")), left_sha);
    assert!(
        relay.sent() - before < size,
        "only the missing part was sent again"
    );
    assert!(partials(&ui).await.is_empty(), "nothing left unfinished");
    ui.close().await;
    drop(served);
}

#[tokio::test]
async fn the_files_page_says_why_an_upload_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = Served::start(
        &data,
        &[ServiceKind::Files],
        &[
            ("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("SWITCHBOARD_FILES_MAX_PARTIALS", "1"),
            ("SWITCHBOARD_FILES_MAX_FILE_BYTES", "1048576"),
        ],
    )
    .await;
    let Some(ui) = Dashboard::open(&served.web_url(), Screen::Desktop).await else {
        return;
    };
    ui.sign_in_as_admin().await;
    ui.visit("/files", "//input[@id='file-input']").await;
    ui.wait_ready().await;

    // Over the size cap: refused before a byte is sent, in words.
    let (big, _) = sample(dir.path(), "big.bin", 2 * MIB);
    ui.upload("//input[@id='file-input']", &big).await;
    ui.wait_for(
        "too large, with the limit",
        &format!(
            "{}[@data-state='refused']//span[@class='status' and .='too large: the limit is 1.0 MiB']",
            row("big.bin")
        ),
    )
    .await;

    // The account's one unfinished upload taken (by another tab, say): the
    // server's reason is what the row says.
    let made = ui
        .script_async(
            "const done = arguments[0];
             const token = document.querySelector('meta[name=\"csrf-token\"]').content;
             fetch('/api/v1/uploads/', { method: 'POST', headers: { 'Tus-Resumable': '1.0.0',
               'Upload-Length': '10', 'Upload-Metadata': 'filename ' + btoa('other.bin'),
               'X-CSRF-Token': token } }).then((r) => done(r.status), (e) => done(String(e)));",
            vec![],
        )
        .await;
    assert_eq!(made, serde_json::json!(201));
    let (small, _) = sample(dir.path(), "small.bin", 1000);
    ui.upload("//input[@id='file-input']", &small).await;
    ui.wait_for(
        "the server's reason",
        &format!(
            "{}[@data-state='refused']//span[@class='status' and \
             starts-with(., 'too many unfinished uploads: at most 1 per account')]",
            row("small.bin")
        ),
    )
    .await;
    assert!(!data.join("files/small.bin").exists());
    ui.close().await;
}
