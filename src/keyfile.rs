//! Where the HMAC key lives when the config sets none: generated at first
//! start, kept in `<data_dir>/key`, readable by its owner only. The key is
//! never logged; only where it is kept is shown.

use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::config::Secret;

/// The key file's name inside `data_dir`.
pub const KEY_FILE: &str = "key";

/// The key file's path for a data directory.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

/// Reads the key file of `data_dir`.
///
/// # Errors
/// The file is missing, unreadable or empty.
pub fn load(data_dir: &Path) -> io::Result<Secret> {
    let text = std::fs::read_to_string(path(data_dir))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the key file is empty",
        ));
    }
    Ok(Secret::new(key))
}

/// Loads the key of `data_dir`, generating it first if there is none.
/// Returns the key and whether it was just created.
///
/// # Errors
/// The folder cannot be created, or the file cannot be read or written.
pub fn load_or_create(data_dir: &Path) -> io::Result<(Secret, bool)> {
    match load(data_dir) {
        Ok(key) => {
            let mode = std::fs::metadata(path(data_dir))?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    "{} is readable by others (mode {:o}); chmod 600 it",
                    path(data_dir).display(),
                    mode & 0o777
                );
            }
            return Ok((key, false));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    crate::store::create_private_dir(data_dir)?;
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| io::Error::other(e.to_string()))?;
    let key = crate::wire::hex(&raw);
    // create_new: two first starts racing cannot overwrite each other's key.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path(data_dir))?;
    file.write_all(key.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok((Secret::new(key), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_owner_only_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (first, created) = load_or_create(&data).unwrap();
        assert!(created);
        assert_eq!(first.expose().len(), 64);
        let mode = std::fs::metadata(path(&data)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, created) = load_or_create(&data).unwrap();
        assert!(!created);
        assert_eq!(again, first);
    }
}
