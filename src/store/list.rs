//! Listing the files folder: every stored regular file with its size,
//! time and SHA-256. A file deleted while the listing runs (between reading
//! the folder and looking at or hashing the file) is left out, not an
//! error: deletes and listings run concurrently from different clients.
//!
//! Not here: what a name may be ([`super::safe_name`]) or the hash cache
//! (kept by [`Store::describe`]).

use std::io;

use super::{FileInfo, Store, StoreError};

impl Store {
    /// Every stored file, by name. Files placed in the folder by other
    /// means are hashed once and remembered.
    ///
    /// # Errors
    /// When the folder cannot be read.
    pub async fn list(&self) -> Result<Vec<FileInfo>, StoreError> {
        let dir = self.inner.dir.clone();
        let entries = tokio::task::spawn_blocking(move || -> io::Result<Vec<_>> {
            let mut out = Vec::new();
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                // symlink_metadata: a link is listed as what it is, not
                // followed. A file deleted since the folder was read is
                // simply not listed.
                let meta = match entry.path().symlink_metadata() {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    other => other?,
                };
                if meta.is_file() && !name.starts_with('.') {
                    out.push((name, entry.path(), meta));
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| io::Error::other(e.to_string()))??;
        let mut files = Vec::with_capacity(entries.len());
        for (name, path, meta) in entries {
            match self.describe(&name, &path, &meta).await {
                Ok(info) => files.push(info),
                // Deleted between the listing and its hashing.
                Err(StoreError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(files)
    }
}
