//! The last step of every upload, plain or partial: linking the finished
//! file under the first free variant of its name and recording it as
//! known. Not here: writing the data or checking its size (the uploads').

use std::io;
use std::path::PathBuf;

use super::{FileInfo, Known, MAX_VARIANTS, Store, StoreError, mtime_ns, rfc3339, variant};
use crate::sync::lock;

impl Store {
    /// Links `data` under the first free variant of `name` (link(2) never
    /// replaces an existing entry, symlinks included), then unlinks `data`
    /// and records the file as known: the last step of a plain upload and
    /// of a partial one. `data` stays where it was when this fails.
    pub(super) async fn link_free(
        &self,
        data: PathBuf,
        name: String,
        sha256: String,
    ) -> Result<FileInfo, StoreError> {
        let dir = self.inner.dir.clone();
        let (stored, meta) = tokio::task::spawn_blocking(
            move || -> Result<(String, std::fs::Metadata), StoreError> {
                for n in 0..MAX_VARIANTS {
                    let candidate = variant(&name, n);
                    let path = dir.join(&candidate);
                    match std::fs::hard_link(&data, &path) {
                        Ok(()) => {
                            std::fs::remove_file(&data)?;
                            let meta = path.symlink_metadata()?;
                            return Ok((candidate, meta));
                        }
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(StoreError::NoFreeName(name))
            },
        )
        .await
        .map_err(|e| io::Error::other(e.to_string()))??;
        lock(&self.inner.known).insert(
            stored.clone(),
            Known {
                size: meta.len(),
                mtime_ns: mtime_ns(&meta),
                sha256: sha256.clone(),
            },
        );
        Ok(FileInfo {
            name: stored,
            size: meta.len(),
            sha256,
            modified: rfc3339(&meta),
        })
    }
}
