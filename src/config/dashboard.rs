//! What an instance added from the dashboard (the Services API, `switchboard
//! service`, `<data_dir>/services.toml`) may do, beyond what its kind's
//! reader checks. The config file is the operator's own word; the dashboard
//! is a session or a token that could be stolen, so it gets less:
//!
//! - a `stdio` instance runs only a program listed in the config file's
//!   top-level `stdio_allow` (refused at `argv`);
//! - on an address other than loopback, a kind with no authentication of
//!   its own (anything but exec, files and login) needs `tls` or an
//!   explicit `public = true` (refused at `listen`).
//!
//! It does not apply to instances the config file defines, and it does not
//! look up names: `stdio_allow` entries are compared as paths, resolved
//! through symlinks when they exist.

use std::path::Path;

use super::{ServiceConfig, ServiceTls};
use crate::kind::ServiceKind;
use crate::settings::ListenAddr;

/// Why a dashboard instance is refused: the field and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub field: &'static str,
    pub message: String,
}

/// Whether `kind` checks who its clients are by itself.
fn authenticates(kind: ServiceKind) -> bool {
    matches!(
        kind,
        ServiceKind::Exec | ServiceKind::Files | ServiceKind::Login
    )
}

/// The same program, through symlinks where both exist.
fn same_program(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (Path::new(a).canonicalize(), Path::new(b).canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Checks a dashboard instance against the rules above.
///
/// # Errors
/// The first rule it breaks, naming its field.
pub fn check(service: &ServiceConfig, stdio_allow: &[String]) -> Result<(), Refused> {
    if let Some(program) = service.settings.program()
        && !stdio_allow.iter().any(|p| same_program(p, program))
    {
        let listed = if stdio_allow.is_empty() {
            "none is listed".to_owned()
        } else {
            format!("listed: {}", stdio_allow.join(", "))
        };
        return Err(Refused {
            field: "argv",
            message: format!(
                "`{program}` is not in the config file's stdio_allow ({listed}): a stdio \
                 instance added from the dashboard runs only the programs listed there"
            ),
        });
    }
    let exposed = match &service.listen {
        ListenAddr::Inet(a) => !a.ip().is_loopback(),
        ListenAddr::Unix(_) => false,
    };
    let kind = service.id.kind();
    if exposed && !authenticates(kind) && service.tls == ServiceTls::Off && !service.public {
        return Err(Refused {
            field: "listen",
            message: format!(
                "{kind} has no authentication of its own: on {} (not loopback) anyone who can \
                 reach it can use it; set tls, or public = true to mean it",
                service.listen
            ),
        });
    }
    Ok(())
}
