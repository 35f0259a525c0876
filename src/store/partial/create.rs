//! Creating a partial upload: its checks, its place among its owner's,
//! and its files, made off the runtime's threads.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::time::Duration;

use super::*;

/// What [`Partials::create`] needs.
pub struct New<'a> {
    pub owner: &'a str,
    pub name: &'a str,
    pub length: u64,
    pub metadata: &'a str,
    pub sha256: Option<String>,
    pub max_size: u64,
    pub max_per_owner: u64,
    pub ttl: Duration,
}

/// What [`Partials::remove_orphan`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Now,
    /// On a task, once its lock is free.
    Later,
    AlreadyGone,
    /// Not at all (no runtime to wait for its lock on): it expires.
    Left,
}

/// An owner's place among the creations under way, given back when
/// dropped (made, or failed).
struct Creating {
    area: Arc<Area>,
    owner: String,
}

impl Drop for Creating {
    fn drop(&mut self) {
        let mut creating = lock(&self.area.creating);
        if let Some(n) = creating.get_mut(&self.owner) {
            *n -= 1;
            if *n == 0 {
                creating.remove(&self.owner);
            }
        }
    }
}

/// The creator's end of [`Partials::create`]'s job. Dropped before it took
/// the upload (its creator left), it shuts the job's way in, so the job
/// removes what it makes, and removes an upload the job handed over
/// already.
pub(super) struct Taking {
    pub(super) made: Option<tokio::sync::oneshot::Receiver<io::Result<Arc<Partial>>>>,
    pub(super) partials: Partials,
}

impl Drop for Taking {
    fn drop(&mut self) {
        let Some(mut made) = self.made.take() else {
            return;
        };
        made.close();
        if let Ok(Ok(orphan)) = made.try_recv() {
            self.partials.remove_orphan(orphan);
        }
    }
}

impl Partials {
    /// Removes `orphan`, an upload whose id its client never got: at once
    /// when its lock is free (only a listing holds a fresh upload's, for a
    /// moment), else on a task once it is. Nothing if it is gone already.
    pub fn remove_orphan(&self, orphan: Arc<Partial>) -> Removal {
        if let Ok(mut state) = orphan.state.try_lock() {
            if state.gone {
                return Removal::AlreadyGone;
            }
            self.remove(&orphan, &mut state);
            return Removal::Now;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Removal::Left; // no runtime: it expires
        };
        let partials = self.clone();
        runtime.spawn(async move {
            let mut state = orphan.lock().await;
            if !state.gone {
                partials.remove(&orphan, &mut state);
            }
        });
        Removal::Later
    }

    /// Starts an upload of `length` bytes to be stored as `name` (made safe
    /// here), for `owner`.
    ///
    /// # Errors
    /// A bad name, over `max_size`, over `max_per_owner` unfinished
    /// uploads, not enough space; I/O errors.
    pub async fn create(&self, new: New<'_>) -> Result<Arc<Partial>, PartialError> {
        let name = crate::store::safe_name(new.name.as_bytes())?;
        crate::store::check_size(new.length, new.max_size)?;
        let place = self.place(new.owner, new.max_per_owner)?;
        let claim = self.area.store.reserve(new.length)?;
        let mut random = [0u8; 16];
        getrandom::fill(&mut random)
            .map_err(|e| StoreError::Io(io::Error::other(e.to_string())))?;
        let id = hex(&random);
        let now = now_ms();
        let meta = Meta {
            id,
            owner: new.owner.to_owned(),
            name,
            length: new.length,
            metadata: new.metadata.chars().take(MAX_METADATA).collect(),
            sha256: new.sha256,
            created_ms: now,
            expires_ms: now.saturating_add(ms(new.ttl)),
        };
        // Its files are made, and its meta synced, off the runtime's threads
        // (an fsync lasts as long as the disk makes it), and entered in the
        // table there too. A creator gone meanwhile (a client that left)
        // leaves no upload nobody holds the id of: whichever of the job and
        // `Taking` finds nobody to hand it to removes it.
        let (taken, made) = tokio::sync::oneshot::channel();
        let partials = self.clone();
        drop(tokio::task::spawn_blocking(move || {
            if taken.is_closed() {
                return; // the creator left before the job began
            }
            let made = partials
                .make_files(&meta)
                .map(|()| partials.insert(meta, 0, Some(Sha256::new()), claim));
            drop(place);
            if let Err(Ok(orphan)) = taken.send(made) {
                partials.remove_orphan(orphan);
            }
        }));
        let mut taking = Taking {
            made: Some(made),
            partials: self.clone(),
        };
        let made = taking.made.as_mut().expect("just set").await;
        taking.made = None;
        made.map_err(|_| StoreError::Io(io::Error::other("the creation's job stopped")))?
            .map_err(|e| StoreError::from(e).into())
    }

    /// An upload's empty data file and its meta, synced; neither if
    /// either cannot be made.
    fn make_files(&self, meta: &Meta) -> io::Result<()> {
        crate::store::create_private_dir(&self.area.dir)?;
        let data = self.data(&meta.id);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&data)?;
        self.write_meta(meta).inspect_err(|_| {
            let _ = std::fs::remove_file(&data);
        })
    }

    /// A place for one more of `owner`'s uploads, counting those being
    /// created; held until the creation ends.
    fn place(&self, owner: &str, max: u64) -> Result<Creating, PartialError> {
        let mut creating = lock(&self.area.creating);
        let made = lock(&self.area.table)
            .values()
            .filter(|p| p.owner == owner)
            .count() as u64;
        let under_way = creating.get(owner).copied().unwrap_or(0);
        if made + under_way >= max {
            return Err(PartialError::TooMany(max));
        }
        *creating.entry(owner.to_owned()).or_default() += 1;
        Ok(Creating {
            area: Arc::clone(&self.area),
            owner: owner.to_owned(),
        })
    }
}
