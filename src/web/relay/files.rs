//! The files service through the dashboard: list, upload as a stream, and
//! download with a safe `Content-Disposition`.

use super::*;
use crate::store::StoreError;

/// `GET /api/v1/files`: the files service's list.
///
/// # Errors
/// The files service down or refusing.
pub async fn list_files(State(state): State<AppState>, _: Viewer) -> Result<Response, WebError> {
    let target = state.target(ServiceKind::Files)?;
    let tls = state.tls(ServiceKind::Files)?;
    let mut client = crate::service::internal::scope(FilesClient::connect_tls(
        &target,
        state.key()?,
        CLIENT_TIMEOUT,
        tls.as_ref(),
    ))
    .await?;
    let (files, truncated): (Vec<FileInfo>, bool) = client.list().await?;
    let mut response = Json(files).into_response();
    if truncated {
        response
            .headers_mut()
            .insert("x-truncated", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// `PUT /api/v1/files/{name}` (operator): the request body, streamed into
/// the files client as it arrives. The size must be declared up front
/// (`Content-Length`) and is checked against the cap before anything is
/// sent; the files service checks the name and the space, and answers
/// with the stored name and the SHA-256 it computed of what it stored
/// (the relay checks the stored size; it does not hash the bytes a second
/// time, see [`FilesClient::put_hashed_by_service`]).
///
/// # Errors
/// No or too large a `Content-Length`, a refused name, a body ending early.
pub async fn put_file(
    State(state): State<AppState>,
    Operator(session): Operator,
    ClientIp(from): ClientIp,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<PutReply>, WebError> {
    let size: u64 = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or(WebError::LengthRequired)?;
    let max = state.inner.files_max;
    if size > max {
        return Err(WebError::TooLarge(format!(
            "{name} is {size} bytes; the files service takes at most {max}"
        )));
    }
    // What the service would refuse is refused here, before a byte of the
    // body is read: the relay streams the body and would hear the
    // service's refusal only once the browser sent enough to fill the
    // socket (a client declaring more than it sends never did).
    crate::store::safe_name(name.as_bytes()).map_err(|e| WebError::BadRequest(e.to_string()))?;
    let folder = match &state.inner.files_folder {
        Some(folder) => folder.clone(),
        None => state.supervisor().store().dir().to_owned(),
    };
    match crate::store::check_room(&folder, size) {
        Ok(()) => {}
        Err(e @ StoreError::NoSpace { .. }) => return Err(WebError::NoSpace(e.to_string())),
        Err(e) => return Err(WebError::fault("cannot check the room for an upload", e)),
    }
    let target = state.target(ServiceKind::Files)?;
    let tls = state.tls(ServiceKind::Files)?;
    let mut client = crate::service::internal::scope(FilesClient::connect_tls(
        &target,
        state.key()?,
        CLIENT_TIMEOUT,
        tls.as_ref(),
    ))
    .await?;
    // Uploads have no overall deadline (any size may take any time), but
    // one that sends nothing for `web.request_timeout` ends with a 408.
    let idle = state.web().request_timeout;
    let stream = body
        .into_data_stream()
        .timeout(idle)
        .map(move |chunk| match chunk {
            Ok(chunk) => chunk.map_err(std::io::Error::other),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no bytes of the upload arrived for {idle:?}"),
            )),
        });
    let started = Instant::now();
    // The files service is this process's own: it hashes what it stores,
    // and hashing here too would only double the upload's CPU.
    let stored = client
        .put_hashed_by_service(&name, size, Box::pin(stream))
        .await?;
    let relay_us = micros(started.elapsed());
    state
        .audit()
        .record(crate::audit::AuditEvent::WebUpload {
            user: session.user.clone(),
            peer: Some(from.to_string()),
            name: stored.name.clone(),
            size: stored.size,
            sha256: stored.sha256.clone(),
        })
        .await;
    Ok(Json(PutReply { stored, relay_us }))
}

/// What an upload stored, and how long the relay's files client took
/// (request to checked reply: the C/S leg of the upload).
#[derive(Debug, Serialize)]
pub struct PutReply {
    #[serde(flatten)]
    pub stored: crate::client::Stored,
    pub relay_us: u64,
}

/// `filename*=` of a Content-Disposition: RFC 5987 percent-encoding.
pub(super) fn disposition(name: &str) -> HeaderValue {
    // RFC 5987's attr-char less the few we keep out anyway: unreserved only.
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let encoded = percent_encoding::utf8_percent_encode(name, KEEP);
    HeaderValue::from_str(&format!("attachment; filename*=UTF-8''{encoded}"))
        .expect("percent-encoded ASCII is a valid header value")
}

/// `GET /api/v1/files/{name}`: the file's bytes, streamed from the files
/// client as they arrive (its SHA-256 is checked by the client; a mismatch
/// cuts the download short, so it cannot complete with wrong bytes).
///
/// # Errors
/// No such file, the files service down.
pub async fn get_file(
    State(state): State<AppState>,
    _: Viewer,
    Path(name): Path<String>,
) -> Result<Response, WebError> {
    let target = state.target(ServiceKind::Files)?;
    let tls = state.tls(ServiceKind::Files)?;
    let mut client = crate::service::internal::scope(FilesClient::connect_tls(
        &target,
        state.key()?,
        CLIENT_TIMEOUT,
        tls.as_ref(),
    ))
    .await?;
    let (writer, reader) = tokio::io::duplex(256 * 1024);
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let fetch_name = name.clone();
    let fetch = state.inner.shutdown.tasks.spawn(async move {
        let mut writer = writer;
        client
            .get(
                &fetch_name,
                &mut writer,
                |size| {
                    let _ = started_tx.send(size);
                },
                |_| {},
            )
            .await
    });
    let Ok(size) = started_rx.await else {
        // Refused before the first byte: the task has the reason.
        return Err(match fetch.await {
            // The service's own words ("no file `x`"): not "no such" again.
            Ok(Err(ClientError::Rejected { reason, .. })) => WebError::Missing(reason),
            Ok(Err(e)) => e.into(),
            Ok(Ok(_)) => WebError::Internal("the download ended before it began".into()),
            Err(e) => WebError::fault("the download task failed", e),
        });
    };
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(reader));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(size)),
            (header::CONTENT_DISPOSITION, disposition(&name)),
        ],
        body,
    )
        .into_response())
}

/// `DELETE /api/v1/files/{name}` (admin): removes a stored file from the
/// folder the `files` service serves, through the same store (same name
/// rules, never through a symlink; see [`crate::store::delete`]), audits
/// it with the user, and tells every live page (`file_deleted`).
///
/// # Errors
/// A name that is not a stored file's name (400), no such file (404).
pub async fn delete_file(
    State(state): State<AppState>,
    Admin(session): Admin,
    ClientIp(from): ClientIp,
    Path(name): Path<String>,
) -> Result<axum::http::StatusCode, WebError> {
    let removed = match &state.inner.files_folder {
        // The files instance's own folder: the same rules run here on the
        // folder itself, without opening a store on it (an open sweeps the
        // folder's unheld temporaries).
        Some(folder) => {
            let (folder, owned) = (folder.clone(), name.clone());
            tokio::task::spawn_blocking(move || crate::store::delete::delete_in(&folder, &owned))
                .await
                .map_err(|e| WebError::fault("the delete task failed", e))?
        }
        None => state.supervisor().store().delete(&name).await,
    };
    match removed {
        Ok(()) => {}
        Err(e @ StoreError::BadName(_)) => return Err(WebError::BadRequest(e.to_string())),
        Err(e @ StoreError::NotFound(_)) => return Err(WebError::Missing(e.to_string())),
        Err(e) => return Err(WebError::fault("cannot delete a file", e)),
    }
    state
        .audit()
        .record(crate::audit::AuditEvent::WebDelete {
            user: session.user.clone(),
            peer: Some(from.to_string()),
            name: name.clone(),
        })
        .await;
    if let Some(files) = state.supervisor().id("files") {
        state.stats().emit(EventKind::FileDeleted {
            service: files,
            user: session.user.clone(),
            name,
        });
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}
