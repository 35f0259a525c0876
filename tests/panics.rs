//! A panic never takes the process down: a connection's task that panics
//! ends that connection alone; a service whose accept loop panics is marked
//! `failed: panicked`, restarted with a doubling backoff, and left stopped
//! after too many panics. The panics come from failpoints (src/failpoint.rs),
//! compiled in only with the `failpoints` feature.
//!
//! Failpoints are process-wide, so each test here uses its own service.

mod common;

#[cfg(not(feature = "failpoints"))]
#[test]
fn failpoints_are_compiled_in() {
    panic!(
        "tests/panics.rs needs the `failpoints` feature: run `cargo test --features failpoints` \
         (scripts/test.sh does)"
    );
}

#[cfg(feature = "failpoints")]
mod with_failpoints {
    use std::time::{Duration, Instant};

    use super::common::{GUARD, Harness, guard};
    use switchboard::client::EchoClient;
    use switchboard::failpoint::{self, Point};
    use switchboard::kind::ServiceKind::{self, Echo, FilesClassic};
    use switchboard::stats::EventKind;
    use switchboard::supervisor::ServiceState;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpStream;

    #[tokio::test]
    async fn a_panicking_connection_ends_alone() {
        let h = Harness::start().await;
        let mut before = EchoClient::connect(&h.target(Echo), GUARD).await.unwrap();
        assert_eq!(before.round_trip(b"one").await.unwrap(), b"ONE");
        failpoint::arm(Point::Connection, Echo, 1);
        let mut doomed = TcpStream::connect(h.addr(Echo)).await.unwrap();
        let mut buf = [0u8; 16];
        let n = guard("the panicked connection closes", doomed.read(&mut buf))
            .await
            .unwrap_or(0);
        assert_eq!(n, 0, "closed without a reply");
        assert_eq!(before.round_trip(b"two").await.unwrap(), b"TWO");
        let mut after = EchoClient::connect(&h.target(Echo), GUARD).await.unwrap();
        assert_eq!(after.round_trip(b"three").await.unwrap(), b"THREE");
        assert_eq!(h.supervisor.state(Echo), ServiceState::Running);
        assert_eq!(h.stats.totals(Echo).errors, 1);
    }

    /// Waits for `kind`'s next state change to one for which `want` holds.
    async fn next_state(
        events: &mut tokio::sync::broadcast::Receiver<switchboard::stats::Event>,
        kind: ServiceKind,
        want: impl Fn(&str) -> bool,
    ) -> String {
        guard("a state change", async {
            loop {
                let event = events.recv().await.expect("events flow");
                if let EventKind::ServiceState { service, state } = event.kind
                    && service == kind
                    && want(&state)
                {
                    return state;
                }
            }
        })
        .await
    }

    #[tokio::test]
    async fn a_panicking_accept_loop_is_restarted_with_backoff_then_left_stopped() {
        let (first, longest) = (Duration::from_millis(20), Duration::from_millis(80));
        let h = Harness::start_with(|c| {
            c.restart_backoff = first;
            c.restart_backoff_max = longest;
        })
        .await;
        let mut events = h.stats.subscribe();
        failpoint::arm(Point::Accept, FilesClassic, 10);
        for panic in 1..=10u32 {
            // Each connection makes the (restarted) accept loop panic.
            let _conn = TcpStream::connect(h.addr(FilesClassic)).await.unwrap();
            let state = next_state(&mut events, FilesClassic, |s| s.starts_with("failed")).await;
            let failed_at = Instant::now();
            if panic == 10 {
                assert_eq!(
                    state,
                    "failed: panicked 10 times in 10 minutes; not restarted (start it by hand)"
                );
                break;
            }
            assert_eq!(state, "failed: panicked");
            next_state(&mut events, FilesClassic, |s| s == "running").await;
            let waited = failed_at.elapsed();
            let backoff = first.saturating_mul(1 << (panic - 1)).min(longest);
            assert!(
                waited >= backoff.saturating_sub(Duration::from_millis(5)),
                "restart {panic} after {waited:?}, backoff {backoff:?}"
            );
        }
        assert!(h.supervisor.local_addr(FilesClassic).is_none());
        // Nothing restarts it by itself; a person can.
        assert!(matches!(
            h.supervisor.state(FilesClassic),
            ServiceState::Failed(_)
        ));
        h.supervisor.start(FilesClassic).await.unwrap();
        assert_eq!(h.supervisor.state(FilesClassic), ServiceState::Running);
        // The other services never noticed.
        let mut echo = EchoClient::connect(&h.target(Echo), GUARD).await.unwrap();
        assert_eq!(echo.round_trip(b"still here").await.unwrap(), b"STILL HERE");
    }
}
