//! An upload in progress, in three stages: the socket side fills buffers;
//! a blocking job hashes them (SHA-256) and hands each on to a second one
//! that writes it into the temporary, so the hash (most of an upload's
//! CPU) and the copy into the file run side by side.
//!
//! Each stage is a [`Stage`]: its job runs only while buffers wait for it,
//! so an upload waiting for its peer holds no thread and slow uploads
//! cannot take the blocking pool that file reads and listings need. An
//! upload holds at most [`POOL`] buffers of [`UPLOAD_BUFFER`] bytes, whatever its
//! size, and all uploads in the process together at most [`BUDGET`] such
//! buffers: past that, an upload's buffers are [`SMALL_BUFFER`]s (slower,
//! not refused), so memory stays bounded however many uploads run at once.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, SemaphorePermit, mpsc, oneshot};

use super::stage::Stage;
use super::{Claim, FileInfo, Sha256, Store, StoreError, UPLOAD_BUFFER, hex, sweep};
use crate::sync::lock;

/// Buffers per upload: the most an upload holds in memory is POOL *
/// UPLOAD_BUFFER. One for each stage (the socket side, the hash, the
/// write): a fourth was not faster.
const POOL: usize = 3;

/// [`UPLOAD_BUFFER`]s all uploads in the process hold at once, at most
/// (64 MiB): 21 uploads at full speed. Without it, each service's
/// `max_connections` (1,024 by default) uploads could hold three each:
/// 3 GiB an instance.
const BUDGET: usize = 64;

/// The size of an upload's buffers while the [`BUDGET`] is spent: at most
/// [`POOL`] of them (192 KiB) an upload. Four of them moved about 70 % of
/// what four big ones did to tmpfs (bench/NOTES.md, thirteenth pass); no
/// upload is refused for want of big ones.
const SMALL_BUFFER: usize = 64 * 1024;

/// The process's [`BUDGET`], one permit a big buffer.
static BUDGET_PERMITS: Semaphore = Semaphore::const_new(BUDGET);

/// The permits of an upload's big buffers, shared by its socket side and
/// its writer: they go back once both are gone, so only when no stage
/// holds one of its buffers (a dropped upload's queued buffers are still
/// hashed and written, to its unlinked temporary).
type Permits = Arc<Mutex<Vec<SemaphorePermit<'static>>>>;

/// What the socket side hands the hasher, in order.
enum Block {
    Data(Vec<u8>),
    /// Everything arrived: finish the hash.
    Finish,
}

/// What the hasher hands the writer, in the same order.
enum Hashed {
    Data(Vec<u8>),
    /// Everything hashed: sync and report this digest.
    Finish([u8; 32]),
}

type Outcome = io::Result<[u8; 32]>;

struct Hasher {
    sha: Sha256,
    next: Stage<Writer, Hashed>,
}

fn hash(h: &mut Hasher, block: Block) {
    match block {
        Block::Data(buf) => {
            h.sha.update(&buf);
            h.next.send(Hashed::Data(buf));
        }
        Block::Finish => h
            .next
            .send(Hashed::Finish(std::mem::take(&mut h.sha).finalize())),
    }
}

struct Writer {
    file: File,
    /// Where written buffers go back for reuse.
    spare: Option<mpsc::Sender<Vec<u8>>>,
    /// Taken when the upload is finished or has failed.
    outcome: Option<oneshot::Sender<Outcome>>,
    /// Last, so they go back after the buffers above.
    _permits: Permits,
}

impl Writer {
    /// Reports the outcome, once; then closing `spare` frees a socket side
    /// waiting for a buffer, whose next push finds the outcome there.
    fn end(&mut self, outcome: Outcome) {
        if let Some(tx) = self.outcome.take() {
            // The upload may be gone; then nobody asks.
            let _ = tx.send(outcome);
        }
        self.spare = None;
    }
}

fn write(w: &mut Writer, hashed: Hashed) {
    if w.outcome.is_none() {
        return; // failed: what still comes is dropped
    }
    match hashed {
        Hashed::Data(mut buf) => match w.file.write_all(&buf) {
            Ok(()) => {
                buf.clear();
                if let Some(spare) = &w.spare {
                    let _ = spare.try_send(buf);
                }
            }
            Err(e) => w.end(Err(e)),
        },
        Hashed::Finish(digest) => {
            let synced = w.file.sync_all().map(|()| digest);
            w.end(synced);
        }
    }
}

/// An upload in progress. Feed it with [`Upload::buffer`] and
/// [`Upload::push`], end it with [`Upload::commit`]; dropped before that,
/// it removes its temporary and nothing appears.
pub struct Upload {
    store: Store,
    name: String,
    tmp: Option<PathBuf>,
    declared: u64,
    received: u64,
    hash: Stage<Hasher, Block>,
    spare: mpsc::Receiver<Vec<u8>>,
    allocated: usize,
    /// Where big buffers come from ([`BUDGET_PERMITS`] but in tests).
    budget: &'static Semaphore,
    /// The writer's report; `None` once read.
    outcome: Option<oneshot::Receiver<Outcome>>,
    /// Holds the temporary's lock, so a sweep (a new process, a restarted
    /// instance) leaves it alone while this upload runs.
    _held: sweep::Held,
    _claim: Claim,
    /// Last, so they go back after the buffers above.
    permits: Permits,
}

/// What [`Store::begin`] made ready: the temporary, open, locked and
/// claimed for.
pub(super) struct Begun {
    pub store: Store,
    pub name: String,
    pub tmp: PathBuf,
    pub size: u64,
    pub file: File,
    pub held: sweep::Held,
    pub claim: Claim,
}

impl Upload {
    pub(super) fn new(begun: Begun) -> Upload {
        let (spare_tx, spare) = mpsc::channel(POOL);
        let (outcome_tx, outcome) = oneshot::channel();
        let permits = Permits::default();
        let writer = Writer {
            file: begun.file,
            spare: Some(spare_tx),
            outcome: Some(outcome_tx),
            _permits: Arc::clone(&permits),
        };
        let hasher = Hasher {
            sha: Sha256::new(),
            next: Stage::new(writer, write),
        };
        Upload {
            store: begun.store,
            name: begun.name,
            tmp: Some(begun.tmp),
            declared: begun.size,
            received: 0,
            hash: Stage::new(hasher, hash),
            spare,
            allocated: 0,
            budget: &BUDGET_PERMITS,
            outcome: Some(outcome),
            _held: begun.held,
            _claim: begun.claim,
            permits,
        }
    }

    /// Bytes still expected.
    pub fn remaining(&self) -> u64 {
        self.declared - self.received
    }

    /// How many bytes to fill `buf` (from [`Upload::buffer`]) with before
    /// [`Upload::push`]: all it holds, or what is left. Handed on full, so
    /// an upload costs one hash and one write per buffer, however finely
    /// its peer sends.
    pub fn next_len(&self, buf: &Vec<u8>) -> usize {
        self.remaining().min(buf.capacity() as u64) as usize
    }

    /// An empty buffer: a new one while fewer than [`POOL`] exist, else
    /// one the writer has finished with. A new one has [`UPLOAD_BUFFER`]
    /// bytes of capacity while the process's [`BUDGET`] lasts, else
    /// [`SMALL_BUFFER`]; a small one coming back is traded for a big one
    /// once the budget has one again.
    pub async fn buffer(&mut self) -> Vec<u8> {
        if self.allocated < POOL {
            self.allocated += 1;
            return self.new_buffer();
        }
        match self.spare.recv().await {
            Some(buf) if buf.capacity() < UPLOAD_BUFFER => self.big_buffer().unwrap_or(buf),
            Some(buf) => buf,
            // The writer has failed; push will say why.
            None => Vec::with_capacity(SMALL_BUFFER),
        }
    }

    /// This upload's big buffers come from `budget` instead of the
    /// process's: a test's own, which other tests do not spend.
    #[cfg(test)]
    fn with_budget(mut self, budget: &'static Semaphore) -> Upload {
        self.budget = budget;
        self
    }

    fn new_buffer(&mut self) -> Vec<u8> {
        self.big_buffer()
            .unwrap_or_else(|| Vec::with_capacity(SMALL_BUFFER))
    }

    /// A new [`UPLOAD_BUFFER`], if the budget has one.
    fn big_buffer(&mut self) -> Option<Vec<u8>> {
        let permit = self.budget.try_acquire().ok()?;
        lock(&self.permits).push(permit);
        Some(Vec::with_capacity(UPLOAD_BUFFER))
    }

    /// Hands a filled buffer on: hashed, then written.
    ///
    /// # Errors
    /// More bytes than declared; the writer's I/O error (disk full, ...).
    pub async fn push(&mut self, buf: Vec<u8>) -> Result<(), StoreError> {
        let got = self.received + buf.len() as u64;
        if got > self.declared {
            return Err(StoreError::SizeMismatch {
                declared: self.declared,
                got,
            });
        }
        let Some(rx) = &mut self.outcome else {
            return Err(stopped());
        };
        match rx.try_recv() {
            Err(oneshot::error::TryRecvError::Empty) => {}
            // Only a failure comes before Finish.
            Ok(Err(e)) => {
                self.outcome = None;
                return Err(e.into());
            }
            Ok(Ok(_)) | Err(oneshot::error::TryRecvError::Closed) => {
                self.outcome = None;
                return Err(stopped());
            }
        }
        self.received = got;
        self.hash.send(Block::Data(buf));
        Ok(())
    }

    /// Finishes: checks the size, waits for the hash and the last write,
    /// syncs, and links the file under the first free variant of its name.
    ///
    /// # Errors
    /// A short body; the writer's I/O error; no free name.
    pub async fn commit(mut self) -> Result<FileInfo, StoreError> {
        if self.received != self.declared {
            return Err(StoreError::SizeMismatch {
                declared: self.declared,
                got: self.received,
            });
        }
        self.hash.send(Block::Finish);
        let digest = match self.outcome.take() {
            Some(rx) => rx.await.map_err(|_| stopped())??,
            None => return Err(stopped()),
        };
        let tmp = self.tmp.clone().expect("present until commit or drop");
        let info = self
            .store
            .link_free(tmp, self.name.clone(), hex(&digest))
            .await?;
        // Linked under its name and unlinked as the temporary: nothing for
        // Drop to remove.
        self.tmp = None;
        Ok(info)
    }
}

/// The writer ended without a report (a job panicked), or was asked again.
fn stopped() -> StoreError {
    io::Error::other("the writer stopped").into()
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            // A job may still hold the file open; unlinking is fine.
            let _ = std::fs::remove_file(tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Buffers of a known pattern, as the socket side hands them on.
    fn blocks(count: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| {
                (0..UPLOAD_BUFFER)
                    .map(|j| ((i * 31 + j) % 251) as u8)
                    .collect()
            })
            .collect()
    }

    async fn send(up: &mut Upload, block: &[u8]) -> Result<(), StoreError> {
        let mut buf = up.buffer().await;
        assert!(buf.is_empty());
        buf.extend_from_slice(block);
        up.push(buf).await
    }

    /// Feeds `up` more buffers than its pool holds (a failed writer must
    /// not leave the socket side waiting for one), then commits: the error
    /// it ends with, from a push or from the commit.
    async fn fails(mut up: Upload) -> StoreError {
        for block in blocks(4 * POOL) {
            let sent = tokio::time::timeout(Duration::from_secs(30), send(&mut up, &block));
            if let Err(e) = sent.await.expect("a buffer or an error") {
                return e;
            }
        }
        tokio::time::timeout(Duration::from_secs(30), up.commit())
            .await
            .expect("commit answers")
            .expect_err("the writer failed")
    }

    fn budget_of(permits: usize) -> &'static Semaphore {
        Box::leak(Box::new(Semaphore::new(permits)))
    }

    #[tokio::test]
    async fn big_buffers_come_from_the_budget_and_go_back_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let budget = budget_of(POOL + 1);
        let size = (4 * UPLOAD_BUFFER) as u64;
        let mut first = store.begin("first.bin", size).unwrap().with_budget(budget);
        let mut second = store.begin("second.bin", size).unwrap().with_budget(budget);
        let mut held = Vec::new();
        for _ in 0..POOL {
            held.push(first.buffer().await);
        }
        held.push(second.buffer().await);
        assert!(held.iter().all(|b| b.capacity() >= UPLOAD_BUFFER));
        assert_eq!(budget.available_permits(), 0);
        // The budget is spent: a small buffer, filled to its size.
        let small = second.buffer().await;
        assert!(small.capacity() < UPLOAD_BUFFER, "{}", small.capacity());
        assert_eq!(second.next_len(&small), small.capacity());
        // An upload gone (its buffers too) gives its permits back.
        drop((held, first));
        assert_eq!(budget.available_permits(), POOL);
        let big = second.buffer().await;
        assert!(big.capacity() >= UPLOAD_BUFFER);
        assert_eq!(budget.available_permits(), POOL - 1);
    }

    #[tokio::test]
    async fn a_small_buffer_coming_back_is_traded_for_a_big_one_when_the_budget_has_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let budget = budget_of(0);
        let mut up = store
            .begin("grows.bin", (8 * UPLOAD_BUFFER) as u64)
            .unwrap()
            .with_budget(budget);
        for _ in 0..POOL {
            let mut buf = up.buffer().await;
            assert!(buf.capacity() < UPLOAD_BUFFER);
            buf.resize(up.next_len(&buf), b'x');
            up.push(buf).await.unwrap();
        }
        budget.add_permits(1);
        let buf = up.buffer().await;
        assert!(buf.capacity() >= UPLOAD_BUFFER, "{}", buf.capacity());
        assert_eq!(budget.available_permits(), 0);
    }

    #[tokio::test]
    async fn an_upload_with_the_budget_spent_stores_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let data: Vec<u8> = blocks(1).concat().into_iter().chain(*b"tail!").collect();
        let mut up = store
            .begin("small.bin", data.len() as u64)
            .unwrap()
            .with_budget(budget_of(0));
        let mut rest = &data[..];
        while up.remaining() > 0 {
            let mut buf = up.buffer().await;
            assert!(
                buf.capacity() < UPLOAD_BUFFER,
                "a big buffer past the budget"
            );
            let (piece, after) = rest.split_at(up.next_len(&buf));
            buf.extend_from_slice(piece);
            rest = after;
            up.push(buf).await.unwrap();
        }
        let info = up.commit().await.unwrap();
        assert_eq!(info.sha256, hex(&Sha256::digest(&data)));
        let stored = std::fs::read(store.dir().join("small.bin")).unwrap();
        assert!(stored == data, "the stored bytes differ");
    }

    #[tokio::test]
    async fn an_upload_hashes_and_writes_its_buffers_in_order_with_a_bounded_pool() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let data = blocks(4 * POOL);
        let size = (data.len() * UPLOAD_BUFFER) as u64;
        let mut up = store
            .begin("pattern.bin", size)
            .unwrap()
            .with_budget(budget_of(POOL));
        let mut seen = Vec::new();
        for block in &data {
            let mut buf = up.buffer().await;
            if !seen.contains(&buf.as_ptr()) {
                seen.push(buf.as_ptr());
            }
            buf.extend_from_slice(block);
            up.push(buf).await.unwrap();
        }
        assert!(
            seen.len() <= POOL,
            "{} buffers for {} pushes",
            seen.len(),
            data.len()
        );
        let info = up.commit().await.unwrap();
        let whole = data.concat();
        assert_eq!(info.sha256, hex(&Sha256::digest(&whole)));
        let stored = std::fs::read(store.dir().join("pattern.bin")).unwrap();
        assert!(stored == whole, "the stored bytes differ");
    }

    #[tokio::test]
    async fn a_failed_write_is_reported_and_nothing_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let up = store
            .begin("fails.bin", (4 * POOL * UPLOAD_BUFFER) as u64)
            .unwrap()
            .with_budget(budget_of(POOL));
        // The temporary opened for reading only: its first write fails (EBADF).
        let tmp = up.tmp.clone().unwrap();
        {
            let mut hashing = lock(&up.hash.shared.queue);
            let hasher = hashing.idle.as_mut().expect("no job yet");
            let mut writing = lock(&hasher.next.shared.queue);
            writing.idle.as_mut().expect("no job yet").file = File::open(&tmp).unwrap();
        }
        let err = fails(up).await;
        assert!(
            matches!(&err, StoreError::Io(e) if e.raw_os_error() == Some(nix::libc::EBADF)),
            "{err}"
        );
        let left = std::fs::read_dir(store.dir()).unwrap().count();
        assert_eq!(left, 0, "entries left in the folder");
    }

    #[tokio::test]
    async fn a_writer_job_that_panics_fails_the_upload_and_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let up = store
            .begin("panics.bin", (4 * POOL * UPLOAD_BUFFER) as u64)
            .unwrap()
            .with_budget(budget_of(POOL));
        {
            let mut hashing = lock(&up.hash.shared.queue);
            let hasher = hashing.idle.as_mut().expect("no job yet");
            hasher.next.work = |_, _| panic!("a writer job panics (this test's)");
        }
        let err = fails(up).await;
        assert!(err.to_string().contains("the writer stopped"), "{err}");
        let left = std::fs::read_dir(store.dir()).unwrap().count();
        assert_eq!(left, 0, "entries left in the folder");
        let claimed = store
            .inner
            .claimed
            .load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(claimed, 0, "bytes still claimed");
    }

    /// A blocking pool of one thread: an upload that kept a thread while
    /// waiting for its peer would leave none for the others.
    #[test]
    fn uploads_waiting_for_their_peers_hold_no_blocking_thread() {
        let rt = crate::store::stage::one_blocking_thread();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let all = async {
            let data = blocks(2 * POOL);
            let size = (data.len() * UPLOAD_BUFFER) as u64;
            let mut ups: Vec<_> = (0..3)
                .map(|i| {
                    let up = store.begin(&format!("u{i}.bin"), size).unwrap();
                    up.with_budget(budget_of(POOL))
                })
                .collect();
            // Interleaved, as three peers sending at once.
            for block in &data {
                for up in &mut ups {
                    send(up, block).await.unwrap();
                }
            }
            for up in ups {
                up.commit().await.unwrap();
            }
        };
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), all).await })
            .expect("every upload finished with one blocking thread");
        assert_eq!(
            store
                .inner
                .claimed
                .load(std::sync::atomic::Ordering::SeqCst),
            0
        );
        assert_eq!(
            std::fs::read_dir(store.dir()).unwrap().count(),
            3,
            "files stored"
        );
    }
}
