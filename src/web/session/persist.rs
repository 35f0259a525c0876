//! Sessions kept in `<data_dir>/sessions.json`, so a restart, a reload or
//! an upgrade keeps people signed in.
//!
//! The file holds what the table holds: each session's SHA-256 key (never
//! the cookie's token, so the file cannot be replayed), its account, role,
//! CSRF token and when it was last used (so expiry carries over). It is
//! written owner-only and atomically (a reader sees the old file or the new
//! one), at most once per [`WRITE_EVERY`] plus at sign-in, sign-out and
//! shutdown, and bounded by the table's own cap. A file that cannot be read
//! is reported and ignored (everyone signs in again), never trusted in part.
//!
//! The API tokens' last-used times are written at shutdown here too (they
//! are otherwise written at most once a minute, on use).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use tokio_util::sync::CancellationToken;

use super::{Entry, MAX_SESSIONS, Session, Sessions};
use crate::users::Role;

/// The file's name in the data folder.
pub const FILE: &str = "sessions.json";
/// How often last-used times reach the file (sign-ins and sign-outs at once).
pub const WRITE_EVERY: Duration = Duration::from_secs(30);
/// The largest file read: [`MAX_SESSIONS`] entries of a few hundred bytes.
const MAX_FILE_BYTES: u64 = 16 << 20;

#[derive(Serialize, Deserialize)]
struct Stored {
    /// Hex SHA-256 of the cookie's token.
    key: String,
    user: String,
    role: Role,
    csrf: String,
    last_used_unix_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct StoredFile {
    sessions: Vec<Stored>,
}

/// Where the table is kept and the signal that it changed.
pub(super) struct Keeper {
    path: PathBuf,
    changed: tokio::sync::Notify,
}

impl Keeper {
    /// Asks for a write soon.
    pub(super) fn changed(&self) {
        self.changed.notify_one();
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn parse_key(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

impl Sessions {
    /// Keeps this table in `data_dir`: loads what an earlier run left (the
    /// live sessions only) and writes changes until `shutdown`, then once
    /// more. Call once, inside a runtime.
    pub fn keep_in(self: &Arc<Self>, data_dir: &Path, shutdown: &crate::shutdown::Shutdown) {
        let path = data_dir.join(FILE);
        match self.load(&path) {
            Ok(n) if n > 0 => tracing::info!("{n} dashboard session(s) kept from the last run"),
            Ok(_) => {}
            Err(e) => tracing::warn!("{} not used (everyone signs in again): {e}", path.display()),
        }
        let keeper = Arc::new(Keeper {
            path,
            changed: tokio::sync::Notify::new(),
        });
        if self.keeper.set(Arc::clone(&keeper)).is_err() {
            return;
        }
        // Outside a runtime (a router built for a test) nothing is written.
        if tokio::runtime::Handle::try_current().is_ok() {
            let me = Arc::clone(self);
            let cancel = shutdown.token.clone();
            shutdown.tasks.spawn(me.write_loop(keeper, cancel));
        }
    }

    fn load(&self, path: &Path) -> Result<usize, String> {
        let text = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e.to_string()),
            Ok(meta) if meta.len() > MAX_FILE_BYTES => {
                return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
            }
            Ok(_) => std::fs::read_to_string(path).map_err(|e| e.to_string())?,
        };
        let file: StoredFile = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let (now, now_ms) = (Instant::now(), now_unix_ms());
        let mut table = self.lock();
        for s in file.sessions.into_iter().take(MAX_SESSIONS) {
            let age = Duration::from_millis(now_ms.saturating_sub(s.last_used_unix_ms));
            let (Some(key), Some(last_seen)) = (parse_key(&s.key), now.checked_sub(age)) else {
                continue;
            };
            if age >= self.idle || table.len() >= MAX_SESSIONS {
                continue;
            }
            table.entry(key).or_insert_with(|| Entry {
                session: Session {
                    user: s.user,
                    role: s.role,
                    csrf_token: s.csrf,
                    token: None,
                },
                last_seen,
                ended: CancellationToken::new(),
            });
        }
        Ok(table.len())
    }

    /// The live sessions as the file holds them.
    fn snapshot_text(&self) -> String {
        let (now, now_ms) = (Instant::now(), now_unix_ms());
        let sessions = self
            .lock()
            .iter()
            .filter(|(_, e)| now.duration_since(e.last_seen) < self.idle)
            .map(|(key, e)| Stored {
                key: crate::wire::hex(key),
                user: e.session.user.clone(),
                role: e.session.role,
                csrf: e.session.csrf_token.clone(),
                last_used_unix_ms: now_ms
                    .saturating_sub(now.duration_since(e.last_seen).as_millis() as u64),
            })
            .collect();
        serde_json::to_string(&StoredFile { sessions }).unwrap_or_default()
    }

    /// Writes the table now (off the async threads); the error is logged.
    pub async fn save_now(self: &Arc<Self>) {
        let Some(keeper) = self.keeper.get() else {
            return;
        };
        let text = self.snapshot_text();
        let path = keeper.path.clone();
        let tokens = self.tokens.get().cloned();
        let written = tokio::task::spawn_blocking(move || {
            if let Some(tokens) = tokens
                && let Err(e) = tokens.flush_used()
            {
                tracing::warn!("cannot keep the API tokens' last-used times: {e}");
            }
            crate::jsonfile::write_atomic(&path, &text)
        })
        .await;
        if let Ok(Err(e)) = written {
            tracing::warn!(
                "cannot keep the dashboard sessions in {}: {e}",
                keeper.path.display()
            );
        }
    }

    async fn write_loop(self: Arc<Self>, keeper: Arc<Keeper>, cancel: CancellationToken) {
        let mut last_written = self.snapshot_text();
        let every = crate::clock::every(WRITE_EVERY);
        loop {
            let stop = tokio::select! {
                () = cancel.cancelled() => true,
                () = keeper.changed.notified() => false,
                () = every.tick() => false,
            };
            let text = self.snapshot_text();
            if text != last_written || stop {
                self.save_now().await;
                last_written = text;
            }
            if stop {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_only_as_64_hex_digits() {
        let key = [0xabu8; 32];
        assert_eq!(parse_key(&crate::wire::hex(&key)), Some(key));
        assert_eq!(parse_key("ab"), None);
        assert_eq!(parse_key(&"zz".repeat(32)), None);
        assert_eq!(parse_key(&"é".repeat(32)), None);
    }

    #[tokio::test]
    async fn a_kept_session_survives_and_an_expired_one_does_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = crate::shutdown::Shutdown::new();
        let first = Arc::new(Sessions::new(Duration::from_secs(3600), 4));
        first.keep_in(dir.path(), &root);
        let (token, _) = first.create("ada", Role::Admin).expect("a session");
        first.save_now().await;
        let text = std::fs::read_to_string(dir.path().join(FILE)).expect("the file");
        assert!(!text.contains(&token), "the token itself is never kept");
        let second = Arc::new(Sessions::new(Duration::from_secs(3600), 4));
        second.keep_in(dir.path(), &crate::shutdown::Shutdown::new());
        assert_eq!(second.touch(&token).map(|s| s.user), Some("ada".into()));
        // A table whose idle limit is shorter than the session's age.
        let third = Sessions::new(Duration::from_millis(0), 4);
        assert_eq!(third.load(&dir.path().join(FILE)), Ok(0));
        // A corrupt file is refused whole.
        std::fs::write(dir.path().join(FILE), "{not json").expect("write");
        assert!(
            Sessions::new(Duration::from_secs(60), 4)
                .load(&dir.path().join(FILE))
                .is_err()
        );
        root.drain(Duration::from_secs(5)).await;
    }
}
