//! A program a service runs for a peer, as the owner of its child, its
//! process group and its slot: dropping it kills the group, writes the
//! audit line and reaps. Shared by the kinds that run programs (`exec`,
//! `stdio`), so there is one copy of the rules about groups.
//!
//! What this does not do: build the command line or move the program's
//! bytes; each kind does that its own way and hands the spawned child here.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_util::task::TaskTracker;

use crate::kind::ServiceId;

pub(crate) fn kill_group(pgid: Option<u32>) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    if let Some(pgid) = pgid.and_then(|p| i32::try_from(p).ok()) {
        // ESRCH (the group is already gone) is the common, happy case.
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

/// How long a killed group may take to disappear before its reaper gives up.
pub(crate) const REAP_WITHIN: Duration = Duration::from_secs(5);

/// Whether any process of group `pgid` is still alive (not a zombie), read
/// from /proc: `kill(-pgid, 0)` would count zombies, which are dead already.
pub(crate) fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parens.
        let Some(fields) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return false;
        };
        let mut fields = fields.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|p| p.parse::<u32>().ok());
        pgrp == Some(pgid) && state != Some("Z")
    })
}

/// Reaps a killed program's leader, then waits (bounded) until the rest of
/// its group is gone too. Runs on the service's tracker, so stopping the
/// service, and shutdown, wait for it.
pub(crate) async fn reap(mut child: tokio::process::Child, pgid: Option<u32>, service: ServiceId) {
    let _ = child.wait().await;
    let Some(pgid) = pgid else { return };
    let deadline = Instant::now() + REAP_WITHIN;
    // No notification exists for "a process of another parent died": poll.
    while group_alive(pgid) {
        if Instant::now() >= deadline {
            tracing::warn!(%service, pgid, "a killed process group is still alive");
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Spawns `command` as the leader of a process group of its own, so that
/// everything it forks can be killed with it.
///
/// # Errors
/// As the operating system reports them (no such program, no permission).
pub(crate) fn spawn_in_group(
    command: &mut tokio::process::Command,
) -> std::io::Result<tokio::process::Child> {
    command.process_group(0).kill_on_drop(true).spawn()
}

/// How a kind records one run: an audit line, a log line and an event.
pub(crate) trait Record {
    /// Records that the run ended with `outcome`, having sent `bytes_out`.
    fn write(&self, outcome: &str, bytes_out: u64) -> impl Future<Output = ()> + Send;
    /// [`Record::write`] without waiting, for a `Drop`.
    fn write_now(&self, outcome: &str, bytes_out: u64);
    /// Why a run ended without an outcome of its own (its future was
    /// dropped): a shutdown, a stopped service, an admin's close, a peer gone.
    fn ended_early(&self) -> &'static str;
    /// The tracker the reaper runs on, and the service it belongs to.
    fn owner(&self) -> (&TaskTracker, &ServiceId);
}

/// Whether a run's audit line is still to be written, and if so, what it
/// says.
pub(crate) enum Audit {
    /// Not yet: [`Drop`] says why it ended from the tokens.
    Pending,
    /// Not yet, and a known failure (a peer that stopped reading) says why.
    Failed(String),
    /// Written.
    Done,
}

/// A running program: the only owner of its child, its process group and
/// its slot `S` (a semaphore permit). However the run ends (its own end, a
/// failed write leaving through `?`, or the connection's future dropped
/// because an admin closed it, the service stopped or the process is
/// shutting down), nothing of the group outlives it: [`Drop`] SIGKILLs the
/// whole group, writes the audit line when nothing else did, and hands the
/// group to [`reap`] on the service's tracker.
pub(crate) struct RunningCommand<R: Record, S> {
    pub(crate) child: Option<tokio::process::Child>,
    /// The group's id while we may signal it: until its leader is reaped.
    pub(crate) pgid: Option<u32>,
    pub(crate) record: R,
    pub(crate) sent: u64,
    pub(crate) audit: Audit,
    pub(crate) _slot: S,
}

impl<R: Record, S> RunningCommand<R, S> {
    /// Takes ownership of a child spawned by [`spawn_in_group`].
    pub(crate) fn new(child: tokio::process::Child, record: R, slot: S) -> Self {
        RunningCommand {
            pgid: child.id(),
            child: Some(child),
            record,
            sent: 0,
            audit: Audit::Pending,
            _slot: slot,
        }
    }

    /// Kills what is left of the group and reaps its leader.
    pub(crate) async fn finish_status(&mut self) -> Option<std::process::ExitStatus> {
        kill_group(self.pgid.take());
        match self.child.take() {
            Some(mut child) => child.wait().await.ok(),
            None => None,
        }
    }

    /// Records `outcome`, leaving nothing for [`Drop`] to record.
    pub(crate) async fn record_final(mut self, outcome: &str) {
        self.record.write(outcome, self.sent).await;
        self.audit = Audit::Done;
    }

    /// The normal end: [`RunningCommand::finish_status`], then `outcome`.
    pub(crate) async fn finish(mut self, outcome: &str) {
        self.finish_status().await;
        self.record_final(outcome).await;
    }
}

impl<R: Record, S> Drop for RunningCommand<R, S> {
    fn drop(&mut self) {
        kill_group(self.pgid);
        match &self.audit {
            Audit::Done => {}
            Audit::Failed(why) => self.record.write_now(why, self.sent),
            Audit::Pending => self.record.write_now(self.record.ended_early(), self.sent),
        }
        if let Some(child) = self.child.take() {
            let (tasks, service) = self.record.owner();
            tasks.spawn(reap(child, self.pgid, service.clone()));
        }
    }
}

/// `exit 0`, `signal 9`: how a program's exit status reads in outcomes.
pub(crate) fn status_text(status: Option<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.as_ref().map(|s| (s.code(), s.signal())) {
        Some((Some(code), _)) => format!("exit {code}"),
        Some((None, Some(signal))) => format!("signal {signal}"),
        _ => "error: the program ended without a status".into(),
    }
}
