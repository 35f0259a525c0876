//! Unit tests of the recorder: boundaries, the per-direction rings and
//! their gaps, and the shared budget's eviction order.

use super::*;
use crate::kind::ServiceKind;

fn open(store: &Captures, id: u64, cap: usize) -> Arc<ConnCapture> {
    store.open(
        id,
        &ServiceKind::Echo.into(),
        Proto::Tcp,
        "127.0.0.1:40000",
        cap,
    )
}

fn cost(n: usize) -> usize {
    n + SEGMENT_OVERHEAD
}

#[test]
fn segments_keep_their_boundaries_order_and_offsets() {
    let store = Captures::new(1 << 20);
    let c = open(&store, 1, 4096);
    c.record(&store, Dir::In, b"ab");
    c.record(&store, Dir::Out, b"AB");
    c.record(&store, Dir::In, b"c");
    c.record(&store, Dir::In, b"");
    let copy = c.copy(0, usize::MAX);
    let got: Vec<(u64, Dir, u64, &[u8])> = copy
        .segments
        .iter()
        .map(|s| (s.seq, s.dir, s.offset, s.bytes.as_slice()))
        .collect();
    assert_eq!(
        got,
        [
            (1, Dir::In, 0, &b"ab"[..]),
            (2, Dir::Out, 0, &b"AB"[..]),
            (3, Dir::In, 2, &b"c"[..])
        ]
    );
    assert_eq!(store.held(), cost(2) * 2 + cost(1));
    // The cursor: only what came after.
    let later = c.copy(2, usize::MAX);
    assert_eq!(later.segments.len(), 1);
    assert_eq!(later.segments[0].seq, 3);
    // A bounded copy says there is more.
    let first = c.copy(0, 3);
    assert_eq!(first.segments.len(), 1);
    assert!(first.more);
}

#[test]
fn a_direction_over_its_cap_drops_its_oldest_and_marks_the_gap() {
    let store = Captures::new(1 << 20);
    let c = open(&store, 1, 1024);
    for i in 0..10u8 {
        c.record(&store, Dir::In, &[i; 100]);
    }
    c.record(&store, Dir::Out, b"untouched");
    let info = c.info();
    // 7 segments of 132 fit in 1024, the 3 oldest went.
    assert_eq!(info.dropped_in, 300);
    assert_eq!(info.dropped_out, 0);
    assert_eq!(info.bytes_in, 1000);
    let copy = c.copy(0, usize::MAX);
    let ins: Vec<&SegmentCopy> = copy.segments.iter().filter(|s| s.dir == Dir::In).collect();
    assert_eq!(ins.len(), 7);
    assert_eq!(ins[0].offset, 300);
    assert_eq!(ins[0].bytes, [3u8; 100]);
    assert_eq!(store.held(), 7 * cost(100) + cost(9));
    assert_eq!(info.bytes_held, store.held());
}

#[test]
fn a_segment_larger_than_the_cap_keeps_its_tail() {
    let store = Captures::new(1 << 20);
    let c = open(&store, 1, 1024);
    c.record(&store, Dir::In, b"first");
    let big: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    c.record(&store, Dir::In, &big);
    let copy = c.copy(0, usize::MAX);
    assert_eq!(copy.segments.len(), 1);
    let kept = &copy.segments[0];
    assert_eq!(kept.bytes.len(), 1024 - SEGMENT_OVERHEAD);
    assert_eq!(kept.bytes.as_slice(), &big[3000 - kept.bytes.len()..]);
    // Everything before the tail is the gap, and offsets still add up.
    assert_eq!(copy.info.dropped_in, kept.offset);
    assert_eq!(kept.offset + kept.bytes.len() as u64, 3005);
    assert!(store.held() <= 1024);
}

#[test]
fn the_budget_evicts_the_oldest_closed_capture_first() {
    let store = Captures::new(1000);
    let a = open(&store, 1, 4096);
    a.record(&store, Dir::In, &[1; 400]);
    store.close(&a);
    let b = open(&store, 2, 4096);
    b.record(&store, Dir::In, &[2; 400]);
    store.close(&b);
    // A closed capture records nothing more.
    b.record(&store, Dir::In, &[9; 10]);
    assert_eq!(store.held(), 2 * cost(400));
    let c = open(&store, 3, 4096);
    c.record(&store, Dir::In, &[3; 400]);
    assert!(
        store.get(1).is_none(),
        "the oldest closed capture goes first"
    );
    assert!(store.get(2).is_some() && store.get(3).is_some());
    assert_eq!(store.held(), 2 * cost(400));
    assert!(store.held() <= store.budget());
    assert!(!store.get(2).expect("kept").info().open);
}

#[test]
fn open_captures_alone_over_budget_lose_the_largest_ones_oldest_segments() {
    let store = Captures::new(600);
    let a = open(&store, 1, 4096);
    let b = open(&store, 2, 4096);
    a.record(&store, Dir::In, &[1; 200]);
    a.record(&store, Dir::Out, &[2; 200]);
    b.record(&store, Dir::In, &[3; 100]);
    // 232 + 232 + 132 = 596: within. One more on b goes over.
    b.record(&store, Dir::In, &[4; 100]);
    // Trimmed to the low-water mark, 1/16 below the budget.
    assert!(store.held() <= 600 - 600 / 16, "{}", store.held());
    // a was the largest: its oldest segment (the request) went.
    let info = a.info();
    assert_eq!(info.dropped_in, 200);
    assert_eq!(info.dropped_out, 0);
    assert_eq!(b.info().dropped_in, 0);
    assert_eq!(store.held(), a.info().bytes_held + b.info().bytes_held);
}

#[test]
fn the_total_stays_exact_and_within_budget_under_concurrent_records_and_closes() {
    let store = Captures::new(20_000);
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let store = store.clone();
            scope.spawn(move || {
                for i in 0..200u64 {
                    let c = open(&store, t * 1000 + i, 2048);
                    for n in 0..10u8 {
                        let dir = if n % 2 == 0 { Dir::In } else { Dir::Out };
                        c.record(&store, dir, &[n; 150]);
                    }
                    if i % 3 != 0 {
                        store.close(&c);
                    }
                }
            });
        }
    });
    let sum: usize = store.list().iter().map(|c| c.info().bytes_held).sum();
    assert_eq!(store.held(), sum, "the running total is the sum held");
    assert!(store.held() <= store.budget(), "{}", store.held());
}

#[test]
fn closed_captures_that_hold_nothing_are_still_bounded_in_number() {
    // A connect flood: connections that close without a byte cost the
    // byte budget nothing, so the count is what bounds them.
    let store = Captures::new(1 << 20);
    let first = open(&store, 1, 1024);
    first.record(&store, Dir::In, b"kept while room");
    store.close(&first);
    for id in 2..=(MAX_CLOSED as u64 + 1) {
        let c = open(&store, id, 1024);
        store.close(&c);
    }
    assert_eq!(store.list().len(), MAX_CLOSED);
    assert!(store.get(1).is_none(), "the oldest closed went first");
    assert_eq!(store.held(), 0, "and gave back what it held");
}
