//! The table of live sessions: created at sign-in, touched by each
//! request, bounded (the least recently used goes first), and each entry's
//! end signalled to the streams that hold it.
//!
//! Not here: who may do what (see [`super::authorize`]) and keeping the
//! table across restarts ([`super::persist`]).

use super::*;

pub(super) struct Entry {
    pub(super) session: Session,
    pub(super) last_seen: Instant,
    /// Cancelled when the entry leaves the table, however it leaves
    /// (sign-out, expiry, the account gone, eviction): the session's live
    /// streams wait on it.
    pub(super) ended: CancellationToken,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.ended.cancel();
    }
}

/// The live sessions, keyed by the SHA-256 of their token.
pub struct Sessions {
    pub(super) idle: Duration,
    /// Live-stream slots, per account.
    pub(super) streams: streams::AccountStreams,
    pub(super) table: Mutex<HashMap<[u8; 32], Entry>>,
    /// The API tokens, opened on first use from the accounts' directory
    /// (the data directory).
    pub(super) tokens: OnceLock<Tokens>,
    /// Where the table is kept between runs (see [`persist`]).
    pub(super) keeper: OnceLock<std::sync::Arc<persist::Keeper>>,
}

/// A live stream's hold on its session: one of its account's stream slots
/// (given back on drop) and the signal that the session has ended.
pub struct StreamTicket {
    pub(super) key: [u8; 32],
    pub(super) user: String,
    /// Fires when the session leaves the table.
    pub ended: CancellationToken,
    _slot: streams::AccountSlot,
}

impl Sessions {
    pub fn new(idle: Duration, max_streams: usize) -> Self {
        Sessions {
            idle,
            streams: streams::AccountStreams::new(max_streams),
            table: Mutex::new(HashMap::new()),
            tokens: OnceLock::new(),
            keeper: OnceLock::new(),
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        // Entries are replaced whole, so a poisoned table is still consistent.
        crate::sync::lock(&self.table)
    }

    /// Starts a session; returns its token (for the cookie only).
    pub(super) fn create(&self, user: &str, role: Role) -> Result<(String, Session), WebError> {
        let token = random_hex()?;
        let session = Session {
            user: user.to_owned(),
            role,
            csrf_token: random_hex()?,
            token: None,
        };
        let now = Instant::now();
        let mut table = self.lock();
        if table.len() >= MAX_SESSIONS {
            table.retain(|_, e| now.duration_since(e.last_seen) < self.idle);
            if table.len() >= MAX_SESSIONS
                && let Some(oldest) = table
                    .iter()
                    .min_by_key(|(_, e)| e.last_seen)
                    .map(|(k, _)| *k)
            {
                table.remove(&oldest);
            }
        }
        table.insert(
            token_key(&token),
            Entry {
                session: session.clone(),
                last_seen: now,
                ended: CancellationToken::new(),
            },
        );
        drop(table);
        self.kept_changed();
        Ok((token, session))
    }

    /// The session of `token`, if it is live; using it keeps it alive.
    pub(super) fn touch(&self, token: &str) -> Option<Session> {
        let key = token_key(token);
        let now = Instant::now();
        let mut table = self.lock();
        let entry = table.get_mut(&key)?;
        if now.duration_since(entry.last_seen) >= self.idle {
            table.remove(&key);
            return None;
        }
        entry.last_seen = now;
        Some(entry.session.clone())
    }

    pub(super) fn set_role(&self, token: &str, role: Role) {
        if let Some(e) = self.lock().get_mut(&token_key(token)) {
            e.session.role = role;
        }
        self.kept_changed();
    }

    pub(super) fn remove(&self, token: &str) {
        self.lock().remove(&token_key(token));
        self.kept_changed();
    }

    /// Asks for the kept copy to be written soon (sign-in, sign-out).
    pub(super) fn kept_changed(&self) {
        if let Some(k) = self.keeper.get() {
            k.changed();
        }
    }

    /// One of the session's account's stream slots, without counting as
    /// a use.
    pub(super) fn open_stream(&self, token: &str) -> Result<StreamTicket, WebError> {
        let key = token_key(token);
        let table = self.lock();
        let entry = table.get(&key).ok_or(WebError::SignInRequired)?;
        let slot = self.streams.acquire(&entry.session.user)?;
        Ok(StreamTicket {
            key,
            user: entry.session.user.clone(),
            ended: entry.ended.clone(),
            _slot: slot,
        })
    }

    /// Whether the session behind `key` is still live. An expired one is
    /// removed (which ends its streams). A stream does not keep its session
    /// alive: a tab left open is not someone using the dashboard.
    pub(super) fn still_live(&self, key: &[u8; 32]) -> bool {
        let now = Instant::now();
        let mut table = self.lock();
        match table.get(key) {
            None => false,
            Some(e) if now.duration_since(e.last_seen) >= self.idle => {
                table.remove(key);
                false
            }
            Some(_) => true,
        }
    }

    /// Sessions currently live (for `/metrics`).
    pub fn count(&self) -> usize {
        let now = Instant::now();
        self.lock()
            .values()
            .filter(|e| now.duration_since(e.last_seen) < self.idle)
            .count()
    }
}
