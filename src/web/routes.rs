//! The route table, one function per resource: each names its paths and
//! handlers, and [`super::router`] merges them and puts the middleware
//! around them. A path appears in exactly one function (axum refuses a path
//! merged twice).
//!
//! Not here: the middleware (security headers, guard, timeout), which is
//! the router's; and any handler logic.

use axum::Router;
use axum::routing::{delete, get, post, put};

use super::{
    AppState, LIVE_PATH, api, assets, audit, capture, chat, declared_size_limit, instances, live,
    live_leave, metrics, pages, relay, reload, session, toxics, tus, tutorials, ws,
};

use super::stats_table;

type Routes = Router<AppState>;

/// The HTML pages, one path each.
pub(super) fn pages() -> Routes {
    Router::new()
        .route("/", get(pages::overview))
        .route("/connections", get(pages::connections))
        .route("/inspect/{id}", get(pages::inspect))
        .route("/traffic", get(pages::traffic))
        .route("/send", get(pages::send))
        .route("/files", get(pages::files))
        .route("/console", get(pages::console))
        .route("/login", get(pages::login))
        .route("/services", get(pages::services))
        .route("/captures", get(pages::captures))
        .route("/audit", get(pages::audit))
        .route("/tokens", get(pages::tokens))
        .route("/chat", get(chat::page))
        .route("/tutorials", get(tutorials::page))
        // "Sign in first" returns to the page asked for.
        .route_layer(axum::middleware::from_fn(super::next::remember_page))
}

/// Health, readiness, metrics and the embedded static files.
pub(super) fn infrastructure() -> Routes {
    Router::new()
        .route("/healthz", get(super::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(metrics::render))
        .route("/static/{*path}", get(assets::serve))
        // Browsers and tools that ignore the page's `<link rel="icon">`.
        .route(
            "/favicon.ico",
            get(|headers| assets::serve(axum::extract::Path("favicon.svg".into()), headers)),
        )
}

/// Signing in and out, and the API tokens.
pub(super) fn session() -> Routes {
    Router::new()
        .route(
            "/api/v1/session",
            post(session::sign_in)
                .get(session::current)
                .delete(session::sign_out),
        )
        .route(
            "/api/v1/tokens",
            get(session::list_tokens).post(session::create_token),
        )
        .route("/api/v1/tokens/{name}", delete(session::revoke_token))
}

/// The instances: their state, actions, settings, and the kinds.
pub(super) fn services() -> Routes {
    Router::new()
        .route("/api/v1/kinds", get(instances::kinds))
        .route("/api/v1/services", get(api::services).post(instances::add))
        .route(
            "/api/v1/services/{name}",
            get(api::service)
                .put(instances::edit)
                .patch(instances::patch)
                .delete(instances::remove),
        )
        .route("/api/v1/services/{name}/settings", get(instances::settings))
        .route(
            "/api/v1/services/{name}/{action}",
            post(api::service_action),
        )
        .route("/api/v1/reload", post(reload::reload))
}

/// A proxy instance's toxics.
pub(super) fn toxics() -> Routes {
    Router::new()
        .route("/api/v1/toxics/types", get(toxics::types))
        .route(
            "/api/v1/services/{name}/toxics",
            get(toxics::index).post(toxics::create),
        )
        .route(
            "/api/v1/services/{name}/toxics/{toxic}",
            get(toxics::show).put(toxics::update).delete(toxics::delete),
        )
}

/// Captured bytes: switching capture, listing, exporting, replaying.
pub(super) fn captures() -> Routes {
    Router::new()
        .route("/api/v1/services/{name}/capture", put(capture::switch))
        .route(
            "/api/v1/services/{name}/capture.pcapng",
            get(capture::service_pcapng),
        )
        .route("/api/v1/captures", get(capture::list))
        .route("/api/v1/connections/{id}/capture", get(capture::segments))
        .route(
            "/api/v1/connections/{id}/capture/decoded",
            get(super::capture_decode::decoded),
        )
        .route("/api/v1/connections/{id}/replay", post(capture::replay))
        .route(
            "/api/v1/connections/{id}/capture.pcapng",
            get(capture::connection_pcapng),
        )
}

/// Connections, events, traffic history and the audit log.
pub(super) fn activity() -> Routes {
    Router::new()
        .route("/api/v1/connections", get(api::connections))
        .route("/api/v1/connections/{id}", delete(api::close_connection))
        .route("/api/v1/events", get(api::events))
        // A page being left ends its live stream (the stream's id is the
        // credential; a beacon carries no session header).
        .route(live_leave::LEAVE_PATH, post(live_leave::leave))
        .route("/api/v1/traffic", get(api::traffic))
        .merge(super::history::routes())
        .route("/api/v1/stats", get(stats_table::json))
        .route("/api/v1/stats.csv", get(stats_table::download))
        .route("/stats", get(pages::stats))
        .route("/api/v1/audit", get(audit::page))
}

/// The relay's short requests: test messages, sticky packets, chat
/// replies, the file list.
pub(super) fn relay() -> Routes {
    Router::new()
        .route("/api/v1/services/{name}/send", post(relay::send))
        .route("/api/v1/services/{name}/chat/{peer}", post(chat::reply))
        .route("/api/v1/sticky", post(relay::sticky))
        .route("/api/v1/sticky/exec", post(relay::sticky_exec))
        .route("/api/v1/files", get(relay::list_files))
        .merge(super::saved::routes())
}

/// What lasts as long as its stream: the live page, an upload or a
/// download of any size, a command's output, a WebSocket, a long poll.
/// No overall timeout; the services' own idle timeouts end a stalled
/// transfer.
pub(super) fn streams() -> Routes {
    Router::new()
        .route(LIVE_PATH, get(live::stream))
        .route(
            "/api/v1/files/{name}",
            get(relay::get_file)
                .put(relay::put_file)
                .delete(relay::delete_file),
        )
        .route("/api/v1/services/{name}/ws", get(ws::relay))
        // Long-polled (up to chat::LONG_POLL): outside the request timeout.
        .route("/api/v1/services/{name}/chat", get(chat::threads))
        .merge(tus::routes())
        .route(
            "/api/v1/exec",
            post(relay::exec).layer(axum::middleware::from_fn(declared_size_limit)),
        )
}
