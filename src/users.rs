//! People's accounts, shared by the `login` service and the dashboard.
//!
//! Kept in `<data_dir>/users.json` (owner-only), each with an argon2id hash
//! in PHC form (`$argon2id$v=19$m=19456,t=2,p=1$...`) and a role. The file
//! is a [`JsonStore`], as the tokens file is: replaced atomically on every
//! change, each change under an exclusive `flock` on `users.json.lock` (a
//! `switchboard user` and the server changing accounts at once both keep
//! their change), and a running server notices changes made by
//! `switchboard user ...` before each check, so accounts can be managed
//! while it runs.
//!
//! Checking a password costs about 19 MiB and tens of milliseconds by
//! design; at most [`HASHING_AT_ONCE`] checks run at once, on blocking
//! threads, so a login flood queues instead of exhausting memory. Each of
//! those slots owns its argon2 memory, allocated on first use and reused
//! by every later check: a fresh 19 MiB buffer per check, freed on
//! whichever blocking thread ran it, is kept by the allocator (per-thread
//! arenas), and a burst of failed sign-ins used to leave hundreds of MiB
//! behind. An unknown user is checked against a dummy hash with the same
//! parameters, so it takes as long as a wrong password and gets the same
//! answer.

use crate::jsonfile::{self, Document, JsonStore};
use crate::sync::lock;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::Output;
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Password checks running at once, process-wide.
pub const HASHING_AT_ONCE: usize = 2;
/// argon2 blocks (1 KiB each) a hashing slot keeps between checks: enough
/// for the default parameters every account is made with. A stored hash
/// that needs more is checked in memory of its own, freed afterwards.
const KEPT_BLOCKS: usize = Params::DEFAULT_M_COST as usize;
/// How long a check waits for its turn before the answer is "busy".
const QUEUE_WAIT: Duration = Duration::from_secs(10);
/// Shortest and longest password accepted for a new one.
pub const PASSWORD_LEN: std::ops::RangeInclusive<usize> = 8..=128;
/// Longest user name.
pub const MAX_NAME_LEN: usize = 32;
/// The account the first start creates.
pub const ADMIN: &str = "admin";

/// The hash of a random password nobody knows, made with the default
/// parameters; see [`Users::verify`]. A test checks the parameters match.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$vcswz+l8JgfGWlWyjkZG9w$ckaHtFsUS9DFm2ggJn5GTZOUifKUcZ2ZNGyQ9b6FL+M";

/// What an account may do on the dashboard. Ordered: each role can do
/// everything the ones before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees everything.
    Viewer,
    /// Also sends test messages and uploads files.
    Operator,
    /// Also starts and stops services and runs commands.
    Admin,
}

impl Role {
    pub const fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Role {
    type Err = UsersError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(UsersError::BadRole(other.to_owned())),
        }
    }
}

/// Everything that can go wrong with accounts.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("cannot access {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid accounts file: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "bad user name `{0}`: use 1 to {MAX_NAME_LEN} letters, digits, `.`, `_` or `-`, starting with a letter or digit"
    )]
    BadName(String),
    #[error("unknown role `{0}` (use viewer, operator or admin)")]
    BadRole(String),
    #[error("{0}")]
    BadPassword(String),
    #[error("user `{0}` already exists")]
    Exists(String),
    #[error("no user `{0}`")]
    NoSuchUser(String),
    #[error("`{0}` is the last admin; make another admin first")]
    LastAdmin(String),
    #[error("the first account must be `{ADMIN}` (start the server once, or add `{ADMIN}` first)")]
    AdminFirst,
    #[error("too many password checks waiting; try again later")]
    Busy,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// One account as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Account {
    role: Role,
    /// argon2id, PHC string form.
    hash: String,
    created_unix: u64,
}

/// One account as shown: never the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    pub name: String,
    pub role: Role,
    pub created_unix: u64,
}

/// `users.json` as serde sees it.
#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    accounts: BTreeMap<String, Account>,
}

impl Document for File {
    type Error = UsersError;
    const WHAT: &'static str = "accounts";

    fn empty() -> File {
        File {
            version: 1,
            accounts: BTreeMap::new(),
        }
    }

    fn version(&self) -> u32 {
        self.version
    }

    fn check(&self) -> Result<(), String> {
        for (name, account) in &self.accounts {
            check_name(name).map_err(|e| e.to_string())?;
            if !account.hash.starts_with("$argon2") {
                return Err(format!("`{name}` has no argon2 hash"));
            }
        }
        Ok(())
    }
}

struct Inner {
    store: JsonStore<File>,
    hashing: Hashing,
}

/// The password-check slots: a permit each, and the argon2 memory each
/// slot hashes in.
struct Hashing {
    permits: Arc<Semaphore>,
    /// As many buffers as permits (empty until first used); a permit holder
    /// takes one and [`HashSlot`] puts it back.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

/// A turn at hashing, with the memory to hash in; dropping it (on any path,
/// a panic in the hash included) returns both.
struct HashSlot {
    memory: Vec<Block>,
    pool: Arc<Mutex<Vec<Vec<Block>>>>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for HashSlot {
    fn drop(&mut self) {
        let mut pool = lock(&self.pool);
        if pool.len() < HASHING_AT_ONCE {
            pool.push(std::mem::take(&mut self.memory));
        }
    }
}

impl Hashing {
    fn new() -> Hashing {
        Hashing {
            permits: Arc::new(Semaphore::new(HASHING_AT_ONCE)),
            memory: Arc::new(Mutex::new(vec![Vec::new(); HASHING_AT_ONCE])),
        }
    }

    /// Waits (at most [`QUEUE_WAIT`]) for a turn.
    async fn slot(&self) -> Result<HashSlot, UsersError> {
        let permit = tokio::time::timeout(QUEUE_WAIT, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| UsersError::Busy)?
            .map_err(|_| UsersError::Busy)?;
        // A permit means a buffer is free: there are as many of each. An
        // empty one would only mean allocating it now.
        let memory = lock(&self.memory).pop().unwrap_or_default();
        Ok(HashSlot {
            memory,
            pool: Arc::clone(&self.memory),
            _permit: permit,
        })
    }
}

/// The account store. Cheap to clone.
#[derive(Clone)]
pub struct Users {
    inner: Arc<Inner>,
}

/// Where the accounts of `data_dir` live.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("users.json")
}

/// Checks a user name: what may be typed at a prompt and shown anywhere.
///
/// # Errors
/// [`UsersError::BadName`].
pub fn check_name(name: &str) -> Result<(), UsersError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(UsersError::BadName(name.to_owned()))
    }
}

/// Checks a new password: long enough, short enough for a login line, no
/// control characters (they cannot be typed at the login prompt).
///
/// # Errors
/// [`UsersError::BadPassword`] saying what is wrong.
pub fn check_password(password: &str) -> Result<(), UsersError> {
    let (min, max) = (*PASSWORD_LEN.start(), *PASSWORD_LEN.end());
    if password.len() < min {
        return Err(UsersError::BadPassword(format!(
            "the password is too short: at least {min} characters"
        )));
    }
    if password.len() > max {
        return Err(UsersError::BadPassword(format!(
            "the password is too long: at most {max} bytes"
        )));
    }
    if password.chars().any(char::is_control) {
        return Err(UsersError::BadPassword(
            "the password contains control characters".into(),
        ));
    }
    Ok(())
}

/// A new random password: 20 characters from 56 unambiguous ones (~116 bits).
///
/// # Errors
/// When the OS random source fails.
pub fn generate_password() -> Result<String, UsersError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(20);
    while out.len() < 20 {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| UsersError::Hash(e.to_string()))?;
        // Rejection sampling: 224 = 4 * 56, so every character is equally likely.
        for b in bytes
            .into_iter()
            .filter(|&b| usize::from(b) < 4 * ALPHABET.len())
        {
            if out.len() < 20 {
                out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            }
        }
    }
    Ok(out)
}

fn hash(password: &str) -> Result<String, UsersError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| UsersError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`, hashing in `memory`
/// (grown to the default size once, then reused). An unparsable hash
/// matches nothing.
fn matches_in(hash: &str, password: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let blocks = params.block_count();
    let mut own;
    let memory: &mut [Block] = if blocks <= KEPT_BLOCKS {
        if memory.len() < blocks {
            memory.resize(KEPT_BLOCKS, Block::new());
        }
        &mut memory[..blocks]
    } else {
        own = vec![Block::new(); blocks];
        &mut own
    };
    let mut out = [0u8; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), &salt, out, memory)
        .is_ok()
        // `Output`'s equality is constant-time.
        && Output::new(out).is_ok_and(|computed| computed == expected)
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Users {
    /// Opens the accounts of `data_dir` (none yet is fine).
    ///
    /// # Errors
    /// When the file exists but cannot be read or parsed.
    pub fn open(data_dir: &Path) -> Result<Users, UsersError> {
        Ok(Users {
            inner: Arc::new(Inner {
                store: JsonStore::open(path(data_dir))?,
                hashing: Hashing::new(),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        self.inner.store.path()
    }

    /// Every account, by name.
    pub fn list(&self) -> Vec<UserInfo> {
        self.inner.store.view(|file| {
            file.accounts
                .iter()
                .map(|(name, a)| UserInfo {
                    name: name.clone(),
                    role: a.role,
                    created_unix: a.created_unix,
                })
                .collect()
        })
    }

    /// The role of `name`, if such an account exists.
    pub fn role(&self, name: &str) -> Option<Role> {
        self.inner
            .store
            .view(|file| file.accounts.get(name).map(|a| a.role))
    }

    /// At first start (no accounts at all), creates `admin` with `password`,
    /// or with a generated one that is returned so it can be shown once.
    ///
    /// # Errors
    /// A `password` that fails [`check_password`]; the file not writable.
    pub fn ensure_admin(&self, password: Option<&str>) -> Result<Option<String>, UsersError> {
        if !self.inner.store.view(|file| file.accounts.is_empty()) {
            return Ok(None);
        }
        let (password, generated) = match password {
            Some(p) => (p.to_owned(), false),
            None => (generate_password()?, true),
        };
        self.add(ADMIN, Role::Admin, &password)?;
        Ok(generated.then_some(password))
    }

    /// Adds an account. Hashes on the calling thread (a CLI command, or
    /// `spawn_blocking` in the server).
    ///
    /// # Errors
    /// A bad name or password, an existing name, the first account not
    /// being `admin`, the file not writable.
    pub fn add(&self, name: &str, role: Role, password: &str) -> Result<(), UsersError> {
        check_name(name)?;
        check_password(password)?;
        let hash = hash(password)?;
        self.change(|accounts| {
            if accounts.is_empty() && name != ADMIN {
                return Err(UsersError::AdminFirst);
            }
            if accounts.contains_key(name) {
                return Err(UsersError::Exists(name.to_owned()));
            }
            let role = if accounts.is_empty() {
                Role::Admin
            } else {
                role
            };
            accounts.insert(
                name.to_owned(),
                Account {
                    role,
                    hash,
                    created_unix: now_unix(),
                },
            );
            Ok(())
        })
    }

    /// Sets a new password.
    ///
    /// # Errors
    /// No such user, a bad password, the file not writable.
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), UsersError> {
        check_password(password)?;
        if self.role(name).is_none() {
            return Err(UsersError::NoSuchUser(name.to_owned()));
        }
        let hash = hash(password)?;
        self.change(|accounts| {
            let account = accounts
                .get_mut(name)
                .ok_or_else(|| UsersError::NoSuchUser(name.to_owned()))?;
            account.hash = hash;
            Ok(())
        })
    }

    /// Changes an account's role; the last admin cannot be demoted.
    ///
    /// # Errors
    /// No such user, the last admin, the file not writable.
    pub fn set_role(&self, name: &str, role: Role) -> Result<(), UsersError> {
        self.change(|accounts| {
            let current = accounts
                .get(name)
                .ok_or_else(|| UsersError::NoSuchUser(name.to_owned()))?
                .role;
            if current == Role::Admin && role != Role::Admin && admins(accounts) == 1 {
                return Err(UsersError::LastAdmin(name.to_owned()));
            }
            if let Some(a) = accounts.get_mut(name) {
                a.role = role;
            }
            Ok(())
        })
    }

    /// Removes an account; the last admin cannot be removed.
    ///
    /// # Errors
    /// No such user, the last admin, the file not writable.
    pub fn remove(&self, name: &str) -> Result<(), UsersError> {
        self.change(|accounts| {
            let account = accounts
                .get(name)
                .ok_or_else(|| UsersError::NoSuchUser(name.to_owned()))?;
            if account.role == Role::Admin && admins(accounts) == 1 {
                return Err(UsersError::LastAdmin(name.to_owned()));
            }
            accounts.remove(name);
            Ok(())
        })
    }

    /// Checks a name and password. `Ok(Some(role))` when they match,
    /// `Ok(None)` when they do not, in the same time whether or not the
    /// user exists.
    ///
    /// # Errors
    /// [`UsersError::Busy`] when too many checks are already waiting.
    pub async fn verify(&self, name: &str, password: &str) -> Result<Option<Role>, UsersError> {
        let (hash, role) = self.inner.store.view(|file| match file.accounts.get(name) {
            Some(a) => (a.hash.clone(), Some(a.role)),
            None => (DUMMY_HASH.to_owned(), None),
        });
        let mut slot = self.inner.hashing.slot().await?;
        let password = password.to_owned();
        let ok =
            tokio::task::spawn_blocking(move || matches_in(&hash, &password, &mut slot.memory))
                .await
                .map_err(|e| UsersError::Hash(e.to_string()))?;
        Ok(if ok { role } else { None })
    }

    /// A change to the accounts, made through the store (under the
    /// cross-process lock, from the file as it is now).
    fn change(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, Account>) -> Result<(), UsersError>,
    ) -> Result<(), UsersError> {
        self.inner.store.change(|file| f(&mut file.accounts))
    }
}

fn admins(accounts: &BTreeMap<String, Account>) -> usize {
    accounts.values().filter(|a| a.role == Role::Admin).count()
}

jsonfile::file_error!(UsersError);

#[cfg(test)]
mod tests;
