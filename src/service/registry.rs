//! The kinds, wired: generated from the one list in `kind.rs`
//! (`for_each_kind!`), whose line for a kind names its module here.
//!
//! From that list come [`read`] (an instance's kind-specific settings from
//! its section, boxed as [`AnySettings`] for config, which sits below the
//! kinds and never names them) and [`launch`] (starting one). Both match on
//! [`ServiceKind`] without a catch-all arm: a kind added to `kind.rs` and
//! not here is a compile error, not a panic at start.
//!
//! Also here: the entry points of `config` that need the kinds
//! (`Config::resolve`, `Config::default`, `Config::ephemeral`,
//! `Config::keys`, `ServiceConfig::builtin`), each passing [`read`] to
//! config's `*_with` function, so config's own code never calls up.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Bind, Kind, Limits, ServiceCtx, ServiceError};
use crate::config::{Config, ServiceConfig};
use crate::kind::ServiceKind;
use crate::settings::{AnySettings, ConfigError, FileSource, KindSettings, ListenAddr, Section};

/// A started service's future, and the address it is bound to.
pub type Launched = (
    Pin<Box<dyn Future<Output = Result<(), ServiceError>> + Send>>,
    ListenAddr,
);

/// What the supervisor hands every instance it starts.
pub struct Launch<'a> {
    pub listen: &'a ListenAddr,
    pub tls: Option<Arc<crate::tls::ServerTls>>,
    pub limits: &'a Limits,
    pub ctx: ServiceCtx<()>,
}

/// Binds `K`'s socket and returns its running future.
fn launch_kind<K: Kind>(settings: K, how: Launch<'_>) -> std::io::Result<Launched> {
    let (socket, local) = K::Socket::bind(how.listen, how.tls)?;
    // A duplicate for a reload or an upgrade to find, dropped right after
    // the service (and so its listener) ends.
    let key = crate::handoff::Key::of(how.ctx.id.proto(), &local);
    let live = crate::handoff::register(how.ctx.id.name(), key, socket.fd())?;
    let ctx = ServiceCtx {
        id: how.ctx.id,
        cancel: how.ctx.cancel,
        accept: how.ctx.accept,
        process: how.ctx.process,
        tasks: how.ctx.tasks,
        stats: how.ctx.stats,
        limits: <K::Socket as Bind>::limits(how.limits),
        own_udp_ports: how.ctx.own_udp_ports,
        resources: how.ctx.resources,
    };
    let run = settings.run(socket, ctx);
    Ok((
        Box::pin(async move {
            let ended = run.await;
            drop(live);
            ended
        }),
        local,
    ))
}

macro_rules! registry {
    ($($variant:ident => $name:literal, $proto:ident, $port:expr, $module:ident;)+) => {
        /// Reads `kind`'s own keys from an instance's section: the reader
        /// config is given ([`crate::config::ReadKind`]).
        ///
        /// # Errors
        /// A bad value, naming the key.
        pub fn read(kind: ServiceKind, section: &Section<'_>) -> Result<AnySettings, ConfigError> {
            Ok(match kind {
                $(ServiceKind::$variant => {
                    AnySettings::new(<super::$module::Settings as Kind>::read(section)?)
                })+
            })
        }

        /// Binds an instance's socket and returns its running future.
        ///
        /// # Errors
        /// The bind failed, or `settings` are not of `kind` (a caller's bug,
        /// reported rather than panicking the supervisor).
        pub fn launch(
            kind: ServiceKind,
            settings: &AnySettings,
            how: Launch<'_>,
        ) -> std::io::Result<Launched> {
            match kind {
                $(ServiceKind::$variant => launch_kind(
                    settings
                        .get::<super::$module::Settings>()
                        .cloned()
                        .ok_or_else(|| other_kind(kind))?,
                    how,
                ),)+
            }
        }

        $(impl KindSettings for super::$module::Settings {
            fn program(&self) -> Option<&str> {
                <Self as Kind>::program(self)
            }
        })+
    };
}

fn other_kind(kind: ServiceKind) -> std::io::Error {
    std::io::Error::other(format!("the settings are not those of a {kind} instance"))
}

crate::kind::for_each_kind!(registry);

// The entry points of config that need the kinds: config sits below the
// kinds and takes the reader as a parameter (`*_with`); these pass `read`.

impl Config {
    /// [`Config::resolve_with`] the kinds' reader: the merged config.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad key.
    pub fn resolve(
        file: Option<FileSource<'_>>,
        env: &BTreeMap<String, String>,
        flags: &[String],
    ) -> Result<Config, ConfigError> {
        Config::resolve_with(read, file, env, flags)
    }

    /// Every key the built-in instances and the dashboard have, as declared
    /// by the code that reads them.
    pub fn keys() -> Vec<String> {
        Config::keys_with(read)
    }

    /// Every service on 127.0.0.1 port 0 (an ephemeral port) with
    /// `data_dir`: what tests start from.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Config {
        Config::ephemeral_with(read, data_dir)
    }
}

impl Default for Config {
    /// The built-in defaults: every built-in instance enabled on loopback at its port.
    fn default() -> Self {
        Config::defaults_with(read)
    }
}

impl ServiceConfig {
    /// The built-in instance of `kind`, with every default.
    pub fn builtin(kind: ServiceKind) -> ServiceConfig {
        ServiceConfig::builtin_with(read, kind)
    }
}
