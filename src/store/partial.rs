//! Partial uploads: `<folder>/.partial/`, where a resumable upload (tus on
//! the dashboard, `put --resume` on the files service) keeps its bytes
//! until the last one arrives.
//!
//! - Each upload is two files: `<id>.bin` (the bytes so far; its length is
//!   the offset) and `<id>.json` (owner, name, declared length, expiry).
//!   Both survive a restart; the table is rebuilt from them when the area
//!   is opened, and expired or unreadable ones are removed then.
//! - An upload claims its whole declared length from the store's space
//!   claims at creation (so plain uploads see it), and gives the claim
//!   back the moment it completes, is terminated or expires.
//! - Ids are 128 random bits, and an upload answers only to the account
//!   that created it: to anyone else it does not exist.
//! - One writer at a time per upload: [`Partial::lock`].
//! - A completed upload is hashed on the way in (resumed after a restart:
//!   the bytes already there are hashed once), checked against the SHA-256
//!   the client declared if it declared one, then hard-linked under the
//!   first free variant of its name, as [`super::Upload::commit`] does.
//!
//! Not here: HTTP or the files protocol (`web/tus.rs`, `service/files`).

mod create;
mod space;
mod write;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Claim, FileInfo, Sha256, Store, StoreError};
use crate::sync::lock;
use crate::wire::hex;
pub use create::{New, Removal};
pub use write::{Checksum, Patch};

/// The area's folder name inside the files folder (a dot: never listed).
pub const DIR: &str = ".partial";
/// Longest `Upload-Metadata` kept, in bytes.
pub const MAX_METADATA: usize = 4096;

/// Why a partial upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum PartialError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("too many unfinished uploads: at most {0} per account; finish or cancel one")]
    TooMany(u64),
    #[error("no such upload")]
    NotFound,
    #[error("the upload holds {held} bytes; this part starts at {asked}")]
    WrongOffset { held: u64, asked: u64 },
    #[error("this part would end at {end} bytes, past the declared length {length}")]
    PastEnd { end: u64, length: u64 },
    #[error("the part's checksum does not match: it was discarded")]
    ChecksumMismatch,
    #[error("the file's SHA-256 is {got}, not the declared {declared}: the upload was discarded")]
    HashMismatch { declared: String, got: String },
    #[error("the body stalled for {0:?}")]
    Idle(Duration),
    #[error("the body ended early: {0}")]
    Body(String),
}

/// What an upload is, as kept in `<id>.json` and listed for admins.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub id: String,
    pub owner: String,
    /// The safe name it will be stored under.
    pub name: String,
    pub length: u64,
    /// The client's `Upload-Metadata`, as sent (bounded).
    #[serde(default)]
    pub metadata: String,
    /// The SHA-256 the client declared for the whole file (hex), if any.
    #[serde(default)]
    pub sha256: Option<String>,
    pub created_ms: u64,
    pub expires_ms: u64,
}

/// A listed upload: its meta and how much it holds.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub meta: Meta,
    pub offset: u64,
}

/// The writer's side of an upload, behind [`Partial::lock`].
pub struct State {
    offset: u64,
    /// The SHA-256 of the first `offset` bytes, when known (not after a
    /// restart until the next part hashes what is there).
    hasher: Option<Sha256>,
    meta: Meta,
    /// Completed, terminated or expired: nothing more may be written.
    gone: bool,
    /// The last part was cut short (or the server restarted since): the
    /// next part is a resumption.
    pub cut: bool,
}

impl State {
    pub fn offset(&self) -> u64 {
        self.offset
    }
    pub fn meta(&self) -> &Meta {
        &self.meta
    }
    /// Completed, terminated or expired.
    pub fn gone(&self) -> bool {
        self.gone
    }
}

/// One upload in the table.
pub struct Partial {
    id: String,
    owner: String,
    length: u64,
    state: tokio::sync::Mutex<State>,
    /// Its declared length, claimed from the store until it ends.
    claim: Mutex<Option<Claim>>,
}

impl Partial {
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn length(&self) -> u64 {
        self.length
    }
    /// The upload's state, one holder at a time (a part being written
    /// holds it until its body ends).
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, State> {
        self.state.lock().await
    }
    fn release(&self) {
        lock(&self.claim).take();
    }
}

struct Area {
    store: Store,
    dir: PathBuf,
    table: Mutex<HashMap<String, Arc<Partial>>>,
    /// Creations under way, per owner: counted with the table against
    /// `max_per_owner`, so concurrent creations cannot pass it.
    creating: Mutex<HashMap<String, u64>>,
}

/// The partial uploads of one files folder. Cheap to clone; every opener
/// of the same folder in this process shares one table.
#[derive(Clone)]
pub struct Partials {
    area: Arc<Area>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn areas() -> &'static Mutex<HashMap<PathBuf, Weak<Area>>> {
    static AREAS: OnceLock<Mutex<HashMap<PathBuf, Weak<Area>>>> = OnceLock::new();
    AREAS.get_or_init(Mutex::default)
}

impl Partials {
    /// The partial uploads of `store`'s folder, loading what an earlier run
    /// left (and removing what expired or cannot be read) the first time.
    ///
    /// # Errors
    /// When `.partial/` cannot be created or read.
    pub fn open(store: &Store) -> io::Result<Partials> {
        let mut areas = lock(areas());
        areas.retain(|_, a| a.strong_count() > 0);
        if let Some(area) = areas.get(store.dir()).and_then(Weak::upgrade) {
            return Ok(Partials { area });
        }
        // Made with the first partial upload, so a folder that never had
        // one holds only its files.
        let dir = store.dir().join(DIR);
        let area = Arc::new(Area {
            store: store.clone(),
            dir,
            table: Mutex::new(HashMap::new()),
            creating: Mutex::new(HashMap::new()),
        });
        let partials = Partials { area };
        partials.load()?;
        areas.insert(store.dir().to_owned(), Arc::downgrade(&partials.area));
        Ok(partials)
    }

    /// The partial uploads of the files folder `folder` (a files instance's
    /// own): shares the area if a service opened it, else opens the folder
    /// without sweeping its temporaries (the service owns those).
    ///
    /// # Errors
    /// When the folders cannot be created or read.
    pub fn open_folder(folder: &Path) -> io::Result<Partials> {
        if let Some(area) = lock(areas()).get(folder).and_then(Weak::upgrade) {
            return Ok(Partials { area });
        }
        super::create_private_dir(folder)?;
        Partials::open(&Store::of_folder(folder))
    }

    fn data(&self, id: &str) -> PathBuf {
        self.area.dir.join(format!("{id}.bin"))
    }
    fn meta_path(&self, id: &str) -> PathBuf {
        self.area.dir.join(format!("{id}.json"))
    }

    /// Reads `.partial/`: keeps what is whole (the expired too, for the
    /// first sweep to audit).
    fn load(&self) -> io::Result<()> {
        if !self.area.dir.exists() {
            return Ok(());
        }
        let mut dropped = 0;
        for entry in std::fs::read_dir(&self.area.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let meta: Option<Meta> = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                let ok = meta.as_ref().and_then(|m| {
                    let valid = is_id(&m.id) && path.file_stem().is_some_and(|s| *s == *m.id);
                    let held = std::fs::symlink_metadata(self.data(&m.id)).ok()?;
                    (valid && held.is_file() && held.len() <= m.length).then_some(held.len())
                });
                match (meta, ok) {
                    (Some(meta), Some(offset)) => {
                        let claim = self.area.store.claim(meta.length - offset);
                        self.insert(meta, offset, None, claim);
                    }
                    (meta, _) => {
                        let _ = std::fs::remove_file(&path);
                        if let Some(m) = meta.filter(|m| is_id(&m.id)) {
                            let _ = std::fs::remove_file(self.data(&m.id));
                        }
                        dropped += 1;
                    }
                }
            }
        }
        // Data with no meta (a crash between the two creations), and a
        // meta's temporary (a crash while it was written).
        for entry in std::fs::read_dir(&self.area.dir)? {
            let path = entry?.path();
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let orphan_data = path.extension().is_some_and(|e| e == "bin")
                && !lock(&self.area.table).contains_key(stem);
            let meta_tmp = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(".json.tmp"));
            if orphan_data || meta_tmp {
                let _ = std::fs::remove_file(&path);
            }
        }
        if dropped > 0 {
            tracing::info!(
                "removed {dropped} unreadable partial upload(s) from {}",
                self.area.dir.display()
            );
        }
        Ok(())
    }

    fn insert(
        &self,
        meta: Meta,
        offset: u64,
        hasher: Option<Sha256>,
        claim: Claim,
    ) -> Arc<Partial> {
        let partial = Arc::new(Partial {
            id: meta.id.clone(),
            owner: meta.owner.clone(),
            length: meta.length,
            state: tokio::sync::Mutex::new(State {
                offset,
                cut: hasher.is_none(),
                hasher,
                meta,
                gone: false,
            }),
            claim: Mutex::new(Some(claim)),
        });
        lock(&self.area.table).insert(partial.id.clone(), Arc::clone(&partial));
        partial
    }

    fn write_meta(&self, meta: &Meta) -> io::Result<()> {
        let text = serde_json::to_string(meta).map_err(io::Error::other)?;
        crate::jsonfile::write_atomic(&self.meta_path(&meta.id), &text)
    }

    /// `owner`'s upload `id`; `None` for anyone else's, an expired one or
    /// no such upload.
    pub fn get(&self, id: &str, owner: &str) -> Option<Arc<Partial>> {
        let p = lock(&self.area.table).get(id).cloned()?;
        (p.owner == owner).then_some(p)
    }

    /// Every unfinished upload (for admins).
    pub async fn list(&self) -> Vec<Listed> {
        let all: Vec<_> = lock(&self.area.table).values().cloned().collect();
        let mut out = Vec::with_capacity(all.len());
        for p in all {
            let s = p.lock().await;
            if !s.gone {
                out.push(Listed {
                    meta: s.meta.clone(),
                    offset: s.offset,
                });
            }
        }
        out.sort_by_key(|l| l.meta.created_ms);
        out
    }

    /// Ends an upload held by `state` and frees its space at once.
    pub fn remove(&self, partial: &Partial, state: &mut State) {
        state.gone = true;
        lock(&self.area.table).remove(&partial.id);
        let _ = std::fs::remove_file(self.meta_path(&partial.id));
        let _ = std::fs::remove_file(self.data(&partial.id));
        partial.release();
    }

    /// Removes every upload whose expiry passed; answers their metas (for
    /// the audit). An upload being written is not expired under it.
    pub fn sweep(&self) -> Vec<Meta> {
        let now = now_ms();
        let all: Vec<_> = lock(&self.area.table).values().cloned().collect();
        let mut out = Vec::new();
        for p in all {
            let Ok(mut s) = p.state.try_lock() else {
                continue;
            };
            if !s.gone && s.meta.expires_ms <= now {
                out.push(s.meta.clone());
                self.remove(&p, &mut s);
            }
        }
        out
    }

    /// Whether `state`'s upload has expired (then it is removed).
    pub fn expired(&self, partial: &Partial, state: &mut State) -> bool {
        if state.gone {
            return true;
        }
        if state.meta.expires_ms <= now_ms() {
            self.remove(partial, state);
            return true;
        }
        false
    }

    /// Writes one part: `patch` (from [`Partials::patch`]) is fed the
    /// body, then ended here. On success the expiry moves `ttl` on.
    ///
    /// # Errors
    /// A checksum mismatch (the part is dropped), I/O errors.
    pub async fn end_patch(
        &self,
        state: &mut State,
        patch: Patch,
        whole: bool,
        ttl: Duration,
    ) -> Result<u64, PartialError> {
        let ended = patch.finish(whole).await;
        state.offset = ended.offset;
        state.hasher = ended.hasher;
        state.meta.expires_ms = now_ms().saturating_add(ms(ttl));
        // Written and synced off the runtime's threads: once per part.
        let (partials, meta) = (self.clone(), state.meta.clone());
        let kept = tokio::task::spawn_blocking(move || partials.write_meta(&meta)).await;
        if let Ok(Err(e)) | Err(e) = kept.map_err(io::Error::other) {
            // The next part writes it again; a restart meanwhile expires
            // the upload by the older date.
            tracing::warn!("cannot keep partial upload {}'s expiry: {e}", state.meta.id);
        }
        ended.result?;
        Ok(state.offset)
    }

    /// Starts writing a part at `offset`: the writer runs on a blocking
    /// thread of its own, fed through [`Patch::push`].
    ///
    /// # Errors
    /// The offset is not the upload's.
    pub fn patch(
        &self,
        partial: &Partial,
        state: &mut State,
        offset: u64,
        checksum: Option<Checksum>,
    ) -> Result<Patch, PartialError> {
        if state.gone {
            return Err(PartialError::NotFound);
        }
        if offset != state.offset {
            return Err(PartialError::WrongOffset {
                held: state.offset,
                asked: offset,
            });
        }
        Patch::start(
            self.data(&partial.id),
            offset,
            partial.length,
            state.hasher.take(),
            checksum,
        )
    }

    /// Stores a complete upload under its name; checks its SHA-256 first.
    ///
    /// # Errors
    /// A mismatch with the declared SHA-256 (the upload is removed), no
    /// free name, I/O errors.
    pub async fn complete(
        &self,
        partial: &Partial,
        state: &mut State,
    ) -> Result<FileInfo, PartialError> {
        let digest = match state.hasher.clone() {
            Some(h) => hex(&h.finalize()),
            None => {
                let path = self.data(&partial.id);
                tokio::task::spawn_blocking(move || super::hash_file(&path))
                    .await
                    .map_err(|e| io::Error::other(e.to_string()))
                    .map_err(StoreError::from)?
                    .map_err(StoreError::from)?
            }
        };
        if let Some(declared) = state.meta.sha256.clone()
            && !declared.eq_ignore_ascii_case(&digest)
        {
            self.remove(partial, state);
            return Err(PartialError::HashMismatch {
                declared,
                got: digest,
            });
        }
        let stored = self
            .area
            .store
            .link_free(self.data(&partial.id), state.meta.name.clone(), digest)
            .await?;
        self.remove(partial, state);
        Ok(stored)
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whether `s` looks like an id we made (32 lowercase hex digits): anything
/// else is never a path.
pub fn is_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests;
