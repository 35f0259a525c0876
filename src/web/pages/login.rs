//! The sign-in page.
//!
//! Not here: signing in (`POST /api/v1/session`).

use askama::Template;
use askama_web::WebTemplate;
use axum::response::{IntoResponse, Redirect, Response};

use crate::web::error::WebError;
use crate::web::session::Viewer;

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage;

/// `GET /login`: the sign-in form, or the overview for someone signed in.
pub async fn login(viewer: Result<Viewer, WebError>) -> Response {
    match viewer {
        Ok(_) => Redirect::to("/").into_response(),
        Err(_) => LoginPage.into_response(),
    }
}
