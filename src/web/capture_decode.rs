//! `GET /api/v1/connections/{id}/capture/decoded` (admin): a capture read
//! as its protocol is (`capture::decode`): the HMAC challenge and answer,
//! exec/files messages as length prefix + JSON header + body,
//! `files-classic` headers as name + size, a PROXY header, a TLS
//! ClientHello's SNI and versions, and which segments each came from.
//!
//! This is where the instance's settings pick the plan (exec's `framing`
//! and `auth`, echo's `auth`); the decoder itself knows no settings. The
//! copy decoded is bounded (`capture::decode::MAX_DECODE_BYTES` per
//! direction) and so is the answer; nothing here logs a byte.

use axum::Json;
use axum::extract::{Path, State};

use super::AppState;
use super::error::WebError;
use super::session::Admin;
use crate::capture::decode::{self, Decoded, Plan};
use crate::kind::ServiceKind;
use crate::service::tutorial_auth::{AuthMode, TutorialAuth};

/// Decodings at once. Each copies up to two megabytes and takes a blocking
/// thread for its CPU work, so a burst of requests (even an admin's) must
/// not take the pool: past this, a request is told to come back (503).
pub const MAX_DECODES: usize = 2;

/// The answer: the capture's identity and its decoding.
#[derive(Debug, serde::Serialize)]
pub struct DecodedView {
    pub id: u64,
    pub service: String,
    pub kind: ServiceKind,
    pub open: bool,
    #[serde(flatten)]
    pub decoded: Decoded,
}

/// `GET /api/v1/connections/{id}/capture/decoded` (admin).
///
/// # Errors
/// No capture of that connection; [`MAX_DECODES`] decodings running.
pub async fn decoded(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<u64>,
) -> Result<Json<DecodedView>, WebError> {
    let capture = state.stats().captures().get(id).ok_or_else(|| {
        WebError::NotFound(format!(
            "capture of connection {id} (its service may not capture, or it was evicted)"
        ))
    })?;
    let slot = super::error::slot(&state.inner.capture_decodes, || {
        format!("{MAX_DECODES} captures are being decoded; try again in a moment")
    })?;
    crate::failpoint::pause(crate::failpoint::Pause::CaptureDecode).await;
    let service = capture.service().clone();
    let plan = plan_of(&state, service.name(), service.kind());
    // Both directions' decodable bytes, and no more.
    let copy = capture.copy(0, 2 * decode::MAX_DECODE_BYTES);
    // Decoding a megabyte or two is CPU work: off the async workers.
    let decoded = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        decode::decode(&copy.segments, plan)
    })
    .await
    .map_err(|e| WebError::Internal(format!("decoding the capture failed: {e}")))?;
    Ok(Json(DecodedView {
        id,
        service: service.name().to_owned(),
        kind: service.kind(),
        open: capture.info().open,
        decoded,
    }))
}

/// How `name` (of `kind`) frames its bytes, from its current settings.
fn plan_of(state: &AppState, name: &str, kind: ServiceKind) -> Plan {
    let config = state
        .supervisor()
        .config_of(name)
        .filter(|c| c.id.kind() == kind);
    let tutorial = |auth: Option<&TutorialAuth>, struct_lengths: bool| {
        let answer_len = match auth.map(|a| a.mode) {
            Some(AuthMode::HmacMd5) => 16,
            Some(AuthMode::HmacSha256) => 32,
            Some(AuthMode::None) | None => 0,
        };
        if answer_len == 0 && !struct_lengths {
            return Plan::Raw;
        }
        Plan::Tutorial {
            answer_len,
            struct_lengths,
        }
    };
    match kind {
        ServiceKind::Files => Plan::Messages,
        ServiceKind::FilesClassic => Plan::Classic,
        ServiceKind::Exec => {
            use crate::service::exec::{Framing, Settings};
            match config.as_ref().and_then(|c| c.settings.get::<Settings>()) {
                Some(s) if s.framing != Framing::Header => {
                    tutorial(Some(&s.auth), s.framing == Framing::Struct)
                }
                _ => Plan::Messages,
            }
        }
        ServiceKind::Echo => {
            let settings = config
                .as_ref()
                .and_then(|c| c.settings.get::<crate::service::echo::Settings>());
            tutorial(settings.map(|s| &s.auth), false)
        }
        ServiceKind::UdpEcho
        | ServiceKind::Time
        | ServiceKind::Login
        | ServiceKind::Stdio
        | ServiceKind::TcpProxy
        | ServiceKind::UdpProxy
        | ServiceKind::Chat
        | ServiceKind::UdpChat => Plan::Raw,
    }
}
