//! The mechanics shared by the small JSON files a server and the CLI both
//! change (the accounts, the API tokens): noticing that another process
//! changed a file, reading it, and replacing it atomically, owner-only.
//! What a file holds and how it is checked stays with its module;
//! [`JsonStore`] is the one way a module keeps such a file in memory.

mod store;
pub(crate) use store::{Document, JsonStore, read as read_document};

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Identifies one version of a file, to notice outside changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl Stamp {
    /// A stamp no real file has: the first comparison reads the file.
    pub(crate) const NEVER: Stamp = Stamp {
        ino: 0,
        len: u64::MAX,
        mtime_ns: i128::MIN,
    };
}

/// The file's current stamp; `None` when it does not exist.
pub(crate) fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        ino: meta.ino(),
        len: meta.len(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
    })
}

/// The file's text and the stamp taken before reading it; `None` when it
/// does not exist (a file changed meanwhile is read again next time).
pub(crate) fn read(path: &Path) -> std::io::Result<Option<(String, Option<Stamp>)>> {
    let stamp = stamp(path);
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some((text, stamp))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `text` and a newline beside `path`, owner-only, syncs, and
/// renames it over `path`: readers see the old file or the new one, never
/// half of one. The temporary file is removed if anything fails.
pub(crate) fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The two ways reading one of these files fails, as each module's error
/// enum words them.
pub(crate) trait FileError {
    fn io(path: &Path, source: std::io::Error) -> Self;
    fn corrupt(path: &Path, message: String) -> Self;
}

/// [`FileError`] for an error enum whose variants are `Io { path, source }`
/// and `Corrupt { path, message }`.
macro_rules! file_error {
    ($error:ident) => {
        impl $crate::jsonfile::FileError for $error {
            fn io(path: &std::path::Path, source: std::io::Error) -> Self {
                $error::Io {
                    path: path.to_owned(),
                    source,
                }
            }

            fn corrupt(path: &std::path::Path, message: String) -> Self {
                $error::Corrupt {
                    path: path.to_owned(),
                    message,
                }
            }
        }
    };
}
pub(crate) use file_error;

/// An exclusive `flock` on `<file>.lock`, held until dropped, so that
/// processes sharing the data directory change a file one at a time (each
/// read-change-write of the accounts and the tokens holds it).
pub(crate) struct FileLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl FileLock {
    /// Waits for and takes the lock of `path` (a `.json` file).
    ///
    /// # Errors
    /// The folder or the lock file cannot be made, or locking fails.
    pub(crate) fn take<E: FileError>(path: &Path) -> Result<FileLock, E> {
        use std::os::unix::fs::OpenOptionsExt;
        let lock_path = path.with_extension("json.lock");
        let io = |source| E::io(&lock_path, source);
        if let Some(dir) = path.parent() {
            create_private_dir(dir).map_err(io)?;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io)?;
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| io(std::io::Error::from(errno)))?;
        Ok(FileLock { _lock: lock })
    }
}

/// Creates `dir` (and its parents) readable by its owner only, as
/// everything in the data directory is: keys, accounts, tokens, the audit
/// log and the files. An existing directory keeps its mode: it is the
/// operator's.
///
/// # Errors
/// When it cannot be created.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
