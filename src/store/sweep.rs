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
use std::path::Path;

/// A temporary's lock, held while this lives.
pub(super) type Held = nix::fcntl::Flock<File>;

/// Locks a just-created temporary for its upload: the lock stays while
/// the returned value lives (it covers every handle of the same open
/// file, the writer's too).
///
/// # Errors
/// The file cannot be duplicated or locked (it was just created by us,
/// so a lock held elsewhere is an error too).
pub(super) fn hold(file: &File) -> io::Result<Held> {
    nix::fcntl::Flock::lock(file.try_clone()?, FlockArg::LockExclusiveNonblock)
        .map_err(|(_, errno)| io::Error::from(errno))
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
        // Opened for reading only to ask for the lock; gone meanwhile
        // (its upload finished) is fine.
        let held = match File::open(entry.path()) {
            Ok(f) => matches!(
                nix::fcntl::Flock::lock(f, FlockArg::LockExclusiveNonblock),
                Err((_, Errno::EWOULDBLOCK))
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if held {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => swept += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(swept)
}
