//! Where a capture may be replayed: an instance of this server of the
//! capture's own kind (so an echo conversation never lands in `login` as
//! failed sign-ins), its protocol, running and without TLS. One rule for
//! the Inspect page's list and the replay endpoint, which enforces it.
//!
//! Not here: the replay itself (`crate::replay`) or its endpoint
//! (`web::capture`).

use super::AppState;
use super::error::WebError;
use crate::capture::CaptureInfo;

/// Why `name` cannot take a replay of `capture`, or `Ok`.
///
/// # Errors
/// 404 for no such instance; 409 naming the reason otherwise.
pub fn check(state: &AppState, capture: &CaptureInfo, name: &str) -> Result<(), WebError> {
    let sup = state.supervisor();
    let target = sup
        .id(name)
        .ok_or_else(|| WebError::NotFound(format!("service `{name}`")))?;
    let (want, got) = (capture.service.kind(), target.kind());
    if want != got {
        return Err(WebError::Conflict(format!(
            "{name} is a {got} instance and the capture is of {want} ({}): a replay goes \
             to an instance of the same kind, so its bytes mean what they meant",
            capture.service.name()
        )));
    }
    if target.proto() != capture.proto {
        return Err(WebError::Conflict(format!(
            "{name} speaks {}, the capture is {}",
            target.proto(),
            capture.proto
        )));
    }
    if sup.tls_of(name).is_some() {
        return Err(WebError::Conflict(format!(
            "{name} speaks TLS; a replay sends plain bytes"
        )));
    }
    Ok(())
}

/// The instances a replay of `capture` can go to now: those [`check`]
/// passes that are running, its own first.
pub fn targets(state: &AppState, capture: &CaptureInfo) -> Vec<String> {
    let sup = state.supervisor();
    let mut names: Vec<String> = sup
        .ids()
        .into_iter()
        .map(|i| i.name().to_owned())
        .filter(|n| check(state, capture, n).is_ok())
        .filter(|n| sup.local_addr(n).is_some())
        .collect();
    if let Some(at) = names.iter().position(|n| n == capture.service.name()) {
        let own = names.remove(at);
        names.insert(0, own);
    }
    names
}
