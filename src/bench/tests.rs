//! Unit tests for the load generator: loopback detection, consent for remote targets, counted runs and plan bounds.

use super::*;

#[test]
fn loopback_is_recognised_in_every_form() {
    for ip in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
        assert!(is_loopback(ip.parse().unwrap()), "{ip}");
    }
    for ip in [
        "10.0.0.1",
        "0.0.0.0",
        "::",
        "192.168.1.2",
        "::ffff:10.0.0.1",
    ] {
        assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
    }
}

#[tokio::test]
async fn remote_targets_need_consent() {
    assert!(check_target("9000", false).await.is_ok());
    assert!(check_target("[::1]:9000", false).await.is_ok());
    assert!(check_target("unix:/tmp/x.sock", false).await.is_ok());
    let err = check_target("10.1.2.3:9000", false).await.unwrap_err();
    assert!(err.to_string().contains("--allow-remote"), "{err}");
    assert!(check_target("10.1.2.3:9000", true).await.is_ok());
}

#[test]
fn counted_runs_hand_out_exactly_n_requests() {
    let shared = Shared::new(Some(3));
    assert_eq!((0..10).filter(|_| shared.take()).count(), 3);
    let open = Shared::new(None);
    assert!(open.take());
    open.stop.store(true, Relaxed);
    assert!(!open.take());
}

#[test]
fn plans_are_bounded() {
    let plan = Plan {
        connections: 1,
        duration: Duration::from_secs(1),
        requests: None,
        timeout: Duration::from_secs(1),
        progress: false,
    };
    assert!(plan.check().is_ok());
    for bad in [
        Plan {
            connections: 0,
            ..plan.clone()
        },
        Plan {
            connections: MAX_CONNECTIONS + 1,
            ..plan.clone()
        },
        Plan {
            duration: MAX_DURATION + Duration::from_secs(1),
            ..plan.clone()
        },
        Plan {
            requests: Some(0),
            ..plan.clone()
        },
    ] {
        assert!(bad.check().is_err(), "{bad:?}");
    }
}

#[test]
fn proc_sample_reads_this_process() {
    let me = ProcSample::read(std::process::id()).expect("/proc is readable on Linux");
    assert!(me.rss_kib() > 0);
    assert!(ProcSample::read(u32::MAX).is_none());
}

#[test]
fn latency_reads_percentiles_max_and_mean_in_microseconds() {
    let h = Histogram::latencies();
    assert_eq!(Latency::of(&h).mean_us, 0.0);
    for us in 1..=10_000u64 {
        h.observe(Duration::from_micros(us));
    }
    let l = Latency::of(&h);
    assert_eq!(l.max_us, 10_000.0);
    assert!((l.mean_us - 5000.5).abs() < 0.01, "{}", l.mean_us);
    assert!((l.p50_us - 5000.0).abs() / 5000.0 < 0.02, "{}", l.p50_us);
    assert!((l.p99_us - 9900.0).abs() / 9900.0 < 0.02, "{}", l.p99_us);
}
