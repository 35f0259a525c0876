//! Toxics on a TCP connection: the copying relay a `tcp-proxy` connection
//! takes while its instance has toxics (or when it cannot splice).
//!
//! Each direction is a [`pump`]. With no enabled toxic for its stream it is
//! a plain copy through one buffer (what `copy_bidirectional` does), and it
//! watches the toxic list between reads. Once a toxic touches its stream it
//! becomes two stages for the rest of the connection: a reader that stamps
//! each chunk with its arrival time and queues it (at most [`QUEUE`] chunks
//! of at most [`CHUNK`] bytes: the memory a latency toxic can hold per
//! direction), and a writer that applies the toxics in the order they were
//! added — drop (timeout), delay to `arrival + latency ± jitter`, cut
//! (limit_data), then write in pieces (slicer sizes, bandwidth pacing).
//! Latency is measured from the chunk's arrival, so queueing behind an
//! earlier chunk does not add to it.
//!
//! Toxicity is rolled per connection and per toxic (again when the toxic
//! is changed). A toxic that ends the connection (`timeout`, `limit_data`,
//! `reset_peer`) makes the pump fail with [`Ended`], which the caller turns
//! into a close or a reset of both sockets.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Active, Counters, Effect, List, Stream, Watch, roll};

/// Largest chunk the reader stage queues.
pub const CHUNK: usize = 16 * 1024;
/// Chunks queued per direction at most: with [`CHUNK`], 256 KiB.
pub const QUEUE: usize = 16;
/// The plain copy's buffer, as the proxy's copying path has it.
const COPY_BUF: usize = 64 * 1024;

/// Why a toxic ended the connection: the message of the pump's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ended {
    #[error("closed by a timeout toxic")]
    Timeout,
    #[error("closed by a limit_data toxic")]
    Limit,
    #[error("reset by a reset_peer toxic")]
    Reset,
}

impl Ended {
    /// The toxic end `e` carries, if it is one.
    pub fn of(e: &io::Error) -> Option<Ended> {
        e.get_ref()?.downcast_ref::<Ended>().copied()
    }

    fn into_io(self) -> io::Error {
        io::Error::other(self)
    }
}

/// Moves everything `src` sends to `dst` under `stream`'s toxics until
/// `src` ends (then shuts `dst`'s write half down).
///
/// # Errors
/// Either side's error, or an [`Ended`] (see [`Ended::of`]).
pub async fn pump<R, W>(mut src: R, mut dst: W, stream: Stream, mut toxics: Watch) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; COPY_BUF];
    // Plain while no toxic touches this stream.
    while !toxics.borrow_and_update().touches(stream) {
        tokio::select! {
            // `read` is cancel safe: nothing is lost when a change wins.
            read = src.read(&mut buf) => {
                let n = read?;
                if n == 0 {
                    return dst.shutdown().await;
                }
                dst.write_all(&buf[..n]).await?;
            }
            changed = toxics.changed() => {
                if changed.is_err() {
                    // The registry is gone (process ending): copy on plainly.
                    drop(buf);
                    tokio::io::copy(&mut src, &mut dst).await?;
                    return dst.shutdown().await;
                }
            }
        }
    }
    drop(buf);
    toxic(src, dst, stream, toxics).await
}

/// One chunk as read, with when it arrived.
struct Chunk {
    data: Bytes,
    at: Instant,
}

async fn toxic<R, W>(mut src: R, dst: W, stream: Stream, toxics: Watch) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, chunks) = mpsc::channel::<Chunk>(QUEUE);
    let reader = async move {
        loop {
            let mut buf = BytesMut::with_capacity(CHUNK);
            if src.read_buf(&mut buf).await? == 0 {
                return Ok::<_, io::Error>(());
            }
            let chunk = Chunk {
                data: buf.freeze(),
                at: Instant::now(),
            };
            if tx.send(chunk).await.is_err() {
                return Ok(());
            }
        }
    };
    let writer = Writer {
        dst,
        stream,
        toxics,
        rolls: HashMap::new(),
        passed: 0,
        next_free: None,
        live: true,
    }
    .run(chunks);
    tokio::try_join!(reader, writer).map(|_| ())
}

/// The writer stage's state for one direction.
struct Writer<W> {
    dst: W,
    stream: Stream,
    toxics: Watch,
    /// Per toxic id: whether it acts on this connection, and since when.
    rolls: HashMap<u64, Option<Instant>>,
    /// Bytes written so far (for limit_data).
    passed: u64,
    /// When the bandwidth budget is next free.
    next_free: Option<Instant>,
    /// False once the registry is gone: the last list stays.
    live: bool,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    /// The toxics acting on this direction now, rolling new ones.
    fn acting(&mut self) -> Vec<(Arc<Active>, Instant)> {
        let list: Arc<List> = Arc::clone(&self.toxics.borrow_and_update());
        let mut out = Vec::new();
        for a in &list.toxics {
            if !a.toxic.enabled || a.toxic.stream != self.stream {
                continue;
            }
            let since = *self.rolls.entry(a.id).or_insert_with(|| {
                roll(a.toxic.toxicity).then(|| {
                    Counters::add(&a.counters.connections, 1);
                    Instant::now()
                })
            });
            if let Some(since) = since {
                out.push((Arc::clone(a), since));
            }
        }
        out
    }

    async fn run(mut self, mut chunks: mpsc::Receiver<Chunk>) -> io::Result<()> {
        loop {
            let acting = self.acting();
            let deadline = acting
                .iter()
                .filter_map(|(a, since)| match a.toxic.effect {
                    Effect::Timeout { timeout: Some(t) } => Some((*since + t, Ended::Timeout)),
                    Effect::ResetPeer { timeout } => Some((*since + timeout, Ended::Reset)),
                    _ => None,
                })
                .min_by_key(|(at, _)| *at);
            // The timer wheel may not have seen a deadline that passed
            // yet: a chunk must not slip through before it.
            if let Some((at, why)) = deadline
                && at <= Instant::now()
            {
                return Err(why.into_io());
            }
            let sleep = tokio::time::sleep_until(deadline.map_or_else(far_future, |(at, _)| at));
            tokio::select! {
                // A deadline that has passed wins over a waiting chunk.
                biased;
                () = sleep, if deadline.is_some() => {
                    let why = deadline.map_or(Ended::Timeout, |(_, why)| why);
                    return Err(why.into_io());
                }
                changed = self.toxics.changed(), if self.live => {
                    // The registry gone (process ending): keep the last list.
                    self.live = changed.is_ok();
                }
                chunk = chunks.recv() => match chunk {
                    Some(chunk) => self.chunk(chunk, &acting).await?,
                    None => return self.close(&acting).await,
                },
            }
        }
    }

    /// The end of the source: slow_close, then shut down.
    async fn close(&mut self, acting: &[(Arc<Active>, Instant)]) -> io::Result<()> {
        let delay = acting
            .iter()
            .filter_map(|(a, _)| match a.toxic.effect {
                Effect::SlowClose { delay } => Some(delay),
                _ => None,
            })
            .max();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        self.dst.shutdown().await
    }

    async fn chunk(&mut self, chunk: Chunk, acting: &[(Arc<Active>, Instant)]) -> io::Result<()> {
        let mut data = chunk.data;
        for (a, _) in acting {
            if let Effect::Timeout { .. } = a.toxic.effect {
                Counters::add(&a.counters.bytes_dropped, data.len());
                return Ok(());
            }
        }
        self.delay(chunk.at, data.len(), acting).await;
        let mut limit_hit = false;
        for (a, _) in acting {
            if let Effect::LimitData { bytes } = a.toxic.effect {
                let left = bytes.saturating_sub(self.passed);
                if (data.len() as u64) >= left {
                    let keep = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    Counters::add(&a.counters.bytes_dropped, data.len() - keep);
                    data.truncate(keep);
                    limit_hit = true;
                }
            }
        }
        self.write(data, acting).await?;
        if limit_hit {
            self.dst.flush().await?;
            return Err(Ended::Limit.into_io());
        }
        Ok(())
    }

    /// Waits until `at` plus every latency toxic's delay; a change of the
    /// toxics meanwhile counts from `at` again with the new delays.
    async fn delay(&mut self, at: Instant, len: usize, acting: &[(Arc<Active>, Instant)]) {
        let mut total = Duration::ZERO;
        for (a, _) in acting {
            if let Effect::Latency { latency, jitter } = a.toxic.effect {
                total += jittered(latency, jitter);
                Counters::add(&a.counters.bytes_delayed, len);
            }
        }
        if total.is_zero() {
            return;
        }
        let sleep = tokio::time::sleep_until(at + total);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return,
                changed = self.toxics.changed(), if self.live => {
                    if changed.is_err() {
                        self.live = false;
                        continue;
                    }
                    let now: Vec<_> = self.acting();
                    let mut total = Duration::ZERO;
                    for (a, _) in &now {
                        if let Effect::Latency { latency, jitter } = a.toxic.effect {
                            total += jittered(latency, jitter);
                        }
                    }
                    sleep.as_mut().reset(at + total);
                }
            }
        }
    }

    /// Writes `data` in pieces: the slicer's sizes, paced by bandwidth.
    async fn write(
        &mut self,
        mut data: Bytes,
        acting: &[(Arc<Active>, Instant)],
    ) -> io::Result<()> {
        let mut slicer = None;
        let mut rate: Option<u64> = None;
        for (a, _) in acting {
            match a.toxic.effect {
                Effect::Slicer {
                    average,
                    variation,
                    delay,
                } => slicer = Some((average, variation, delay)),
                Effect::Bandwidth { rate: Some(r) } => {
                    rate = Some(rate.map_or(r, |o| o.min(r)));
                    Counters::add(&a.counters.bytes_delayed, data.len());
                }
                _ => {}
            }
        }
        let mut first = true;
        while !data.is_empty() {
            let mut size = match slicer {
                Some((average, variation, _)) => {
                    let low = average.saturating_sub(variation).max(1);
                    fastrand::usize(low..=average + variation)
                }
                None => data.len(),
            };
            if let Some(r) = rate {
                // At most a hundredth of a second's worth at once, so the
                // rate holds over short spans too.
                size = size.min(usize::try_from(r / 100).unwrap_or(usize::MAX).max(1));
            }
            let piece = data.split_to(size.min(data.len()));
            if let (Some((_, _, delay)), false) = (slicer, first)
                && !delay.is_zero()
            {
                tokio::time::sleep(delay).await;
            }
            first = false;
            if let Some(r) = rate {
                let now = Instant::now();
                // A writer that fell behind does not burst to catch up
                // more than a moment's worth.
                let start = self
                    .next_free
                    .map_or(now, |n| n.max(now - Duration::from_millis(20)));
                tokio::time::sleep_until(start).await;
                self.next_free =
                    Some(start + Duration::from_secs_f64(piece.len() as f64 / r as f64));
            }
            self.dst.write_all(&piece).await?;
            if slicer.is_some() {
                self.dst.flush().await?;
            }
            self.passed += piece.len() as u64;
        }
        self.dst.flush().await
    }
}

/// `latency ± jitter`, uniformly.
pub(super) fn jittered(latency: Duration, jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return latency;
    }
    let j = jitter.as_micros() as i128;
    let off = fastrand::i64(-(j as i64)..=(j as i64)) as i128;
    let us = (latency.as_micros() as i128 + off).max(0);
    Duration::from_micros(us as u64)
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

#[cfg(test)]
mod tests {
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

    #[tokio::test]
    async fn with_no_toxic_bytes_pass_unchanged() {
        let toxics = Toxics::new();
        let (mut a, b) = tokio::io::duplex(1024);
        let (c, mut d) = tokio::io::duplex(1024);
        let pump = tokio::spawn(pump(b, c, Stream::Upstream, toxics.watch("p")));
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
        let pump = tokio::spawn(pump(b, c, Stream::Upstream, toxics.watch("p")));
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
        tokio::spawn(pump(b, c, Stream::Downstream, toxics.watch("p")));
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
        let pump = tokio::spawn(pump(b, c, Stream::Upstream, toxics.watch("p")));
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
}
