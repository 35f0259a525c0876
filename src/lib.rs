//! switchboard: the classic socket-tutorial servers made real, with a web
//! dashboard in front of them and a command-line client for each, in one
//! binary.
//!
//! How the pieces fit:
//!
//! - [`wire`]: the formats on the wire as pure functions, no I/O.
//! - [`service`]: one module per service, each a loop over a bound socket
//!   that stops on its cancellation token; the [`service::Supervisor`]
//!   starts, stops and restarts them and knows their state.
//! - [`stats`]: the live registry every service reports to: connections,
//!   bytes, per-second history, events. Lock-free on the data path.
//! - [`client`]: a client per service, used by the CLI (and the dashboard,
//!   so that what the browser does crosses a real socket).
//! - [`config`]: the one `Config`, merged from defaults, file, environment
//!   and flags by a pure function.
//! - [`shutdown`]: the root cancellation token and task tracker.
//! - [`users`]: people's accounts (argon2id), for `login` and the dashboard.
//! - [`tokens`]: API tokens for scripts (`Authorization: Bearer`).
//! - [`store`]: the files folder: safe names, atomic arrival, no overwrite.
//! - [`audit`]: the append-only log of commands run, logins and files stored.
//! - [`kind`]: the service names, shared by all of the above.
//! - [`ratelimit`]: failed sign-ins per address, for `login` and the web.
//! - [`bench`]: `switchboard bench`, a load generator per service, built
//!   on the clients.
//! - [`replay`]: `switchboard replay`: read a pcap/pcapng capture, send
//!   its client side again, compare the replies with the recorded ones.
//! - [`tls`]: certificates (generated, loaded, reloaded) and client trust.
//! - [`stream`]: a plain socket or TLS over one, for clients and services.
//! - [`web`]: the dashboard: pages, the JSON API, the live stream,
//!   `/healthz`, `/metrics`, and the HTTP server they run on.
//!
//! Dependencies point one way: `service` uses `wire` and `stats`; `client`
//! uses `wire`; `web` sees services only through the `Supervisor` and
//! `stats` snapshots; `wire`, `stats` and `kind` use nothing above them.

pub mod activation;
pub mod audit;
pub mod audit_read;
pub mod auth;
pub mod bench;
pub mod capture;
pub mod cli;
pub mod client;
pub mod config;
pub mod conn;
pub mod control;
pub mod failpoint;
pub mod handoff;
pub(crate) mod jsonfile;
pub mod keyfile;
pub mod kind;
pub mod notify;
pub mod ratelimit;
pub mod reload;
pub mod replay;
pub mod server;
pub mod service;
pub mod settings;
pub mod shutdown;
pub mod stats;

pub mod store;
pub mod stream;
pub mod supervisor;
pub mod sync;
pub mod terminal;
pub mod tls;
pub mod tokens;
pub mod toxic;
pub mod users;
pub mod web;
pub mod wire;
