//! What the services share with the rest of the process, opened once:
//! the stats registry, the root token, accounts, audit log, files folder,
//! HMAC key and certificates.

use crate::audit::AuditLog;
use crate::config::Config;
use crate::service::Resources;
use crate::shutdown::Shutdown;
use crate::stats::Stats;
use crate::users::{Users, UsersError};

/// What the services share with the rest of the process.
#[derive(Clone)]
pub struct Deps {
    pub stats: Stats,
    /// The process's root token and task tracker; services hang below it.
    pub root: Shutdown,
    pub users: Users,
    pub audit: AuditLog,
    /// The files folder of `files` and `files-classic`.
    pub store: crate::store::Store,
    /// The HMAC key of exec and files.
    pub key: Option<crate::settings::Secret>,
    /// The certificates of the dashboard and of TLS services.
    pub tls: crate::tls::Certs,
    /// The proxies' toxics.
    pub toxics: crate::toxic::Toxics,
    /// The chat kinds' conversations, answered from the dashboard.
    pub chats: crate::service::chat_hub::ChatHub,
}

impl Deps {
    /// Fresh stats and shutdown, with the accounts and audit log of
    /// `config.data_dir` (what tests and benchmarks start from).
    ///
    /// # Errors
    /// When the accounts file or the audit log cannot be opened.
    pub fn open(config: &Config) -> Result<Deps, DepsError> {
        Ok(Deps {
            stats: Stats::with_capture_budget(config.capture_total_bytes),
            root: Shutdown::new(),
            users: Users::open(&config.data_dir)?,
            audit: AuditLog::open(&config.data_dir).map_err(|source| DepsError::Audit {
                path: crate::audit::path(&config.data_dir),
                source,
            })?,
            store: crate::store::Store::open(&config.data_dir).map_err(|source| {
                DepsError::Files {
                    path: crate::store::dir(&config.data_dir),
                    source,
                }
            })?,
            key: config.key.clone(),
            tls: crate::tls::Certs::open(crate::tls::Wanted {
                data_dir: &config.data_dir,
                names: crate::tls::self_signed_names(
                    config.web.listen.ip(),
                    &config.web.allowed_hosts,
                ),
                web: &config.web.tls,
                services: config
                    .services
                    .iter()
                    .map(|s| (s.id.name(), &s.tls))
                    .collect(),
            })?,
            toxics: crate::toxic::Toxics::new(),
            chats: crate::service::chat_hub::ChatHub::default(),
        })
    }

    /// What every service shares.
    pub fn resources(&self) -> Resources {
        Resources {
            users: self.users.clone(),
            audit: self.audit.clone(),
            store: self.store.clone(),
            key: self.key.clone(),
            toxics: self.toxics.clone(),
            chats: self.chats.clone(),
        }
    }
}

/// Why [`Deps::open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error(transparent)]
    Users(#[from] UsersError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot open the audit log {}: {source}", path.display())]
    Audit {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the files folder {}: {source}", path.display())]
    Files {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}
