//! Shared test helpers: start services on 127.0.0.1 port 0, find their
//! addresses, and cancel everything when the harness is dropped.
#![allow(dead_code)] // each test file uses a different part

pub mod dashboard;
pub mod dockerfile;
pub mod haproxy;
pub mod message;
pub mod procs;
pub mod web;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use switchboard::config::{Config, ListenAddr};
use switchboard::kind::ServiceKind;
use switchboard::shutdown::Shutdown;
use switchboard::stats::{Snapshot, Stats};
use switchboard::supervisor::{Deps, Supervisor};

/// Resolves `text` as a config file (`[services.*]` tables and more): how a
/// test declares instances the way a person would.
pub fn resolve_file(text: &str) -> Result<Config, String> {
    let file = switchboard::config::FileSource {
        path: std::path::Path::new("/etc/switchboard-test.toml"),
        text,
    };
    Config::resolve(Some(file), &std::collections::BTreeMap::new(), &[]).map_err(|e| e.to_string())
}

/// The HMAC key every harness uses.
pub const TEST_KEY: &str = "test-key-not-secret";

/// The password of the `admin` account every harness creates.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A guard against hangs, never what a test relies on to pass.
pub const GUARD: Duration = Duration::from_secs(20);

/// Running services; everything stops when this is dropped.
pub struct Harness {
    pub supervisor: Supervisor,
    pub stats: Stats,
    pub root: Shutdown,
    pub config: Config,
    pub dir: tempfile::TempDir,
}

impl Harness {
    /// Every service on an ephemeral loopback port, all started.
    pub async fn start() -> Harness {
        Self::start_with(|_| {}).await
    }

    /// Like [`Harness::start`], after `tweak` has adjusted the config.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::ephemeral(dir.path());
        config.key = Some(switchboard::config::Secret::new(TEST_KEY));
        tweak(&mut config);
        let deps = Deps::open(&config).expect("accounts and audit log");
        deps.users
            .ensure_admin(Some(ADMIN_PASSWORD))
            .expect("admin account");
        let (root, stats) = (deps.root.clone(), deps.stats.clone());
        let supervisor = Supervisor::new(&config, deps);
        let failures = supervisor.start_enabled().await;
        assert!(
            failures.is_empty(),
            "services failed to start: {failures:?}"
        );
        Harness {
            supervisor,
            stats,
            root,
            config,
            dir,
        }
    }

    /// The bound address of a running service, as text a client accepts.
    pub fn target(&self, name: impl AsRef<str>) -> String {
        let name = name.as_ref();
        self.supervisor
            .local_addr(name)
            .unwrap_or_else(|| panic!("{name} is not running"))
            .to_string()
    }

    /// [`Harness::target`] of an instance named by text.
    pub fn target_of(&self, name: &str) -> String {
        self.target(name)
    }

    /// The bound IP address of a running service.
    pub fn addr(&self, name: impl AsRef<str>) -> SocketAddr {
        let name = name.as_ref();
        match self.supervisor.local_addr(name) {
            Some(ListenAddr::Inet(a)) => a,
            other => panic!("{name} has no IP address: {other:?}"),
        }
    }

    /// Waits (with [`GUARD`] as a hang guard) until `cond` holds.
    pub async fn wait_for(&self, what: &str, cond: impl FnMut(&Snapshot) -> bool) -> Snapshot {
        tokio::time::timeout(GUARD, self.stats.wait_for(cond))
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for: {what}"))
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.root.token.cancel();
    }
}

/// `--set` flags for `switchboard serve` that run only `enabled`, each on
/// an ephemeral loopback port, and disable every other service (so a test
/// never depends on the default ports being free).
pub fn only_services(enabled: &[ServiceKind]) -> Vec<String> {
    let web = ["--set".to_owned(), "web.listen=127.0.0.1:0".to_owned()];
    ServiceKind::BUILTIN
        .iter()
        .flat_map(|kind| {
            let setting = if enabled.contains(kind) {
                format!("services.{kind}.listen=127.0.0.1:0")
            } else {
                format!("services.{kind}.enabled=false")
            };
            ["--set".to_owned(), setting]
        })
        .chain(web)
        .collect()
}

/// Whether a test may skip because `why` (a capability it needs is missing
/// here). A test that passes without testing is a defect, so this panics
/// with `why` unless `SWITCHBOARD_SKIP_<CAPABILITY>=1` names the skip; then
/// the skip is appended to the skip log (`test-skips.txt` in the target
/// directory), which scripts/test.sh empties first and prints at the end,
/// and this returns `true`. Call it only once the capability is known
/// missing.
pub fn skip_allowed(capability: &str, why: &str) -> bool {
    let var = format!("SWITCHBOARD_SKIP_{capability}");
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_owned();
    #[allow(clippy::disallowed_methods)] // the test run's own setting, not the server's
    let allowed = std::env::var(&var).as_deref() == Ok("1");
    if !allowed {
        panic!(
            "{test}: {why}. This test does not pass without testing: give the machine \
             what it needs, or set {var}=1 to skip it (scripts/test.sh lists the skips)"
        );
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        std::path::PathBuf::from,
    );
    let log = target.join("test-skips.txt");
    let line = format!("{test}: skipped ({var}=1): {why}\n");
    eprint!("{line}");
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    if let Err(e) = appended {
        panic!("{test}: cannot record the skip in {}: {e}", log.display());
    }
    true
}

/// Reads `stream` until the server closes it cleanly (EOF, not a reset),
/// with the hang guard; returns what it sent and when it closed.
pub async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> (Vec<u8>, Instant) {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    guard("the server closes", stream.read_to_end(&mut out))
        .await
        .unwrap_or_else(|e| panic!("not a clean close after {out:?}: {e}"));
    (out, Instant::now())
}

/// Asserts that a connection silent since `since` was closed at about
/// `timeout`: no sooner, and by [`assert_deadline`]'s slack after, so a
/// timeout of half or double `timeout` fails.
pub fn assert_closed_at_timeout(what: &str, since: Instant, closed: Instant, timeout: Duration) {
    assert_deadline(&format!("{what} (closed)"), closed - since, timeout);
}

/// Asserts that a wait of `took` ended at a deadline of `expected`: no
/// sooner, and less than half as long again plus 250 ms after it (slack
/// for a busy machine), so a deadline of half or double `expected` fails.
/// Give a deadline of a second or more, so the slack holds on a busy machine.
pub fn assert_deadline(what: &str, took: Duration, expected: Duration) {
    assert!(
        took >= expected,
        "{what}: ended after {took:?}, before its {expected:?} deadline"
    );
    let latest = expected * 3 / 2 + Duration::from_millis(250);
    assert!(
        took < latest,
        "{what}: ended after {took:?}, long after its {expected:?} deadline (by {latest:?} at the latest)"
    );
}

/// Awaits `fut` with the hang guard.
pub async fn guard<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Reads the banner a just-started `switchboard serve` prints on stdout,
/// up to its last line (the accounts line, or the generated password).
pub async fn read_banner(child: &mut tokio::process::Child) -> Vec<String> {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut lines = BufReader::new(child.stdout.take().expect("stdout piped")).lines();
    guard("the banner", async {
        let mut banner = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            let last = line.starts_with("accounts:") || line.starts_with("sign in as:");
            banner.push(line);
            if last {
                return banner;
            }
        }
        panic!("the banner ended early: {banner:?}");
    })
    .await
}

/// `switchboard serve` running as a child process, its banner read.
pub struct Served {
    pub child: tokio::process::Child,
    /// The banner's lines, up to the accounts (or generated password) line:
    /// what a person sees. Addresses come from `ready` instead.
    pub banner: Vec<String>,
    /// What `--ready-file` wrote: every address, machine-readable.
    pub ready: serde_json::Value,
    /// Everything written to stderr so far. Read as it comes, so a chatty
    /// server (an access-log line per request) never blocks on a full pipe.
    log: tokio::sync::watch::Receiver<String>,
    log_reader: tokio::task::JoinHandle<()>,
}

impl Served {
    /// Starts the binary with only `services` (on ephemeral ports) and
    /// `env`, stdout and stderr piped, and reads its banner.
    pub async fn start(
        data_dir: &std::path::Path,
        services: &[ServiceKind],
        env: &[(&str, &str)],
    ) -> Served {
        Self::start_with_args(data_dir, services, env, &[]).await
    }

    /// [`Served::start`] with `args` after the service flags (a `--set`
    /// there wins).
    pub async fn start_with_args(
        data_dir: &std::path::Path,
        services: &[ServiceKind],
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Served {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .arg("--ready-file")
            .arg(data_dir.with_extension("ready.json"))
            .args(only_services(services))
            .args(args)
            .env_remove("SWITCHBOARD_ADMIN_PASSWORD")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the binary starts");
        let banner = read_banner(&mut child).await;
        // Written before the banner is printed.
        let ready = std::fs::read(data_dir.with_extension("ready.json")).expect("the ready file");
        let ready = serde_json::from_slice(&ready).expect("the ready file is JSON");
        let (tx, log) = tokio::sync::watch::channel(String::new());
        let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
        let log_reader = tokio::spawn(async move {
            while let Ok(Some(line)) = errors.next_line().await {
                tx.send_modify(|log| {
                    log.push_str(&line);
                    log.push('\n');
                });
            }
        });
        Served {
            child,
            banner,
            ready,
            log,
            log_reader,
        }
    }

    /// Waits (with the hang guard) until stderr holds `what`.
    pub async fn wait_for_log(&mut self, what: &str) {
        let found = guard(
            &format!("{what:?} in the log"),
            self.log.wait_for(|log| log.contains(what)),
        )
        .await
        .is_ok();
        assert!(
            found,
            "stderr ended before {what:?}: {}",
            self.log.borrow().as_str()
        );
    }

    /// Waits for the process to exit by itself; its status and all of stderr.
    pub async fn wait_exit(mut self) -> (std::process::ExitStatus, String) {
        let status = guard("the exit", self.child.wait()).await.unwrap();
        guard("the end of stderr", &mut self.log_reader)
            .await
            .unwrap();
        let log = self.log.borrow().clone();
        (status, log)
    }

    /// The address the ready file gives for the instance `name`, checking
    /// it runs.
    pub fn addr(&self, name: impl AsRef<str>) -> String {
        let name = name.as_ref();
        let entry = &self.ready["services"][name];
        assert_eq!(entry["state"], "running", "{name} in {}", self.ready);
        entry["addr"].as_str().expect("an address").to_owned()
    }

    /// The dashboard's base URL from the ready file, e.g. `http://127.0.0.1:41234`.
    pub fn web_url(&self) -> String {
        self.ready["web"]
            .as_str()
            .unwrap_or_else(|| panic!("no dashboard in {}", self.ready))
            .trim_end_matches('/')
            .to_owned()
    }

    /// Sends SIGTERM and waits for the exit; returns what it wrote to stderr.
    pub async fn terminate(self) -> (std::process::ExitStatus, String) {
        let pid = nix::unistd::Pid::from_raw(self.child.id().unwrap() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        self.wait_exit().await
    }
}

/// The `command` audit lines (of every service, or of `service` only), once
/// at least `count` are written; polled under the hang guard, since the
/// audit log is written by a thread of its own.
#[allow(dead_code)] // not every test binary reads the audit log
pub async fn audited_commands(
    h: &Harness,
    service: Option<&str>,
    count: usize,
) -> Vec<serde_json::Value> {
    guard("audit lines", async {
        loop {
            h.supervisor.audit().flush().await;
            let text =
                std::fs::read_to_string(switchboard::audit::path(h.dir.path())).unwrap_or_default();
            let lines: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .filter(|l| l["event"] == "command" && service.is_none_or(|s| l["service"] == s))
                .collect();
            if lines.len() >= count {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}
