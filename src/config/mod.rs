//! The one `Config`, and how it is merged from (later wins) built-in
//! defaults, the TOML file, `SWITCHBOARD_*` environment variables and flags.
//!
//! Each key is declared once, where it is read (see [`crate::settings`]):
//! the top-level keys here, `[web]` in [`web`], the keys every instance has
//! in [`ServiceConfig::read`], and each kind's own keys in its module under
//! `service/`. A key nothing reads is an unknown key, reported with its
//! exact name and where it came from. Nothing here reads the process
//! environment or the disk: `main` passes the file's text and the
//! `SWITCHBOARD_*` variables in, so [`Config::resolve`] is a pure function.
//!
//! Config is a floor below the kinds: it reads the keys every instance has
//! and hands the instance's section to a [`ReadKind`] it is given for the
//! kind's own keys, holding the result as [`AnySettings`]. The one reader is
//! `service::registry::read`, above config, which also supplies the entry
//! points that need it ([`Config::resolve`], [`Config::default`],
//! [`Config::ephemeral`], [`Config::keys`], [`ServiceConfig::builtin`]).
//! Nothing here names a kind's module.
//!
//! Instances: `[services.<name>]` declares one, with `kind = "<kind>"`
//! (defaulting to the name, so `[services.echo]` is the built-in echo). The
//! seven built-in instances always exist (set `enabled = false` to keep one
//! off); any other name is a new instance and needs a `listen`.

pub mod dashboard;
pub mod overlay;
pub mod web;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::kind::{Proto, ServiceId, ServiceKind, check_name, known_kinds};
use crate::settings::{Layers, Section};

pub use crate::settings::{
    AnySettings, CertFiles, ConfigError, FileSource, KindSettings, Limits, ListenAddr, Origin,
    Secret, ServiceTls, TcpLimits, UdpLimits, env_name,
};

/// Reads a kind's own keys from an instance's section: given to config by
/// the registry above it (`service::registry::read`).
pub type ReadKind = fn(ServiceKind, &Section<'_>) -> Result<AnySettings, ConfigError>;
pub use web::{SecureCookie, WebConfig, WebTls};

/// Where an instance is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// One of the seven built-in instances (the config file may tune it).
    Builtin,
    /// A `[services.<name>]` table of the config file, environment or flags.
    Config,
    /// Added from the dashboard or `switchboard service`: `services.toml`.
    Dashboard,
}

/// One instance's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    pub id: ServiceId,
    pub source: Source,
    pub listen: ListenAddr,
    pub enabled: bool,
    /// TLS on this TCP service (`services.<name>.tls`, off by default).
    pub tls: ServiceTls,
    /// The limits of its protocol.
    pub limits: Limits,
    /// Its kind's own settings (`settings.get::<exec::Settings>()`).
    pub settings: AnySettings,
    /// The wire inspector's keys (`capture`, `capture_bytes`).
    pub capture: CaptureConfig,
    /// `public = true`: a dashboard instance of a kind with no
    /// authentication may listen beyond loopback without TLS (see
    /// [`dashboard`]).
    pub public: bool,
}

/// Whether an instance records its connections' bytes for the wire
/// inspector, and how many per connection and direction it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureConfig {
    /// `capture`: off by default; an admin can switch it live.
    pub on: bool,
    /// `capture_bytes`: the most one direction of one connection holds;
    /// older segments go first.
    pub bytes: usize,
}

impl CaptureConfig {
    /// `capture` and `capture_bytes`, which every TCP and UDP kind has.
    ///
    /// # Errors
    /// A value out of bounds.
    pub fn read(s: &Section<'_>) -> Result<Self, ConfigError> {
        Ok(CaptureConfig {
            on: s.bool("capture", false)?,
            bytes: s.usize(
                "capture_bytes",
                crate::capture::DEFAULT_CAPTURE_BYTES,
                1024,
                1 << 30,
            )?,
        })
    }
}

impl ServiceConfig {
    /// Whether it takes connections through a trusted proxy only
    /// (`accept_proxy`): a client connecting to it directly is refused.
    pub fn behind_proxy(&self) -> bool {
        matches!(&self.limits, Limits::Tcp(l) if l.accept_proxy.is_some())
    }

    /// The built-in instance of `kind`, with every default.
    pub fn builtin_with(kinds: ReadKind, kind: ServiceKind) -> ServiceConfig {
        let layers = Layers::new(None, &BTreeMap::new(), &[]).expect("no layers: nothing to parse");
        ServiceConfig::read(
            kinds,
            kind.name(),
            &layers.section(&format!("services.{kind}")),
        )
        .expect("the built-in defaults are valid")
    }

    /// Reads instance `name` from its section: `kind`, `listen`, `enabled`,
    /// TLS (TCP kinds), its protocol's limits, then its kind's own keys.
    ///
    /// # Errors
    /// A bad name, kind or value, naming the key.
    pub fn read(
        kinds: ReadKind,
        name: &str,
        s: &Section<'_>,
    ) -> Result<ServiceConfig, ConfigError> {
        check_name(name).map_err(|why| s.bad("kind", why))?;
        let kind = match s.opt_str("kind")? {
            Some(k) => k
                .parse::<ServiceKind>()
                .map_err(|e| s.bad("kind", e.to_string()))?,
            None => name.parse::<ServiceKind>().map_err(|_| {
                s.bad(
                    "kind",
                    format!(
                        "`{name}` is not a built-in service, so it needs a kind (one of: {})",
                        known_kinds()
                    ),
                )
            })?,
        };
        // Only the built-in instance named after its kind has an address of its own.
        let default_listen = kind
            .builtin_port()
            .filter(|_| name == kind.name())
            .map(ListenAddr::loopback);
        let proto = kind.proto();
        let builtin = ServiceKind::BUILTIN.iter().any(|k| k.name() == name);
        Ok(ServiceConfig {
            source: if builtin {
                Source::Builtin
            } else {
                Source::Config
            },
            id: ServiceId::new(name, kind),
            listen: s.listen("listen", default_listen, proto)?,
            enabled: s.bool("enabled", true)?,
            tls: ServiceTls::read(s, proto)?,
            limits: match proto {
                Proto::Tcp => Limits::Tcp(TcpLimits::read(s)?),
                Proto::Udp => Limits::Udp(UdpLimits::read(s)?),
            },
            settings: kinds(kind, s)?,
            capture: CaptureConfig::read(s)?,
            public: s.bool("public", false)?,
        })
    }

    /// Its kind's settings, for changing them: `service_mut("exec")
    /// .settings_mut::<exec::Settings>().shell = true`.
    ///
    /// # Panics
    /// When the instance is of another kind: a caller's bug.
    pub fn settings_mut<K: KindSettings>(&mut self) -> &mut K {
        let id = self.id.clone();
        self.settings
            .get_mut::<K>()
            .unwrap_or_else(|| panic!("{id} is not of that kind"))
    }

    /// The TCP limits, for changing them.
    ///
    /// # Panics
    /// On a UDP instance: a caller's bug.
    pub fn tcp_mut(&mut self) -> &mut TcpLimits {
        match &mut self.limits {
            Limits::Tcp(l) => l,
            Limits::Udp(_) => panic!("{} is a UDP service", self.id),
        }
    }

    /// The UDP limits, for changing them.
    ///
    /// # Panics
    /// On a TCP instance: a caller's bug.
    pub fn udp_mut(&mut self) -> &mut UdpLimits {
        match &mut self.limits {
            Limits::Udp(l) => l,
            Limits::Tcp(_) => panic!("{} is a TCP service", self.id),
        }
    }
}

/// Everything switchboard runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where files/, the user accounts, the generated key and the audit log live.
    pub data_dir: PathBuf,
    /// The HMAC key for exec and files; `None` until generated at first start.
    pub key: Option<Secret>,
    pub web: WebConfig,
    /// Every instance: the seven built-in ones first, in their table order,
    /// then the others by name.
    pub services: Vec<ServiceConfig>,
    /// How long shutdown waits for connections to finish before giving up.
    pub shutdown_grace: Duration,
    /// What the wire inspector's captures hold at most, all together
    /// (`capture_total_bytes`).
    pub capture_total_bytes: usize,
    /// After a service panics it is restarted after this long, doubling with
    /// each further panic up to [`Config::restart_backoff_max`]. Not a key:
    /// fixed at 1 s; tests shorten it.
    pub restart_backoff: Duration,
    /// The longest wait between restarts after panics (60 s).
    pub restart_backoff_max: Duration,
    /// Things worth telling the operator that did not stop the start.
    pub warnings: Vec<String>,
    /// `keep_going`: `serve` runs on when the dashboard or an enabled
    /// instance cannot bind at start (false: it exits non-zero, so a
    /// supervisor such as systemd sees the failure).
    pub keep_going: bool,
    /// `stdio_allow`: the programs (absolute paths) a stdio instance added
    /// from the dashboard may run (see [`dashboard`]).
    pub stdio_allow: Vec<String>,
    /// The reader of the kinds' own keys this config was read with, for
    /// the instances `services.toml` adds ([`overlay::Overlay::apply`]).
    pub kinds: ReadKind,
}

/// Environment variables read by `main` itself rather than mapped to keys.
pub const ENV_CONFIG: &str = "SWITCHBOARD_CONFIG";
pub const ENV_ADMIN_PASSWORD: &str = "SWITCHBOARD_ADMIN_PASSWORD";
/// A file holding the first admin password (systemd's `LoadCredential=`,
/// a container secret), used when `SWITCHBOARD_ADMIN_PASSWORD` is unset.
pub const ENV_ADMIN_PASSWORD_FILE: &str = "SWITCHBOARD_ADMIN_PASSWORD_FILE";
/// The command line's own variables (`--log-format`, `--port-base`).
pub const ENV_LOG_FORMAT: &str = "SWITCHBOARD_LOG_FORMAT";
pub const ENV_PORT_BASE: &str = "SWITCHBOARD_PORT_BASE";

/// How far above `--port-base` the dashboard goes.
pub const WEB_PORT_OFFSET: u16 = 80;

/// `--port-base N` as `--set` flags: the seven built-in services on
/// N…N+6 in [`ServiceKind::BUILTIN`] order and the dashboard on N+80, each
/// keeping the IP address `config` gives it (a `unix:` listen is left
/// alone; other instances keep their addresses). Placed before the
/// person's own `--set` flags, which win.
///
/// # Errors
/// When N+80 is beyond the last port.
pub fn port_base_flags(config: &Config, base: u16) -> Result<Vec<String>, String> {
    let top = base.checked_add(WEB_PORT_OFFSET).filter(|_| base > 0).ok_or_else(|| {
        format!(
            "--port-base {base} is out of range: it needs ports {base}..{base}+{WEB_PORT_OFFSET} (1 to {})",
            u16::MAX - WEB_PORT_OFFSET
        )
    })?;
    let at = |ip: std::net::IpAddr, port: u16| SocketAddr::new(ip, port).to_string();
    let mut flags: Vec<String> = ServiceKind::BUILTIN
        .iter()
        .zip(base..)
        .filter_map(|(kind, port)| {
            let ip = config.service(kind)?.listen.inet()?.ip();
            Some(format!("services.{kind}.listen={}", at(ip, port)))
        })
        .collect();
    flags.push(format!("web.listen={}", at(config.web.listen.ip(), top)));
    Ok(flags)
}

impl Config {
    /// Merges the layers (file, then environment, then `--set KEY=VALUE`
    /// flags, later wins) over the built-in defaults and checks every value.
    ///
    /// `env` holds the `SWITCHBOARD_*` variables; the ones `main` handles
    /// itself (`SWITCHBOARD_CONFIG`, `SWITCHBOARD_ADMIN_PASSWORD`, ...) are
    /// skipped, and other unknown ones produce a warning rather than an
    /// error, since an environment is often shared with other tools.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad key.
    pub fn resolve_with(
        kinds: ReadKind,
        file: Option<FileSource<'_>>,
        env: &BTreeMap<String, String>,
        flags: &[String],
    ) -> Result<Config, ConfigError> {
        let layers = Layers::new(file, env, flags)?;
        let mut config = Config::read(kinds, &layers)?;
        config.warnings = layers.finish(&[
            ENV_CONFIG,
            ENV_ADMIN_PASSWORD,
            ENV_ADMIN_PASSWORD_FILE,
            ENV_LOG_FORMAT,
            ENV_PORT_BASE,
        ])?;
        Ok(config)
    }

    /// Every key the built-in instances and the dashboard have (an added
    /// instance has its kind's keys under its own name), as declared by the
    /// code that reads them.
    pub fn keys_with(kinds: ReadKind) -> Vec<String> {
        let layers = Layers::new(None, &BTreeMap::new(), &[]).expect("no layers: nothing to parse");
        let _ = Config::read(kinds, &layers);
        layers.read_keys()
    }

    fn read(kinds: ReadKind, layers: &Layers) -> Result<Config, ConfigError> {
        let root = layers.root();
        let defaults = Config::defaults_with(kinds);
        let data_dir = root.path("data_dir", &defaults.data_dir)?;
        let key = match root.opt_str("key")? {
            Some(k) if k.is_empty() => return Err(root.bad("key", "must not be empty")),
            k => k.map(Secret::new),
        };
        let web = WebConfig::read(&layers.section("web"))?;
        let mut names: Vec<String> = ServiceKind::BUILTIN
            .iter()
            .map(|k| k.name().to_owned())
            .collect();
        for name in layers.service_names() {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let services = names
            .iter()
            .map(|name| {
                ServiceConfig::read(kinds, name, &layers.section(&format!("services.{name}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let shutdown_grace = root.ms("shutdown_grace_ms", defaults.shutdown_grace, 0, 600_000)?;
        let capture_total_bytes = root.usize(
            "capture_total_bytes",
            defaults.capture_total_bytes,
            0,
            1 << 40,
        )?;
        let keep_going = root.bool("keep_going", defaults.keep_going)?;
        let stdio_allow = root.str_list("stdio_allow")?.unwrap_or_default();
        if let Some(bad) = stdio_allow.iter().find(|p| !Path::new(p).is_absolute()) {
            return Err(root.bad(
                "stdio_allow",
                format!("`{bad}` is not an absolute path (no PATH lookup: e.g. \"/usr/bin/bc\")"),
            ));
        }
        Ok(Config {
            data_dir,
            key,
            web,
            services,
            shutdown_grace,
            capture_total_bytes,
            keep_going,
            stdio_allow,
            ..defaults
        })
    }

    /// The instance named `name`.
    pub fn service(&self, name: impl AsRef<str>) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.id.name() == name.as_ref())
    }

    /// The instance named `name`, for changing its settings.
    ///
    /// # Panics
    /// When there is none: a caller's bug.
    pub fn service_mut(&mut self, name: impl AsRef<str>) -> &mut ServiceConfig {
        let name = name.as_ref();
        self.services
            .iter_mut()
            .find(|s| s.id.name() == name)
            .unwrap_or_else(|| panic!("no service named {name}"))
    }

    /// Every service on 127.0.0.1 port 0 (an ephemeral port) with `data_dir`:
    /// what tests start from.
    pub fn ephemeral_with(kinds: ReadKind, data_dir: impl Into<PathBuf>) -> Config {
        let mut config = Config {
            data_dir: data_dir.into(),
            ..Config::defaults_with(kinds)
        };
        for s in &mut config.services {
            s.listen = ListenAddr::loopback(0);
        }
        config.web.listen = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0));
        config
    }

    /// The built-in defaults: every built-in instance enabled on loopback at its port.
    pub fn defaults_with(kinds: ReadKind) -> Self {
        Config {
            data_dir: PathBuf::from("switchboard-data"),
            key: None,
            web: WebConfig::default(),
            services: ServiceKind::BUILTIN
                .iter()
                .map(|&kind| ServiceConfig::builtin_with(kinds, kind))
                .collect(),
            shutdown_grace: Duration::from_secs(5),
            capture_total_bytes: crate::capture::DEFAULT_TOTAL_BYTES,
            restart_backoff: Duration::from_secs(1),
            restart_backoff_max: Duration::from_secs(60),
            warnings: Vec::new(),
            keep_going: false,
            stdio_allow: Vec::new(),
            kinds,
        }
    }
}

#[cfg(test)]
mod tests;
