//! The store's side of partial uploads: space claimed at creation (the
//! same counter plain uploads check). The final link under a free name is
//! `Store::link_free` (in `store/link.rs`), shared with plain uploads. Not
//! here: the upload table ([`super`]).

use crate::store::{Claim, Store, StoreError};

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
}
