//! The TCP toxics' behaviour through [`pump`] over in-memory pipes: bytes
//! unchanged with no toxic, limit_data's exact cut, latency added live,
//! slicer sizes and delays, bandwidth pacing; timing through tokio's paused
//! clock, so each checks what the code does, not how fast this machine is.

use super::*;
use crate::toxic::{ToxicJson, Toxics};

fn toxic(ty: &str, stream: Stream, attrs: &[(&str, u64)]) -> crate::toxic::Toxic {
    let json = ToxicJson {
        name: ty.into(),
        type_name: ty.into(),
        stream,
        toxicity: 1.0,
        enabled: true,
        attributes: attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).into()))
            .collect(),
    };
    crate::toxic::Toxic::from_json(&json, false).unwrap()
}

/// [`pump`] from `src` to `dst`, in-memory pipes with no socket under them
/// (so the slicer's wait for the wire has nothing to wait on).
fn piped(
    src: tokio::io::DuplexStream,
    dst: tokio::io::DuplexStream,
    stream: Stream,
    toxics: Watch,
) -> impl Future<Output = io::Result<()>> {
    pump(src, dst, Slicing::default(), stream, toxics)
}

#[tokio::test]
async fn with_no_toxic_bytes_pass_unchanged() {
    let toxics = Toxics::new();
    let (mut a, b) = tokio::io::duplex(1024);
    let (c, mut d) = tokio::io::duplex(1024);
    let pump = tokio::spawn(piped(b, c, Stream::Upstream, toxics.watch("p")));
    a.write_all(b"hello").await.unwrap();
    drop(a);
    let mut got = Vec::new();
    d.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"hello");
    pump.await.unwrap().unwrap();
}

#[tokio::test]
async fn limit_data_passes_exactly_its_bytes_then_ends() {
    let toxics = Toxics::new();
    toxics
        .add("p", toxic("limit_data", Stream::Upstream, &[("bytes", 7)]))
        .unwrap();
    let (mut a, b) = tokio::io::duplex(1024);
    let (c, mut d) = tokio::io::duplex(1024);
    let pump = tokio::spawn(piped(b, c, Stream::Upstream, toxics.watch("p")));
    a.write_all(b"0123456789abcdef").await.unwrap();
    let err = pump.await.unwrap().unwrap_err();
    assert_eq!(Ended::of(&err), Some(Ended::Limit));
    let mut got = Vec::new();
    d.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"0123456");
}

#[tokio::test(start_paused = true)]
async fn latency_added_live_delays_the_next_chunk() {
    let toxics = Toxics::new();
    let (mut a, b) = tokio::io::duplex(1024);
    let (c, mut d) = tokio::io::duplex(1024);
    tokio::spawn(piped(b, c, Stream::Downstream, toxics.watch("p")));
    a.write_all(b"x").await.unwrap();
    let mut one = [0u8; 1];
    d.read_exact(&mut one).await.unwrap();
    toxics
        .add(
            "p",
            toxic("latency", Stream::Downstream, &[("latency", 100)]),
        )
        .unwrap();
    tokio::task::yield_now().await;
    let sent = Instant::now();
    a.write_all(b"y").await.unwrap();
    d.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"y");
    assert_eq!(sent.elapsed(), Duration::from_millis(100));
    // The other stream is not touched.
    assert_eq!(toxics.metrics()[0].bytes_delayed, 1);
}

#[test]
fn slices_average_the_size_asked_for_even_past_its_variation() {
    for (average, variation) in [(1, 0), (10, 5), (4, 6), (1, 100), (100, 99)] {
        let sizes: Vec<usize> = (0..20_000)
            .map(|_| slice_size(average, variation))
            .collect();
        let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(*min >= 1, "{average} ± {variation}: an empty slice");
        assert!(
            *max <= average + variation,
            "{average} ± {variation}: {max}"
        );
        // Uniform: the mean's standard error is under 1 % of the
        // average here; 3 % is a wide margin.
        let off = (mean - average as f64).abs() / average as f64;
        assert!(off < 0.03, "{average} ± {variation}: mean {mean}");
    }
    assert_eq!(slice_size(0, 3), 1, "an average of 0 counts as 1");
}

#[tokio::test(start_paused = true)]
async fn a_slicer_delay_under_the_timer_grain_spaces_slices_by_it_on_average() {
    let toxics = Toxics::new();
    toxics
        .add(
            "p",
            toxic(
                "slicer",
                Stream::Upstream,
                &[("average_size", 1), ("delay", 200)],
            ),
        )
        .unwrap();
    let (mut a, b) = tokio::io::duplex(1024);
    let (c, mut d) = tokio::io::duplex(1024);
    tokio::spawn(piped(b, c, Stream::Upstream, toxics.watch("p")));
    let msg = [b'x'; 51];
    a.write_all(&msg).await.unwrap();
    let start = Instant::now();
    let mut got = [0u8; 51];
    d.read_exact(&mut got).await.unwrap();
    // 50 delays of 200 µs: 10 ms, give or take the timer's 1 ms grain;
    // a sleep of 200 µs per slice took 1 ms each (50 ms).
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(9) && took <= Duration::from_millis(12),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn bandwidth_makes_up_the_time_its_writer_was_held_up() {
    let toxics = Toxics::new();
    // 100 KB/s: pieces of 1,000 bytes, 10 ms apart.
    toxics
        .add(
            "p",
            toxic("bandwidth", Stream::Downstream, &[("rate", 100)]),
        )
        .unwrap();
    let (mut a, b) = tokio::io::duplex(64 * 1024);
    let (c, mut d) = tokio::io::duplex(64 * 1024);
    tokio::spawn(piped(b, c, Stream::Downstream, toxics.watch("p")));
    a.write_all(&[0u8; 20_000]).await.unwrap();
    let start = Instant::now();
    let mut buf = vec![0u8; 20_000];
    d.read_exact(&mut buf[..5_000]).await.unwrap();
    // The clock jumps 100 ms with the writer not run meanwhile: what a
    // process waiting for a core sees.
    tokio::time::advance(Duration::from_millis(100)).await;
    d.read_exact(&mut buf[5_000..]).await.unwrap();
    // 20 pieces, the last one due 190 ms after the first: the time
    // lost is made up (without catching up, it would be 270 ms).
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(185) && took <= Duration::from_millis(200),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_bandwidth_stream_saves_up_no_burst() {
    let toxics = Toxics::new();
    toxics
        .add(
            "p",
            toxic("bandwidth", Stream::Downstream, &[("rate", 100)]),
        )
        .unwrap();
    let (mut a, b) = tokio::io::duplex(64 * 1024);
    let (c, mut d) = tokio::io::duplex(64 * 1024);
    tokio::spawn(piped(b, c, Stream::Downstream, toxics.watch("p")));
    let mut buf = vec![0u8; 3_000];
    a.write_all(&buf[..1_000]).await.unwrap();
    d.read_exact(&mut buf[..1_000]).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    a.write_all(&buf[..3_000]).await.unwrap();
    let start = Instant::now();
    d.read_exact(&mut buf).await.unwrap();
    // Three pieces at the rate: the last one 20 ms after the first.
    assert_eq!(start.elapsed(), Duration::from_millis(20));
}

#[tokio::test]
async fn slicer_writes_one_byte_pieces() {
    let toxics = Toxics::new();
    toxics
        .add(
            "p",
            toxic("slicer", Stream::Upstream, &[("average_size", 1)]),
        )
        .unwrap();
    let (mut a, b) = tokio::io::duplex(1024);
    let (c, d) = tokio::io::duplex(1);
    let pump = tokio::spawn(piped(b, c, Stream::Upstream, toxics.watch("p")));
    a.write_all(b"abcd").await.unwrap();
    drop(a);
    // A one-byte pipe would hold more than one byte of a bigger write
    // back; each piece fits it.
    let mut got = Vec::new();
    let mut d = d;
    d.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"abcd");
    pump.await.unwrap().unwrap();
}
