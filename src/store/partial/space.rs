//! The store's side of partial uploads: space claimed at creation (the
//! same counter plain uploads check), and the final link under a free
//! name. Not here: the upload table ([`super`]).

use std::io;
use std::path::PathBuf;

use crate::store::{Claim, FileInfo, Store, StoreError};
use crate::sync::lock;

impl Store {
    /// Claims `bytes` of space without a check: what a loaded upload
    /// already claimed before the restart.
    pub(super) fn claim(&self, bytes: u64) -> Claim {
        self.inner
            .claimed
            .fetch_add(bytes, std::sync::atomic::Ordering::SeqCst);
        Claim {
            store: self.clone(),
            bytes,
        }
    }

    /// Claims `size` bytes if the disk has them beyond every other claim,
    /// as [`Store::begin`] does.
    pub(super) fn reserve(&self, size: u64) -> Result<Claim, StoreError> {
        let free = self.free_space()?;
        let claim = self.claim(size);
        let claimed = self
            .inner
            .claimed
            .load(std::sync::atomic::Ordering::SeqCst)
            .saturating_sub(size);
        if size
            .saturating_add(claimed)
            .saturating_add(crate::store::SPARE_SPACE)
            > free
        {
            return Err(StoreError::NoSpace {
                need: size,
                free: free.saturating_sub(claimed),
            });
        }
        Ok(claim)
    }

    /// Links `data` under the first free variant of `name` (never
    /// replacing anything), then unlinks `data`.
    pub(super) async fn link_free(
        &self,
        data: PathBuf,
        name: String,
        sha256: String,
    ) -> Result<FileInfo, StoreError> {
        let dir = self.inner.dir.clone();
        let (stored, meta) = tokio::task::spawn_blocking(
            move || -> Result<(String, std::fs::Metadata), StoreError> {
                for n in 0..crate::store::MAX_VARIANTS {
                    let candidate = crate::store::variant(&name, n);
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
            crate::store::Known {
                size: meta.len(),
                mtime_ns: crate::store::mtime_ns(&meta),
                sha256: sha256.clone(),
            },
        );
        Ok(FileInfo {
            name: stored,
            size: meta.len(),
            sha256,
            modified: crate::store::rfc3339(&meta),
        })
    }
}
