//! The HTML pages: askama templates filled from the same data the API
//! serves, one module per page (or per small group of pages). Each page is
//! complete without script (the figures as of the request); its module in
//! `static/` then keeps it live from `/api/v1/live`. Everything a peer or a
//! service wrote is inserted as text (askama escapes, the scripts use
//! `textContent`), never as markup.
//!
//! Not here: the JSON API the scripts call (see [`super::api`] and the
//! resource modules beside it).

use super::AppState;
use super::session::Session;
use crate::users::Role;

mod admin;
mod captures;
mod connections;
mod inspect;
mod login;
mod overview;
mod send;
mod stats;
mod tools;
mod traffic;

pub use admin::{audit, services, tokens};
pub use captures::captures;
pub use connections::connections;
pub use inspect::inspect;
pub use login::login;
pub use overview::overview;
pub use send::send;
pub use stats::stats;
pub use tools::{console, files};
pub use traffic::traffic;

/// What every signed-in page shows around its content.
pub struct Chrome {
    pub user: String,
    pub role: Role,
    pub csrf_token: String,
    pub is_admin: bool,
    /// The nav entry to highlight.
    pub nav: &'static str,
}

impl Chrome {
    pub(super) fn new(session: Session, nav: &'static str) -> Self {
        Chrome {
            is_admin: session.role >= Role::Admin,
            user: session.user,
            role: session.role,
            csrf_token: session.csrf_token,
            nav,
        }
    }
}

/// `12 s`, `4 min`, `3 h 5 min`, `2 d 4 h`.
pub fn human_duration_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Every instance's name, in config order (the filters' choices).
fn service_names(state: &AppState) -> Vec<String> {
    state
        .supervisor()
        .ids()
        .iter()
        .map(|id| id.name().to_owned())
        .collect()
}
