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

mod wire;
pub use wire::{Slicing, Socket, Wire};

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
/// `src` ends (then shuts `dst`'s write half down). `slicing` is set
/// while a slicer acts: a [`Wire`] under `dst` then sends each slice as a
/// segment of its own.
///
/// # Errors
/// Either side's error, or an [`Ended`] (see [`Ended::of`]).
pub async fn pump<R, W>(
    mut src: R,
    mut dst: W,
    slicing: Slicing,
    stream: Stream,
    mut toxics: Watch,
) -> io::Result<()>
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
    toxic(src, dst, slicing, stream, toxics).await
}

/// One chunk as read, with when it arrived.
struct Chunk {
    data: Bytes,
    at: Instant,
}

async fn toxic<R, W>(
    mut src: R,
    dst: W,
    slicing: Slicing,
    stream: Stream,
    toxics: Watch,
) -> io::Result<()>
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
        slicing,
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
    /// Said while a slicer acts (see [`Wire`]).
    slicing: Slicing,
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
        let ready = self.delay(chunk.at, data.len(), acting).await;
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
        self.write(data, ready, acting).await?;
        if limit_hit {
            self.dst.flush().await?;
            return Err(Ended::Limit.into_io());
        }
        Ok(())
    }

    /// Waits until `at` plus every latency toxic's delay; a change of the
    /// toxics meanwhile counts from `at` again with the new delays. Returns
    /// when the bytes were due (`at` with no latency).
    async fn delay(
        &mut self,
        at: Instant,
        len: usize,
        acting: &[(Arc<Active>, Instant)],
    ) -> Instant {
        let mut total = Duration::ZERO;
        for (a, _) in acting {
            if let Effect::Latency { latency, jitter } = a.toxic.effect {
                total += jittered(latency, jitter);
                Counters::add(&a.counters.bytes_delayed, len);
            }
        }
        if total.is_zero() {
            return at;
        }
        let sleep = tokio::time::sleep_until(at + total);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return sleep.deadline(),
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

    /// Writes `data` (due since `ready`) in pieces: the slicer's sizes,
    /// paced by bandwidth.
    async fn write(
        &mut self,
        mut data: Bytes,
        ready: Instant,
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
        self.slicing.set(slicer.is_some());
        // When the next slice is due: each one a delay after the last one's
        // due time, not after the timer fired (tokio's timers have a 1 ms
        // grain: sleeping 200 µs a slice would space them 1 ms apart).
        let mut due: Option<Instant> = None;
        while !data.is_empty() {
            let mut size = match slicer {
                Some((average, variation, _)) => slice_size(average, variation),
                None => data.len(),
            };
            if let Some(r) = rate {
                // At most a hundredth of a second's worth at once, so the
                // rate holds over short spans too.
                size = size.min(usize::try_from(r / 100).unwrap_or(usize::MAX).max(1));
            }
            let piece = data.split_to(size.min(data.len()));
            if let Some((_, _, delay)) = slicer
                && !delay.is_zero()
            {
                let now = Instant::now();
                // The first slice of a chunk goes at once; a writer held up
                // (a slow reader) does not burst to catch up more than a
                // moment's worth.
                let next = due.map_or(now, |d| (d + delay).max(now - CATCH_UP));
                tokio::time::sleep_until(next).await;
                due = Some(next);
            }
            if let Some(r) = rate {
                // Paced from when the budget is next free, or from when these
                // bytes were due if the stream was idle (so an idle stream
                // saves up no burst). A writer held up while bytes waited (a
                // busy machine not running us) catches up on its schedule, if
                // it is at most BANDWIDTH_CATCH_UP behind; otherwise the rate
                // would drop by each hold-up.
                let floor = ready.max(Instant::now() - BANDWIDTH_CATCH_UP);
                let start = self.next_free.map_or(floor, |n| n.max(floor));
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

/// How far behind its schedule a bandwidth toxic may run and still catch
/// up: longer than a busy machine keeps a process waiting for a core.
const BANDWIDTH_CATCH_UP: Duration = Duration::from_millis(250);

/// How far behind its schedule a slicer's delay may run before it stops
/// catching up (more than the timer's 1 ms grain).
const CATCH_UP: Duration = Duration::from_millis(2);

/// One slice's size: uniform on `average ± variation`, the variation capped
/// at `average - 1` so that no slice is empty and the sizes still average
/// `average` (clipping the range at 1 on one side only would raise the mean:
/// 4 ± 6 would average 5.5).
pub(super) fn slice_size(average: usize, variation: usize) -> usize {
    let average = average.max(1);
    let variation = variation.min(average - 1);
    fastrand::usize(average - variation..=average + variation)
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
mod tests;
