//! The names of the services: a plain enum every other module can share.
//!
//! It lives in a leaf module (not in `service/`) so that `stats` and `config`
//! can name a service without depending on the code that runs it.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

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

/// One of the services switchboard hosts. `Supervisor::start` matches on it,
/// so adding a service is a compiler-guided change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "&'static str")]
pub enum ServiceKind {
    Echo,
    UdpEcho,
    Time,
    Exec,
    Files,
    FilesClassic,
    Login,
}

impl ServiceKind {
    /// Every service, in the order README.md's service table lists them (and the banner prints them).
    pub const ALL: [ServiceKind; 7] = [
        ServiceKind::Echo,
        ServiceKind::UdpEcho,
        ServiceKind::Time,
        ServiceKind::Exec,
        ServiceKind::Files,
        ServiceKind::FilesClassic,
        ServiceKind::Login,
    ];

    /// The name used in config keys, the API and the CLI (`udp-echo`, not `UdpEcho`).
    pub const fn name(self) -> &'static str {
        match self {
            ServiceKind::Echo => "echo",
            ServiceKind::UdpEcho => "udp-echo",
            ServiceKind::Time => "time",
            ServiceKind::Exec => "exec",
            ServiceKind::Files => "files",
            ServiceKind::FilesClassic => "files-classic",
            ServiceKind::Login => "login",
        }
    }

    pub const fn proto(self) -> Proto {
        match self {
            ServiceKind::Echo
            | ServiceKind::Exec
            | ServiceKind::Files
            | ServiceKind::FilesClassic
            | ServiceKind::Login => Proto::Tcp,
            ServiceKind::UdpEcho | ServiceKind::Time => Proto::Udp,
        }
    }

    pub const fn default_port(self) -> u16 {
        match self {
            ServiceKind::Echo => 9000,
            ServiceKind::UdpEcho => 9001,
            ServiceKind::Time => 9002,
            ServiceKind::Exec => 9003,
            ServiceKind::Files => 9004,
            ServiceKind::FilesClassic => 9005,
            ServiceKind::Login => 9006,
        }
    }

    /// Position in [`ServiceKind::ALL`], for per-service arrays.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl From<ServiceKind> for &'static str {
    fn from(kind: ServiceKind) -> Self {
        kind.name()
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// The name is not one of [`ServiceKind::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown service `{0}` (known: echo, udp-echo, time, exec, files, files-classic, login)")]
pub struct UnknownService(pub String);

impl FromStr for ServiceKind {
    type Err = UnknownService;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownService(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_index_matches_position() {
        for (i, kind) in ServiceKind::ALL.into_iter().enumerate() {
            assert_eq!(kind.name().parse::<ServiceKind>().unwrap(), kind);
            assert_eq!(kind.index(), i);
        }
        assert!("udp_echo".parse::<ServiceKind>().is_err());
    }
}
