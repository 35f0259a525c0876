//! `GET /static/{path}`: the files of `static/`, embedded in the binary in
//! release builds (read from disk in debug builds, so editing CSS needs no
//! rebuild). Each answer carries its content's SHA-256 as the `ETag` and
//! `no-cache`, so browsers revalidate cheaply and never run stale script
//! after an upgrade.
//!
//! The dashboard's script is native ES modules (`static/app.js` shared,
//! `static/pages/NAME.js` per page), loaded with `<script type="module">`:
//! browsers refuse a module not served as JavaScript, so `.js` is always
//! `text/javascript` whatever the MIME table says.
//!
//! Not here: templates (askama, compiled in) or any build step.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::WebError;

#[derive(rust_embed::Embed)]
#[folder = "static/"]
struct Assets;

/// The handler.
///
/// # Errors
/// No such asset.
pub async fn serve(
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let file = Assets::get(&path).ok_or_else(|| WebError::NotFound(format!("asset `{path}`")))?;
    let etag = format!(
        "\"{}\"",
        crate::wire::hex(&file.metadata.sha256_hash()[..16])
    );
    let etag = HeaderValue::from_str(&etag).expect("hex in quotes is a valid header value");
    let mut response = if headers.get(header::IF_NONE_MATCH) == Some(&etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mime = content_type(&path, file.metadata.mimetype());
        ([(header::CONTENT_TYPE, mime)], file.data).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// The `Content-Type` of `path`: JavaScript as `text/javascript` (the type
/// module scripts must have), anything else as the MIME table guessed.
fn content_type(path: &str, guessed: &str) -> HeaderValue {
    if path.ends_with(".js") {
        return HeaderValue::from_static("text/javascript; charset=utf-8");
    }
    HeaderValue::from_str(guessed).unwrap_or(HeaderValue::from_static("application/octet-stream"))
}
