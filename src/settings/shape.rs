//! What each getter declares about its key besides the name: its type,
//! default and bounds ([`Shape`]), recorded as the key is read so that a
//! description of the keys (the dashboard's form, `/api/v1/kinds`) comes
//! from the readers themselves and cannot drift from them.
//!
//! It does not hold descriptions or enum values: those are words for
//! people, kept with the kinds (`service::describe`) and tested against
//! these declarations. Also here, for the size of `settings.rs`: the
//! `listen` getter.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::{ConfigError, Layers, ListenAddr, Section};
use crate::kind::Proto;

/// A key's type, default and bounds, as its getter declared them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Shape {
    /// `true` or `false`.
    Bool { default: bool },
    /// A whole number in `min..=max`.
    Int { default: u64, min: u64, max: u64 },
    /// A duration in milliseconds in `min..=max`.
    Duration { default: u64, min: u64, max: u64 },
    /// Text, unset by default.
    Text,
    /// A path, with the one used when unset.
    Path { default: String },
    /// An address to listen on (`IP:PORT` or `unix:PATH`).
    Address { default: Option<String> },
    /// A list of strings.
    List,
    /// A table of `NAME = "value"`.
    Table,
}

impl Shape {
    pub(super) fn ms(default: Duration, min: u64, max: u64) -> Shape {
        Shape::Duration {
            default: u64::try_from(default.as_millis()).unwrap_or(u64::MAX),
            min,
            max,
        }
    }

    pub(super) fn path(default: &Path) -> Shape {
        Shape::Path {
            default: default.display().to_string(),
        }
    }

    pub(super) fn address(default: Option<&ListenAddr>) -> Shape {
        Shape::Address {
            default: default.map(ToString::to_string),
        }
    }
}

impl Layers {
    /// Every key declared so far, with its shape.
    pub fn shapes(&self) -> BTreeMap<String, Shape> {
        self.shapes.borrow().clone()
    }
}

impl Section<'_> {
    /// Records `field`'s shape. The first declaration wins: `ms` declares
    /// a duration before it reads through `int`, `path` a path before
    /// `opt_str`, and a later read of the same key as text (to look at
    /// `listen` again) does not change what it is.
    pub(super) fn declare(&self, field: &str, shape: impl FnOnce() -> Shape) {
        self.layers
            .shapes
            .borrow_mut()
            .entry(self.key(field))
            .or_insert_with(shape);
    }

    /// An address to listen on; UDP cannot listen on a `unix:` path.
    ///
    /// # Errors
    /// Not an address, or a `unix:` path for UDP.
    pub fn listen(
        &self,
        field: &str,
        default: Option<ListenAddr>,
        proto: Proto,
    ) -> Result<ListenAddr, ConfigError> {
        self.declare(field, || Shape::address(default.as_ref()));
        let Some(text) = self.opt_str(field)? else {
            return default.ok_or_else(|| {
                self.bad(
                    field,
                    "is required: this service has no built-in address (e.g. \"127.0.0.1:9100\")",
                )
            });
        };
        let addr: ListenAddr = text.parse().map_err(|e: String| self.bad(field, e))?;
        if proto == Proto::Udp && matches!(addr, ListenAddr::Unix(_)) {
            return Err(self.bad(field, "a UDP service cannot listen on a unix: path"));
        }
        Ok(addr)
    }
}
