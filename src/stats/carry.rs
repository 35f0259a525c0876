//! The live counters and the traffic history carried across an upgrade,
//! so `/metrics` counters do not reset and the charts go on: once the new
//! process is ready, the old one writes every instance's totals and
//! history to `<data_dir>/upgrade-stats.json` (owner-only, atomically);
//! the new one adds them to its own, by instance name, and removes the
//! file.
//!
//! Not carried, on purpose: open connections (they stay the old
//! process's, which drains them; what they count after the handoff is not
//! carried), the event log, the duration histograms (a Prometheus
//! histogram that restarts reads as a reset, which `rate()` handles), and
//! instances the new process does not have. The file is read only by the
//! new process of an upgrade, bounded in size, and removed after reading.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

use serde::{Deserialize, Serialize};

use super::read::totals_of;
use super::{HISTORY_LEN, Sample, Stats};
use crate::sync::lock;

/// The file's name in the data folder.
pub const FILE: &str = "upgrade-stats.json";
/// A file larger than this is not ours: 15 minutes of samples for a few
/// thousand instances fits well within it.
const MAX_FILE_BYTES: u64 = 256 << 20;

/// Why the figures could not be carried (the new process then starts its
/// counters at zero, as a restart does).
#[derive(Debug, thiserror::Error)]
pub enum CarryError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("upgrade-stats.json: not the figures of an upgrade: {0}")]
    Format(String),
}

#[derive(Serialize, Deserialize)]
struct Carried {
    services: Vec<CarriedService>,
}

#[derive(Serialize, Deserialize)]
struct CarriedService {
    name: String,
    accepted: u64,
    refused: u64,
    errors: u64,
    auth_failures: u64,
    bytes_in: u64,
    bytes_out: u64,
    /// `[at_unix_s, bytes_in, bytes_out, accepted, active]`, oldest first:
    /// a fifth of the size of named fields, for 900 samples an instance.
    history: Vec<[u64; 5]>,
}

impl Stats {
    /// Writes every instance's totals and history for the next process.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn carry_out(&self, data_dir: &Path) -> Result<(), CarryError> {
        let services = self
            .entries()
            .iter()
            .map(|e| {
                let history = lock(&e.history)
                    .samples
                    .iter()
                    .map(|s| [s.at_unix_s, s.bytes_in, s.bytes_out, s.accepted, s.active])
                    .collect();
                let t = totals_of(e);
                CarriedService {
                    name: e.id.name().to_owned(),
                    accepted: t.accepted,
                    refused: t.refused,
                    errors: t.errors,
                    auth_failures: t.auth_failures,
                    bytes_in: t.bytes_in,
                    bytes_out: t.bytes_out,
                    history,
                }
            })
            .collect();
        let text = serde_json::to_string(&Carried { services })
            .map_err(|e| CarryError::Format(e.to_string()))?;
        let path = data_dir.join(FILE);
        crate::jsonfile::write_atomic(&path, &text)
            .map_err(|source| CarryError::Io { path, source })
    }

    /// Adds the figures the old process left (if it left any) to this
    /// one's and removes the file: the instances whose figures were added.
    ///
    /// # Errors
    /// The file cannot be read or is not what [`Stats::carry_out`] writes
    /// (it is removed all the same).
    pub fn carry_in(&self, data_dir: &Path) -> Result<Vec<String>, CarryError> {
        let path = data_dir.join(FILE);
        let read = read_bounded(&path);
        let _ = std::fs::remove_file(&path);
        let Some(text) = read.map_err(|source| CarryError::Io { path, source })? else {
            return Ok(Vec::new());
        };
        let carried: Carried =
            serde_json::from_str(&text).map_err(|e| CarryError::Format(e.to_string()))?;
        let mut added = Vec::new();
        for c in carried.services {
            if let Some(e) = self.find(&c.name) {
                // Under the history's lock, which `sample` takes before it
                // reads the totals: no sample sees the counters raised but
                // its baseline not (it would chart the old totals as one
                // second's traffic).
                let mut history = lock(&e.history);
                let n = &e.counters;
                n.accepted.fetch_add(c.accepted, Relaxed);
                n.refused.fetch_add(c.refused, Relaxed);
                n.errors.fetch_add(c.errors, Relaxed);
                n.auth_failures.fetch_add(c.auth_failures, Relaxed);
                n.bytes_in.fetch_add(c.bytes_in, Relaxed);
                n.bytes_out.fetch_add(c.bytes_out, Relaxed);
                let last = &mut history.last;
                *last = (
                    last.0 + c.bytes_in,
                    last.1 + c.bytes_out,
                    last.2 + c.accepted,
                );
                let first_ours = history.samples.front().map_or(u64::MAX, |s| s.at_unix_s);
                let older: VecDeque<Sample> = c
                    .history
                    .iter()
                    .filter(|h| h[0] < first_ours)
                    .map(|h| Sample {
                        at_unix_s: h[0],
                        bytes_in: h[1],
                        bytes_out: h[2],
                        accepted: h[3],
                        active: h[4],
                    })
                    .collect();
                let mut samples = older;
                samples.extend(history.samples.drain(..));
                while samples.len() > HISTORY_LEN {
                    samples.pop_front();
                }
                // The longer tiers restart from the seconds carried (an
                // upgrade keeps 15 minutes, not the day).
                let mut tiers = super::tiers::Downsampled::default();
                samples.iter().for_each(|s| tiers.push(s));
                history.tiers = tiers;
                history.samples = samples;
                added.push(c.name);
            }
        }
        Ok(added)
    }
}

/// The file's text, `None` when there is none.
fn read_bounded(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::ServiceId;

    #[test]
    fn totals_and_history_carry_into_a_new_registry() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let id = ServiceId::new("echo", crate::kind::ServiceKind::Echo);
        let old = Stats::new();
        old.register(&id);
        {
            let e = old.find("echo").expect("registered");
            e.counters.accepted.fetch_add(5, Relaxed);
            e.counters.bytes_in.fetch_add(1000, Relaxed);
        }
        old.sample();
        old.carry_out(dir.path()).expect("written");

        let new = Stats::new();
        new.register(&id);
        new.find("echo")
            .expect("registered")
            .counters
            .accepted
            .fetch_add(2, Relaxed);
        assert_eq!(new.carry_in(dir.path()).expect("read"), ["echo"]);
        assert!(!dir.path().join(FILE).exists(), "removed after reading");
        let t = new.totals("echo");
        assert_eq!((t.accepted, t.bytes_in), (7, 1000));
        let history = new.history("echo");
        assert_eq!(history.len(), 1, "the old process's sample");
        assert_eq!(history[0].bytes_in, 1000);
        // The longer tiers restart from the carried seconds.
        let minutes = new.buckets("echo", super::super::tiers::MINUTES, 0);
        assert_eq!(minutes.iter().map(|b| b.bytes_in).sum::<u64>(), 1000);
        // The next sample counts only what came after the carry.
        new.sample();
        let last = new.last_sample("echo").expect("a sample");
        assert_eq!((last.bytes_in, last.accepted), (0, 2));
        // No file: nothing to carry.
        assert!(new.carry_in(dir.path()).expect("no file").is_empty());
        // A file that is not ours is refused (and removed).
        std::fs::write(dir.path().join(FILE), "{\"services\": 7}").expect("write");
        assert!(matches!(
            new.carry_in(dir.path()),
            Err(CarryError::Format(_))
        ));
        assert!(!dir.path().join(FILE).exists());
    }
}
