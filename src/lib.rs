//! switchboard: the classic socket-tutorial servers made real, with a web
//! dashboard in front of them and a command-line client for each, in one
//! binary.
//!
//! # The map, floor by floor
//!
//! A module uses only modules on its own floor or below; a lower floor never
//! names a higher one (`tests/architecture.rs` fails on any import circle
//! between these modules). Within the crate, `main.rs` and its `cmd/` are
//! the binary: they sit on top and use the library as any program would.
//!
//! **Ground: the leaves**, which use nothing of the crate (or only another
//! leaf):
//! - [`wire`]: the formats on the wire as pure functions, no I/O.
//! - [`kind`]: the kinds of service and an instance's identity; the one
//!   list of kinds (`for_each_kind!`).
//! - [`sync`]: lock helpers that survive a poisoned lock.
//! - [`wake`]: a future polled only after its own wake-up (a rare `select!` branch).
//! - [`clock`]: the thread that keeps the periodic work's timers, off the
//!   runtime that serves connections.
//! - [`shutdown`]: the root cancellation token and task tracker.
//! - [`stream`]: a plain socket or TLS over one, for clients and services.
//! - [`terminal`]: asking a person for a line, with or without echo.
//! - [`notify`]: systemd's readiness protocol (`sd_notify`).
//! - [`ratelimit`]: failed sign-ins per address, for `login` and the web.
//! - `jsonfile` (crate-private): the atomic replacement and change check of small JSON files, and `JsonStore`, the one locked, refreshed store of the accounts and the tokens.
//! - [`failpoint`]: fault injection for tests (the `failpoints` feature).
//! - [`cli`]: the command line's arguments (clap), nothing run.
//! - [`control`]: the control socket `reload` and `upgrade` talk over.
//! - [`audit_read`]: reading the audit log back, a page at a time.
//!
//! **First floor: settings and the shared stores**
//! - [`settings`]: how a key is read (declared once, by its getter), and the
//!   typed settings shared above it (listen addresses, limits, TLS files,
//!   a kind's settings boxed for config).
//! - [`auth`]: the HMAC challenge/response of `exec` and `files`.
//! - [`conn`]: a message-protocol connection, for services and clients.
//! - [`capture`]: the wire inspector's recorder.
//! - [`stats`]: the live registry every service reports to: connections,
//!   bytes, per-second history, events. Lock-free on the data path.
//! - [`store`]: the files folder: safe names, atomic arrival, no overwrite.
//! - [`users`]: people's accounts (argon2id), for `login` and the dashboard.
//! - [`tokens`]: API tokens for scripts (`Authorization: Bearer`).
//! - [`audit`]: the append-only log of commands run, logins and files stored.
//! - [`handoff`]: listening sockets kept across a reload or an upgrade.
//! - [`tls`]: certificates (generated, loaded, reloaded) and client trust,
//!   from typed settings.
//! - [`toxic`]: Toxiproxy-style faults for the proxies.
//!
//! **Second floor: the config**
//! - [`config`]: the one `Config`, merged from defaults, file, environment
//!   and flags by a pure function. It reads the keys every instance has and
//!   is handed the kinds' reader for the rest: it never names a kind.
//! - [`keyfile`]: the HMAC key kept in the data dir when the config has none.
//! - [`activation`]: sockets handed over at start (systemd, an upgrade).
//!
//! **Third floor: the kinds and their clients**
//! - [`service`]: one module per kind, each a loop over a bound socket that
//!   stops on its cancellation token; `service::registry` wires the kinds
//!   (reading their settings for config, launching them).
//! - [`client`]: a client per service, used by the CLI (and the dashboard,
//!   so that what the browser does crosses a real socket).
//! - [`bench`]: `switchboard bench`, a load generator per service, built
//!   on the clients.
//! - [`replay`]: `switchboard replay`: send a capture's client side again
//!   and compare the replies with the recorded ones.
//!
//! **Fourth floor: running them**
//! - [`supervisor`]: starts, stops, restarts and watches every instance.
//! - [`reload`]: applying a changed config to a running supervisor.
//!
//! **Top: the process**
//! - [`web`]: the dashboard: pages, the JSON API, the live stream,
//!   `/healthz`, `/metrics`, and the HTTP server they run on. It sees
//!   services only through the [`supervisor::Supervisor`] and `stats`.
//! - [`server`]: the whole server as one library call, `server::run`.

pub mod activation;
pub mod audit;
pub mod audit_read;
pub mod auth;
pub mod bench;
pub mod capture;
pub mod cli;
pub mod client;
pub mod clock;
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
pub mod wake;
pub mod web;
pub mod wire;
