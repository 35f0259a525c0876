//! Removing a stored file: the same name rules as reading one, and never
//! through a symlink.
//!
//! - The name must already be exactly a safe name (what [`safe_name`]
//!   leaves unchanged): `../x`, `/etc/x`, `.upload-...` and names with
//!   control characters are refused, never reduced to something else.
//! - Only a regular file is removed. A symlink (or a folder, a socket)
//!   planted under the name is reported as not found and left alone; and
//!   since `unlink(2)` removes the entry itself, even a swap between the
//!   check and the removal can only remove a link in this folder, never
//!   what it points to.
//! - An upload in flight is never touched: it writes a `.upload-`
//!   temporary (a name this refuses) and links it under its final name
//!   only at the end, with `link(2)`, which never replaces. A removal
//!   before that link frees the name for the upload; one after removes
//!   the finished file whole. Either way no file is ever half-written.

use std::io;
use std::path::Path;

use super::{Store, StoreError, safe_name};
use crate::sync::lock;

/// Removes the regular file `name` from the folder `dir`.
///
/// # Errors
/// [`StoreError::BadName`] for a name that is not exactly a safe name;
/// [`StoreError::NotFound`] when no regular file has that name (a symlink
/// or folder included); I/O errors.
pub fn delete_in(dir: &Path, name: &str) -> Result<(), StoreError> {
    check_name(name)?;
    let not_found = || StoreError::NotFound(name.to_owned());
    let path = dir.join(name);
    // lstat: a symlink is seen as a symlink, not as what it points to.
    let meta = match path.symlink_metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    if !meta.file_type().is_file() {
        return Err(not_found());
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        // Gone (or replaced by a folder) since the look: nothing of ours to remove.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(not_found()),
        Err(e) if e.raw_os_error() == Some(nix::libc::EISDIR) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

/// Refuses anything but a name the store could have stored.
fn check_name(name: &str) -> Result<(), StoreError> {
    match safe_name(name.as_bytes()) {
        Ok(safe) if safe == name => Ok(()),
        Ok(_) => Err(StoreError::BadName(
            "give a stored file's name: no folders, no leading dots or spaces".into(),
        )),
        Err(e) => Err(e),
    }
}

impl Store {
    /// Removes the stored file `name` (see [`delete_in`]) and forgets its
    /// remembered hash.
    ///
    /// # Errors
    /// As [`delete_in`].
    pub async fn delete(&self, name: &str) -> Result<(), StoreError> {
        check_name(name)?;
        let dir = self.inner.dir.clone();
        let owned = name.to_owned();
        tokio::task::spawn_blocking(move || delete_in(&dir, &owned))
            .await
            .map_err(|e| io::Error::other(e.to_string()))??;
        lock(&self.inner.known).remove(name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Upload;

    /// Hands `bytes` to the upload's writer, a `CHUNK` a buffer.
    async fn fill(upload: &mut Upload, bytes: &[u8]) {
        for piece in bytes.chunks(crate::store::CHUNK) {
            let mut buf = upload.buffer().await;
            buf.extend_from_slice(piece);
            upload.push(buf).await.expect("push");
        }
    }

    #[tokio::test]
    async fn removes_a_regular_file_and_refuses_paths_links_and_temporaries() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = Store::open(dir.path()).expect("open");
        std::fs::write(store.dir().join("a.txt"), b"hello").expect("write");
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, b"keep me").expect("write");
        std::os::unix::fs::symlink(&outside, store.dir().join("link.txt")).expect("symlink");
        std::fs::create_dir(store.dir().join("sub")).expect("mkdir");
        std::fs::write(store.dir().join(".upload-0011"), b"partial").expect("write");

        store.delete("a.txt").await.expect("a regular file goes");
        assert!(!store.dir().join("a.txt").exists());
        assert!(matches!(
            store.delete("a.txt").await,
            Err(StoreError::NotFound(_))
        ));
        for bad in ["../outside.txt", "/etc/passwd", ".upload-0011", "", "a\nb"] {
            assert!(
                matches!(store.delete(bad).await, Err(StoreError::BadName(_))),
                "{bad:?}"
            );
        }
        for not_file in ["link.txt", "sub"] {
            assert!(
                matches!(store.delete(not_file).await, Err(StoreError::NotFound(_))),
                "{not_file}"
            );
        }
        assert_eq!(std::fs::read(&outside).expect("still there"), b"keep me");
        assert!(store.dir().join("link.txt").symlink_metadata().is_ok());
        assert!(store.dir().join(".upload-0011").exists());
    }

    #[tokio::test]
    async fn a_delete_during_an_upload_of_the_same_name_leaves_a_whole_file() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = Store::open(dir.path()).expect("open");
        std::fs::write(store.dir().join("same.bin"), b"old").expect("write");
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut upload = store.begin("same.bin", body.len() as u64).expect("begin");
        fill(&mut upload, &body[..50_000]).await;
        // The old file goes mid-upload; the temporary is untouched.
        store.delete("same.bin").await.expect("delete");
        fill(&mut upload, &body[50_000..]).await;
        let info = upload.commit().await.expect("commit");
        assert_eq!(info.name, "same.bin", "the freed name is used");
        assert_eq!(
            std::fs::read(store.dir().join("same.bin")).expect("read"),
            body
        );
        // And a delete right after the commit removes the whole new file.
        store.delete("same.bin").await.expect("delete");
        assert!(store.list().await.expect("list").is_empty());
    }
}
