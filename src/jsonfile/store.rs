//! [`JsonStore`]: one small JSON document that a server and the CLI both
//! change (the accounts, the API tokens), held in memory and kept in step
//! with its file.
//!
//! Every change is a read-change-write under an exclusive `flock` on
//! `<file>.lock`, re-reading the file first, so two processes changing it
//! at once both keep their change; the file is replaced atomically
//! (owner-only), so a reader sees the old file or the new one. Readers in
//! memory pick up another process's change before each look, by comparing
//! the file's stamp (inode, length, mtime) with the one last read.
//!
//! What the document holds, how its entries are checked and which errors
//! its module words are the module's ([`Document`]); nothing here knows
//! tokens or accounts.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{FileError, FileLock, Stamp};
use crate::sync::lock;

/// A file a [`JsonStore`] keeps: its serde shape, its error enum and the
/// checks its entries must pass.
pub(crate) trait Document: Serialize + DeserializeOwned {
    /// The owning module's error enum.
    type Error: FileError + std::fmt::Display;
    /// What the file holds, for the log ("tokens", "accounts").
    const WHAT: &'static str;

    /// The document of a file that does not exist yet (version 1, nothing
    /// in it).
    fn empty() -> Self;

    /// The file's `version` field: only 1 is read.
    fn version(&self) -> u32;

    /// Checks the entries once parsed.
    ///
    /// # Errors
    /// What is wrong with them, as the "not a valid file" message says it.
    fn check(&self) -> Result<(), String>;
}

/// The document as last read or written, and the stamp of that file.
struct Held<D> {
    doc: D,
    stamp: Option<Stamp>,
}

/// One JSON document on disk, held in memory. Reading refreshes from the
/// file when another process changed it; [`JsonStore::change`] is the only
/// way to write it.
pub(crate) struct JsonStore<D> {
    path: PathBuf,
    held: Mutex<Held<D>>,
}

impl<D: Document> JsonStore<D> {
    /// Reads `path` now (no file yet is an empty document).
    ///
    /// # Errors
    /// The file exists but cannot be read, parsed or checked.
    pub(crate) fn open(path: PathBuf) -> Result<Self, D::Error> {
        let (doc, stamp) = read(&path)?;
        Ok(JsonStore {
            path,
            held: Mutex::new(Held { doc, stamp }),
        })
    }

    /// `path`, read on first look rather than now: for a server, where a
    /// bad file must not stop the dashboard (looks then see an empty
    /// document, and the log says why).
    pub(crate) fn lazy(path: PathBuf) -> Self {
        JsonStore {
            path,
            // A stamp no real file has: the first look reads the file.
            held: Mutex::new(Held {
                doc: D::empty(),
                stamp: Some(Stamp::NEVER),
            }),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the document, first picking up changes another process
    /// made to the file. A file that went bad keeps what was held (and the
    /// log says so). `f` runs under the in-memory lock: keep it short.
    pub(crate) fn view<R>(&self, f: impl FnOnce(&D) -> R) -> R {
        let mut held = lock(&self.held);
        if super::stamp(&self.path) != held.stamp {
            match read::<D>(&self.path) {
                Ok((doc, stamp)) => *held = Held { doc, stamp },
                Err(e) => tracing::warn!("keeping the {} read before: {e}", D::WHAT),
            }
        }
        f(&held.doc)
    }

    /// Under the cross-process lock: reads the file afresh, applies `f`,
    /// writes it back atomically and holds the result. Nothing is written
    /// when `f` fails.
    ///
    /// # Errors
    /// `f`'s; the lock, the file or its folder not readable or writable;
    /// the file not valid.
    pub(crate) fn change<R>(
        &self,
        f: impl FnOnce(&mut D) -> Result<R, D::Error>,
    ) -> Result<R, D::Error> {
        let _file_lock = FileLock::take::<D::Error>(&self.path)?;
        let (mut doc, _) = read::<D>(&self.path)?;
        let answer = f(&mut doc)?;
        write(&self.path, &doc)?;
        // Still under the file lock: no other writer can come between the
        // write and the stamp taken of it.
        *lock(&self.held) = Held {
            doc,
            stamp: super::stamp(&self.path),
        };
        Ok(answer)
    }
}

/// Reads, parses and checks `path`; no file is the empty document. For a
/// document read once per request rather than held (see [`JsonStore`]).
pub(crate) fn read<D: Document>(path: &Path) -> Result<(D, Option<Stamp>), D::Error> {
    let Some((text, stamp)) = super::read(path).map_err(|source| D::Error::io(path, source))?
    else {
        return Ok((D::empty(), None));
    };
    let corrupt = |message: String| D::Error::corrupt(path, message);
    let doc: D = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    match doc.version() {
        1 => {}
        v => return Err(corrupt(format!("unknown version {v}"))),
    }
    doc.check().map_err(corrupt)?;
    Ok((doc, stamp))
}

/// The document as pretty JSON and a newline, replacing the file
/// atomically.
fn write<D: Document>(path: &Path, doc: &D) -> Result<(), D::Error> {
    let io = |source| D::Error::io(path, source);
    let text = serde_json::to_string_pretty(doc).map_err(|e| io(std::io::Error::other(e)))?;
    super::write_atomic(path, &text).map_err(io)
}
