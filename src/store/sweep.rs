//! Temporaries of unfinished uploads: each one is locked (`flock`) by the
//! upload writing it, and [`sweep`] removes only those nobody holds.
//!
//! Why a lock and not "every temporary at open": a folder is opened again
//! while uploads into it are still running — by the new process of an
//! upgrade (the old one drains its uploads), and by a reload that restarts
//! a files instance (its old connections drain). Sweeping those would cut
//! the uploads the upgrade promised to finish. A lock ends with the
//! process holding it, so a crashed run's temporaries are still swept.
//! This module does not name temporaries or write them (the store does).

use std::fs::File;

use nix::errno::Errno;
use nix::fcntl::FlockArg;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A temporary's lock, held while this lives.
pub(super) type Held = nix::fcntl::Flock<File>;

/// Locks a just-created temporary, at `path`, for its upload: the lock
/// stays while the returned value lives (it covers every handle of the
/// same open file, the writer's too). `None` when a [`sweep`] (another
/// opener of the folder, in this process or another) got to the file
/// between its creation and this lock: it holds the lock, or it already
/// removed the file. The caller then creates another.
///
/// # Errors
/// The file cannot be duplicated, locked or looked up.
pub(super) fn hold(file: &File, path: &Path) -> io::Result<Option<Held>> {
    let held = match nix::fcntl::Flock::lock(file.try_clone()?, FlockArg::LockExclusiveNonblock) {
        Ok(held) => held,
        Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
        Err((_, errno)) => return Err(errno.into()),
    };
    // A sweep removes while it holds the lock, so once ours is taken the
    // name is either still this file's, for good, or gone. The inode
    // number alone tells, in one folder (an overlayfs may give `fstat` and
    // `lstat` different devices for the same file).
    let ours = file.metadata()?;
    match std::fs::symlink_metadata(path) {
        Ok(now) if now.ino() == ours.ino() => Ok(Some(held)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes the temporaries (names starting with `prefix`) in `dir` that no
/// running upload holds; how many it removed.
///
/// # Errors
/// The folder cannot be read, or a temporary cannot be removed.
pub(super) fn sweep(dir: &Path, prefix: &str) -> io::Result<usize> {
    let mut swept = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let is_tmp = entry.file_name().to_string_lossy().starts_with(prefix);
        if !is_tmp || !entry.file_type()?.is_file() {
            continue;
        }
        // Opened for writing, as an emulated `flock` (NFS) needs for an
        // exclusive lock; gone meanwhile (its upload finished) is fine. The
        // lock is kept while the file is removed, so an upload that has
        // just created it either finds the lock taken or, once it gets it,
        // the name gone (`hold`). A temporary that cannot be opened or
        // locked is left, with a warning, and the folder still opens.
        let path = entry.path();
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path);
        let lock = match opened.map(|f| nix::fcntl::Flock::lock(f, FlockArg::LockExclusiveNonblock))
        {
            Ok(Ok(lock)) => lock,
            Ok(Err((_, Errno::EWOULDBLOCK))) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Ok(Err((_, errno))) => {
                tracing::warn!(
                    "left unfinished upload {}: cannot lock it: {errno}",
                    path.display()
                );
                continue;
            }
            Err(e) => {
                tracing::warn!(
                    "left unfinished upload {}: cannot open it: {e}",
                    path.display()
                );
                continue;
            }
        };
        match std::fs::remove_file(&path) {
            Ok(()) => swept += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        drop(lock);
    }
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = ".t-";

    fn created(dir: &Path) -> (std::path::PathBuf, File) {
        let path = dir.join(format!("{PREFIX}a"));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        (path, file)
    }

    #[test]
    fn a_held_temporary_is_not_swept() {
        let dir = tempfile::tempdir().unwrap();
        let (path, file) = created(dir.path());
        let held = hold(&file, &path).unwrap();
        assert!(held.is_some());
        assert_eq!(sweep(dir.path(), PREFIX).unwrap(), 0);
        assert!(path.exists());
        drop(held);
        assert_eq!(sweep(dir.path(), PREFIX).unwrap(), 1);
        assert!(!path.exists());
    }

    /// The sweep came between the creation and the lock, and finished:
    /// the lock is free but the name is gone, so the upload must not
    /// write into the removed file.
    #[test]
    fn a_temporary_swept_before_its_lock_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let (path, file) = created(dir.path());
        assert_eq!(sweep(dir.path(), PREFIX).unwrap(), 1);
        assert!(hold(&file, &path).unwrap().is_none());
    }

    /// The sweep holds the lock (it is removing the file): not taken.
    #[test]
    fn a_temporary_a_sweep_is_removing_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let (path, file) = created(dir.path());
        let sweeping =
            nix::fcntl::Flock::lock(File::open(&path).unwrap(), FlockArg::LockExclusiveNonblock)
                .unwrap();
        assert!(hold(&file, &path).unwrap().is_none());
        drop(sweeping);
    }

    /// Another file under the name (the sweep removed ours, something
    /// made the name again): not ours to hold.
    #[test]
    fn a_name_that_now_names_another_file_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let (path, file) = created(dir.path());
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"other").unwrap();
        assert!(hold(&file, &path).unwrap().is_none());
    }
}
