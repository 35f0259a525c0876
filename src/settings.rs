//! How settings are read: every key is declared once, by the code that reads it.
//!
//! The layers (the TOML file, `SWITCHBOARD_*` environment variables and
//! `--set KEY=VALUE` flags, later wins) are kept as raw values with their
//! origin. A [`Section`] getter such as `s.ms("idle_timeout_ms", default, 100,
//! 86_400_000)` is the key's only declaration: it names the key, its type,
//! bounds and default, looks the value up in the flags, the environment (the
//! variable's name comes from the key, see [`env_name`]) and the file, checks
//! it and marks the key as read. Once everything is read, a file or flag key
//! that nothing read is an unknown key, named with where it came from — so a
//! key that nothing reads cannot exist, and there is no second list to keep
//! in step.
//!
//! This module is a floor below the services: each kind reads its own
//! settings with it (see `service::registry`), and `config` assembles them.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::kind::Proto;

mod service_tls;
pub use service_tls::{CertFiles, ServiceTls, WebTls};

mod limits;
pub use limits::{Limits, TcpLimits, UdpLimits};

mod kind_settings;
pub use kind_settings::{AnySettings, KindSettings};

mod map;

mod shape;
pub use shape::Shape;

mod proxies;
pub use proxies::{Cidr, TrustedProxies, read_accept_proxy};

/// Where a TCP or UDP service listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// `127.0.0.1:9000` or `[::1]:9000`.
    Inet(SocketAddr),
    /// `unix:/run/switchboard/echo.sock` (TCP services only).
    Unix(PathBuf),
}

impl ListenAddr {
    pub fn inet(&self) -> Option<SocketAddr> {
        match self {
            ListenAddr::Inet(a) => Some(*a),
            ListenAddr::Unix(_) => None,
        }
    }

    /// Where a client on this host reaches it: a wildcard IP (`0.0.0.0`,
    /// `::`) becomes loopback of the same family.
    pub fn connectable(&self) -> ListenAddr {
        match self {
            ListenAddr::Inet(a) if a.ip().is_unspecified() => {
                let mut a = *a;
                a.set_ip(match a {
                    SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
                ListenAddr::Inet(a)
            }
            other => other.clone(),
        }
    }

    /// `127.0.0.1:port`.
    pub fn loopback(port: u16) -> ListenAddr {
        ListenAddr::Inet(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Inet(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("`unix:` needs a path, as in unix:/tmp/echo.sock".into());
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        // A bare port means loopback, as the clients read it: safe by default.
        if let Ok(port) = s.parse::<u16>() {
            return Ok(ListenAddr::loopback(port));
        }
        s.parse::<SocketAddr>().map(ListenAddr::Inet).map_err(|_| {
            format!("`{s}` is not an address: use IP:PORT, [IPv6]:PORT, PORT or unix:PATH")
        })
    }
}

/// A secret from the config (the HMAC key). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why a configuration was refused. Each names the key and its origin.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot parse config file {path}: {message}")]
    FileSyntax { path: PathBuf, message: String },
    #[error("unknown config key `{key}` ({origin})")]
    UnknownKey { key: String, origin: Origin },
    #[error("bad value for `{key}` ({origin}): {message}")]
    BadValue {
        key: String,
        origin: Origin,
        message: String,
    },
    #[error("`--set` takes KEY=VALUE, got `{0}`")]
    BadFlag(String),
}

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Env(String),
    Flag,
    /// Not set anywhere: the built-in default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "in {}", p.display()),
            Origin::Env(name) => write!(f, "from environment variable {name}"),
            Origin::Flag => f.write_str("from the command line"),
            Origin::Default => f.write_str("not set"),
        }
    }
}

/// The environment variable for a key: `services.udp-echo.listen` is
/// `SWITCHBOARD_UDP_ECHO_LISTEN`, `web.listen` is `SWITCHBOARD_WEB_LISTEN`.
pub fn env_name(key: &str) -> String {
    let key = key.strip_prefix("services.").unwrap_or(key);
    format!(
        "SWITCHBOARD_{}",
        key.replace(['.', '-'], "_").to_ascii_uppercase()
    )
}

/// A value as a layer holds it: typed (TOML) or text (environment, flags)
/// that is parsed once the reading code says which type the key has.
#[derive(Debug, Clone)]
enum Raw {
    Toml(toml::Value),
    Text(String),
}

/// The three layers, and which keys have been read.
pub struct Layers {
    file: BTreeMap<String, (toml::Value, PathBuf)>,
    env: BTreeMap<String, String>,
    flags: BTreeMap<String, String>,
    /// Keys read so far, and the key each environment variable was read for.
    read: RefCell<(BTreeSet<String>, BTreeMap<String, String>)>,
    /// Each key that some layer set, as the type its reader parsed it to:
    /// text from flags becomes a TOML value that can be written to a file.
    typed: RefCell<BTreeMap<String, toml::Value>>,
    /// Each key's type, default and bounds, as its getter declared them.
    shapes: RefCell<BTreeMap<String, Shape>>,
}

/// A config file's path and text.
#[derive(Clone, Copy)]
pub struct FileSource<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Layers {
    /// Parses the file and splits the flags; nothing is checked against keys yet.
    ///
    /// # Errors
    /// The file is not TOML, or a flag is not `KEY=VALUE`.
    pub fn new(
        file: Option<FileSource<'_>>,
        env: &BTreeMap<String, String>,
        flags: &[String],
    ) -> Result<Layers, ConfigError> {
        let mut layers = Layers {
            file: BTreeMap::new(),
            env: env.clone(),
            flags: BTreeMap::new(),
            read: RefCell::default(),
            typed: RefCell::default(),
            shapes: RefCell::default(),
        };
        if let Some(FileSource { path, text }) = file {
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::FileSyntax {
                        path: path.to_owned(),
                        message: e.to_string(),
                    })?;
            flatten("", &table, path, &mut layers.file);
        }
        for flag in flags {
            let (key, text) = flag
                .split_once('=')
                .ok_or_else(|| ConfigError::BadFlag(flag.clone()))?;
            layers.flags.insert(key.trim().to_owned(), text.to_owned());
        }
        Ok(layers)
    }

    /// The top-level section (`data_dir`, `key`, ...).
    pub fn root(&self) -> Section<'_> {
        Section {
            layers: self,
            prefix: String::new(),
        }
    }

    /// The keys under `prefix.` (`web`, `services.echo`).
    pub fn section(&self, prefix: &str) -> Section<'_> {
        Section {
            layers: self,
            prefix: format!("{prefix}."),
        }
    }

    /// The distinct names `N` of the tables `services.N` the file and the
    /// flags mention, in order.
    pub fn service_names(&self) -> BTreeSet<String> {
        self.file
            .keys()
            .chain(self.flags.keys())
            .filter_map(|k| k.strip_prefix("services."))
            .filter_map(|rest| rest.split_once('.').map(|(name, _)| name.to_owned()))
            .collect()
    }

    /// Every key that a layer set and a reader parsed, as a typed TOML value.
    pub fn typed_values(&self) -> BTreeMap<String, toml::Value> {
        self.typed.borrow().clone()
    }

    /// Every key read so far, in order.
    pub fn read_keys(&self) -> Vec<String> {
        self.read.borrow().0.iter().cloned().collect()
    }

    /// After everything is read: a file or flag key nothing read is an
    /// error; an environment variable nothing read is returned as a warning
    /// (an environment is often shared with other tools).
    ///
    /// # Errors
    /// [`ConfigError::UnknownKey`] naming the first such key and its origin.
    pub fn finish(self, handled_env: &[&str]) -> Result<Vec<String>, ConfigError> {
        let (read, env_read) = self.read.into_inner();
        if let Some(key) = self.flags.keys().find(|k| !read.contains(*k)) {
            return Err(ConfigError::UnknownKey {
                key: key.clone(),
                origin: Origin::Flag,
            });
        }
        if let Some((key, (_, path))) = self.file.iter().find(|(k, _)| !read.contains(*k)) {
            return Err(ConfigError::UnknownKey {
                key: key.clone(),
                origin: Origin::File(path.clone()),
            });
        }
        Ok(self
            .env
            .keys()
            .filter(|name| name.starts_with("SWITCHBOARD_"))
            .filter(|name| !env_read.contains_key(*name) && !handled_env.contains(&name.as_str()))
            .map(|name| format!("ignoring unknown environment variable {name}"))
            .collect())
    }

    /// The value of `key` from the last layer that sets it, marking the key
    /// (and its environment variable) as read.
    fn get(&self, key: &str) -> Result<Option<(Raw, Origin)>, ConfigError> {
        let env = env_name(key);
        {
            let (read, env_read) = &mut *self.read.borrow_mut();
            read.insert(key.to_owned());
            if self.env.contains_key(&env) {
                match env_read.get(&env) {
                    Some(other) if other != key => {
                        return Err(ConfigError::BadValue {
                            key: key.to_owned(),
                            origin: Origin::Env(env.clone()),
                            message: format!(
                                "{env} is ambiguous: it also names `{other}`; set these \
                                 keys in the config file instead"
                            ),
                        });
                    }
                    _ => {
                        env_read.insert(env.clone(), key.to_owned());
                    }
                }
            }
        }
        if let Some(text) = self.flags.get(key) {
            return Ok(Some((Raw::Text(text.clone()), Origin::Flag)));
        }
        if let Some(text) = self.env.get(&env) {
            return Ok(Some((Raw::Text(text.clone()), Origin::Env(env))));
        }
        Ok(self
            .file
            .get(key)
            .map(|(v, path)| (Raw::Toml(v.clone()), Origin::File(path.clone()))))
    }
}

fn flatten(
    prefix: &str,
    table: &toml::Table,
    path: &Path,
    out: &mut BTreeMap<String, (toml::Value, PathBuf)>,
) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&key, t, path, out),
            other => {
                out.insert(key, (other.clone(), path.to_owned()));
            }
        }
    }
}

/// The keys under one prefix, read through typed getters. Each getter is the
/// key's declaration: its name, type, bounds and default.
pub struct Section<'a> {
    layers: &'a Layers,
    prefix: String,
}

impl Section<'_> {
    /// The full dotted name of `field`.
    pub fn key(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    /// An error about `field`, naming where its value came from.
    pub fn bad(&self, field: &str, message: impl Into<String>) -> ConfigError {
        let key = self.key(field);
        let origin = self
            .layers
            .get(&key)
            .ok()
            .flatten()
            .map_or(Origin::Default, |(_, o)| o);
        ConfigError::BadValue {
            key,
            origin,
            message: message.into(),
        }
    }

    fn value(&self, field: &str) -> Result<Option<(Raw, Origin)>, ConfigError> {
        self.layers.get(&self.key(field))
    }

    /// Remembers what a set value parsed to (see [`Layers::typed_values`]).
    fn keep<T>(&self, field: &str, parsed: T, as_toml: impl FnOnce(&T) -> toml::Value) -> T {
        self.layers
            .typed
            .borrow_mut()
            .insert(self.key(field), as_toml(&parsed));
        parsed
    }

    fn err(&self, field: &str, origin: Origin, message: impl Into<String>) -> ConfigError {
        ConfigError::BadValue {
            key: self.key(field),
            origin,
            message: message.into(),
        }
    }

    /// Whether any layer sets `field`, without declaring it: for a key this
    /// section does not have but wants to explain (TLS on UDP).
    pub fn is_set(&self, field: &str) -> bool {
        let key = self.key(field);
        self.layers.flags.contains_key(&key)
            || self.layers.env.contains_key(&env_name(&key))
            || self.layers.file.contains_key(&key)
    }

    /// A string, `None` when unset.
    ///
    /// # Errors
    /// The value is not a string.
    pub fn opt_str(&self, field: &str) -> Result<Option<String>, ConfigError> {
        self.declare(field, || Shape::Text);
        let text = match self.value(field)? {
            None => return Ok(None),
            Some((Raw::Text(t), _)) => t.trim().to_owned(),
            Some((Raw::Toml(toml::Value::String(s)), _)) => s,
            Some((_, origin)) => return Err(self.err(field, origin, "expected a string")),
        };
        Ok(Some(
            self.keep(field, text, |t| toml::Value::String(t.clone())),
        ))
    }

    /// A path, or `default` when unset.
    ///
    /// # Errors
    /// Not a string, or empty.
    pub fn path(&self, field: &str, default: &Path) -> Result<PathBuf, ConfigError> {
        self.declare(field, || Shape::path(default));
        match self.opt_str(field)? {
            None => Ok(default.to_owned()),
            Some(p) if p.is_empty() => Err(self.bad(field, "must not be empty")),
            Some(p) => Ok(PathBuf::from(p)),
        }
    }

    /// `true` or `false` (`yes`/`no`, `on`/`off`, `1`/`0` as text).
    ///
    /// # Errors
    /// Anything else.
    pub fn bool(&self, field: &str, default: bool) -> Result<bool, ConfigError> {
        self.declare(field, || Shape::Bool { default });
        let b = match self.value(field)? {
            None => return Ok(default),
            Some((Raw::Toml(toml::Value::Boolean(b)), _)) => b,
            Some((Raw::Text(t), origin)) => match t.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    let msg = format!("expected true or false, got `{t}`");
                    return Err(self.err(field, origin, msg));
                }
            },
            Some((_, origin)) => return Err(self.err(field, origin, "expected true or false")),
        };
        Ok(self.keep(field, b, |b| toml::Value::Boolean(*b)))
    }

    /// A whole number in `min..=max`.
    ///
    /// # Errors
    /// Not a number, or out of bounds.
    pub fn int(&self, field: &str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        self.declare(field, || Shape::Int { default, min, max });
        let (value, origin) = match self.value(field)? {
            None => return Ok(default),
            Some((Raw::Toml(toml::Value::Integer(i)), origin)) => (i, origin),
            Some((Raw::Text(t), origin)) => match t.trim().parse::<i64>() {
                Ok(i) => (i, origin),
                Err(_) => {
                    let msg = format!("expected a whole number, got `{}`", t.trim());
                    return Err(self.err(field, origin, msg));
                }
            },
            Some((_, origin)) => return Err(self.err(field, origin, "expected a whole number")),
        };
        let checked = u64::try_from(value)
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| {
                let msg = format!("expected {min} to {max}, got {value}");
                self.err(field, origin, msg)
            })?;
        Ok(self.keep(field, checked, |_| toml::Value::Integer(value)))
    }

    /// A count in `min..=max`.
    ///
    /// # Errors
    /// As [`Section::int`].
    pub fn usize(
        &self,
        field: &str,
        default: usize,
        min: u64,
        max: u64,
    ) -> Result<usize, ConfigError> {
        // Bounds are far below usize::MAX on every platform we build for.
        self.int(field, default as u64, min, max)
            .map(|v| v as usize)
    }

    /// A rate or a small count in `min..=max`.
    ///
    /// # Errors
    /// As [`Section::int`].
    pub fn u32(&self, field: &str, default: u32, min: u32, max: u32) -> Result<u32, ConfigError> {
        self.int(field, u64::from(default), u64::from(min), u64::from(max))
            .map(|v| v as u32)
    }

    /// A duration in milliseconds (the key ends in `_ms`), in `min..=max` ms.
    ///
    /// # Errors
    /// As [`Section::int`].
    pub fn ms(
        &self,
        field: &str,
        default: Duration,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.declare(field, || Shape::ms(default, min, max));
        self.int(field, default.as_millis() as u64, min, max)
            .map(Duration::from_millis)
    }

    /// A list of strings (comma-separated as text).
    ///
    /// # Errors
    /// Not a list of strings.
    pub fn str_list(&self, field: &str) -> Result<Option<Vec<String>>, ConfigError> {
        self.declare(field, || Shape::List);
        let items = match self.value(field)? {
            None => return Ok(None),
            Some((Raw::Text(t), _)) => t
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            Some((Raw::Toml(toml::Value::Array(items)), origin)) => items
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s),
                    _ => Err(self.err(field, origin.clone(), "expected a list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some((_, origin)) => return Err(self.err(field, origin, "expected a list of strings")),
        };
        let as_toml = |items: &Vec<String>| {
            toml::Value::Array(items.iter().cloned().map(toml::Value::String).collect())
        };
        Ok(Some(self.keep(field, items, as_toml)))
    }
}
