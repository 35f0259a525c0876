//! What `serve` does between start and stop: waits for a stop signal while
//! answering reloads (`SIGHUP`, the control socket) and upgrades
//! (`SIGUSR2`, the control socket).
//!
//! The reload itself is the library's ([`switchboard::reload`]); this file
//! only routes the requests, and tells systemd (when it started us) that a
//! reload is under way and done.

use anyhow::Result;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use switchboard::control::{self, Asked, Request};
use switchboard::server::Running;
use switchboard::shutdown::Signals;

/// Why [`wait`] returned.
pub(crate) enum Ended {
    /// A stop signal: shut down, draining.
    Stop,
    /// A new process took the sockets over: stop accepting, let open
    /// connections finish (within the grace period), exit.
    Upgraded,
}

/// The control socket's requests.
pub(crate) struct Control {
    rx: mpsc::Receiver<Asked>,
    /// Where the upgrade leaves the counters for the new process.
    data_dir: std::path::PathBuf,
    /// The control socket's file as this process bound it (device, inode):
    /// an upgrade answers only once the path names another one.
    socket: Option<(u64, u64)>,
}

impl Control {
    /// Binds `<data_dir>/control.sock` and serves it until shutdown; a
    /// socket that cannot be bound is reported, and reloads still work by
    /// signal.
    pub(crate) fn start(running: &Running, data_dir: &std::path::Path, take_over: bool) -> Control {
        use std::os::unix::fs::MetadataExt;
        let (tx, rx) = mpsc::channel(4);
        let mut socket = None;
        match control::bind(data_dir, take_over) {
            Ok(listener) => {
                socket = std::fs::metadata(control::path(data_dir))
                    .ok()
                    .map(|m| (m.dev(), m.ino()));
                tokio::spawn(control::serve(listener, tx, running.shutdown_token()));
            }
            Err(e) => tracing::warn!(
                "no control socket ({e}): `switchboard reload` cannot reach this server; \
                 send SIGHUP instead"
            ),
        }
        Control {
            rx,
            data_dir: data_dir.to_owned(),
            socket,
        }
    }
}

/// Waits for a stop signal, serving reloads meanwhile.
pub(crate) async fn wait(
    signals: &mut Signals,
    running: &Running,
    mut control: Control,
) -> Result<Ended> {
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    loop {
        tokio::select! {
            () = signals.next() => return Ok(Ended::Stop),
            _ = hup.recv() => {
                let _ = reload(running, "signal").await;
            }
            _ = usr2.recv() => {
                if super::upgrade::upgrade(&mut control.rx, running.supervisor.stats(), &control.data_dir, control.socket).await.is_ok() {
                    return Ok(Ended::Upgraded);
                }
            }
            Some(asked) = control.rx.recv() => {
                let (answer, upgraded) = match asked.request {
                    Request::Reload => (reload(running, "control").await, false),
                    Request::Upgrade => match super::upgrade::upgrade(&mut control.rx, running.supervisor.stats(), &control.data_dir, control.socket).await {
                        Ok(pid) => (Ok(serde_json::json!({"pid": pid})), true),
                        Err(e) => (Err(e), false),
                    },
                    Request::Ready => (Err("no upgrade is under way".to_owned()), false),
                };
                let _ = asked.reply.send(answer);
                if upgraded {
                    return Ok(Ended::Upgraded);
                }
            }
        }
    }
}

async fn reload(running: &Running, who: &str) -> Result<serde_json::Value, String> {
    let Some(reloader) = &running.reloader else {
        return Err("this server cannot reload".to_owned());
    };
    switchboard::notify::reloading();
    let report = reloader.reload(who, None).await.map_err(|e| e.to_string());
    switchboard::notify::notify("READY=1");
    let report = report?;
    serde_json::to_value(report).map_err(|e| e.to_string())
}

/// `switchboard reload` / `switchboard upgrade`: asks the server of this
/// data folder, prints its answer, fails with its reason.
pub(crate) async fn ask(
    data_dir: &std::path::Path,
    request: Request,
    timeout: std::time::Duration,
) -> Result<()> {
    let answer = control::ask(data_dir, request, timeout).await?;
    if answer["ok"] == serde_json::Value::Bool(true) {
        let result = &answer["result"];
        println!("{}", serde_json::to_string_pretty(result)?);
        let failed = result["failed"].as_array().map_or(0, Vec::len);
        if failed > 0 {
            anyhow::bail!(
                "{} done, but {failed} change(s) failed (see above)",
                request.word()
            );
        }
        Ok(())
    } else {
        anyhow::bail!(
            "{} refused: {}",
            request.word(),
            answer["error"].as_str().unwrap_or("no reason given")
        )
    }
}

/// Removes the control socket's file at exit, unless this process handed
/// its sockets to a new one (which has its own there now).
pub(crate) fn remove_control(data_dir: &std::path::Path) {
    if !switchboard::handoff::handed_off() {
        let _ = std::fs::remove_file(control::path(data_dir));
    }
}

/// `switchboard reload` / `switchboard upgrade` from the command line.
pub(crate) async fn control(
    top: switchboard::cli::ServeArgs,
    args: switchboard::cli::ControlArgs,
    request: Request,
) -> Result<()> {
    let serve = super::merge_serve_args(top, args.config);
    // The server reads (and judges) the config itself; here it is read
    // only to find the data folder, when not given.
    let dir = match serve.data_dir.clone() {
        Some(dir) => dir,
        None => {
            super::load_config(&serve)
                .map_err(|e| {
                    e.context(
                        "cannot find the data folder in the configuration (nothing was changed)",
                    )
                })?
                .data_dir
        }
    };
    ask(&dir, request, args.timeout).await
}
