//! `GET /static/{path}`: the files of `static/`, embedded in the binary in
//! release builds (read from disk in debug builds, so editing CSS needs no
//! rebuild). Each answer carries its content's SHA-256 as the `ETag` and
//! `no-cache`, so browsers revalidate cheaply and never run stale script
//! after an upgrade.

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
        let mime = HeaderValue::from_str(file.metadata.mimetype())
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        ([(header::CONTENT_TYPE, mime)], file.data).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}
