//! The files folder, `<data_dir>/files/`, shared by `files` and
//! `files-classic`: safe names, atomic arrival, no overwrites, no escapes.
//!
//! - Names are reduced by [`safe_name`]; what cannot be made safe is
//!   refused with the reason.
//! - An upload is hashed with SHA-256 and written to `.upload-<random>` in
//!   the same folder by short blocking jobs, the hash of one buffer beside
//!   the write of the one before (`upload`), synced, then hard-linked under
//!   its final name, which fails rather than replaces when the name is taken:
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
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use serde::Serialize;

use crate::wire::hex;
pub mod delete;
mod link;
mod list;
pub mod partial;
mod sha;
mod stage;
mod sweep;
mod upload;

pub use sha::Sha256;
pub use upload::Upload;

/// Longest stored name, in bytes (room left for `new_` and `-NNN`).
pub const MAX_NAME_LEN: usize = 200;
/// Prefix of temporaries; stored names never start with a dot.
const TMP_PREFIX: &str = ".upload-";
/// New temporaries an upload tries before it gives up because a sweep took each.
const HOLD_TRIES: u32 = 8;
/// Bytes per read of a stored file (a download, a hash of a whole file) and
/// per read of a resumed part's body.
pub const CHUNK: usize = 256 * 1024;
/// Bytes per buffer an upload hands from the socket to its hash and its
/// file. Larger than [`CHUNK`]: each buffer costs a hand-off (a wake-up) at
/// each of the upload's stages, and at 1 MiB an upload to tmpfs takes a
/// tenth less CPU than at 256 KiB (bench/NOTES.md, thirteenth pass).
pub const UPLOAD_BUFFER: usize = 1024 * 1024;
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
        Ok(Store::of_folder(&dir))
    }

    /// The one `Store` of `dir` in this process (made if none is open), so
    /// every opener (the files instance, each of its restarts, the
    /// dashboard's resumable uploads) checks free space against the same
    /// claims. Neither creates nor sweeps the folder.
    pub(crate) fn of_folder(dir: &Path) -> Store {
        static OPEN: OnceLock<Mutex<HashMap<PathBuf, Weak<Inner>>>> = OnceLock::new();
        let mut open = lock(OPEN.get_or_init(Mutex::default));
        if let Some(inner) = open.get(dir).and_then(Weak::upgrade) {
            return Store { inner };
        }
        open.retain(|_, inner| inner.strong_count() > 0);
        let inner = Arc::new(Inner {
            dir: dir.to_owned(),
            known: Mutex::new(HashMap::new()),
            claimed: AtomicU64::new(0),
        });
        open.insert(dir.to_owned(), Arc::downgrade(&inner));
        Store { inner }
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
        // A sweep by another opener of the folder may take a temporary
        // between its creation and its lock; another name then. Each try
        // that loses leaves its file to that sweep.
        let mut tries = 0;
        let (tmp, file, held) = loop {
            let mut random = [0u8; 8];
            getrandom::fill(&mut random).map_err(|e| io::Error::other(e.to_string()))?;
            let tmp = self.inner.dir.join(format!("{TMP_PREFIX}{}", hex(&random)));
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            match sweep::hold(&file, &tmp) {
                Ok(Some(held)) => break (tmp, file, held),
                Ok(None) => {}
                Err(e) => {
                    // Not left behind unlocked for the next start to find.
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e.into());
                }
            }
            tries += 1;
            if tries == HOLD_TRIES {
                return Err(io::Error::other("every new temporary was swept at once").into());
            }
        };
        Ok(Upload::new(upload::Begun {
            store: self.clone(),
            name: name.to_owned(),
            tmp,
            size,
            file,
            held,
            claim,
        }))
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

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
