//! The files folder, `<data_dir>/files/`, shared by `files` and
//! `files-classic`: safe names, atomic arrival, no overwrites, no escapes.
//!
//! - Names are reduced by [`safe_name`]; what cannot be made safe is
//!   refused with the reason.
//! - An upload is hashed with SHA-256 by one blocking task and written to
//!   `.upload-<random>` in the same folder by a second one after it (the
//!   socket side only hands them buffers; the hash and the copy into the
//!   file run side by side), synced, then hard-linked under its
//!   final name, which fails rather than replaces when the name is taken:
//!   the next free `name-1.ext`, `name-2.ext`, ... is used and reported. An
//!   upload that ends any other way removes its temporary; temporaries left
//!   by a killed server are swept at start.
//! - Nothing follows a symlink: temporaries are created with `O_EXCL`,
//!   links fail on any existing entry, reads open with `O_NOFOLLOW` and
//!   must find a regular file, listings skip everything else.
//! - Free space is checked before anything is written, counting what
//!   uploads in flight have already claimed.

use crate::sync::lock;
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::wire::hex;
pub mod delete;
mod link;
mod list;
pub mod partial;
mod sweep;

/// Longest stored name, in bytes (room left for `new_` and `-NNN`).
pub const MAX_NAME_LEN: usize = 200;
/// Prefix of temporaries; stored names never start with a dot.
const TMP_PREFIX: &str = ".upload-";
/// Bytes per buffer handed from the socket to the writer.
pub const CHUNK: usize = 256 * 1024;
/// Buffers per upload: the most an upload holds in memory is POOL * CHUNK.
const POOL: usize = 4;
/// Space kept free on the disk beyond what uploads claim.
const SPARE_SPACE: u64 = 1 << 20;
/// How many `name-N` variants are tried before giving up.
const MAX_VARIANTS: u32 = 10_000;

/// Why a name, an upload or a read was refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("bad file name: {0}")]
    BadName(String),
    #[error("no file `{0}`")]
    NotFound(String),
    #[error("file too large: it is {size} bytes; the limit is {max}")]
    TooLarge { size: u64, max: u64 },
    #[error("not enough disk space: {need} bytes needed, {free} free")]
    NoSpace { need: u64, free: u64 },
    #[error("the body was {got} bytes but {declared} were declared")]
    SizeMismatch { declared: u64, got: u64 },
    #[error("no free name left for `{0}`")]
    NoFreeName(String),
    #[error("disk error: {0}")]
    Io(#[from] io::Error),
}

/// Reduces a name as sent to a safe base name, or says why it cannot be.
///
/// The last path component is kept (`../x`, `/etc/x`, `a\x` all give
/// `x`); leading dots and spaces, in any mix, and trailing spaces are
/// dropped, so a stored name never starts with a dot. Refused: names
/// that are not UTF-8, that hold control characters (NUL included) or
/// Unicode format characters (a right-to-left override shows
/// `invoice\u{202e}gpj.exe` as `invoiceexe.jpg`), or
/// that are empty once reduced (``, `.`, `..`, `a/`), or longer than
/// [`MAX_NAME_LEN`] bytes.
///
/// # Errors
/// [`StoreError::BadName`] with the reason.
pub fn safe_name(raw: &[u8]) -> Result<String, StoreError> {
    let bad = |why: &str| StoreError::BadName(why.to_owned());
    let text = std::str::from_utf8(raw).map_err(|_| bad("not valid UTF-8"))?;
    if text.chars().any(char::is_control) {
        return Err(bad("it contains control characters"));
    }
    if text.chars().any(crate::wire::text::is_invisible_format) {
        return Err(bad(
            "it contains invisible format characters (such as a right-to-left override)",
        ));
    }
    let base = text.rsplit(['/', '\\']).next().unwrap_or("");
    // Dots and spaces in turn (`. .x`, `.. ..`) until neither leads: one
    // pass of each could leave `.x` or `..`.
    let name = base
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end();
    if name.is_empty() {
        return Err(bad(if text.trim().is_empty() {
            "the name is empty"
        } else {
            "nothing is left of it once path parts and leading dots are removed"
        }));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(StoreError::BadName(format!(
            "longer than {MAX_NAME_LEN} bytes"
        )));
    }
    Ok(name.to_owned())
}

/// Refuses an upload of `size` bytes over a service's `max` before a byte
/// of it is read.
///
/// # Errors
/// [`StoreError::TooLarge`].
pub fn check_size(size: u64, max: u64) -> Result<(), StoreError> {
    if size > max {
        return Err(StoreError::TooLarge { size, max });
    }
    Ok(())
}

/// Free bytes on `dir`'s filesystem for an unprivileged writer.
fn free_bytes(dir: &Path) -> io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(io::Error::from)?;
    Ok(st.blocks_available().saturating_mul(st.fragment_size()))
}

/// Refuses at once an upload of `size` bytes that cannot fit in `dir` now,
/// for a relay that must answer before it streams a body: [`Store::begin`]
/// checks again, counting what uploads in flight claim.
///
/// # Errors
/// [`StoreError::NoSpace`]; the folder unreadable.
pub fn check_room(dir: &Path, size: u64) -> Result<(), StoreError> {
    let free = free_bytes(dir)?;
    if size.saturating_add(SPARE_SPACE) > free {
        return Err(StoreError::NoSpace {
            need: size,
            free: free.saturating_sub(SPARE_SPACE),
        });
    }
    Ok(())
}

/// `name`, then `stem-1.ext`, `stem-2.ext`, ...
fn variant(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_owned();
    }
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{n}.{ext}"),
        _ => format!("{name}-{n}"),
    }
}

/// A stored file, as listed and as reported after an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileInfo {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    /// RFC 3339, UTC.
    pub modified: String,
}

/// Hashes already known, so a listing does not reread every file.
#[derive(Clone)]
struct Known {
    size: u64,
    mtime_ns: i128,
    sha256: String,
}

struct Inner {
    dir: PathBuf,
    known: Mutex<HashMap<String, Known>>,
    /// Bytes claimed by uploads in flight.
    claimed: AtomicU64,
}

/// The files folder. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

fn mtime_ns(meta: &std::fs::Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

fn rfc3339(meta: &std::fs::Metadata) -> String {
    chrono::DateTime::from_timestamp(meta.mtime(), meta.mtime_nsec() as u32)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Where `data_dir`'s files live.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("files")
}

pub use crate::jsonfile::create_private_dir;

impl Store {
    /// Opens (creating) `<data_dir>/files/` and removes temporaries left by
    /// an earlier run (not those a running upload holds: `sweep`).
    ///
    /// # Errors
    /// When the folder cannot be created or read.
    pub fn open(data_dir: &Path) -> io::Result<Store> {
        Store::open_folder(&dir(data_dir))
    }

    /// Opens (creating) the folder `dir` itself, as [`Store::open`] does
    /// `<data_dir>/files/`: for a files instance with a `folder` of its own.
    ///
    /// # Errors
    /// When the folder cannot be created or read.
    pub fn open_folder(dir: &Path) -> io::Result<Store> {
        let dir = dir.to_owned();
        // The services serve these files; nobody else on the host needs them.
        create_private_dir(&dir)?;
        let swept = sweep::sweep(&dir, TMP_PREFIX)?;
        if swept > 0 {
            tracing::info!(
                "removed {swept} unfinished upload(s) from {}",
                dir.display()
            );
        }
        Ok(Store {
            inner: Arc::new(Inner {
                dir,
                known: Mutex::new(HashMap::new()),
                claimed: AtomicU64::new(0),
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Free bytes on the folder's filesystem for an unprivileged writer.
    fn free_space(&self) -> io::Result<u64> {
        free_bytes(&self.inner.dir)
    }

    /// Starts an upload of `size` bytes to be stored as `name` (already
    /// made safe by [`safe_name`]), after checking there is room for it.
    ///
    /// # Errors
    /// [`StoreError::NoSpace`]; I/O errors creating the temporary.
    pub fn begin(&self, name: &str, size: u64) -> Result<Upload, StoreError> {
        let free = self.free_space()?;
        let claimed = self.inner.claimed.fetch_add(size, Ordering::SeqCst);
        let need = size.saturating_add(claimed).saturating_add(SPARE_SPACE);
        let claim = Claim {
            store: self.clone(),
            bytes: size,
        };
        if need > free {
            return Err(StoreError::NoSpace {
                need: size,
                free: free.saturating_sub(claimed),
            });
        }
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| io::Error::other(e.to_string()))?;
        let tmp = self.inner.dir.join(format!("{TMP_PREFIX}{}", hex(&random)));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let held = sweep::hold(&file)?;
        let (tx, spare_rx, writer) = pipeline(file);
        Ok(Upload {
            store: self.clone(),
            name: name.to_owned(),
            tmp: Some(tmp),
            declared: size,
            received: 0,
            tx: Some(tx),
            spare: spare_rx,
            allocated: 0,
            writer: Some(writer),
            _held: held,
            _claim: claim,
        })
    }

    /// Opens a stored file for reading, with its size and SHA-256.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for names that are not stored regular files
    /// (a symlink, a folder, a temporary, an unsafe name).
    pub async fn open_file(&self, name: &str) -> Result<(tokio::fs::File, FileInfo), StoreError> {
        let not_found = || StoreError::NotFound(name.to_owned());
        if safe_name(name.as_bytes()).ok().as_deref() != Some(name) {
            return Err(not_found());
        }
        let path = self.inner.dir.join(name);
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                Some(nix::libc::ELOOP | nix::libc::ENOENT) => not_found(),
                _ => StoreError::Io(e),
            })?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(not_found());
        }
        let info = self.describe(name, &path, &meta).await?;
        Ok((tokio::fs::File::from_std(file), info))
    }

    /// A file's info, hashing it only if its size or time changed.
    async fn describe(
        &self,
        name: &str,
        path: &Path,
        meta: &std::fs::Metadata,
    ) -> Result<FileInfo, StoreError> {
        let (size, mtime) = (meta.len(), mtime_ns(meta));
        let cached = lock(&self.inner.known)
            .get(name)
            .filter(|k| k.size == size && k.mtime_ns == mtime)
            .map(|k| k.sha256.clone());
        let sha256 = match cached {
            Some(h) => h,
            None => {
                let path = path.to_owned();
                let h = tokio::task::spawn_blocking(move || hash_file(&path))
                    .await
                    .map_err(|e| io::Error::other(e.to_string()))??;
                lock(&self.inner.known).insert(
                    name.to_owned(),
                    Known {
                        size,
                        mtime_ns: mtime,
                        sha256: h.clone(),
                    },
                );
                h
            }
        };
        Ok(FileInfo {
            name: name.to_owned(),
            size,
            sha256,
            modified: rfc3339(meta),
        })
    }
}

fn hash_file(path: &Path) -> io::Result<String> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = io::Read::read(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Space an upload has claimed; given back when the upload ends.
struct Claim {
    store: Store,
    bytes: u64,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.store
            .inner
            .claimed
            .fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// The writer's outcome: the digest, or `None` when abandoned.
type Writer = JoinHandle<io::Result<Option<[u8; 32]>>>;

/// Starts an upload's two blocking tasks, the hasher then the writer:
/// returns where to send blocks, where emptied buffers come back, and the
/// writer (the hasher ends with its channels; only the writer has an
/// outcome).
fn pipeline(file: std::fs::File) -> (mpsc::Sender<Block>, mpsc::Receiver<Vec<u8>>, Writer) {
    let (tx, rx) = mpsc::channel(POOL);
    let (hashed_tx, hashed_rx) = mpsc::channel(POOL);
    let (spare_tx, spare_rx) = mpsc::channel(POOL);
    let hasher = tokio::task::spawn_blocking(move || hash_loop(rx, hashed_tx));
    drop(hasher);
    let writer = tokio::task::spawn_blocking(move || write_loop(file, hashed_rx, spare_tx));
    (tx, spare_rx, writer)
}

/// What the socket side hands on, in order.
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

/// The hasher: hashes each buffer and passes it on to the writer, so that
/// SHA-256 (most of an upload's CPU) and the copy into the file run side
/// by side. Ends when told to finish, when the socket side is gone, or
/// when the writer is (it failed: the socket side learns why from it).
fn hash_loop(mut rx: mpsc::Receiver<Block>, tx: mpsc::Sender<Hashed>) {
    let mut hasher = Sha256::new();
    while let Some(block) = rx.blocking_recv() {
        let (next, last) = match block {
            Block::Data(buf) => {
                hasher.update(&buf);
                (Hashed::Data(buf), false)
            }
            Block::Finish => (Hashed::Finish(hasher.finalize_reset().into()), true),
        };
        if tx.blocking_send(next).is_err() || last {
            return;
        }
    }
}

/// The writer: writes each hashed buffer, hands it back for reuse.
/// Returns the digest when told to finish, `None` when abandoned.
fn write_loop(
    mut file: std::fs::File,
    mut rx: mpsc::Receiver<Hashed>,
    spare: mpsc::Sender<Vec<u8>>,
) -> io::Result<Option<[u8; 32]>> {
    while let Some(block) = rx.blocking_recv() {
        match block {
            Hashed::Data(mut buf) => {
                file.write_all(&buf)?;
                buf.clear();
                let _ = spare.try_send(buf);
            }
            Hashed::Finish(digest) => {
                file.sync_all()?;
                return Ok(Some(digest));
            }
        }
    }
    Ok(None)
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
    tx: Option<mpsc::Sender<Block>>,
    spare: mpsc::Receiver<Vec<u8>>,
    allocated: usize,
    writer: Option<Writer>,
    /// Holds the temporary's lock, so a sweep (a new process, a restarted
    /// instance) leaves it alone while this upload runs.
    _held: sweep::Held,
    _claim: Claim,
}

impl Upload {
    /// Bytes still expected.
    pub fn remaining(&self) -> u64 {
        self.declared - self.received
    }

    /// An empty buffer with [`CHUNK`] bytes of capacity: a new one while
    /// fewer than the pool exist, else one the writer has finished with.
    pub async fn buffer(&mut self) -> Vec<u8> {
        if self.allocated < POOL {
            self.allocated += 1;
            return Vec::with_capacity(CHUNK);
        }
        match self.spare.recv().await {
            Some(buf) => buf,
            // The writer is gone (it failed); push will report why.
            None => Vec::with_capacity(CHUNK),
        }
    }

    /// Hands a filled buffer to the writer.
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
        self.received = got;
        let sent = match &self.tx {
            Some(tx) => tx.send(Block::Data(buf)).await.is_ok(),
            None => false,
        };
        if !sent {
            return Err(self.writer_error().await);
        }
        Ok(())
    }

    async fn writer_error(&mut self) -> StoreError {
        self.tx = None;
        match self.writer.take() {
            Some(w) => match w.await {
                Ok(Err(e)) => StoreError::Io(e),
                Ok(Ok(_)) => StoreError::Io(io::Error::other("the writer stopped")),
                Err(e) => StoreError::Io(io::Error::other(e.to_string())),
            },
            None => StoreError::Io(io::Error::other("the writer stopped")),
        }
    }

    /// Finishes: checks the size, syncs, and links the file under the first
    /// free variant of its name.
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
        let finished = match &self.tx {
            Some(tx) => tx.send(Block::Finish).await.is_ok(),
            None => false,
        };
        if !finished {
            return Err(self.writer_error().await);
        }
        self.tx = None;
        let digest = match self.writer.take() {
            Some(w) => w.await.map_err(|e| io::Error::other(e.to_string()))??,
            None => None,
        }
        .ok_or_else(|| io::Error::other("the writer stopped"))?;
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

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            // The writer may still hold the file open; unlinking is fine.
            let _ = std::fs::remove_file(tmp);
        }
    }
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
