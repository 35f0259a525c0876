//! `POST /api/v1/live/leave`: a page being left ends its own live stream.
//!
//! Straight to the browser, a left page's stream ends when the browser
//! closes its connection, which the stream's `Connection: close` makes it
//! do (see [`super::live`]). Behind an HTTP/1.1 proxy that header stops at
//! the proxy (it is hop-by-hop): the browser's connection to the proxy stays
//! reusable, so Chromium drains the cancelled stream for seconds, the proxy
//! goes on reading it from us, and the account's stream slots stay taken. A
//! brisk tour of the pages through HAProxy was refused (429) every few
//! pages. So each stream tells its page an id (its first message,
//! `stream`), and the page sends that id here with `navigator.sendBeacon`
//! as it is left: the stream ends at once, its end reaches the proxy and
//! the browser, and its slots are free.
//!
//! The id is the credential: 256 random bits that only the stream's page
//! was told. No session or CSRF token is asked (a beacon cannot send a
//! header), and ending that one stream is all the id can do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::error::WebError;
use crate::sync::lock;

/// The path a page sends its stream's id to.
pub const LEAVE_PATH: &str = "/api/v1/live/leave";

/// Open streams by the id each told its page. At most one entry a live
/// stream, so bounded as they are.
#[derive(Default)]
pub struct Leaving {
    streams: Mutex<HashMap<String, CancellationToken>>,
}

/// A stream's entry in [`Leaving`], removed when the stream ends.
pub struct Entered {
    leaving: Arc<Leaving>,
    /// What the stream tells its page.
    pub id: String,
    /// Fires when the page says it is leaving.
    pub left: CancellationToken,
}

impl Leaving {
    /// Enters a new stream under a fresh random id.
    ///
    /// # Errors
    /// No randomness to make the id from.
    pub fn enter(self: &Arc<Self>) -> Result<Entered, WebError> {
        let id = super::session::random_hex()?;
        let left = CancellationToken::new();
        lock(&self.streams).insert(id.clone(), left.clone());
        Ok(Entered {
            leaving: Arc::clone(self),
            id,
            left,
        })
    }

    /// Ends the stream with this id, if one is open; whether one was.
    fn leave(&self, id: &str) -> bool {
        let found = lock(&self.streams).remove(id);
        found.inspect(CancellationToken::cancel).is_some()
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        lock(&self.leaving.streams).remove(&self.id);
    }
}

/// The handler: the body is the id, as the stream's `stream` message gave
/// it. `204` whether or not a stream had it (a stream that has already
/// ended is no error, and the answer tells a guesser nothing).
pub async fn leave(State(state): State<AppState>, body: Bytes) -> StatusCode {
    // An id is 64 hexadecimal digits; anything longer is none.
    if body.len() <= 64
        && let Ok(id) = std::str::from_utf8(&body)
    {
        state.inner.leaving.leave(id);
    }
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaving_ends_that_stream_once_and_an_ended_one_is_forgotten() {
        let leaving = Arc::new(Leaving::default());
        let a = leaving.enter().unwrap();
        let b = leaving.enter().unwrap();
        assert_ne!(a.id, b.id);
        assert!(leaving.leave(&a.id));
        assert!(a.left.is_cancelled() && !b.left.is_cancelled());
        assert!(!leaving.leave(&a.id), "once");
        let id = b.id.clone();
        drop(b);
        assert!(!leaving.leave(&id), "an ended stream leaves no entry");
        drop(a);
        assert!(lock(&leaving.streams).is_empty());
    }
}
