//! Where `switchboard put --resume` keeps a partial upload's id between
//! runs: one small file per (server, local file, size, mtime, name) under
//! `$XDG_STATE_HOME/switchboard/partials/` (else `~/.local/state/...`),
//! owner-only. A changed local file gets a new record, so it never
//! continues an upload of other bytes. Not here: the protocol.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The record of one upload.
pub(crate) struct Record {
    path: Option<PathBuf>,
}

fn state_dir() -> Option<PathBuf> {
    #[allow(clippy::disallowed_methods)] // the CLI user's own setting, not the server's
    let env = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("XDG_STATE_HOME")
        .or_else(|| env("HOME").map(|h| h.join(".local/state")))
        .map(|d| d.join("switchboard/partials"))
}

impl Record {
    pub(crate) fn new(addr: &str, file: &Path, meta: &std::fs::Metadata, name: &str) -> Record {
        let full = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_owned());
        let mut h = Sha256::new();
        for part in [
            addr.as_bytes(),
            full.as_os_str().as_encoded_bytes(),
            &meta.len().to_le_bytes(),
            &meta.mtime().to_le_bytes(),
            &meta.mtime_nsec().to_le_bytes(),
            name.as_bytes(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        let key = switchboard::wire::hex(&h.finalize()[..16]);
        Record {
            path: state_dir().map(|d| d.join(key)),
        }
    }

    /// The id kept by an earlier run, if any.
    pub(crate) fn load(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.path.as_ref()?).ok()?;
        let id = text.trim();
        (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
    }

    /// Keeps `id` for the next run (best effort: without it, a cut upload
    /// starts again).
    pub(crate) fn save(&self, id: &str) {
        let Some(path) = &self.path else { return };
        let written = path
            .parent()
            .map_or(Ok(()), |d| {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(d)
            })
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(path)
            })
            .and_then(|mut f| std::io::Write::write_all(&mut f, id.as_bytes()));
        if let Err(e) = written {
            eprintln!(
                "warning: cannot keep the partial upload's id in {}: {e}",
                path.display()
            );
        }
    }

    /// The upload is done: nothing to resume.
    pub(crate) fn forget(&self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

use std::os::unix::fs::DirBuilderExt;
