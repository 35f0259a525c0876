//! Shared test helpers: start services on 127.0.0.1 port 0, find their
//! addresses, and cancel everything when the harness is dropped.
#![allow(dead_code)] // each test file uses a different part

use std::net::SocketAddr;
use std::time::Duration;

use switchboard::config::{Config, ListenAddr};
use switchboard::kind::ServiceKind;
use switchboard::service::Supervisor;
use switchboard::shutdown::Shutdown;
use switchboard::stats::{Snapshot, Stats};

/// The HMAC key every harness uses.
pub const TEST_KEY: &str = "test-key-not-secret";

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
        let root = Shutdown::new();
        let stats = Stats::new();
        let supervisor = Supervisor::new(&config, stats.clone(), root.clone());
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

/// Awaits `fut` with the hang guard.
pub async fn guard<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}
