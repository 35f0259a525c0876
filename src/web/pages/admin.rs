//! The admin-facing pages: API tokens, the Services table and form, the
//! audit log's frame.
//!
//! Not here: the changes they make (the instances, tokens and audit APIs).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::Chrome;
use crate::kind::ServiceKind;
use crate::users::Role;
use crate::web::AppState;
use crate::web::error::{PageError, WebError};
use crate::web::session::{Admin, Viewer};

/// One row of the tokens table: never the token.
pub struct TokenRow {
    pub name: String,
    pub role: Role,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub expired: bool,
}

/// A Unix time as `2026-11-27 06:56 UTC`.
fn utc_minute(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

impl From<crate::tokens::TokenInfo> for TokenRow {
    fn from(t: crate::tokens::TokenInfo) -> Self {
        TokenRow {
            created: utc_minute(t.created_unix),
            expires: t
                .expires_unix
                .map_or_else(|| "never".to_owned(), utc_minute),
            last_used: t
                .last_used_unix
                .map_or_else(|| "never".to_owned(), utc_minute),
            expired: t.expired,
            role: t.role,
            name: t.name,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "tokens.html")]
pub struct TokensPage {
    chrome: Chrome,
    rows: Vec<TokenRow>,
    max_name: usize,
}

/// `GET /tokens`: API tokens for scripts (admins).
///
/// # Errors
/// Not signed in: a redirect to the sign-in page; not an admin: 403.
pub async fn tokens(
    State(state): State<AppState>,
    admin: Result<Admin, WebError>,
) -> Result<TokensPage, PageError> {
    let Admin(session) = admin?;
    Ok(TokensPage {
        chrome: Chrome::new(session, "tokens"),
        rows: state
            .tokens()
            .list()
            .into_iter()
            .map(TokenRow::from)
            .collect(),
        max_name: crate::tokens::MAX_NAME_LEN,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "services.html")]
pub struct ServicesPage {
    chrome: Chrome,
    rows: Vec<ServiceRow>,
    kinds: Vec<&'static str>,
}

/// One instance in the Services table.
pub struct ServiceRow {
    pub name: String,
    pub kind: &'static str,
    pub listen: String,
    pub phase: &'static str,
    pub source: &'static str,
    pub enabled: bool,
    /// New connections are captured for the wire inspector.
    pub capturing: bool,
}

/// `GET /services`: every instance, and (admins) a form to add, edit and
/// remove them.
///
/// # Errors
/// Not signed in: a redirect to the sign-in page.
pub async fn services(
    State(state): State<AppState>,
    viewer: Result<Viewer, WebError>,
) -> Result<ServicesPage, PageError> {
    let Viewer(session) = viewer?;
    let sup = state.supervisor();
    let rows = sup
        .statuses()
        .into_iter()
        .map(|s| {
            let source = sup.config_of(s.name.name()).map(|c| c.source);
            ServiceRow {
                name: s.name.to_string(),
                kind: s.kind.name(),
                listen: s.local_addr.unwrap_or(s.listen),
                phase: s.phase,
                source: match source {
                    Some(crate::config::Source::Builtin) => "built in",
                    Some(crate::config::Source::Config) => "config file",
                    Some(crate::config::Source::Dashboard) | None => "dashboard",
                },
                enabled: s.enabled,
                capturing: state.stats().capturing(s.name.name()),
            }
        })
        .collect();
    Ok(ServicesPage {
        chrome: Chrome::new(session, "services"),
        rows,
        kinds: ServiceKind::ALL.iter().map(|k| k.name()).collect(),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
pub struct AuditPage {
    chrome: Chrome,
}

/// `GET /audit`: the audit log, newest first (admins).
///
/// # Errors
/// Not signed in: a redirect to the sign-in page; not an admin: 403.
pub async fn audit(admin: Result<Admin, WebError>) -> Result<AuditPage, PageError> {
    let Admin(session) = admin?;
    Ok(AuditPage {
        chrome: Chrome::new(session, "audit"),
    })
}
