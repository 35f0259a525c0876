//! The kinds, wired: generated from the one list in `kind.rs`
//! (`for_each_kind!`), whose line for a kind names its module here.
//!
//! From that list come [`KindConfig`] (an instance's kind-specific
//! settings), reading them from an instance's section, and starting one.
//! Both match on [`ServiceKind`] / [`KindConfig`] without a catch-all arm:
//! a kind added to `kind.rs` and not here is a compile error, not a panic
//! at start.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::{Bind, Kind, Limits, ServiceCtx, ServiceError};
use crate::kind::ServiceKind;
use crate::settings::{ConfigError, ListenAddr, Section};

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
fn launch<K: Kind>(settings: K, how: Launch<'_>) -> std::io::Result<Launched> {
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
        /// An instance's kind and its kind's own settings.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum KindConfig {
            $($variant(super::$module::Settings),)+
        }

        impl KindConfig {
            /// Reads `kind`'s own keys from an instance's section.
            ///
            /// # Errors
            /// A bad value, naming the key.
            pub fn read(kind: ServiceKind, section: &Section<'_>) -> Result<Self, ConfigError> {
                Ok(match kind {
                    $(ServiceKind::$variant => {
                        KindConfig::$variant(<super::$module::Settings as Kind>::read(section)?)
                    })+
                })
            }

            pub fn kind(&self) -> ServiceKind {
                match self {
                    $(KindConfig::$variant(_) => ServiceKind::$variant,)+
                }
            }

            /// The settings of kind `K`, if this is one.
            pub fn get<K: OfKind>(&self) -> Option<&K> {
                K::of(self)
            }

            /// The settings of kind `K`, if this is one, for changing them.
            pub fn get_mut<K: OfKind>(&mut self) -> Option<&mut K> {
                K::of_mut(self)
            }

            /// Binds the instance's socket and returns its running future.
            ///
            /// # Errors
            /// The bind failed.
            pub fn launch(self, how: Launch<'_>) -> std::io::Result<Launched> {
                match self {
                    $(KindConfig::$variant(s) => launch(s, how),)+
                }
            }
        }

        $(impl OfKind for super::$module::Settings {
            fn of(config: &KindConfig) -> Option<&Self> {
                match config {
                    KindConfig::$variant(s) => Some(s),
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }

            fn of_mut(config: &mut KindConfig) -> Option<&mut Self> {
                match config {
                    KindConfig::$variant(s) => Some(s),
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        })+
    };
}

/// A kind's settings type, found in a [`KindConfig`].
pub trait OfKind: Sized {
    fn of(config: &KindConfig) -> Option<&Self>;
    fn of_mut(config: &mut KindConfig) -> Option<&mut Self>;
}

crate::kind::for_each_kind!(registry);
