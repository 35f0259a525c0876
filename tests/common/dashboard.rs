//! A page object for the dashboard in a real headless Chromium, driven over
//! WebDriver (chromedriver): what a person does there — sign in, go to a
//! page, wait until it is live, click, type, read, take a screenshot — as
//! one method each, so a browser test reads as those steps and this is the
//! one place that knows chromedriver, Chromium's flags and fantoccini.
//!
//! It does not start the server (a test passes the base URL, or uses
//! [`Site`] for the real binary with every built-in service) and asserts
//! nothing about a page's content: each test says what it expects.
//!
//! Needs `chromium` and `chromedriver` (scripts/test.sh installs them);
//! without them [`Dashboard::open`] fails and says so, unless
//! `SWITCHBOARD_SKIP_BROWSER=1`. axe-core comes from `SWITCHBOARD_AXE_JS`
//! ([`axe_source`]), skipped only with `SWITCHBOARD_SKIP_AXE=1`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use fantoccini::elements::Element;
use fantoccini::error::{CmdError, ErrorStatus};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{ADMIN_PASSWORD, GUARD, Served, TEST_KEY, guard};
use switchboard::kind::ServiceKind;

const CHROMEDRIVER: &str = "chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A phone's width in CSS pixels (an iPhone 12 to 15).
pub const PHONE_WIDTH: u32 = 390;

/// The screen a browser session emulates.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Screen {
    /// The 1280×900 window.
    Desktop,
    /// A 390×844 phone (mobile emulation).
    Phone,
}

/// chromedriver on a free loopback port. It runs in a process group of its
/// own, which the Chromium it starts joins; dropping this kills the whole
/// group, so a test that panics leaves no browser behind.
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
    /// `None` only when browser tests are explicitly skipped.
    async fn start() -> Option<Driver> {
        let spawned = tokio::process::Command::new(CHROMEDRIVER)
            // Port 0: chromedriver binds a free port itself and names it
            // (a port picked here and handed over could be taken between).
            .arg("--port=0")
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                // Panics unless SWITCHBOARD_SKIP_BROWSER=1; the skip is listed.
                super::skip_allowed(
                    "BROWSER",
                    &format!(
                        "cannot run {CHROMEDRIVER} ({e}): install chromium and \
                         chromium-driver (scripts/test.sh does)"
                    ),
                );
                return None;
            }
        };
        // It says when it listens.
        let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        // "ChromeDriver was started successfully on port 39449."
        let port: u16 = guard("chromedriver to start", async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some((_, rest)) = line.split_once("started successfully on port ") {
                    return rest
                        .trim_end_matches('.')
                        .parse()
                        .unwrap_or_else(|e| panic!("no port in {line:?}: {e}"));
                }
            }
            panic!("chromedriver exited before listening");
        })
        .await;
        // Keep draining its stdout so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    async fn session(&self, profile: &Path, screen: Screen) -> Client {
        let mut options = json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        });
        if screen == Screen::Phone {
            // chromedriver applies this to every page of the session, as
            // DevTools' device mode does: a mobile viewport and `screen`.
            options["mobileEmulation"] = json!({
                "deviceMetrics": {
                    "width": PHONE_WIDTH, "height": 844, "pixelRatio": 3.0,
                    "mobile": true, "touch": true,
                },
            });
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
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

/// A person at a browser on one dashboard.
pub struct Dashboard {
    /// The WebDriver session, for what a page object has no step for.
    pub client: Client,
    base: String,
    /// After `client`: the session ends before its driver is killed.
    driver: Driver,
    _profile: tempfile::TempDir,
}

impl Dashboard {
    /// A fresh browser (its own profile, no cookie) on the dashboard at
    /// `base` (e.g. `http://127.0.0.1:41234`). `None` only when browser
    /// tests are explicitly skipped.
    pub async fn open(base: &str, screen: Screen) -> Option<Dashboard> {
        let driver = Driver::start().await?;
        let profile = tempfile::tempdir().expect("a profile folder");
        let client = driver.session(profile.path(), screen).await;
        Some(Dashboard {
            client,
            base: base.trim_end_matches('/').to_owned(),
            driver,
            _profile: profile,
        })
    }

    /// Goes to `path` on the dashboard (`/`, `/files`, or a link's href).
    pub async fn go_to(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("going to {url}: {e}"));
    }

    /// Goes to `path` and waits until `ready` (an XPath) shows; returns it.
    pub async fn visit(&self, path: &str, ready: &str) -> Element {
        self.go_to(path).await;
        self.wait_for(path, ready).await
    }

    /// Waits until the page's script has attached its handlers (a click
    /// before that would, say, submit a form natively).
    pub async fn wait_ready(&self) {
        self.wait_for("the page's script", "//body[@data-ready='true']")
            .await;
    }

    /// Waits until the page's live indicator says live.
    pub async fn wait_live(&self) {
        self.wait_for(
            "the live stream",
            "//span[@id='live-status' and @data-state='live']",
        )
        .await;
    }

    /// Waits until the page whose `<body data-page>` is `page` (`login`,
    /// `overview`, `send`, …) is shown and its script is ready.
    pub async fn wait_page(&self, page: &str) {
        self.wait_for(
            &format!("the {page} page, ready"),
            &format!("//body[@data-page='{page}' and @data-ready='true']"),
        )
        .await;
    }

    /// Where the browser is: the URL's path and, if any, `?` and its query
    /// (e.g. `/login?next=/connections`).
    pub async fn here(&self) -> String {
        let url = self
            .client
            .current_url()
            .await
            .unwrap_or_else(|e| panic!("the current URL: {e}"));
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The whole URL the browser is at, without a trailing `/`.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .unwrap_or_else(|e| panic!("the current URL: {e}"))
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    /// The base URL the dashboard was opened on (no trailing `/`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Fills in the sign-in form on the current page as `admin` with
    /// `password`, and submits it.
    pub async fn sign_in(&self, password: &str) {
        self.wait_ready().await;
        self.type_in("username", "admin").await;
        self.type_in("password", password).await;
        self.click_on("the sign-in button", "//button[@type='submit']")
            .await;
    }

    /// From the sign-in page to the overview, as the admin.
    pub async fn sign_in_as_admin(&self) {
        self.go_to("/login").await;
        self.sign_in(ADMIN_PASSWORD).await;
        self.wait_for("the overview", "//article[@data-service='echo']")
            .await;
    }

    /// Waits (under the hang guard) until the element at `xpath` shows;
    /// on a timeout, says where the browser is and what it shows.
    pub async fn wait_for(&self, what: &str, xpath: &str) -> Element {
        let deadline = std::time::Instant::now() + GUARD;
        let found = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self
                .client
                .wait()
                .at_most(left)
                .for_element(Locator::XPath(xpath))
                .await
            {
                // A page reloading under the query (after a save): ask again.
                Err(e) if e.to_string().contains("navigation") && !left.is_zero() => continue,
                other => break other,
            }
        };
        match found {
            Ok(found) => found,
            Err(e) => {
                let url = self.client.current_url().await.map(|u| u.to_string());
                let text = self.text_of_page().await;
                panic!("waiting for {what} ({xpath}): {e}\nat {url:?}, showing:\n{text}")
            }
        }
    }

    /// Whether nothing matches `xpath` now (no waiting).
    pub async fn absent(&self, xpath: &str) -> bool {
        self.client.find(Locator::XPath(xpath)).await.is_err()
    }

    /// How many elements match `xpath` now.
    pub async fn count(&self, xpath: &str) -> usize {
        self.client
            .find_all(Locator::XPath(xpath))
            .await
            .unwrap_or_else(|e| panic!("{xpath}: {e}"))
            .len()
    }

    /// Clicks the element with this id.
    pub async fn click(&self, id: &str) {
        self.element(id)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking #{id}: {e}"));
    }

    /// Waits for the element at `xpath` and clicks it.
    pub async fn click_on(&self, what: &str, xpath: &str) {
        self.wait_for(what, xpath)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {what}: {e}"));
    }

    /// Clicks the element at `xpath` in a table the live stream redraws: a
    /// redraw between finding it and clicking leaves it stale, and then it
    /// is found again (under the hang guard).
    pub async fn click_in_live_table(&self, what: &str, xpath: &str) {
        guard(what, async {
            loop {
                match self.wait_for(what, xpath).await.click().await {
                    Ok(_) => return,
                    Err(CmdError::Standard(e)) if e.error == ErrorStatus::StaleElementReference => {
                    }
                    Err(e) => panic!("clicking {what}: {e}"),
                }
            }
        })
        .await;
    }

    /// An attribute of the element at `xpath` in a table the live stream
    /// redraws, read again when a redraw left the found one stale.
    pub async fn attr_in_live_table(&self, what: &str, xpath: &str, attr: &str) -> String {
        guard(what, async {
            loop {
                match self.wait_for(what, xpath).await.attr(attr).await {
                    Ok(value) => {
                        return value.unwrap_or_else(|| panic!("{what} has no {attr}"));
                    }
                    Err(e) => eprintln!("{what} went stale ({e}); reading it again"),
                }
            }
        })
        .await
    }

    /// Picks `value` in the `<select>` with this id.
    pub async fn choose(&self, select: &str, value: &str) {
        self.click_on(
            &format!("{value} in #{select}"),
            &format!("//select[@id='{select}']/option[@value='{value}']"),
        )
        .await;
    }

    /// Replaces what the field with this id holds.
    pub async fn type_in(&self, id: &str, text: &str) {
        type_into(&self.element(id).await, text).await;
    }

    /// Presses Enter on the element at `xpath` (the keyboard's way to
    /// follow a link or press a button).
    pub async fn press_enter(&self, what: &str, xpath: &str) {
        self.wait_for(what, xpath)
            .await
            .send_keys("\u{e007}") // WebDriver's Enter key
            .await
            .unwrap_or_else(|e| panic!("Enter on {what}: {e}"));
    }

    /// Chooses `file` in the file input at `xpath`.
    pub async fn upload(&self, xpath: &str, file: &Path) {
        self.wait_for("the file input", xpath)
            .await
            .send_keys(file.to_str().expect("a UTF-8 path"))
            .await
            .unwrap_or_else(|e| panic!("choosing {}: {e}", file.display()));
    }

    /// Says OK to the page's confirmation dialog.
    pub async fn confirm(&self) {
        self.client
            .accept_alert()
            .await
            .unwrap_or_else(|e| panic!("no confirmation to accept: {e}"));
    }

    /// The text of the element at `xpath` (waited for).
    pub async fn text_at(&self, xpath: &str) -> String {
        self.wait_for(xpath, xpath)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("the text of {xpath}: {e}"))
    }

    /// The value of the field with this id (what a person typed or picked).
    pub async fn value_of(&self, id: &str) -> Option<String> {
        self.element(id)
            .await
            .prop("value")
            .await
            .unwrap_or_else(|e| panic!("the value of #{id}: {e}"))
    }

    /// Whether the element with this id is displayed (not `display: none`,
    /// itself or through an ancestor).
    pub async fn displayed(&self, id: &str) -> bool {
        self.element(id)
            .await
            .is_displayed()
            .await
            .unwrap_or_else(|e| panic!("whether #{id} shows: {e}"))
    }

    /// Whether the first element at `xpath` is displayed (it must exist).
    pub async fn displayed_xpath(&self, xpath: &str) -> bool {
        self.client
            .find(Locator::XPath(xpath))
            .await
            .unwrap_or_else(|e| panic!("{xpath}: {e}"))
            .is_displayed()
            .await
            .unwrap_or_else(|e| panic!("whether {xpath} shows: {e}"))
    }

    /// Runs `js` in the page (`arguments` are `args`); what it returns.
    pub async fn script(&self, js: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(js, args)
            .await
            .unwrap_or_else(|e| panic!("a script in the page: {e}"))
    }

    /// Runs `js`, which calls its last argument with the result, in the page.
    pub async fn script_async(&self, js: &str, args: Vec<Value>) -> Value {
        self.client
            .execute_async(js, args)
            .await
            .unwrap_or_else(|e| panic!("a script in the page: {e}"))
    }

    /// A GET made by the page itself (same origin, its cookie): the status
    /// and the body's text.
    pub async fn fetch(&self, path: &str) -> (u64, String) {
        let answer = self
            .script_async(
                "const [path, done] = arguments;
                 fetch(path).then(async (r) => done([r.status, await r.text()]),
                                  (e) => done([0, String(e)]));",
                vec![json!(path)],
            )
            .await;
        (
            answer[0].as_u64().unwrap_or(0),
            answer[1].as_str().unwrap_or("").to_owned(),
        )
    }

    /// A JSON call made by the page itself (its cookie and CSRF token):
    /// the status and the body's text.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u64, String) {
        let answer = self
            .script_async(
                "const [method, path, body, done] = arguments;
                 const token = document.querySelector('meta[name=\"csrf-token\"]').content;
                 fetch(path, { method, headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': token },
                               body: body === null ? undefined : JSON.stringify(body) })
                   .then(async (r) => done([r.status, await r.text()]), (e) => done([0, String(e)]));",
                vec![json!(method), json!(path), body.unwrap_or(Value::Null)],
            )
            .await;
        (
            answer[0].as_u64().unwrap_or(0),
            answer[1].as_str().unwrap_or("").to_owned(),
        )
    }

    /// What the page shows about its live stream: the indicator's state
    /// and whether the stale banner is up (`loading` while it navigates).
    pub async fn live_state(&self) -> (String, bool) {
        let v = self
            .client
            .execute(
                "const s = document.getElementById('live-status');
                 return [s ? s.dataset.state : 'none', document.body.dataset.stale === 'true'];",
                vec![],
            )
            .await
            .unwrap_or_else(|_| json!(["loading", false]));
        (
            v[0].as_str().unwrap_or("none").to_owned(),
            v[1].as_bool().unwrap_or(false),
        )
    }

    /// Saves the page as `<name>.png` in the screenshots folder.
    pub async fn screenshot(&self, name: &str) {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("a screenshot of {name}: {e}"));
        let path = screenshots_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot written");
    }

    /// Emulates `prefers-color-scheme: <scheme>` in the session's tab
    /// through chromedriver's DevTools passthrough (WebDriver has no
    /// command for it), and checks the page sees it.
    pub async fn emulate_color_scheme(&self, scheme: &str) {
        use http_body_util::BodyExt;
        let session = self
            .client
            .session_id()
            .await
            .unwrap()
            .expect("a started session has an id");
        let body = json!({
            "cmd": "Emulation.setEmulatedMedia",
            "params": { "features": [{ "name": "prefers-color-scheme", "value": scheme }] },
        });
        let request = hyper::Request::post(format!(
            "{}/session/{session}/goog/cdp/execute",
            self.driver.url
        ))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let response = guard(
            "chromedriver's DevTools passthrough",
            client.request(request),
        )
        .await
        .unwrap();
        let status = response.status();
        let text = response.into_body().collect().await.unwrap().to_bytes();
        assert!(
            status.is_success(),
            "Emulation.setEmulatedMedia: {status} {}",
            String::from_utf8_lossy(&text)
        );
        let applied = self
            .script(
                "return matchMedia(`(prefers-color-scheme: ${arguments[0]})`).matches;",
                vec![json!(scheme)],
            )
            .await;
        assert_eq!(applied, json!(true), "{scheme} mode emulated");
    }

    /// Runs axe-core (its source from [`axe_source`]) on the current page;
    /// one line per violation: rule, impact, the elements, what is wrong.
    pub async fn axe_violations(&self, axe: &str) -> Vec<String> {
        // The script body is axe itself: WebDriver runs it outside the
        // page's Content-Security-Policy, which forbids inline scripts and eval.
        let loaded = self
            .script(&format!("{axe}\n;return typeof window.axe;"), vec![])
            .await;
        assert_eq!(loaded, json!("object"), "axe-core loaded");
        let found = self
            .script_async(
                "const done = arguments[0];
                 axe.run(document, { resultTypes: ['violations'] }).then(
                   (r) => done(r.violations.map((v) => v.nodes.map((n) =>
                     `${v.id} (${v.impact}) at ${n.target.join(' ')}: ${n.failureSummary.replace(/\\s+/g, ' ')}`)).flat()),
                   (e) => done(`axe failed: ${e}`));",
                vec![],
            )
            .await;
        serde_json::from_value(found.clone())
            .unwrap_or_else(|e| panic!("axe's answer ({e}): {found}"))
    }

    /// Presses the mouse on the element at `xpath` at `from` and releases
    /// it at `to` (fractions of its width, at half its height), moving in
    /// between as a hand would: a chart's drag-to-zoom.
    pub async fn drag_across(&self, what: &str, xpath: &str, from: f64, to: f64) {
        use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
        let target = self.wait_for(what, xpath).await;
        let (_, _, width, _) = target
            .rectangle()
            .await
            .unwrap_or_else(|e| panic!("where {what} is: {e}"));
        // Offsets are from the element's centre.
        let at = |f: f64| (f - 0.5) * width;
        let mv = |f: f64, ms: u64| PointerAction::MoveToElement {
            element: target.clone(),
            duration: Some(std::time::Duration::from_millis(ms)),
            x: at(f),
            y: 0.0,
        };
        let drag = MouseActions::new("mouse".into())
            .then(mv(from, 0))
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(mv((from + to) / 2.0, 100))
            .then(mv(to, 100))
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
        self.client
            .perform_actions(drag)
            .await
            .unwrap_or_else(|e| panic!("dragging across {what}: {e}"));
    }

    /// Ends the WebDriver session.
    pub async fn close(self) {
        self.client.clone().close().await.unwrap();
    }

    async fn element(&self, id: &str) -> Element {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("no #{id}: {e}"))
    }

    async fn text_of_page(&self) -> String {
        let text = match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.chars().take(800).collect()
    }
}

/// Replaces what a text field holds.
pub async fn type_into(field: &Element, text: &str) {
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Where screenshots go: `$SWITCHBOARD_SCREENSHOTS`, or
/// `target/test-output/screenshots`.
pub fn screenshots_dir() -> PathBuf {
    #[allow(clippy::disallowed_methods)] // a test's own setting
    let dir = std::env::var_os("SWITCHBOARD_SCREENSHOTS").map_or_else(
        || PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../test-output/screenshots"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("the screenshots folder");
    dir
}

/// axe-core's browser build. scripts/test.sh installs it from npm into
/// `target/axe-core` and names it in `SWITCHBOARD_AXE_JS`; `None` (after
/// logging the allowed skip) only with `SWITCHBOARD_SKIP_AXE=1`.
pub fn axe_source() -> Option<String> {
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
            // Panics unless SWITCHBOARD_SKIP_AXE=1; the skip is listed.
            super::skip_allowed(
                "AXE",
                &format!(
                    "cannot read axe-core at {} ({e}): run scripts/test.sh, which \
                     installs it from npm, or point SWITCHBOARD_AXE_JS at axe.min.js",
                    path.display()
                ),
            );
            None
        }
    }
}

/// The real binary with every built-in service (echo capturing, so the
/// wire inspector has bytes to show), and a browser on its dashboard,
/// signed out.
pub struct Site {
    pub ui: Dashboard,
    pub served: Served,
    pub data_dir: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Site {
    /// `None` only when browser tests are explicitly skipped.
    pub async fn open(screen: Screen) -> Option<Site> {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let served = Served::start(
            &data_dir,
            ServiceKind::BUILTIN,
            &[
                ("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
                ("SWITCHBOARD_KEY", TEST_KEY),
                ("SWITCHBOARD_ECHO_CAPTURE", "true"),
            ],
        )
        .await;
        let ui = Dashboard::open(&served.web_url(), screen).await?;
        Some(Site {
            ui,
            served,
            data_dir,
            dir,
        })
    }

    /// Where echo listens.
    pub fn echo(&self) -> String {
        self.served.addr(ServiceKind::Echo)
    }
}
