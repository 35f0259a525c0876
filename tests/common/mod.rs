//! Shared test helpers: start services on 127.0.0.1 port 0, find their
//! addresses, and cancel everything when the harness is dropped.
#![allow(dead_code)] // each test file uses a different part

use std::net::SocketAddr;
use std::time::Duration;

use switchboard::config::{Config, ListenAddr};
use switchboard::kind::ServiceKind;
use switchboard::service::{Deps, Supervisor};
use switchboard::shutdown::Shutdown;
use switchboard::stats::{Snapshot, Stats};

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
    pub fn target(&self, kind: ServiceKind) -> String {
        self.supervisor
            .local_addr(kind)
            .unwrap_or_else(|| panic!("{kind} is not running"))
            .to_string()
    }

    /// The bound IP address of a running service.
    pub fn addr(&self, kind: ServiceKind) -> SocketAddr {
        match self.supervisor.local_addr(kind) {
            Some(ListenAddr::Inet(a)) => a,
            other => panic!("{kind} has no IP address: {other:?}"),
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
    ServiceKind::ALL
        .into_iter()
        .flat_map(|kind| {
            let setting = if enabled.contains(&kind) {
                format!("services.{kind}.listen=127.0.0.1:0")
            } else {
                format!("services.{kind}.enabled=false")
            };
            ["--set".to_owned(), setting]
        })
        .collect()
}

/// Awaits `fut` with the hang guard.
pub async fn guard<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}
