//! Unit tests for the pcap and pcapng block reader.

use super::*;
use crate::replay::tests::{Ng, pcap_file};

fn frames(data: &[u8]) -> Result<Vec<Frame<'_>>, ReadError> {
    Frames::new(data)?.collect()
}

#[test]
fn reads_classic_pcap_in_both_orders_and_resolutions() {
    for big in [false, true] {
        for nanos in [false, true] {
            let file = pcap_file(big, nanos, 1, &[(7, 500_123, b"abc")]);
            let got = frames(&file).unwrap();
            assert_eq!(got.len(), 1, "big {big} nanos {nanos}");
            assert_eq!(got[0].data, b"abc");
            assert_eq!(got[0].link, 1);
            assert_eq!(got[0].t_us, 7_500_123, "big {big} nanos {nanos}");
            assert!(!got[0].snapped);
        }
    }
}

#[test]
fn reads_pcapng_in_both_orders_with_tsresol() {
    for big in [false, true] {
        let mut ng = Ng::new(big);
        ng.idb(101, Some(9)); // nanoseconds
        ng.idb(1, None); // microseconds (the default)
        ng.epb(0, 1_500_000_000, b"one");
        ng.epb(1, 2_000_000, b"two");
        ng.spb(b"three");
        ng.block(4, &[0; 8]); // a name resolution block is skipped
        let file = ng.finish();
        let got = frames(&file).unwrap();
        let summary: Vec<_> = got.iter().map(|f| (f.link, f.t_us, f.data)).collect();
        assert_eq!(
            summary,
            vec![
                (101, 1_500_000, &b"one"[..]),
                (1, 2_000_000, &b"two"[..]),
                (101, 2_000_000, &b"three"[..]),
            ],
            "big {big}"
        );
    }
}

#[test]
fn binary_resolution_and_offsets_convert() {
    assert_eq!(Resolution::from_option(0x80 | 10).micros(1024), 1_000_000);
    assert_eq!(Resolution::Decimal(3).micros(5), 5_000);
    assert_eq!(Resolution::Decimal(120).micros(u64::MAX), 0);
    assert_eq!(Resolution::Decimal(0).micros(u64::MAX), u64::MAX);
}

#[test]
fn refuses_what_is_not_a_capture() {
    assert_eq!(Frames::new(b"").err(), Some(ReadError::Empty));
    assert!(matches!(
        Frames::new(b"GIF89a...").err(),
        Some(ReadError::NotACapture { .. })
    ));
    assert!(matches!(
        Frames::new(b"\x0a\x0d").err(),
        Some(ReadError::NotACapture { .. })
    ));
}

#[test]
fn a_block_longer_than_the_file_is_an_error() {
    let mut ng = Ng::new(false);
    ng.idb(1, None);
    ng.epb(0, 0, b"data");
    let mut file = ng.finish();
    let len = file.len();
    // The last block claims 4 GiB.
    let epb_start = len - 36;
    file[epb_start + 4..epb_start + 8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let err = frames(&file).unwrap_err();
    assert!(
        matches!(
            err,
            ReadError::Truncated {
                what: "a block",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn every_prefix_of_a_file_is_an_error_or_fewer_frames() {
    let mut ng = Ng::new(true);
    ng.idb(1, Some(6));
    ng.epb(0, 1, b"hello");
    ng.epb(0, 2, b"world");
    let file = ng.finish();
    let whole = frames(&file).unwrap().len();
    assert_eq!(whole, 2);
    for cut in 0..file.len() {
        if let Ok(got) = Frames::new(&file[..cut]).and_then(|f| f.collect::<Result<Vec<_>, _>>()) {
            assert!(got.len() < whole, "cut at {cut}");
        }
    }
    let pcap = pcap_file(false, false, 1, &[(1, 2, b"abcdef")]);
    for cut in 1..pcap.len() {
        // Only the bare file header, with no record begun, is whole.
        assert_eq!(frames(&pcap[..cut]).is_err(), cut != 24, "cut at {cut}");
    }
}

#[test]
fn a_pcap_record_longer_than_its_packet_is_malformed() {
    let mut file = pcap_file(false, false, 1, &[(7, 0, b"abc")]);
    // The record's orig_len (after the 24-byte file header, at +12): 2 < 3.
    file[24 + 12..24 + 16].copy_from_slice(&2u32.to_le_bytes());
    let err = frames(&file).unwrap_err();
    assert!(
        err.to_string()
            .contains("captured 3 bytes of a 2-byte packet"),
        "{err}"
    );
}

#[test]
fn bad_lengths_and_interfaces_are_malformed() {
    let mut ng = Ng::new(false);
    ng.idb(1, None);
    ng.epb(3, 0, b"x"); // interface 3 does not exist
    let err = frames(&ng.finish()).unwrap_err();
    assert!(err.to_string().contains("interface 3"), "{err}");

    let mut ng = Ng::new(false);
    ng.block(1, &[0; 6]); // length 18: not a multiple of 4
    let err = frames(&ng.finish()).unwrap_err();
    assert!(err.to_string().contains("multiple of 4"), "{err}");
}
