//! Unit tests for /metrics: the exposition format, histograms and /proc parsing.

use super::*;
use crate::kind::ServiceKind;

#[test]
fn every_sample_line_parses_as_name_labels_value() {
    let stats = crate::stats::Stats::new();
    let g = stats.open(&ServiceKind::Echo.into(), crate::kind::Proto::Tcp, "p");
    g.add_in(5);
    let snap = stats.snapshot();
    let text = render_text(
        &[],
        &snap.services,
        2,
        ConnCounts {
            open: 3,
            silent: 1,
            shed: 4,
            refused: 5,
        },
        1.5,
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(series.starts_with("switchboard_"), "{line}");
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    assert!(text.contains("switchboard_received_bytes_total{service=\"echo\",kind=\"echo\"} 5\n"));
    assert!(text.contains("switchboard_connections_active{service=\"echo\",kind=\"echo\"} 1\n"));
    assert!(text.contains("switchboard_web_connections_shed_total 4\n"));
}

#[test]
fn histograms_are_cumulative_with_sum_and_count() {
    let h = Histogram::default();
    h.observe(Duration::from_millis(3));
    h.observe(Duration::from_millis(30));
    h.observe(Duration::from_secs(60));
    let mut out = String::new();
    write_histogram(&mut out, "x_seconds", "service=\"exec\"", &h.snapshot());
    assert!(
        out.contains("x_seconds_bucket{service=\"exec\",le=\"0.005\"} 1\n"),
        "{out}"
    );
    assert!(
        out.contains("x_seconds_bucket{service=\"exec\",le=\"0.05\"} 2\n"),
        "{out}"
    );
    assert!(
        out.contains("x_seconds_bucket{service=\"exec\",le=\"10\"} 2\n"),
        "{out}"
    );
    assert!(
        out.contains("x_seconds_bucket{service=\"exec\",le=\"+Inf\"} 3\n"),
        "{out}"
    );
    assert!(
        out.contains("x_seconds_sum{service=\"exec\"} 60.033\n"),
        "{out}"
    );
    assert!(
        out.contains("x_seconds_count{service=\"exec\"} 3\n"),
        "{out}"
    );
}

#[test]
fn proc_stat_fields_survive_a_name_with_spaces_and_parens() {
    let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1234 1000 77 rest";
    let f = stat_fields(stat).unwrap();
    assert_eq!((f[14], f[15], f[22], f[24]), (250, 50, 1234, 77));
    let limits = "Limit  Soft Limit  Hard Limit  Units\nMax open files            1024                 524288               files\n";
    assert_eq!(max_open_files(limits), Some(1024));
}

#[test]
fn this_process_reads_its_own_proc_entries() {
    let p = ProcessStats::read();
    assert!(p.resident_bytes.is_some_and(|b| b > 0), "{p:?}");
    assert!(p.open_fds.is_some_and(|n| n >= 3), "{p:?}");
    assert!(
        p.max_fds.is_some_and(|n| n >= p.open_fds.unwrap_or(0)),
        "{p:?}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let start = p.start_time_seconds.unwrap();
    assert!(
        start <= now + 1.0 && start > now - 3600.0,
        "{start} vs {now}"
    );
}

#[test]
fn label_values_are_escaped_and_methods_bounded() {
    assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    assert_eq!(method_label(&Method::GET), "GET");
    assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
}
