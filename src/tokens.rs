//! API tokens: what a script sends as `Authorization: Bearer sbt_...`
//! instead of signing in like a browser.
//!
//! Kept in `<data_dir>/tokens.json` (owner-only), each under a name with a
//! role, an optional expiry and the time it was last used. Only the SHA-256
//! of a token is stored: the token itself is shown once, when it is made,
//! and is never written anywhere by us. A presented token is hashed and
//! compared with every stored hash in constant time.
//!
//! The file is a [`JsonStore`], as the accounts file is: replaced
//! atomically, noticed by a running server before each check when
//! `switchboard token ...` changed it, and every read-change-write under an
//! exclusive `flock` on `tokens.json.lock`. That lock matters more here:
//! the server writes this file too (the "last used" times), and a revoke by
//! the CLI must not be undone by the server writing back what it read
//! before. Last-used times are kept in memory and written at most
//! once a minute, so a busy script does not turn into a disk write per
//! request; `token list` may therefore lag the server by up to a minute.
//!
//! Not here: who may use which route (that is `web::session`).

use crate::jsonfile::{self, Document, JsonStore};
use crate::sync::lock;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::users::Role;

/// What every token starts with, so a leaked one is recognisable (and
/// secret scanners can be taught to find it).
pub const PREFIX: &str = "sbt_";
/// Random bytes in a token (256 bits), written as lower-case hex.
const RANDOM_BYTES: usize = 32;
/// A token's whole length: the prefix and 64 hex digits.
pub const TOKEN_LEN: usize = PREFIX.len() + 2 * RANDOM_BYTES;
/// Longest token name.
pub const MAX_NAME_LEN: usize = 32;
/// Longest expiry a token may be given.
pub const MAX_EXPIRY: Duration = Duration::from_secs(3650 * 86_400);
/// Last-used times reach the file at most this often.
const FLUSH_EVERY_SECS: u64 = 60;

/// Everything that can go wrong with tokens.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("cannot access {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid tokens file: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error("bad token name `{0}`: use 1 to {MAX_NAME_LEN} of a-z, 0-9 and `-`")]
    BadName(String),
    #[error("a token named `{0}` already exists")]
    Exists(String),
    #[error("no token `{0}`")]
    NoSuchToken(String),
    #[error(
        "bad expiry `{0}`: use a whole number of days, hours or minutes (30d, 12h, 90m), at most 3650d"
    )]
    BadExpiry(String),
    #[error("no randomness for a token: {0}")]
    Random(String),
}

/// One token as stored: never the token itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    role: Role,
    /// SHA-256 of the whole token (prefix included), lower-case hex.
    sha256: String,
    created_unix: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_unix: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used_unix: Option<u64>,
}

/// One token as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub name: String,
    pub role: Role,
    pub created_unix: u64,
    pub expires_unix: Option<u64>,
    pub last_used_unix: Option<u64>,
    pub expired: bool,
}

/// What a presented token turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Good: the token's name and role.
    Valid { name: String, role: Role },
    /// Not the shape of a token at all.
    Malformed,
    /// No such token (never made, or revoked).
    Unknown,
    /// It was good until its expiry.
    Expired { name: String },
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Valid { .. } => "valid",
            Verdict::Malformed => "malformed",
            Verdict::Unknown => "unknown or revoked",
            Verdict::Expired { .. } => "expired",
        })
    }
}

/// `tokens.json` as serde sees it.
#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    tokens: BTreeMap<String, Entry>,
}

impl Document for File {
    type Error = TokensError;
    const WHAT: &'static str = "tokens";

    fn empty() -> File {
        File {
            version: 1,
            tokens: BTreeMap::new(),
        }
    }

    fn version(&self) -> u32 {
        self.version
    }

    fn check(&self) -> Result<(), String> {
        for (name, entry) in &self.tokens {
            check_name(name).map_err(|e| e.to_string())?;
            let hex_ok = entry.sha256.len() == 64
                && entry
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex_ok {
                return Err(format!("`{name}` has no SHA-256"));
            }
        }
        Ok(())
    }
}

/// This process's uses of tokens, not yet in the file. Locked after the
/// store's own lock when both are held (inside [`JsonStore::view`]).
struct Used {
    /// Uses seen since the file last heard of them, by name.
    at: HashMap<String, u64>,
    /// When last-used times were last written (Unix seconds).
    flushed_unix: u64,
}

struct Inner {
    store: JsonStore<File>,
    used: Mutex<Used>,
}

/// The token store. Cheap to clone.
#[derive(Clone)]
pub struct Tokens {
    inner: Arc<Inner>,
}

/// Where the tokens of `data_dir` live.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("tokens.json")
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks a token name: `[a-z0-9-]{1,32}`.
///
/// # Errors
/// [`TokensError::BadName`].
pub fn check_name(name: &str) -> Result<(), TokensError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(TokensError::BadName(name.to_owned()))
    }
}

/// Parses an expiry: `30d`, `12h` or `90m`, more than zero and at most
/// [`MAX_EXPIRY`].
///
/// # Errors
/// [`TokensError::BadExpiry`].
pub fn parse_expiry(text: &str) -> Result<Duration, TokensError> {
    let bad = || TokensError::BadExpiry(text.to_owned());
    let t = text.trim();
    let unit_at = t.len().checked_sub(1).ok_or_else(bad)?;
    let (number, unit) = t.split_at(unit_at);
    let unit_secs = match unit {
        "d" => 86_400,
        "h" => 3600,
        "m" => 60,
        _ => return Err(bad()),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = number.parse().map_err(|_| bad())?;
    let secs = n.checked_mul(unit_secs).ok_or_else(bad)?;
    if secs == 0 || secs > MAX_EXPIRY.as_secs() {
        return Err(bad());
    }
    Ok(Duration::from_secs(secs))
}

fn digest_hex(token: &str) -> String {
    crate::wire::hex(&Sha256::digest(token.as_bytes()))
}

/// Whether `token` has the shape of one of ours (it may still be unknown).
pub fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token.starts_with(PREFIX)
        && token[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn generate() -> Result<String, TokensError> {
    let mut raw = [0u8; RANDOM_BYTES];
    getrandom::fill(&mut raw).map_err(|e| TokensError::Random(e.to_string()))?;
    Ok(format!("{PREFIX}{}", crate::wire::hex(&raw)))
}

impl Tokens {
    /// Opens the tokens of `data_dir` (none yet is fine).
    ///
    /// # Errors
    /// When the file exists but cannot be read or parsed.
    pub fn open(data_dir: &Path) -> Result<Tokens, TokensError> {
        Ok(Self::with(JsonStore::open(path(data_dir))?))
    }

    /// The tokens of `data_dir`, read on first use rather than now: for a
    /// server, where a bad file must not stop the dashboard (every check
    /// then fails, and the log says why).
    pub fn lazy(data_dir: &Path) -> Tokens {
        Self::with(JsonStore::lazy(path(data_dir)))
    }

    fn with(store: JsonStore<File>) -> Tokens {
        Tokens {
            inner: Arc::new(Inner {
                store,
                used: Mutex::new(Used {
                    at: HashMap::new(),
                    flushed_unix: 0,
                }),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        self.inner.store.path()
    }

    /// Every token, by name, with this process's latest uses.
    pub fn list(&self) -> Vec<TokenInfo> {
        let now = now_unix();
        self.inner.store.view(|file| {
            let used = lock(&self.inner.used);
            file.tokens
                .iter()
                .map(|(name, e)| TokenInfo {
                    name: name.clone(),
                    role: e.role,
                    created_unix: e.created_unix,
                    expires_unix: e.expires_unix,
                    last_used_unix: e.last_used_unix.max(used.at.get(name).copied()),
                    expired: e.expires_unix.is_some_and(|at| now >= at),
                })
                .collect()
        })
    }

    /// Makes a token; returns it (the only time it is ever seen) and when
    /// it expires. `expires` counts from now (zero makes one already
    /// expired, for tests).
    ///
    /// # Errors
    /// A bad name, an existing name, an expiry beyond [`MAX_EXPIRY`], the
    /// file not writable.
    pub fn create(
        &self,
        name: &str,
        role: Role,
        expires: Option<Duration>,
    ) -> Result<(String, Option<u64>), TokensError> {
        check_name(name)?;
        if expires.is_some_and(|d| d > MAX_EXPIRY) {
            return Err(TokensError::BadExpiry(format!(
                "{} s",
                MAX_EXPIRY.as_secs()
            )));
        }
        let token = generate()?;
        let now = now_unix();
        let entry = Entry {
            role,
            sha256: digest_hex(&token),
            created_unix: now,
            expires_unix: expires.map(|d| now + d.as_secs()),
            last_used_unix: None,
        };
        let expires_unix = entry.expires_unix;
        self.inner.store.change(|file| {
            if file.tokens.contains_key(name) {
                return Err(TokensError::Exists(name.to_owned()));
            }
            file.tokens.insert(name.to_owned(), entry);
            Ok(())
        })?;
        Ok((token, expires_unix))
    }

    /// Revokes (removes) a token: it stops working at once, in a running
    /// server too.
    ///
    /// # Errors
    /// No such token, the file not writable.
    pub fn revoke(&self, name: &str) -> Result<(), TokensError> {
        self.inner.store.change(|file| {
            file.tokens
                .remove(name)
                .map(drop)
                .ok_or_else(|| TokensError::NoSuchToken(name.to_owned()))
        })?;
        lock(&self.inner.used).at.remove(name);
        Ok(())
    }

    /// What `token` is. A good one's use is noted (in memory); the answer's
    /// second half says the last-used times are due to be written (call
    /// [`Tokens::flush_used`], off the async threads).
    pub fn check(&self, token: &str) -> (Verdict, bool) {
        if !well_formed(token) {
            return (Verdict::Malformed, false);
        }
        let presented = Sha256::digest(token.as_bytes());
        let now = now_unix();
        // Every stored hash is compared, in constant time, whether or not
        // one already matched: how long this takes says nothing about
        // which token (or how much of one) was right.
        let found = self.inner.store.view(|file| {
            let mut found = None;
            for (name, entry) in &file.tokens {
                let stored = hex_digest_bytes(&entry.sha256);
                if bool::from(stored.ct_eq(&presented[..])) {
                    found = Some((name.clone(), entry.role, entry.expires_unix));
                }
            }
            found
        });
        let Some((name, role, expires)) = found else {
            return (Verdict::Unknown, false);
        };
        if expires.is_some_and(|at| now >= at) {
            return (Verdict::Expired { name }, false);
        }
        let mut used = lock(&self.inner.used);
        used.at.insert(name.clone(), now);
        let due = now >= used.flushed_unix + FLUSH_EVERY_SECS;
        if due {
            used.flushed_unix = now;
        }
        (Verdict::Valid { name, role }, due)
    }

    /// Writes the last-used times noted in memory. They stay there too (a
    /// list taken while this writes still sees them); only those of tokens
    /// gone from the file are forgotten, so the map is no bigger than the
    /// store.
    ///
    /// # Errors
    /// The file not writable.
    pub fn flush_used(&self) -> Result<(), TokensError> {
        let used = lock(&self.inner.used).at.clone();
        if used.is_empty() {
            return Ok(());
        }
        self.inner.store.change(|file| {
            for (name, at) in &used {
                // A token revoked meanwhile stays revoked.
                if let Some(e) = file.tokens.get_mut(name) {
                    e.last_used_unix = e.last_used_unix.max(Some(*at));
                }
            }
            lock(&self.inner.used)
                .at
                .retain(|name, _| file.tokens.contains_key(name));
            Ok(())
        })
    }
}

/// The stored hex digest as bytes; a malformed one (refused when read, so
/// never in practice) becomes bytes no token hashes to.
fn hex_digest_bytes(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    if ::hex::decode_to_slice(hex, &mut out).is_err() {
        // Bytes no SHA-256 of a token is (as good as): all ones.
        out = [0xff; 32];
    }
    out
}

jsonfile::file_error!(TokensError);

#[cfg(test)]
mod tests;
