//! Kinds of service, and the identity of one running instance of a kind.
//!
//! A *kind* is a protocol switchboard can serve (`echo`, `files`, ...); an
//! *instance* is one configured copy of a kind under its own name
//! (`[services.backup-files] kind = "files"`). The seven built-in instances
//! are named after their kinds, so `echo` is both.
//!
//! This is a leaf module (no sockets, no config) so that `stats`, `config`
//! and the web layer can name kinds and instances without depending on the
//! code that runs them. The kinds are declared once, in the table below;
//! `service::registry` matches on [`ServiceKind`] without a catch-all arm,
//! so a kind declared here but not wired there does not compile.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// Transport protocol of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// The one list of kinds: variant, name, protocol, the port of its built-in
/// instance (`None`: it has none, instances are added by config), and the
/// module under `service/` that implements it. [`ServiceKind`] (here), the
/// module declarations in `service/mod.rs` and `service::registry` are all
/// generated from it, so adding a kind is this one line plus its module.
macro_rules! for_each_kind {
    ($then:ident) => {
        $then! {
            Echo => "echo", Tcp, Some(9000), echo;
            UdpEcho => "udp-echo", Udp, Some(9001), udp_echo;
            Time => "time", Udp, Some(9002), time;
            Exec => "exec", Tcp, Some(9003), exec;
            Files => "files", Tcp, Some(9004), files;
            FilesClassic => "files-classic", Tcp, Some(9005), files_classic;
            Login => "login", Tcp, Some(9006), login;
            Stdio => "stdio", Tcp, None, stdio;
            TcpProxy => "tcp-proxy", Tcp, None, tcp_proxy;
            UdpProxy => "udp-proxy", Udp, None, udp_proxy;
            Chat => "chat", Tcp, None, chat;
            UdpChat => "udp-chat", Udp, None, udp_chat;
        }
    };
}
pub(crate) use for_each_kind;

/// Declares [`ServiceKind`] and its table from [`for_each_kind`].
macro_rules! kinds {
    ($($variant:ident => $name:literal, $proto:ident, $port:expr, $module:ident;)+) => {
        /// A protocol switchboard serves.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(into = "&'static str")]
        pub enum ServiceKind {
            $($variant,)+
        }

        impl ServiceKind {
            /// Every kind, in the order README.md's service table lists them.
            pub const ALL: &'static [ServiceKind] = &[$(ServiceKind::$variant,)+];

            /// The kinds with a built-in instance (named after the kind), in
            /// the order the banner prints them.
            pub const BUILTIN: &'static [ServiceKind] = &{
                const ALL: &[ServiceKind] = &[$(ServiceKind::$variant,)+];
                const N: usize = {
                    let mut n = 0;
                    $(if ServiceKind::$variant.builtin_port().is_some() { n += 1; })+
                    n
                };
                let mut out = [ServiceKind::Echo; N];
                let (mut i, mut j) = (0, 0);
                while i < ALL.len() {
                    if ALL[i].builtin_port().is_some() {
                        out[j] = ALL[i];
                        j += 1;
                    }
                    i += 1;
                }
                out
            };

            /// The name used in config (`kind = "udp-echo"`), the API and the CLI.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ServiceKind::$variant => $name,)+
                }
            }

            pub const fn proto(self) -> Proto {
                match self {
                    $(ServiceKind::$variant => Proto::$proto,)+
                }
            }

            /// The port of the built-in instance named after the kind, if
            /// the kind has one.
            pub const fn builtin_port(self) -> Option<u16> {
                match self {
                    $(ServiceKind::$variant => $port,)+
                }
            }
        }
    };
}

for_each_kind!(kinds);

impl From<ServiceKind> for &'static str {
    fn from(kind: ServiceKind) -> Self {
        kind.name()
    }
}

impl AsRef<str> for ServiceKind {
    /// The kind's name, which is also its built-in instance's name: tests and
    /// callers can say `supervisor.start(ServiceKind::Echo)` for `echo`.
    fn as_ref(&self) -> &str {
        self.name()
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// The name is not a kind.
#[derive(Debug, thiserror::Error)]
#[error("unknown kind `{0}` (known: {known})", known = known_kinds())]
pub struct UnknownKind(pub String);

/// `echo, udp-echo, ...`, for messages.
pub fn known_kinds() -> String {
    ServiceKind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for ServiceKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// The longest instance name.
pub const MAX_NAME_LEN: usize = 32;

/// Checks an instance name: `[a-z0-9-]{1,32}`, and not `web` (the dashboard's
/// section and environment prefix).
///
/// # Errors
/// A sentence saying what is wrong with it.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "a service name has 1 to {MAX_NAME_LEN} characters, got {}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "`{}` is not a service name: use a-z, 0-9 and `-` only (found {c:?})",
            name.escape_debug()
        ));
    }
    if name == "web" {
        return Err("`web` is the dashboard's name; pick another service name".into());
    }
    // `services` is a path of the API (`/api/v1/services/services/...`
    // reads as a typo), and a leading `-` reads as a flag on the command
    // line (`switchboard service rm -`).
    if name == "services" || name.starts_with('-') {
        return Err(format!(
            "`{name}` is not a service name: it cannot start with `-` or be `services`"
        ));
    }
    Ok(())
}

/// One instance: its name and its kind. Cheap to clone; compares by name
/// (names are unique within a process).
#[derive(Clone)]
pub struct ServiceId(Arc<IdInner>);

struct IdInner {
    name: Box<str>,
    kind: ServiceKind,
}

impl ServiceId {
    /// An instance `name` of `kind`; the name is not checked here (config is
    /// where names come from and are checked).
    pub fn new(name: impl Into<Box<str>>, kind: ServiceKind) -> Self {
        ServiceId(Arc::new(IdInner {
            name: name.into(),
            kind,
        }))
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn kind(&self) -> ServiceKind {
        self.0.kind
    }

    pub fn proto(&self) -> Proto {
        self.0.kind.proto()
    }
}

impl From<ServiceKind> for ServiceId {
    /// The built-in instance of `kind`, named after it.
    fn from(kind: ServiceKind) -> Self {
        ServiceId::new(kind.name(), kind)
    }
}

impl AsRef<str> for ServiceId {
    fn as_ref(&self) -> &str {
        self.name()
    }
}

impl PartialEq for ServiceId {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for ServiceId {}

impl std::hash::Hash for ServiceId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl PartialEq<ServiceKind> for ServiceId {
    /// Whether this is the built-in instance of `kind`.
    fn eq(&self, kind: &ServiceKind) -> bool {
        self.name() == kind.name()
    }
}

impl fmt::Debug for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.kind())
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl Serialize for ServiceId {
    /// As its name: events and the API name instances.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &kind in ServiceKind::ALL {
            assert_eq!(kind.name().parse::<ServiceKind>().unwrap(), kind);
        }
        let err = "udp_echo".parse::<ServiceKind>().unwrap_err().to_string();
        assert!(err.contains("known: echo, udp-echo, time"), "{err}");
    }

    #[test]
    fn instance_names_are_checked() {
        for good in ["echo", "echo-2", "a", &"x".repeat(32)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Echo",
            "echo_2",
            "echo.2",
            "web",
            &"x".repeat(33),
            "é",
            "-",
            "--",
            "-x",
            "services",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_compare_by_name_and_serialize_as_it() {
        let a = ServiceId::new("echo-2", ServiceKind::Echo);
        assert_eq!(a, ServiceId::new("echo-2", ServiceKind::Echo));
        assert_ne!(a, ServiceId::from(ServiceKind::Echo));
        let builtin: ServiceId = ServiceKind::Echo.into();
        assert!(builtin == ServiceKind::Echo);
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"echo-2\"");
    }
}
