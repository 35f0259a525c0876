//! The HTML pages: askama templates filled from the same data the API
//! serves. Each page is complete without script (the figures as of the
//! request); `static/app.js` then keeps it live from `/api/v1/live`.
//! Everything a peer or a service wrote is inserted as text (askama
//! escapes, the script uses `textContent`), never as markup.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;
use super::api::ServiceView;
use super::error::{PageError, WebError};
use super::session::{Admin, Session, Viewer};
use crate::kind::ServiceKind;
use crate::stats::{ConnInfo, Event, EventKind};
use crate::terminal::human_bytes;
use crate::users::Role;

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

/// One service card.
pub struct Card {
    pub name: String,
    /// The kind, when the name is not already it (`echo-2`: `echo`).
    pub kind: Option<&'static str>,
    pub proto: String,
    pub addr: String,
    /// `running`, `stopped` or `failed`: the card's colour.
    pub state_word: &'static str,
    /// The failure reason, if failed.
    pub reason: String,
    pub state_for: String,
    pub active: u64,
    pub bytes_in: String,
    pub bytes_out: String,
    pub refused: u64,
    pub errors: u64,
    pub auth_failures: u64,
    /// A proxy's upstream as last probed (`upstream 127.0.0.1:6379 down:
    /// ...`), empty for other kinds or before the first probe.
    pub upstream: String,
}

impl From<&ServiceView> for Card {
    fn from(v: &ServiceView) -> Self {
        let state_word = v.status.status.name();
        let reason = v.status.status.reason().unwrap_or_default().to_owned();
        let (name, kind) = (&v.status.name, v.status.kind);
        Card {
            name: name.to_string(),
            kind: (name.name() != kind.name()).then_some(kind.name()),
            proto: v.status.proto.to_string(),
            addr: v
                .status
                .local_addr
                .clone()
                .unwrap_or_else(|| v.status.listen.clone()),
            state_word,
            reason,
            state_for: human_duration_ms(v.state_for_ms),
            active: v.totals.active,
            bytes_in: human_bytes(v.totals.bytes_in),
            bytes_out: human_bytes(v.totals.bytes_out),
            refused: v.totals.refused,
            errors: v.totals.errors,
            auth_failures: v.totals.auth_failures,
            upstream: String::new(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    chrome: Chrome,
    cards: Vec<Card>,
    summary: Summary,
}

/// The strip above the cards: what needs a look, at a glance.
pub struct Summary {
    pub running: usize,
    pub failed: usize,
    pub open: u64,
    /// Failed authentications and refusals in the last hour, counted from
    /// the recent events (the last [`crate::stats::RECENT_EVENTS`]).
    pub auth_failures_hour: usize,
    pub refusals_hour: usize,
}

impl Summary {
    fn of(views: &[ServiceView], events: &[Event], now_ms: u64) -> Summary {
        let hour_ago = now_ms.saturating_sub(3_600_000);
        let recent = || events.iter().filter(|e| e.at_unix_ms >= hour_ago);
        Summary {
            running: views.iter().filter(|v| v.status.phase == "running").count(),
            failed: views.iter().filter(|v| v.status.phase == "failed").count(),
            open: views.iter().map(|v| v.totals.active).sum(),
            // Dashboard sign-ins included: they are `auth_failed` too.
            auth_failures_hour: recent()
                .filter(|e| e.kind.type_name() == "auth_failed")
                .count(),
            refusals_hour: recent()
                .filter(|e| matches!(e.kind, EventKind::Refused { .. }))
                .count(),
        }
    }
}

/// `GET /`
///
/// # Errors
/// Not signed in: a redirect to the sign-in page.
pub async fn overview(
    State(state): State<AppState>,
    viewer: Result<Viewer, WebError>,
) -> Result<OverviewPage, PageError> {
    let Viewer(session) = viewer?;
    let snapshot = state.stats().snapshot_newest(0).0;
    let views = state.service_views(&snapshot);
    let events = state.stats().recent_events();
    Ok(OverviewPage {
        chrome: Chrome::new(session, "overview"),
        summary: Summary::of(&views, &events, snapshot.at_unix_ms),
        cards: views
            .iter()
            .map(|v| {
                let mut card = Card::from(v);
                card.upstream = last_upstream(&events, &card.name);
                card
            })
            .collect(),
    })
}

/// The latest upstream probe result of a proxy instance, from its events.
fn last_upstream(events: &[Event], name: &str) -> String {
    events
        .iter()
        .rev()
        .find_map(|e| match &e.kind {
            EventKind::ServiceState { service, state }
                if service.name() == name && state.starts_with("upstream ") =>
            {
                Some(state.clone())
            }
            _ => None,
        })
        .unwrap_or_default()
}

/// One row of the connections table.
pub struct Row {
    pub id: u64,
    pub service: String,
    pub proto: String,
    pub peer: String,
    pub age: String,
    pub bytes_in: String,
    pub bytes_out: String,
    pub idle: String,
}

impl From<&ConnInfo> for Row {
    fn from(c: &ConnInfo) -> Self {
        Row {
            id: c.id,
            service: c.service.to_string(),
            proto: c.proto.to_string(),
            peer: c.peer.clone(),
            age: human_duration_ms(c.age_ms),
            bytes_in: human_bytes(c.bytes_in),
            bytes_out: human_bytes(c.bytes_out),
            idle: human_duration_ms(c.idle_ms),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "connections.html")]
pub struct ConnectionsPage {
    chrome: Chrome,
    rows: Vec<Row>,
    total: usize,
    services: Vec<String>,
}

/// `GET /connections`
///
/// # Errors
/// Not signed in: a redirect to the sign-in page.
pub async fn connections(
    State(state): State<AppState>,
    viewer: Result<Viewer, WebError>,
) -> Result<ConnectionsPage, PageError> {
    let Viewer(session) = viewer?;
    let live = state.live_snapshot();
    Ok(ConnectionsPage {
        chrome: Chrome::new(session, "connections"),
        rows: live.connections.iter().rev().map(Row::from).collect(),
        total: live.connections_total,
        services: service_names(&state),
    })
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

/// One line of the event log.
pub struct LogLine {
    pub seq: u64,
    pub at_unix_ms: u64,
    pub kind: &'static str,
    pub service: String,
    pub text: String,
}

/// The one-line description of an event (the page's script has the same
/// wording for events that arrive live). UDP has no connections: a source
/// address is a peer that is new, then expires.
pub fn describe(kind: &EventKind) -> String {
    let udp = kind
        .service()
        .is_some_and(|s| s.proto() == crate::kind::Proto::Udp);
    match kind {
        EventKind::Opened { peer, id, .. } if udp => format!("new peer {peer} (#{id})"),
        EventKind::Opened { peer, id, .. } => format!("{peer} connected (#{id})"),
        EventKind::Closed {
            peer,
            bytes_in,
            bytes_out,
            duration_ms,
            ..
        } => format!(
            "{peer} {} {}: {} in, {} out",
            if udp {
                "expired, seen for"
            } else {
                "left after"
            },
            human_duration_ms(*duration_ms),
            human_bytes(*bytes_in),
            human_bytes(*bytes_out)
        ),
        EventKind::Refused { peer, reason, .. } => format!("{peer} refused: {reason}"),
        EventKind::ServiceState { state, .. } => format!("now {state}"),
        EventKind::AuthFailed { peer, reason, .. }
        | EventKind::SignInFailed { peer, reason, .. } => format!("{peer}: {reason}"),
        EventKind::CommandRun {
            peer,
            argv,
            outcome,
            ..
        } => format!("{peer} ran {}: {outcome}", argv.join(" ")),
        EventKind::FileStored {
            peer, name, size, ..
        } => format!("{peer} stored {name} ({})", human_bytes(*size)),
        EventKind::FileDeleted { user, name, .. } => format!("{user} deleted {name}"),
    }
}

impl From<&Event> for LogLine {
    fn from(e: &Event) -> Self {
        LogLine {
            seq: e.seq,
            at_unix_ms: e.at_unix_ms,
            kind: e.kind.type_name(),
            service: e.kind.service_name().to_owned(),
            text: describe(&e.kind),
        }
    }
}

/// Events shown when the traffic page loads.
const LOG_LINES: usize = 200;

#[derive(Template, WebTemplate)]
#[template(path = "traffic.html")]
pub struct TrafficPage {
    chrome: Chrome,
    log: Vec<LogLine>,
    services: Vec<String>,
    types: [&'static str; 7],
}

/// `GET /traffic`
///
/// # Errors
/// Not signed in: a redirect to the sign-in page.
pub async fn traffic(
    State(state): State<AppState>,
    viewer: Result<Viewer, WebError>,
) -> Result<TrafficPage, PageError> {
    let Viewer(session) = viewer?;
    let events = state.stats().recent_events();
    Ok(TrafficPage {
        chrome: Chrome::new(session, "traffic"),
        log: events
            .iter()
            .rev()
            .take(LOG_LINES)
            .map(LogLine::from)
            .collect(),
        services: service_names(&state),
        types: [
            "opened",
            "closed",
            "refused",
            "service_state",
            "auth_failed",
            "command_run",
            "file_stored",
        ],
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "send.html")]
pub struct SendPage {
    chrome: Chrome,
    can_operate: bool,
    /// Every instance a test message can go to (echo, udp-echo and time kinds).
    targets: Vec<SendTarget>,
    max_message: usize,
    max_sticky_messages: usize,
    max_sticky_len: usize,
}

/// One choice of the Send page's service list.
pub struct SendTarget {
    name: String,
    kind: &'static str,
    label: String,
    /// Not running: shown, but not choosable, with why.
    why_not: String,
}

impl SendTarget {
    fn of(id: &crate::kind::ServiceId) -> Option<SendTarget> {
        let what = match id.kind() {
            ServiceKind::Echo => "TCP, upper-cases",
            ServiceKind::UdpEcho => "UDP, upper-cases",
            ServiceKind::Time => "UDP, strftime format",
            _ => return None,
        };
        let label = match id.name() == id.kind().name() {
            true => format!("{id} ({what})"),
            false => format!("{id} ({}: {what})", id.kind()),
        };
        Some(SendTarget {
            name: id.name().to_owned(),
            kind: id.kind().name(),
            label,
            why_not: String::new(),
        })
    }
}

/// `GET /send`: test messages, sticky packets, B/S beside C/S.
///
/// # Errors
/// Not signed in: a redirect to the sign-in page.
pub async fn send(
    State(state): State<AppState>,
    viewer: Result<Viewer, WebError>,
) -> Result<SendPage, PageError> {
    let Viewer(session) = viewer?;
    Ok(SendPage {
        targets: state
            .supervisor()
            .statuses()
            .iter()
            .filter_map(|s| {
                let mut t = SendTarget::of(&s.name)?;
                if s.status != crate::supervisor::ServiceState::Running {
                    t.why_not = s.state.clone();
                }
                Some(t)
            })
            .collect(),
        can_operate: session.role >= Role::Operator,
        chrome: Chrome::new(session, "send"),
        max_message: super::relay::MAX_MESSAGE,
        max_sticky_messages: super::relay::MAX_STICKY_MESSAGES,
        max_sticky_len: super::relay::MAX_STICKY_LEN,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "files.html")]
pub struct FilesPage {
    chrome: Chrome,
    can_operate: bool,
    max_file_bytes: u64,
    max_file: String,
}

/// `GET /files`: upload, and the stored files.
///
/// # Errors
/// Not signed in: a redirect to the sign-in page.
pub async fn files(
    State(state): State<AppState>,
    viewer: Result<Viewer, WebError>,
) -> Result<FilesPage, PageError> {
    let Viewer(session) = viewer?;
    let max = state.inner.files_max;
    Ok(FilesPage {
        can_operate: session.role >= Role::Operator,
        chrome: Chrome::new(session, "files"),
        max_file_bytes: max,
        max_file: human_bytes(max),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "console.html")]
pub struct ConsolePage {
    chrome: Chrome,
    allow: Vec<String>,
    shell: bool,
    timeout_s: u64,
}

/// `GET /console`: remote commands (admins).
///
/// # Errors
/// Not signed in: a redirect to the sign-in page.
pub async fn console(
    State(state): State<AppState>,
    viewer: Result<Viewer, WebError>,
) -> Result<ConsolePage, PageError> {
    let Viewer(session) = viewer?;
    let exec = &state.inner.exec_settings;
    Ok(ConsolePage {
        chrome: Chrome::new(session, "console"),
        allow: exec.allow.clone(),
        shell: exec.shell,
        timeout_s: exec.timeout.as_secs(),
    })
}

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

#[derive(Template, WebTemplate)]
#[template(path = "inspect.html")]
pub struct InspectPage {
    chrome: Chrome,
    id: u64,
    /// What the capture holds as of the request, if there is one.
    capture: Option<crate::capture::CaptureInfo>,
    /// Whether its instance captures now.
    capturing: bool,
    /// The instances a replay can go to: running, same protocol, no TLS;
    /// its own first.
    replay_targets: Vec<String>,
}

/// `GET /inspect/{id}`: one connection's bytes, segment by segment, live
/// (admins: captures may hold passwords and file contents).
///
/// # Errors
/// Not signed in: a redirect to the sign-in page; not an admin: 403.
pub async fn inspect(
    State(state): State<AppState>,
    admin: Result<Admin, WebError>,
    axum::extract::Path(id): axum::extract::Path<u64>,
) -> Result<InspectPage, PageError> {
    let Admin(session) = admin?;
    let capture = state.stats().captures().get(id).map(|c| c.info());
    let capturing = capture
        .as_ref()
        .is_some_and(|c| state.stats().capturing(c.service.name()));
    let mut replay_targets: Vec<String> = match &capture {
        Some(c) => state
            .supervisor()
            .ids()
            .into_iter()
            .filter(|i| i.proto() == c.proto)
            .filter(|i| state.supervisor().local_addr(i.name()).is_some())
            .filter(|i| state.supervisor().tls_of(i.name()).is_none())
            .map(|i| i.name().to_owned())
            .collect(),
        None => Vec::new(),
    };
    if let Some(c) = &capture
        && let Some(at) = replay_targets.iter().position(|n| n == c.service.name())
    {
        let own = replay_targets.remove(at);
        replay_targets.insert(0, own);
    }
    Ok(InspectPage {
        chrome: Chrome::new(session, "inspect"),
        id,
        capture,
        capturing,
        replay_targets,
    })
}
