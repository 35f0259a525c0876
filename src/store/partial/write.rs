//! One part of a partial upload being written: the socket side hands the
//! body on, a chunk at a time, to a [`Stage`] whose blocking job hashes
//! and appends it. A part of any size holds at most [`QUEUE`] chunks in
//! memory, and a part whose body trickles in holds no thread while it
//! waits: small pieces are gathered to [`GATHER`] bytes before the job
//! sees them.
//!
//! A part with a checksum is all or nothing: a mismatch, or a body that
//! ended early, truncates the file back to where the part began (the spec
//! of tus's `checksum` extension). A part without one keeps every byte
//! that arrived, so a cut connection resumes from the last byte written.
//!
//! Not here: which upload, whose, or the offset rules ([`super`]).

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::PartialError;
use crate::store::stage::Stage;
use crate::store::{CHUNK, Sha256, StoreError};

/// Chunks queued for the writer at most.
const QUEUE: usize = 16;
/// Pieces of a body shorter than this are gathered, not handed on alone:
/// a peer keeps the writer's job (a thread) busy only by sending at
/// least this much every millisecond. Larger pieces (hyper's reads of a
/// steady body) go on as they came, uncopied.
const SMALL: usize = 8 * 1024;
/// Gathered pieces go to the writer once they hold this many bytes.
const GATHER: usize = CHUNK;

/// A part's checksum, as `Upload-Checksum` (tus) declares it.
#[derive(Debug, Clone)]
pub enum Checksum {
    Sha1([u8; 20]),
    Sha256([u8; 32]),
}

enum Msg {
    /// Bytes to append, with the queue place they hold (none for what a
    /// dropped part flushes, which cannot wait for one).
    Data(Bytes, Option<OwnedSemaphorePermit>),
    /// The part ended: `whole` when its body arrived complete (then it is
    /// kept if its checksum matches).
    End { whole: bool },
    /// The part was dropped unfinished, with the bytes still gathered:
    /// it ends as a cut one, and nobody reads the report.
    Abandoned(Option<Bytes>),
}

/// How a part ended: the upload's new offset and running hash, and
/// whether the part was kept.
pub struct Ended {
    pub offset: u64,
    pub hasher: Option<Sha256>,
    pub result: Result<(), PartialError>,
}

/// A part being written. Feed it with [`Patch::push`]; end it with
/// [`Patch::finish`] (or drop it: the bytes pushed so far are written,
/// as for a body that ended early).
pub struct Patch {
    writer: Stage<Writer, Msg>,
    permits: Arc<Semaphore>,
    gathered: BytesMut,
    /// The writer's report; `None` once read, or [`Patch::finish`] ran.
    outcome: Option<oneshot::Receiver<Ended>>,
    /// A report that came before the end: the writer failed.
    early: Option<Ended>,
    ended: bool,
    room: u64,
    length: u64,
    start: u64,
}

impl Patch {
    pub(super) fn start(
        path: PathBuf,
        offset: u64,
        length: u64,
        hasher: Option<Sha256>,
        checksum: Option<Checksum>,
    ) -> Result<Patch, PartialError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(StoreError::from)?;
        let (report, outcome) = oneshot::channel();
        let writer = Writer {
            file,
            start: offset,
            offset,
            known: hasher,
            hasher: Sha256::new(),
            ready: false,
            part: PartHash::new(checksum.as_ref()),
            before: None,
            checksum,
            report: Some(report),
        };
        Ok(Patch {
            writer: Stage::new(writer, write),
            permits: Arc::new(Semaphore::new(QUEUE)),
            gathered: BytesMut::new(),
            outcome: Some(outcome),
            early: None,
            ended: false,
            room: length - offset,
            length,
            start: offset,
        })
    }

    /// Takes `bytes` for the writer: a large piece goes on as it came,
    /// small ones once [`GATHER`] bytes of them are in.
    ///
    /// # Errors
    /// It would pass the declared length (nothing of it is written); the
    /// writer stopped (its error comes with [`Patch::finish`]).
    pub async fn push(&mut self, bytes: Bytes) -> Result<(), PartialError> {
        let n = bytes.len() as u64;
        if n > self.room {
            return Err(PartialError::PastEnd {
                end: self.length - self.room + n,
                length: self.length,
            });
        }
        if self.outcome.is_none() {
            return Err(stopped());
        }
        self.room -= n;
        if bytes.len() >= SMALL {
            self.flush().await?;
            return self.hand(bytes).await;
        }
        if self.gathered.len() + bytes.len() > GATHER {
            self.flush().await?;
        }
        if self.gathered.capacity() == 0 {
            self.gathered.reserve(GATHER);
        }
        self.gathered.extend_from_slice(&bytes);
        if self.gathered.len() >= GATHER {
            self.flush().await?;
        }
        Ok(())
    }

    /// Hands what was gathered on.
    async fn flush(&mut self) -> Result<(), PartialError> {
        if self.gathered.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.gathered).freeze();
        self.hand(bytes).await
    }

    /// Queues `bytes` once a place is free; a writer that stopped frees
    /// none, so its report ends the wait.
    async fn hand(&mut self, bytes: Bytes) -> Result<(), PartialError> {
        let permits = Arc::clone(&self.permits);
        let Some(outcome) = &mut self.outcome else {
            return Err(stopped());
        };
        match outcome.try_recv() {
            Err(oneshot::error::TryRecvError::Empty) => {}
            // Only a failure comes before the end.
            reported => {
                self.outcome = None;
                self.early = reported.ok();
                return Err(stopped());
            }
        }
        let permit = tokio::select! {
            biased;
            permit = permits.acquire_owned() => permit.map_err(|_| stopped())?,
            ended = outcome => {
                self.outcome = None;
                self.early = ended.ok();
                return Err(stopped());
            }
        };
        self.writer.send(Msg::Data(bytes, Some(permit)));
        Ok(())
    }

    /// Ends the part: `whole` when the body arrived complete.
    pub async fn finish(mut self, whole: bool) -> Ended {
        let flushed = self.flush().await;
        self.ended = true;
        self.writer.send(Msg::End {
            whole: whole && flushed.is_ok(),
        });
        if let Some(ended) = self.early.take() {
            return ended;
        }
        let start = self.start;
        let reported = match self.outcome.take() {
            Some(rx) => rx.await.ok(),
            None => None,
        };
        reported.unwrap_or_else(|| Ended {
            offset: start,
            hasher: None,
            result: Err(stopped()),
        })
    }
}

impl Drop for Patch {
    /// A part dropped unfinished (its task aborted, or the runtime shut
    /// down) ends as a cut one: what was pushed is written, unless its
    /// checksum can no longer be checked. Worked here when the writer has
    /// no job, since a new job may not start any more.
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let rest = (!self.gathered.is_empty()).then(|| std::mem::take(&mut self.gathered).freeze());
        self.writer.send_or_work_here(Msg::Abandoned(rest));
    }
}

/// The writer ended without a report (its job panicked).
fn stopped() -> PartialError {
    PartialError::Body("the writer stopped".into())
}

/// The writer's state, kept between its jobs.
struct Writer {
    file: std::fs::File,
    start: u64,
    offset: u64,
    /// The running hash as the part began, when known (not after a restart).
    known: Option<Sha256>,
    /// The running hash, once [`Writer::catch_up`] ran.
    hasher: Sha256,
    /// The hash caught up and the file cut back to `start`.
    ready: bool,
    part: PartHash,
    /// The running hash as the part began, for a part that is dropped.
    before: Option<Sha256>,
    checksum: Option<Checksum>,
    /// Taken when the part ends or the writer fails.
    report: Option<oneshot::Sender<Ended>>,
}

impl Writer {
    /// Hashes what is already there if the running hash was lost (a
    /// restart) and `hash` asks for it, and drops anything past the
    /// offset: a part that was never acknowledged.
    fn catch_up(&mut self, hash: bool) -> io::Result<()> {
        self.hasher = match self.known.take() {
            Some(h) => h,
            None if hash => hash_prefix(&mut self.file, self.start)?,
            // A part abandoned before it began: nobody reads its hash.
            None => Sha256::new(),
        };
        self.file.set_len(self.start)?;
        self.file.seek(SeekFrom::Start(self.start))?;
        self.before = self.checksum.as_ref().map(|_| self.hasher.clone());
        self.ready = true;
        Ok(())
    }

    /// Appends `buf`; false (and the failure reported) if it cannot.
    fn append(&mut self, buf: &[u8]) -> bool {
        if let Err(e) = self.file.write_all(buf) {
            // What reached the file before the error is unknown: back to
            // the last known length, hash recomputed next time.
            let _ = self.file.set_len(self.offset);
            let offset = self.offset;
            self.fail(offset, e);
            return false;
        }
        self.hasher.update(buf);
        self.part.update(buf);
        self.offset += buf.len() as u64;
        true
    }

    fn report(&mut self, ended: Ended) {
        if let Some(tx) = self.report.take() {
            // The part may be gone (aborted); then nobody asks.
            let _ = tx.send(ended);
        }
    }

    fn fail(&mut self, offset: u64, e: io::Error) {
        self.report(failed(offset, e));
    }

    /// The part's end: kept, or cut back if its checksum says so.
    fn end(&mut self, whole: bool) -> Ended {
        let result = match (self.checksum.take(), whole) {
            (None, _) => Ok(()),
            (Some(sum), true)
                if std::mem::replace(&mut self.part, PartHash::None).matches(&sum) =>
            {
                Ok(())
            }
            (Some(_), whole) => {
                if let Err(e) = self.file.set_len(self.start) {
                    return failed(self.start, e);
                }
                self.offset = self.start;
                if let Some(before) = self.before.take() {
                    self.hasher = before;
                }
                Err(if whole {
                    PartialError::ChecksumMismatch
                } else {
                    PartialError::Body(
                        "the part was cut short; its checksum cannot be checked".into(),
                    )
                })
            }
        };
        if let Err(e) = self.file.sync_data() {
            return failed(self.start, e);
        }
        Ended {
            offset: self.offset,
            hasher: Some(std::mem::take(&mut self.hasher)),
            result,
        }
    }
}

fn failed(offset: u64, e: io::Error) -> Ended {
    Ended {
        offset,
        hasher: None,
        result: Err(StoreError::Io(e).into()),
    }
}

/// The writer's work on one message, on its stage's blocking job.
fn write(w: &mut Writer, msg: Msg) {
    if w.report.is_none() {
        return; // ended or failed: what still comes is dropped
    }
    let hash = !matches!(msg, Msg::Abandoned(_));
    if !w.ready
        && let Err(e) = w.catch_up(hash)
    {
        let start = w.start;
        w.fail(start, e);
        return;
    }
    match msg {
        Msg::Data(buf, _place) => {
            w.append(&buf);
        }
        Msg::End { whole } => {
            let ended = w.end(whole);
            w.report(ended);
        }
        Msg::Abandoned(rest) => {
            if let Some(buf) = rest
                && w.checksum.is_none()
                && !w.append(&buf)
            {
                return;
            }
            let ended = w.end(false);
            w.report(ended);
        }
    }
}

fn hash_prefix(file: &mut std::fs::File, len: u64) -> io::Result<Sha256> {
    let mut hasher = Sha256::new();
    file.seek(SeekFrom::Start(0))?;
    let mut left = len;
    let mut buf = vec![0u8; crate::store::CHUNK];
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the partial file is shorter than its offset",
            ));
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hasher)
}

/// The part's own hash, for its checksum.
enum PartHash {
    None,
    Sha1(sha1::Sha1),
    Sha256(Sha256),
}

impl PartHash {
    fn new(sum: Option<&Checksum>) -> Self {
        match sum {
            None => PartHash::None,
            Some(Checksum::Sha1(_)) => PartHash::Sha1(sha1::Digest::new()),
            Some(Checksum::Sha256(_)) => PartHash::Sha256(Sha256::new()),
        }
    }
    fn update(&mut self, buf: &[u8]) {
        match self {
            PartHash::None => {}
            PartHash::Sha1(h) => sha1::Digest::update(h, buf),
            PartHash::Sha256(h) => h.update(buf),
        }
    }
    fn matches(self, sum: &Checksum) -> bool {
        match (self, sum) {
            (PartHash::Sha1(h), Checksum::Sha1(want)) => {
                sha1::Digest::finalize(h).as_slice() == want.as_slice()
            }
            (PartHash::Sha256(h), Checksum::Sha256(want)) => {
                h.finalize().as_slice() == want.as_slice()
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::lock;
    use std::time::Duration;

    /// Starts a part at 4 bytes ("kept" there), hands it one chunk and
    /// gathers a few bytes more, then waits until the writer's job has
    /// written the chunk and ended. The part comes back unfinished.
    fn fed_part(path: &std::path::Path, checksum: Option<Checksum>) -> Patch {
        std::fs::write(path, b"kept").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut patch =
                Patch::start(path.into(), 4, 1 << 20, Some(Sha256::new()), checksum).unwrap();
            patch.push(Bytes::from(vec![7u8; SMALL])).await.unwrap();
            patch.push(Bytes::from_static(b"gathered")).await.unwrap();
            let settled = async {
                loop {
                    let written = std::fs::metadata(path).unwrap().len() == 4 + SMALL as u64;
                    if written && lock(&patch.writer.shared.queue).idle.is_some() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(30), settled)
                .await
                .expect("the chunk written and the job ended");
            patch
        })
        // The runtime is gone with its blocking pool: no job can start,
        // as at the end of a shutdown.
    }

    #[test]
    fn a_part_dropped_where_no_job_can_start_still_ends_as_a_cut_one() {
        let dir = tempfile::tempdir().unwrap();
        // With a checksum: all or nothing, so back to where it began.
        let path = dir.path().join("sum.bin");
        drop(fed_part(&path, Some(Checksum::Sha256([0; 32]))));
        assert_eq!(std::fs::read(&path).unwrap(), b"kept");
        // Without: every byte that arrived is kept, the gathered ones too.
        let path = dir.path().join("plain.bin");
        drop(fed_part(&path, None));
        let mut want = b"kept".to_vec();
        want.extend_from_slice(&[7u8; SMALL]);
        want.extend_from_slice(b"gathered");
        assert!(std::fs::read(&path).unwrap() == want, "the bytes kept");
    }
}
