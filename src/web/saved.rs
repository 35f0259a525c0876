//! Saved messages, as Packet Sender keeps them: a name, the instance to
//! send to, and the payload as text or hex bytes — per account, on the
//! server, in `<data_dir>/saved-messages/<account>.json`, so that the same
//! person finds them from any machine and after a restart. The Send page
//! lists them, fills its form from one, sends one in a click, and imports
//! and exports them as JSON.
//!
//! The file (and the export, and what an import takes) is one documented
//! shape: `{"version": 1, "messages": [{"name", "target", "mode": "text" |
//! "hex", "payload"}]}`. An import is checked entry by entry and is all or
//! nothing: one bad entry imports none, and the answer names every bad
//! entry and what is wrong with it in plain words.
//!
//! Bounds: [`MAX_SAVED`] messages and [`MAX_SAVED_TOTAL`] bytes of them per
//! account (so any export fits through an import, whose body is capped
//! like every JSON request), names of [`MAX_SAVED_NAME`] characters, a
//! payload no larger than a test message. Each change reads, changes and
//! replaces the file atomically under its lock.
//!
//! What this deliberately doesn't do: send anything (the Send page sends
//! through the relay, as for a typed message), check that a target exists
//! (an export from another server may name instances not made here yet;
//! the page says so), or keep messages for API tokens (they are no one's
//! account).

use std::path::{Path, PathBuf};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiQuery, WebError};
use super::relay::MAX_MESSAGE;
use super::session::{Session, Viewer};
use crate::jsonfile::{self, FileLock};

/// Saved messages per account, at most.
pub const MAX_SAVED: usize = 100;
/// Characters in a saved message's name, at most.
pub const MAX_SAVED_NAME: usize = 64;
/// An account's saved messages as JSON, at most, in bytes: under the
/// 64 KiB cap of a JSON request, so every export can be imported again.
pub const MAX_SAVED_TOTAL: usize = 60 * 1024;
/// The folder in the data directory.
pub const DIR: &str = "saved-messages";

/// How a payload is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// UTF-8 text, sent as it is.
    Text,
    /// Hex digit pairs (spaces, tabs, newlines and `:` between them allowed).
    Hex,
}

/// One saved message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    pub name: String,
    /// An instance name (echo, udp-echo or time kind, to be sent to).
    pub target: String,
    pub mode: Mode,
    pub payload: String,
}

/// The file, the export and the import: one shape.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SavedFile {
    pub version: u32,
    pub messages: Vec<Saved>,
}

/// Why the file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("cannot use {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a saved-messages file: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
}
jsonfile::file_error!(SavedError);

impl From<SavedError> for WebError {
    fn from(e: SavedError) -> WebError {
        WebError::Internal(e.to_string())
    }
}

/// The routes, merged into the router's relay routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/saved-messages", get(list))
        .route("/api/v1/saved-messages/import", post(import))
        .route("/api/v1/saved-messages/{name}", put(save).delete(remove))
}

/// One entry checked, or what is wrong with it in plain words.
fn check_entry(v: &Value) -> Result<Saved, String> {
    let Value::Object(fields) = v else {
        return Err("is not an object like {\"name\", \"target\", \"mode\", \"payload\"}".into());
    };
    if let Some(other) = fields
        .keys()
        .find(|k| !["name", "target", "mode", "payload"].contains(&k.as_str()))
    {
        return Err(format!(
            "has a field `{}` that saved messages do not have",
            shorten(other)
        ));
    }
    let text = |key: &str| match fields.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("has a `{key}` that is not text")),
        None => Err(format!("has no `{key}`")),
    };
    let name = text("name")?;
    check_name(&name)?;
    let target = text("target")?;
    crate::kind::check_name(&target).map_err(|e| format!("has a bad target: {e}"))?;
    let mode = match fields.get("mode") {
        None => Mode::Text,
        Some(Value::String(m)) if m == "text" => Mode::Text,
        Some(Value::String(m)) if m == "hex" => Mode::Hex,
        Some(_) => return Err("has a `mode` that is neither \"text\" nor \"hex\"".into()),
    };
    let payload = text("payload")?;
    let size = match mode {
        Mode::Text => payload.len(),
        // Spaces between pairs are fine; the text itself stays bounded.
        Mode::Hex if payload.len() > 4 * MAX_MESSAGE => usize::MAX,
        Mode::Hex => crate::wire::unhex(&payload)
            .map_err(|e| format!("has a hex payload that is not hex bytes: {e}"))?
            .len(),
    };
    if size == 0 || size > MAX_MESSAGE {
        return Err(format!(
            "has a payload of {}; a message is 1 to {MAX_MESSAGE} bytes",
            if size == usize::MAX {
                "too many hex digits".to_owned()
            } else {
                format!("{size} bytes")
            }
        ));
    }
    Ok(Saved {
        name,
        target,
        mode,
        payload,
    })
}

fn check_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if name.trim().is_empty() || chars > MAX_SAVED_NAME {
        return Err(format!(
            "has a name of {chars} characters; a name has 1 to {MAX_SAVED_NAME}, not all spaces"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("has a name with control characters (a newline, a tab, …)".into());
    }
    Ok(())
}

/// At most 40 characters of `s`, control characters left out, for messages.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

/// Removes `user`'s saved messages (when the account is removed); none is
/// fine.
///
/// # Errors
/// The file exists and cannot be removed.
pub fn forget_account(data_dir: &Path, user: &str) -> std::io::Result<()> {
    if crate::users::check_name(user).is_err() {
        return Ok(());
    }
    match std::fs::remove_file(data_dir.join(DIR).join(format!("{user}.json"))) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The account's file; API tokens have none.
fn file_of(state: &AppState, session: &Session) -> Result<PathBuf, WebError> {
    if session.token.is_some() || crate::users::check_name(&session.user).is_err() {
        return Err(WebError::BadRequest(
            "saved messages belong to a signed-in account, not to an API token".into(),
        ));
    }
    Ok(state
        .inner
        .data_dir
        .join(DIR)
        .join(format!("{}.json", session.user)))
}

impl jsonfile::Document for SavedFile {
    type Error = SavedError;
    const WHAT: &'static str = "saved messages";

    fn empty() -> Self {
        SavedFile {
            version: 1,
            messages: Vec::new(),
        }
    }

    fn version(&self) -> u32 {
        self.version
    }

    /// Entries are checked as they come in (save, import): a file is
    /// taken as written.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

fn load(path: &Path) -> Result<SavedFile, SavedError> {
    Ok(jsonfile::read_document::<SavedFile>(path)?.0)
}

/// The file's text, or why the change cannot be kept.
fn over_bounds(file: &SavedFile) -> Result<String, WebError> {
    if file.messages.len() > MAX_SAVED {
        return Err(WebError::Invalid {
            field: None,
            message: format!(
                "that would make {} saved messages; an account keeps at most {MAX_SAVED}",
                file.messages.len()
            ),
            conflict: true,
        });
    }
    let text = serde_json::to_string_pretty(file)
        .map_err(|e| WebError::Internal(format!("saved messages: {e}")))?;
    if text.len() > MAX_SAVED_TOTAL {
        return Err(WebError::Invalid {
            field: None,
            message: format!(
                "that would make {} bytes of saved messages; an account keeps at most \
                 {MAX_SAVED_TOTAL} (delete some, or save shorter payloads)",
                text.len()
            ),
            conflict: true,
        });
    }
    Ok(text)
}

/// Reads the account's file, lets `change` change it, checks the bounds
/// and replaces it — all under the file's lock, off the async threads.
async fn change<T: Send + 'static>(
    path: PathBuf,
    change: impl FnOnce(&mut SavedFile) -> Result<T, WebError> + Send + 'static,
) -> Result<(T, SavedFile), WebError> {
    tokio::task::spawn_blocking(move || {
        let _lock = FileLock::take::<SavedError>(&path)?;
        let mut file = load(&path)?;
        let out = change(&mut file)?;
        let text = over_bounds(&file)?;
        jsonfile::write_atomic(&path, &text).map_err(|source| SavedError::Io {
            path: path.clone(),
            source,
        })?;
        Ok((out, file))
    })
    .await
    .map_err(|e| WebError::Internal(format!("saved messages: {e}")))?
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Any value: answer as a file to download.
    download: Option<String>,
}

/// `GET /api/v1/saved-messages[?download=1]`: the account's saved messages
/// (`{"version": 1, "messages": [...]}`); with `download`, as a file.
///
/// # Errors
/// An API token; the file unreadable.
pub async fn list(
    State(state): State<AppState>,
    Viewer(session): Viewer,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, WebError> {
    let path = file_of(&state, &session)?;
    let file = tokio::task::spawn_blocking(move || load(&path))
        .await
        .map_err(|e| WebError::Internal(format!("saved messages: {e}")))??;
    let mut response = Json(&file).into_response();
    if q.download.is_some() {
        response.headers_mut().insert(
            header::CONTENT_DISPOSITION,
            header::HeaderValue::from_static(
                "attachment; filename=\"switchboard-saved-messages.json\"",
            ),
        );
    }
    Ok(response)
}

/// `PUT /api/v1/saved-messages/{name}` `{"target", "mode", "payload"}`:
/// saves (or replaces) one message; answers with all of them.
///
/// # Errors
/// A bad entry (422 naming what), over the bounds (409), an API token.
pub async fn save(
    State(state): State<AppState>,
    Viewer(session): Viewer,
    UrlPath(name): UrlPath<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Json<SavedFile>, WebError> {
    let Json(mut body) = body?;
    let path = file_of(&state, &session)?;
    if let Value::Object(fields) = &mut body {
        match fields.get("name") {
            Some(Value::String(n)) if *n != name => {
                return Err(WebError::BadRequest(
                    "the name in the body differs from the one in the path".into(),
                ));
            }
            _ => {
                fields.insert("name".into(), Value::String(name));
            }
        }
    }
    let saved = check_entry(&body).map_err(|e| WebError::Invalid {
        field: None,
        message: format!("this message {e}"),
        conflict: false,
    })?;
    let (_, file) = change(path, move |file| {
        match file.messages.iter_mut().find(|m| m.name == saved.name) {
            Some(m) => *m = saved,
            None => file.messages.push(saved),
        }
        Ok(())
    })
    .await?;
    Ok(Json(file))
}

/// `DELETE /api/v1/saved-messages/{name}`: forgets one; answers with the rest.
///
/// # Errors
/// 404 for no such saved message; an API token.
pub async fn remove(
    State(state): State<AppState>,
    Viewer(session): Viewer,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<SavedFile>, WebError> {
    let path = file_of(&state, &session)?;
    let (_, file) = change(path, move |file| {
        let before = file.messages.len();
        file.messages.retain(|m| m.name != name);
        if file.messages.len() == before {
            return Err(WebError::NotFound(format!(
                "saved message `{}`",
                shorten(&name)
            )));
        }
        Ok(())
    })
    .await?;
    Ok(Json(file))
}

/// An import's body: the export's shape, and whether it replaces.
fn import_entries(body: &Value) -> Result<(&Vec<Value>, bool), WebError> {
    let shape = || {
        WebError::BadRequest(
            "an import is {\"version\": 1, \"messages\": [{\"name\", \"target\", \"mode\", \
             \"payload\"}, …]}, as an export is"
                .into(),
        )
    };
    let Value::Object(top) = body else {
        return Err(shape());
    };
    match top.get("version") {
        None => {}
        Some(v) if v == 1 => {}
        Some(v) => {
            return Err(WebError::BadRequest(format!(
                "this file is version {}; this server reads version 1",
                shorten(&v.to_string())
            )));
        }
    }
    if let Some(other) = top
        .keys()
        .find(|k| !["version", "messages", "replace"].contains(&k.as_str()))
    {
        return Err(WebError::BadRequest(format!(
            "an import has no field `{}`",
            shorten(other)
        )));
    }
    let Some(Value::Array(entries)) = top.get("messages") else {
        return Err(shape());
    };
    let replace = match top.get("replace") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => return Err(WebError::BadRequest("`replace` is true or false".into())),
    };
    if entries.len() > MAX_SAVED {
        return Err(WebError::TooLarge(format!(
            "{} messages in the file; an account keeps at most {MAX_SAVED}",
            entries.len()
        )));
    }
    Ok((entries, replace))
}

/// `POST /api/v1/saved-messages/import` `{"version": 1, "messages": [...],
/// "replace": false}`: all or nothing. Merged by name (an imported message
/// replaces a saved one of its name) unless `replace` empties the list
/// first. Answers `{"imported": N, "messages": [...]}`, or 422 with
/// `problems`: `[{"entry": 1-based, "name", "problem"}]`.
///
/// # Errors
/// Not the export's shape (400), bad entries (422), over the bounds (409).
pub async fn import(
    State(state): State<AppState>,
    Viewer(session): Viewer,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, WebError> {
    let Json(body) = body?;
    let path = file_of(&state, &session)?;
    let (entries, replace) = import_entries(&body)?;
    let mut good = Vec::with_capacity(entries.len());
    let mut problems = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let name = entry.get("name").and_then(Value::as_str).map(shorten);
        let checked = check_entry(entry).and_then(|saved| {
            match good.iter().any(|g: &Saved| g.name == saved.name) {
                true => Err("has the same name as an entry before it".to_owned()),
                false => Ok(saved),
            }
        });
        match checked {
            Ok(saved) => good.push(saved),
            Err(problem) => problems.push(json!({
                "entry": i + 1,
                "name": name,
                "problem": format!("entry {} {problem}", i + 1),
            })),
        }
    }
    if !problems.is_empty() {
        let body = json!({
            "error": format!(
                "nothing was imported: {} of {} entries cannot be used ({})",
                problems.len(),
                entries.len(),
                problems[0]["problem"].as_str().unwrap_or_default(),
            ),
            "problems": problems,
        });
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response());
    }
    let imported = good.len();
    let (_, file) = change(path, move |file| {
        if replace {
            file.messages.clear();
        }
        for saved in good {
            match file.messages.iter_mut().find(|m| m.name == saved.name) {
                Some(m) => *m = saved,
                None => file.messages.push(saved),
            }
        }
        Ok(())
    })
    .await?;
    Ok(
        Json(json!({"imported": imported, "version": 1, "messages": file.messages}))
            .into_response(),
    )
}
