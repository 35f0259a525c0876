//! `switchboard replay`'s capture reader (`replay::conversation`) on any
//! bytes: it must never panic, and what it returns must hold together: no
//! more segments than allowed, no more payload than the file holds, each
//! side's times in order, and the same answer when asked twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::replay::{Dir, ReadOptions, conversation, streams};

fuzz_target!(|data: &[u8]| {
    let options = ReadOptions {
        max_segments: 64,
        ..ReadOptions::default()
    };
    let got = conversation(data, &options);
    assert_eq!(conversation(data, &options), got, "not deterministic");
    let Ok(conv) = got else { return };
    assert!(conv.segments.len() <= options.max_segments);
    let payload: usize = conv.segments.iter().map(|s| s.bytes.len()).sum();
    assert!(
        payload <= data.len(),
        "{payload} payload bytes from {} file bytes",
        data.len()
    );
    assert!(
        conv.segments
            .iter()
            .all(|s| !s.bytes.is_empty() || conv.proto == switchboard::replay::Proto::Udp)
    );
    for dir in [Dir::Client, Dir::Server] {
        let times: Vec<u64> = conv
            .segments
            .iter()
            .filter(|s| s.dir == dir)
            .map(|s| s.t_us)
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "{dir:?} times out of order: {times:?}"
        );
    }
    // A conversation came from a stream the listing has.
    let listed = streams(data).expect("the file read once reads again");
    assert!(listed.iter().any(|s| s.proto == conv.proto
        && ((s.from, s.to) == (conv.client, conv.server)
            || (s.to, s.from) == (conv.client, conv.server))));
});
