//! The sign-in page.
//!
//! Not here: signing in (`POST /api/v1/session`), or the rule for `next`
//! ([`crate::web::next`]).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::web::error::WebError;
use crate::web::next::safe_next;
use crate::web::session::Viewer;

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage;

/// `?next=PATH`: where to go once signed in.
#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /login[?next=PATH]`: the sign-in form, or (for someone signed in)
/// the page `next` names when it is on this site, else the overview.
pub async fn login(
    viewer: Result<Viewer, WebError>,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Response {
    match viewer {
        Ok(_) => {
            let next = query.ok().and_then(|Query(q)| q.next);
            Redirect::to(next.as_deref().and_then(safe_next).unwrap_or("/")).into_response()
        }
        Err(_) => LoginPage.into_response(),
    }
}
