//! tus 1.0.0's headers read and written, and its errors as responses: what
//! [`super`]'s handlers share.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::store::StoreError;
use crate::store::partial::{Checksum, MAX_METADATA, PartialError};

/// The only protocol version spoken.
pub const VERSION: &str = "1.0.0";
/// The extensions offered (`OPTIONS`'s `Tus-Extension`).
pub const EXTENSIONS: &str = "creation,creation-with-upload,termination,expiration,checksum";
/// The algorithms `Upload-Checksum` may name.
pub const CHECKSUMS: &str = "sha1,sha256";
/// The body type of `PATCH` (and of `POST` with data).
pub const OFFSET_STREAM: &str = "application/offset+octet-stream";
/// Pairs in `Upload-Metadata`.
const MAX_PAIRS: usize = 32;

/// A refusal: its status, and its reason as plain text (tus clients show
/// the body of a failed request).
#[derive(Debug)]
pub struct TusError(pub StatusCode, pub String);

impl TusError {
    pub fn bad(why: impl Into<String>) -> TusError {
        TusError(StatusCode::BAD_REQUEST, why.into())
    }
}

impl IntoResponse for TusError {
    fn into_response(self) -> Response {
        let mut res = (self.0, format!("{}\n", self.1)).into_response();
        stamp(res.headers_mut());
        if self.0 == StatusCode::PRECONDITION_FAILED {
            res.headers_mut()
                .insert("tus-version", HeaderValue::from_static(VERSION));
        }
        res
    }
}

impl From<PartialError> for TusError {
    fn from(e: PartialError) -> TusError {
        let status = match &e {
            PartialError::Store(StoreError::TooLarge { .. }) | PartialError::PastEnd { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            PartialError::Store(StoreError::NoSpace { .. }) => StatusCode::INSUFFICIENT_STORAGE,
            // Every numbered variant of the name is taken: nothing broke
            // here and asking again cannot help. Not 409, which tus
            // clients take for an offset mismatch and retry at once.
            PartialError::Store(StoreError::NoFreeName(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            PartialError::Store(StoreError::BadName(_)) | PartialError::Body(_) => {
                StatusCode::BAD_REQUEST
            }
            PartialError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            PartialError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            PartialError::NotFound => StatusCode::NOT_FOUND,
            PartialError::WrongOffset { .. } => StatusCode::CONFLICT,
            // tus's "checksum mismatch"; a whole file that is not what was
            // declared is the same failure at a larger scale.
            PartialError::ChecksumMismatch | PartialError::HashMismatch { .. } => {
                StatusCode::from_u16(460).expect("460 is a valid status code")
            }
            PartialError::Idle(_) => StatusCode::REQUEST_TIMEOUT,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!("resumable upload failed: {e}");
        }
        TusError(status, e.to_string())
    }
}

/// Adds `Tus-Resumable` (every response carries it).
pub fn stamp(headers: &mut HeaderMap) {
    headers.insert("tus-resumable", HeaderValue::from_static(VERSION));
}

/// Refuses a request that does not speak tus 1.0.0 (412, with the version
/// we speak).
///
/// # Errors
/// No or another `Tus-Resumable`.
pub fn check_version(headers: &HeaderMap) -> Result<(), TusError> {
    match headers.get("tus-resumable").map(HeaderValue::as_bytes) {
        Some(v) if v == VERSION.as_bytes() => Ok(()),
        Some(_) => Err(TusError(
            StatusCode::PRECONDITION_FAILED,
            format!("only tus {VERSION} is spoken here"),
        )),
        None => Err(TusError(
            StatusCode::PRECONDITION_FAILED,
            format!("Tus-Resumable: {VERSION} is required"),
        )),
    }
}

/// A header holding a whole number.
///
/// # Errors
/// Missing (when `required`) or not a number.
pub fn number(headers: &HeaderMap, name: &str) -> Result<Option<u64>, TusError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse().ok())
            .map(Some)
            .ok_or_else(|| TusError::bad(format!("{name} must be a whole number"))),
    }
}

/// What `Upload-Metadata` says that we use.
#[derive(Debug, Default)]
pub struct Metadata {
    /// As sent, to give back on `HEAD`.
    pub raw: String,
    pub filename: Option<String>,
    /// The whole file's SHA-256, hex, if the client declared it.
    pub sha256: Option<String>,
}

/// Parses `Upload-Metadata`: `key base64value` pairs, comma-separated.
///
/// # Errors
/// Too long, too many pairs, a key twice, a value that is not base64.
pub fn metadata(headers: &HeaderMap) -> Result<Metadata, TusError> {
    let Some(value) = headers.get("upload-metadata") else {
        return Ok(Metadata::default());
    };
    let raw = value
        .to_str()
        .map_err(|_| TusError::bad("Upload-Metadata must be ASCII"))?;
    if raw.len() > MAX_METADATA {
        return Err(TusError::bad(format!(
            "Upload-Metadata is longer than {MAX_METADATA} bytes"
        )));
    }
    let mut out = Metadata {
        raw: raw.to_owned(),
        ..Metadata::default()
    };
    let mut seen = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, encoded) = pair.split_once(' ').unwrap_or((pair, ""));
        if seen.contains(&key) {
            return Err(TusError::bad(format!("Upload-Metadata has {key} twice")));
        }
        seen.push(key);
        if seen.len() > MAX_PAIRS {
            return Err(TusError::bad(format!(
                "Upload-Metadata has more than {MAX_PAIRS} pairs"
            )));
        }
        let decode = || -> Result<String, TusError> {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| TusError::bad(format!("Upload-Metadata {key}: not base64")))?;
            String::from_utf8(bytes)
                .map_err(|_| TusError::bad(format!("Upload-Metadata {key}: not UTF-8")))
        };
        match key {
            "filename" => out.filename = Some(decode()?),
            // Uppy's name for it.
            "name" if out.filename.is_none() => out.filename = Some(decode()?),
            "sha256" => {
                let hex = decode()?.trim().to_ascii_lowercase();
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(TusError::bad(
                        "Upload-Metadata sha256: 64 hex digits expected",
                    ));
                }
                out.sha256 = Some(hex);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Parses `Upload-Checksum`: `<algorithm> <base64 digest>`.
///
/// # Errors
/// An algorithm not offered, or a digest of the wrong form.
pub fn checksum(headers: &HeaderMap) -> Result<Option<Checksum>, TusError> {
    let Some(value) = headers.get("upload-checksum") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    let (algo, encoded) = text.split_once(' ').unwrap_or((text, ""));
    let digest = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| TusError::bad("Upload-Checksum: the digest is not base64"))?;
    let wrong = || TusError::bad(format!("Upload-Checksum: not a {algo} digest"));
    match algo {
        "sha1" => Ok(Some(Checksum::Sha1(
            digest.try_into().map_err(|_| wrong())?,
        ))),
        "sha256" => Ok(Some(Checksum::Sha256(
            digest.try_into().map_err(|_| wrong())?,
        ))),
        _ => Err(TusError::bad(format!(
            "Upload-Checksum: {algo:?} is not offered; use one of {CHECKSUMS}"
        ))),
    }
}

/// Whether the request's body is tus's byte stream.
pub fn is_offset_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(OFFSET_STREAM))
        })
}

/// `Upload-Expires`: an HTTP date (RFC 9110 IMF-fixdate).
pub fn expires(ms: u64) -> HeaderValue {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let text = chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .unwrap_or_default();
    HeaderValue::from_str(&text).expect("a formatted date is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the client can act on is not a server error.
    #[test]
    fn store_refusals_map_to_the_clients_statuses() {
        let status = |e: StoreError| TusError::from(PartialError::Store(e)).0;
        assert_eq!(
            status(StoreError::NoFreeName("a.txt".into())),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status(StoreError::NoSpace { need: 2, free: 1 }),
            StatusCode::INSUFFICIENT_STORAGE
        );
        assert_eq!(
            status(StoreError::BadName("..".into())),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(StoreError::Io(std::io::Error::other("disk"))),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
