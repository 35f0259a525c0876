//! Toxics: Toxiproxy-style faults on `tcp-proxy` and `udp-proxy` instances
//! (latency, bandwidth, slicing, cut-offs, resets; loss, duplication and
//! reordering for UDP), changed live while connections are open.
//!
//! [`Toxics`] is the process's one registry, by instance name: each proxy
//! has a `watch` channel holding its current [`List`], which every open
//! connection (and the UDP loop) watches, so adding, changing or removing
//! a toxic reaches them at once without a lock on the data path. A proxy
//! with no toxic never looks at the list while bytes flow: its connections
//! keep the splice/copy fast path and only switch a direction to the
//! copying path of [`tcp`] when a toxic appears.
//!
//! What a toxic *is* lives in [`model`]; how it acts on a TCP stream in
//! [`tcp`] and on datagrams in [`udp`]. This module does no I/O and knows
//! nothing of HTTP or of `services.toml` (the web layer keeps the file).

pub mod input;
pub mod listen;
pub mod model;
pub mod tcp;
pub mod udp;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

pub use model::{Effect, MAX_TOXICS, Stream, Toxic, ToxicError, ToxicJson};

use crate::sync::lock;
pub(crate) use crate::sync::lock as sync_lock;

/// A toxic as the data path sees it: the toxic, a number that changes
/// whenever it does (so a connection rolls its toxicity again for an
/// updated toxic), and its counters.
#[derive(Debug)]
pub struct Active {
    pub toxic: Toxic,
    pub id: u64,
    pub counters: Arc<Counters>,
    /// When this toxic's bandwidth budget is next free (UDP pacing, shared
    /// by the instance's peers). Held for a few instructions only.
    pub pace: Mutex<Option<tokio::time::Instant>>,
}

/// What one toxic did, for `/metrics`. Kept across updates of the toxic.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections (TCP) or datagrams (UDP) the toxic acted on.
    pub connections: AtomicU64,
    pub bytes_delayed: AtomicU64,
    pub bytes_dropped: AtomicU64,
}

impl Counters {
    pub fn add(field: &AtomicU64, n: usize) {
        field.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A proxy's toxics, in the order they were added (the order they act in).
#[derive(Debug, Default)]
pub struct List {
    pub toxics: Vec<Arc<Active>>,
}

impl List {
    /// Whether any enabled toxic acts on `stream`.
    pub fn touches(&self, stream: Stream) -> bool {
        self.toxics
            .iter()
            .any(|a| a.toxic.enabled && a.toxic.stream == stream)
    }

    pub fn is_empty(&self) -> bool {
        !self.toxics.iter().any(|a| a.toxic.enabled)
    }
}

/// A watcher of one proxy's toxics.
pub type Watch = watch::Receiver<Arc<List>>;

/// One row of the metrics.
#[derive(Debug, Clone)]
pub struct ToxicMetrics {
    pub proxy: String,
    pub toxic: String,
    pub type_name: &'static str,
    pub stream: Stream,
    pub connections: u64,
    pub bytes_delayed: u64,
    pub bytes_dropped: u64,
}

/// The registry: every proxy's toxics. Cheap to clone.
#[derive(Clone, Default)]
pub struct Toxics {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Held only to find or change a proxy's channel, never across an await.
    proxies: Mutex<BTreeMap<String, watch::Sender<Arc<List>>>>,
    next_id: AtomicU64,
}

impl Toxics {
    pub fn new() -> Self {
        Self::default()
    }

    /// A watcher of `proxy`'s toxics (an empty list until some are added).
    pub fn watch(&self, proxy: &str) -> Watch {
        let mut proxies = lock(&self.inner.proxies);
        proxies
            .entry(proxy.to_owned())
            .or_insert_with(|| watch::channel(Arc::new(List::default())).0)
            .subscribe()
    }

    /// `proxy`'s toxics, in order.
    pub fn list(&self, proxy: &str) -> Vec<Toxic> {
        let proxies = lock(&self.inner.proxies);
        proxies.get(proxy).map_or_else(Vec::new, |tx| {
            tx.borrow().toxics.iter().map(|a| a.toxic.clone()).collect()
        })
    }

    /// `proxy`'s toxic `name`.
    pub fn get(&self, proxy: &str, name: &str) -> Option<Toxic> {
        self.list(proxy).into_iter().find(|t| t.name == name)
    }

    /// Adds `toxic` to `proxy`, last.
    ///
    /// # Errors
    /// [`ToxicError::Exists`] or [`ToxicError::TooMany`].
    pub fn add(&self, proxy: &str, toxic: Toxic) -> Result<(), ToxicError> {
        self.edit(proxy, |list| {
            if list.iter().any(|(t, _)| t.name == toxic.name) {
                return Err(ToxicError::Exists);
            }
            if list.len() >= MAX_TOXICS {
                return Err(ToxicError::TooMany);
            }
            list.push((toxic, Arc::default()));
            Ok(())
        })
    }

    /// Replaces `proxy`'s toxic of the same name, keeping its place and counters.
    ///
    /// # Errors
    /// [`ToxicError::NotFound`].
    pub fn update(&self, proxy: &str, toxic: Toxic) -> Result<(), ToxicError> {
        self.edit(proxy, |list| {
            let slot = list
                .iter_mut()
                .find(|(t, _)| t.name == toxic.name)
                .ok_or(ToxicError::NotFound)?;
            slot.0 = toxic;
            Ok(())
        })
    }

    /// Removes `proxy`'s toxic `name`.
    ///
    /// # Errors
    /// [`ToxicError::NotFound`].
    pub fn remove(&self, proxy: &str, name: &str) -> Result<(), ToxicError> {
        self.edit(proxy, |list| {
            let before = list.len();
            list.retain(|(t, _)| t.name != name);
            if list.len() == before {
                return Err(ToxicError::NotFound);
            }
            Ok(())
        })
    }

    /// Sets `proxy`'s whole list (at start, from `services.toml`; on reset).
    ///
    /// # Errors
    /// [`ToxicError::TooMany`] or a repeated name.
    pub fn replace(&self, proxy: &str, toxics: Vec<Toxic>) -> Result<(), ToxicError> {
        if toxics.len() > MAX_TOXICS {
            return Err(ToxicError::TooMany);
        }
        self.edit(proxy, |list| {
            list.clear();
            for t in toxics {
                if list.iter().any(|(o, _)| o.name == t.name) {
                    return Err(ToxicError::Exists);
                }
                list.push((t, Arc::default()));
            }
            Ok(())
        })
    }

    /// Forgets `proxy` (removed): its connections see an empty list.
    pub fn forget(&self, proxy: &str) {
        if let Some(tx) = lock(&self.inner.proxies).remove(proxy) {
            tx.send_replace(Arc::new(List::default()));
        }
    }

    /// Every toxic's counters.
    pub fn metrics(&self) -> Vec<ToxicMetrics> {
        let proxies = lock(&self.inner.proxies);
        let mut rows = Vec::new();
        for (proxy, tx) in proxies.iter() {
            for a in &tx.borrow().toxics {
                let c = &a.counters;
                rows.push(ToxicMetrics {
                    proxy: proxy.clone(),
                    toxic: a.toxic.name.clone(),
                    type_name: a.toxic.type_name,
                    stream: a.toxic.stream,
                    connections: c.connections.load(Ordering::Relaxed),
                    bytes_delayed: c.bytes_delayed.load(Ordering::Relaxed),
                    bytes_dropped: c.bytes_dropped.load(Ordering::Relaxed),
                });
            }
        }
        rows
    }

    /// Applies `change` to a copy of `proxy`'s list and publishes it; the
    /// lock is held across both so two edits cannot lose one another.
    fn edit(
        &self,
        proxy: &str,
        change: impl FnOnce(&mut Vec<(Toxic, Arc<Counters>)>) -> Result<(), ToxicError>,
    ) -> Result<(), ToxicError> {
        let mut proxies = lock(&self.inner.proxies);
        let tx = proxies
            .entry(proxy.to_owned())
            .or_insert_with(|| watch::channel(Arc::new(List::default())).0);
        let old = tx.borrow().toxics.clone();
        let mut list: Vec<(Toxic, Arc<Counters>)> = old
            .iter()
            .map(|a| (a.toxic.clone(), Arc::clone(&a.counters)))
            .collect();
        change(&mut list)?;
        let toxics = list
            .into_iter()
            .map(|(toxic, counters)| {
                // An unchanged toxic keeps its id (and each connection's roll).
                let same = old.iter().find(|a| a.toxic == toxic);
                match same {
                    Some(a) => Arc::clone(a),
                    None => Arc::new(Active {
                        toxic,
                        id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
                        counters,
                        pace: Mutex::new(None),
                    }),
                }
            })
            .collect();
        tx.send_replace(Arc::new(List { toxics }));
        Ok(())
    }
}

/// Whether a toxic with `toxicity` acts on one more connection or datagram.
pub fn roll(toxicity: f64) -> bool {
    toxicity >= 1.0 || (toxicity > 0.0 && fastrand::f64() < toxicity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency(name: &str, ms: u64) -> Toxic {
        let json = ToxicJson {
            name: name.into(),
            type_name: "latency".into(),
            stream: Stream::Downstream,
            toxicity: 1.0,
            enabled: true,
            attributes: [("latency".to_owned(), ms.into())].into(),
        };
        Toxic::from_json(&json, false).unwrap()
    }

    #[test]
    fn watchers_see_every_change_and_counters_survive_updates() {
        let toxics = Toxics::new();
        let mut w = toxics.watch("p");
        assert!(w.borrow_and_update().is_empty());
        toxics.add("p", latency("a", 10)).unwrap();
        assert!(w.has_changed().unwrap());
        assert!(w.borrow_and_update().touches(Stream::Downstream));
        assert_eq!(toxics.add("p", latency("a", 5)), Err(ToxicError::Exists));
        let first = Arc::clone(&w.borrow().toxics[0]);
        first.counters.connections.fetch_add(1, Ordering::Relaxed);
        toxics.update("p", latency("a", 20)).unwrap();
        let second = Arc::clone(&w.borrow_and_update().toxics[0]);
        assert_ne!(first.id, second.id, "a changed toxic is rolled again");
        assert_eq!(toxics.metrics()[0].connections, 1);
        assert_eq!(
            toxics.update("p", latency("b", 1)),
            Err(ToxicError::NotFound)
        );
        toxics.remove("p", "a").unwrap();
        assert_eq!(toxics.remove("p", "a"), Err(ToxicError::NotFound));
        assert!(w.borrow_and_update().is_empty());
        for i in 0..MAX_TOXICS {
            toxics.add("p", latency(&format!("t{i}"), 1)).unwrap();
        }
        assert_eq!(toxics.add("p", latency("x", 1)), Err(ToxicError::TooMany));
        toxics.forget("p");
        assert!(w.borrow_and_update().is_empty());
        assert!(toxics.list("p").is_empty());
    }

    #[test]
    fn toxicity_is_a_probability() {
        assert!(roll(1.0));
        assert!(!roll(0.0));
        let hits = (0..10_000).filter(|_| roll(0.5)).count();
        assert!((4_500..5_500).contains(&hits), "{hits}");
    }
}
