//! `switchboard upgrade` / `SIGUSR2`: start the binary at the same path with
//! the same arguments, hand it every listening socket (the instances' TCP,
//! UDP and unix sockets and the dashboard's) at descriptors 3… described in
//! `LISTEN_FDS`/`LISTEN_FDNAMES` (the systemd convention the new process
//! already reads), and wait until it says it is ready over the control
//! socket. Only then does this process stop accepting and drain; if the
//! new one exits or does not become ready in [`READY_TIMEOUT`], this one
//! goes on serving and says why.
//!
//! Placing descriptors in the child is `command-fds`'s, so no `unsafe` here.

use std::time::Duration;

use command_fds::{CommandFdExt, FdMapping};
use tokio::sync::mpsc;

use switchboard::control::{Asked, Request};

/// How long the new process may take to listen and report ready.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long, after its ready, the new process may take to bind the control
/// socket before this one answers the upgrade anyway.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// Set in the new process's environment: the old process's pid.
pub(crate) const ENV_UPGRADE_FROM: &str = "UPGRADE_FROM_SWITCHBOARD_PID";

/// Starts the new process and waits for its ready; its pid. Requests that
/// come meanwhile (a reload) are refused: the configuration is being read
/// by the new process.
///
/// `socket` is this process's control socket file (device, inode): the
/// answer waits until the path names the new process's, so a `switchboard
/// reload` sent once `upgrade` has answered reaches the new process, not
/// this one (which takes no more requests).
pub(crate) async fn upgrade(
    rx: &mut mpsc::Receiver<Asked>,
    stats: &switchboard::stats::Stats,
    data_dir: &std::path::Path,
    socket: Option<(u64, u64)>,
) -> Result<u32, String> {
    let result = start_and_wait(rx, stats, data_dir).await;
    match &result {
        Ok(pid) => {
            until_taken_over(data_dir, socket).await;
            tracing::info!("upgrade: process {pid} took over the sockets; draining");
        }
        Err(e) => tracing::error!("upgrade failed, this process goes on serving: {e}"),
    }
    result
}

/// Waits (at most [`TAKEOVER_TIMEOUT`]) until the control socket's path no
/// longer names `socket`: the new process binds its own right after our
/// answer to its ready.
async fn until_taken_over(data_dir: &std::path::Path, socket: Option<(u64, u64)>) {
    use std::os::unix::fs::MetadataExt;
    let Some(ours) = socket else { return };
    let path = switchboard::control::path(data_dir);
    let deadline = tokio::time::Instant::now() + TAKEOVER_TIMEOUT;
    loop {
        // Absent: between the new process's removal and its bind.
        if let Ok(m) = std::fs::metadata(&path)
            && (m.dev(), m.ino()) != ours
        {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                "upgrade: the new process has not bound {} within {TAKEOVER_TIMEOUT:?}; \
                 `switchboard reload` may reach this process until it does",
                path.display()
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn start_and_wait(
    rx: &mut mpsc::Receiver<Asked>,
    stats: &switchboard::stats::Stats,
    data_dir: &std::path::Path,
) -> Result<u32, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let socks =
        switchboard::handoff::live_all().map_err(|e| format!("cannot hand the sockets on: {e}"))?;
    let names: Vec<String> = socks.iter().map(|s| s.name.clone()).collect();
    let mappings = socks
        .into_iter()
        .enumerate()
        .map(|(i, s)| FdMapping {
            parent_fd: s.fd,
            child_fd: 3 + i as i32,
        })
        .collect();
    let mut cmd = tokio::process::Command::new(&exe);
    cmd.args(std::env::args_os().skip(1))
        .env("LISTEN_FDS", names.len().to_string())
        .env("LISTEN_FDNAMES", names.join(":"))
        // No pid: the new process's is not known before it starts; it
        // takes the sockets because LISTEN_PID is absent.
        .env_remove("LISTEN_PID")
        .env(ENV_UPGRADE_FROM, std::process::id().to_string())
        .fd_mappings(mappings)
        .map_err(|e| e.to_string())?;
    switchboard::notify::reloading();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    // Our duplicates of the sockets go with the command.
    drop(cmd);
    let pid = child.id().unwrap_or(0);
    tracing::info!(
        "upgrade: started {} as process {pid} with {} socket(s)",
        exe.display(),
        names.len()
    );
    let waited = tokio::time::timeout(READY_TIMEOUT, async {
        loop {
            tokio::select! {
                status = child.wait() => {
                    return Err(match status {
                        Ok(s) => format!("the new process exited before it was ready ({s})"),
                        Err(e) => format!("the new process: {e}"),
                    });
                }
                asked = rx.recv() => {
                    let Some(asked) = asked else {
                        return Err("the control socket closed".to_owned());
                    };
                    if asked.request == Request::Ready {
                        // Before the answer: the new process reads it then.
                        if let Err(e) = stats.carry_out(data_dir) {
                            tracing::warn!("upgrade: the counters start anew in the new process: {e}");
                        }
                        switchboard::notify::notify(&format!("MAINPID={pid}\nREADY=1"));
                        switchboard::handoff::set_handed_off(true);
                        let _ = asked.reply.send(Ok(serde_json::json!({"old": std::process::id()})));
                        return Ok(pid);
                    }
                    let _ = asked.reply.send(Err("an upgrade is under way".to_owned()));
                }
            }
        }
    })
    .await;
    let result = match waited {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the new process was not ready within {READY_TIMEOUT:?}"
        )),
    };
    if result.is_err() {
        let _ = child.start_kill();
        switchboard::notify::notify("READY=1");
    }
    result
}

/// In the new process: tells the old one (over its control socket) that
/// everything listens. The old one then drains and exits.
pub(crate) async fn report_ready(data_dir: &std::path::Path, stats: &switchboard::stats::Stats) {
    // The old process's control slots may all be taken (each for at most
    // its read and write deadlines): ask again until then.
    let until = tokio::time::Instant::now()
        + switchboard::control::READ_TIMEOUT
        + switchboard::control::WRITE_TIMEOUT;
    let mut asked =
        switchboard::control::ask(data_dir, Request::Ready, Duration::from_secs(10)).await;
    while let Ok(answer) = &asked {
        let busy = answer["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("busy"));
        if !busy || tokio::time::Instant::now() > until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        asked = switchboard::control::ask(data_dir, Request::Ready, Duration::from_secs(10)).await;
    }
    match asked {
        Ok(answer) if answer["ok"] == serde_json::Value::Bool(true) => {
            tracing::info!(
                "upgrade: took over from process {}",
                answer["result"]["old"]
            );
            match stats.carry_in(data_dir) {
                Ok(names) => tracing::info!(
                    "upgrade: counters and history of {} instance(s) carried over",
                    names.len()
                ),
                Err(e) => tracing::warn!("upgrade: counters start anew: {e}"),
            }
        }
        Ok(answer) => tracing::warn!("upgrade: the old process answered {answer}"),
        Err(e) => tracing::warn!("upgrade: cannot reach the old process: {e}"),
    }
}

/// In the old process after the handoff: waits until its TCP connections
/// (commands, uploads, echo sessions) have ended, within `grace`.
pub(crate) async fn drain(stats: &switchboard::stats::Stats, grace: Duration) {
    let open = || {
        stats
            .snapshot()
            .connections
            .iter()
            .filter(|c| c.proto == switchboard::kind::Proto::Tcp)
            .count()
    };
    let ended = tokio::time::timeout(grace, async {
        while open() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    if ended.is_err() {
        tracing::warn!(
            "upgrade: {} connection(s) still open after {grace:?}: closed",
            open()
        );
    }
}
