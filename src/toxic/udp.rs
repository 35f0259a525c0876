//! Toxics on datagrams, for `udp-proxy`: each datagram is dropped (loss,
//! an over-full bandwidth budget), repeated (duplicate) or held back
//! (latency, reorder, bandwidth pacing) as the instance's toxics say.
//!
//! UDP has no connection, so toxicity is rolled per datagram. A proxy with
//! no enabled toxic pays one atomic load per datagram ([`UdpToxics::plan`]
//! looks at the list only when it changed). Held datagrams wait in tasks of
//! the instance's tracker and stop with it; the bytes held at once are
//! bounded by [`MAX_HELD_BYTES`] per instance and [`MAX_PACE`] of
//! bandwidth backlog, beyond which a datagram is dropped (and counted) as
//! a full router queue would.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Counters, Effect, List, Stream, Watch, roll, sync_lock};

/// Bytes of datagrams held back at once per instance.
pub const MAX_HELD_BYTES: usize = 8 * 1024 * 1024;
/// Longest a datagram waits for the bandwidth budget before it is dropped.
pub const MAX_PACE: Duration = Duration::from_secs(1);

/// What to do with one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Send it now, this many times.
    Now(u8),
    /// Send it this many times after a delay.
    Later(u8, Duration),
    Drop,
}

/// One side of a udp-proxy's view of its toxics. Clones watch on their own.
pub struct UdpToxics {
    watch: Watch,
    current: Arc<List>,
    held: Arc<AtomicUsize>,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl Clone for UdpToxics {
    fn clone(&self) -> Self {
        UdpToxics {
            watch: self.watch.clone(),
            current: Arc::clone(&self.current),
            held: Arc::clone(&self.held),
            tasks: self.tasks.clone(),
            cancel: self.cancel.clone(),
        }
    }
}

impl UdpToxics {
    /// Held datagrams are sent by tasks of `tasks`, dropped at `cancel`.
    pub fn new(watch: Watch, tasks: TaskTracker, cancel: CancellationToken) -> Self {
        let current = Arc::clone(&watch.borrow());
        UdpToxics {
            watch,
            current,
            held: Arc::default(),
            tasks,
            cancel,
        }
    }

    /// What to do with a datagram of `len` bytes flowing in `stream`.
    pub fn plan(&mut self, stream: Stream, len: usize) -> Plan {
        if self.watch.has_changed().unwrap_or(false) {
            self.current = Arc::clone(&self.watch.borrow_and_update());
        }
        if !self.current.touches(stream) {
            return Plan::Now(1);
        }
        let (mut copies, mut delay) = (1u8, Duration::ZERO);
        for a in &self.current.toxics {
            if !a.toxic.enabled || a.toxic.stream != stream || !roll(a.toxic.toxicity) {
                continue;
            }
            let c = &a.counters;
            Counters::add(&c.connections, 1);
            match a.toxic.effect {
                Effect::Loss { probability } if roll(probability) => {
                    Counters::add(&c.bytes_dropped, len);
                    return Plan::Drop;
                }
                Effect::Duplicate { probability } if roll(probability) => copies = 2,
                Effect::Latency { latency, jitter } => {
                    delay += super::tcp::jittered(latency, jitter);
                    Counters::add(&c.bytes_delayed, len);
                }
                Effect::Reorder { window } if !window.is_zero() => {
                    delay += Duration::from_micros(fastrand::u64(0..=window.as_micros() as u64));
                    Counters::add(&c.bytes_delayed, len);
                }
                Effect::Bandwidth { rate: Some(rate) } => {
                    let now = Instant::now();
                    let mut pace = sync_lock(&a.pace);
                    let start = pace.map_or(now, |p| p.max(now));
                    if start - now > MAX_PACE {
                        Counters::add(&c.bytes_dropped, len);
                        return Plan::Drop;
                    }
                    *pace = Some(start + Duration::from_secs_f64(len as f64 / rate as f64));
                    delay += start - now;
                    Counters::add(&c.bytes_delayed, len);
                }
                _ => {}
            }
        }
        if delay.is_zero() {
            Plan::Now(copies)
        } else {
            Plan::Later(copies, delay)
        }
    }

    /// Sends `data` `copies` times after `delay` through `send`, unless the
    /// instance holds too much already (then it is dropped: false).
    pub fn later<F, Fut>(&self, data: Vec<u8>, copies: u8, delay: Duration, send: F) -> bool
    where
        F: Fn(Arc<Vec<u8>>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let len = data.len();
        if self.held.fetch_add(len, Ordering::Relaxed) + len > MAX_HELD_BYTES {
            self.held.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        let held = Arc::clone(&self.held);
        let cancel = self.cancel.clone();
        let data = Arc::new(data);
        self.tasks.spawn(async move {
            let _release = Release(held, len);
            tokio::select! {
                () = cancel.cancelled() => {}
                () = tokio::time::sleep(delay) => {
                    for _ in 0..copies {
                        send(Arc::clone(&data)).await;
                    }
                }
            }
        });
        true
    }
}

/// A reply queued for the proxy's owner task: the client it goes to, and
/// its bytes.
pub type Reply = (std::net::SocketAddr, Vec<u8>);

impl UdpToxics {
    /// Applies the upstream toxics to `data`, about to be sent on
    /// `socket`: `true` when the caller sends it now (a duplicate is sent
    /// here first); `false` when it was dropped or is held for later.
    pub fn upstream(&mut self, data: &[u8], socket: &Arc<UdpSocket>) -> bool {
        match self.plan(Stream::Upstream, data.len()) {
            Plan::Now(copies) => {
                for _ in 1..copies {
                    let _ = socket.try_send(data);
                }
                true
            }
            Plan::Drop => false,
            Plan::Later(copies, delay) => {
                let socket = Arc::clone(socket);
                self.later(data.to_vec(), copies, delay, move |d| {
                    let socket = Arc::clone(&socket);
                    async move {
                        let _ = socket.send(&d).await;
                    }
                });
                false
            }
        }
    }

    /// Applies the downstream toxics to a reply for `client`, about to be
    /// queued on `replies`: `true` when the caller queues it now.
    pub fn downstream(
        &mut self,
        client: std::net::SocketAddr,
        reply: &[u8],
        replies: &mpsc::Sender<Reply>,
    ) -> bool {
        match self.plan(Stream::Downstream, reply.len()) {
            Plan::Now(copies) => {
                for _ in 1..copies {
                    let _ = replies.try_send((client, reply.to_vec()));
                }
                true
            }
            Plan::Drop => false,
            Plan::Later(copies, delay) => {
                let replies = replies.clone();
                self.later(reply.to_vec(), copies, delay, move |d| {
                    let replies = replies.clone();
                    async move {
                        let _ = replies.try_send((client, d.to_vec()));
                    }
                });
                false
            }
        }
    }
}

/// Gives held bytes back to the budget however the task ends.
struct Release(Arc<AtomicUsize>, usize);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toxic::{Toxic, ToxicJson, Toxics};

    fn add(toxics: &Toxics, ty: &str, attrs: serde_json::Value) {
        let json = ToxicJson {
            name: ty.into(),
            type_name: ty.into(),
            stream: Stream::Upstream,
            toxicity: 1.0,
            enabled: true,
            attributes: serde_json::from_value(attrs).unwrap(),
        };
        toxics
            .add("u", Toxic::from_json(&json, true).unwrap())
            .unwrap();
    }

    #[tokio::test]
    async fn loss_at_one_half_drops_about_half() {
        let toxics = Toxics::new();
        let mut u = UdpToxics::new(
            toxics.watch("u"),
            TaskTracker::new(),
            CancellationToken::new(),
        );
        assert_eq!(u.plan(Stream::Upstream, 10), Plan::Now(1));
        add(&toxics, "loss", serde_json::json!({"probability": 0.5}));
        let dropped = (0..10_000)
            .filter(|_| u.plan(Stream::Upstream, 10) == Plan::Drop)
            .count();
        assert!((4_500..=5_500).contains(&dropped), "{dropped}");
        assert_eq!(u.plan(Stream::Downstream, 10), Plan::Now(1));
        assert_eq!(toxics.metrics()[0].bytes_dropped, dropped as u64 * 10);
    }

    #[tokio::test(start_paused = true)]
    async fn bandwidth_paces_then_drops_beyond_its_backlog() {
        let toxics = Toxics::new();
        add(&toxics, "bandwidth", serde_json::json!({"rate": 1}));
        let mut u = UdpToxics::new(
            toxics.watch("u"),
            TaskTracker::new(),
            CancellationToken::new(),
        );
        assert_eq!(u.plan(Stream::Upstream, 500), Plan::Now(1));
        assert_eq!(
            u.plan(Stream::Upstream, 500),
            Plan::Later(1, Duration::from_millis(500))
        );
        u.plan(Stream::Upstream, 500);
        u.plan(Stream::Upstream, 500);
        assert_eq!(u.plan(Stream::Upstream, 500), Plan::Drop);
    }

    #[tokio::test]
    async fn held_bytes_are_bounded() {
        let toxics = Toxics::new();
        let u = UdpToxics::new(
            toxics.watch("u"),
            TaskTracker::new(),
            CancellationToken::new(),
        );
        let big = vec![0u8; MAX_HELD_BYTES];
        assert!(u.later(big, 1, Duration::from_secs(60), |_| async {}));
        assert!(!u.later(vec![0], 1, Duration::from_secs(60), |_| async {}));
        u.cancel.cancel();
        u.tasks.close();
        u.tasks.wait().await;
        assert_eq!(u.held.load(Ordering::Relaxed), 0);
    }
}
