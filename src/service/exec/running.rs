//! A running command as the owner of its child, its process group and its
//! slot: dropping it kills the group, writes the audit line and reaps.

use super::*;

pub(super) fn kill_group(pgid: Option<u32>) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    if let Some(pgid) = pgid.and_then(|p| i32::try_from(p).ok()) {
        // ESRCH (the group is already gone) is the common, happy case.
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

/// How long a killed group may take to disappear before its reaper gives up.
pub(super) const REAP_WITHIN: Duration = Duration::from_secs(5);

/// Whether any process of group `pgid` is still alive (not a zombie), read
/// from /proc: `kill(-pgid, 0)` would count zombies, which are dead already.
pub(super) fn group_alive(pgid: u32) -> bool {
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

/// Reaps a killed command's leader, then waits (bounded) until the rest of
/// its group is gone too. Runs on the service's tracker, so stopping the
/// service, and shutdown, wait for it.
pub(super) async fn reap(mut child: tokio::process::Child, pgid: Option<u32>) {
    let _ = child.wait().await;
    let Some(pgid) = pgid else { return };
    let deadline = Instant::now() + REAP_WITHIN;
    // No notification exists for "a process of another parent died": poll.
    while group_alive(pgid) {
        if Instant::now() >= deadline {
            tracing::warn!(
                service = "exec",
                pgid,
                "a killed process group is still alive"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Whether a command's audit line is still to be written, and if so, what
/// it says.
pub(super) enum Audit {
    /// Not yet: [`Drop`] says why it ended from the tokens.
    Pending,
    /// Not yet, and a known failure (a peer that stopped reading) says why.
    Failed(String),
    /// Written.
    Done,
}

/// A running command: the only owner of its child, its process group and
/// its command slot. However the request ends (its final message, a failed
/// write leaving through `?`, or the connection's future dropped because an
/// admin closed it, the service stopped or the process is shutting down),
/// nothing of the group outlives it: [`Drop`] SIGKILLs the whole group,
/// writes the audit line when nothing else did, and hands the group to
/// [`reap`] on the service's tracker.
pub(super) struct RunningCommand<'a> {
    pub(super) child: Option<tokio::process::Child>,
    /// The group's id while we may signal it: until its leader is reaped.
    pub(super) pgid: Option<u32>,
    pub(super) record: CommandRecord<'a>,
    pub(super) sent: u64,
    pub(super) audit: Audit,
    pub(super) _slot: tokio::sync::SemaphorePermit<'a>,
}

impl RunningCommand<'_> {
    /// Kills what is left of the group and reaps its leader.
    pub(super) async fn finish_status(&mut self) -> Option<std::process::ExitStatus> {
        kill_group(self.pgid.take());
        match self.child.take() {
            Some(mut child) => child.wait().await.ok(),
            None => None,
        }
    }

    /// Records `outcome`, leaving nothing for [`Drop`] to record.
    pub(super) async fn record_final(mut self, outcome: &str) {
        self.record.write(outcome, self.sent).await;
        self.audit = Audit::Done;
    }

    /// The normal end: [`RunningCommand::finish_status`], then `outcome`.
    pub(super) async fn finish(mut self, outcome: &str) {
        self.finish_status().await;
        self.record_final(outcome).await;
    }
}

impl Drop for RunningCommand<'_> {
    fn drop(&mut self) {
        kill_group(self.pgid);
        match &self.audit {
            Audit::Done => {}
            Audit::Failed(why) => self.record.write_now(why, self.sent),
            Audit::Pending => self.record.write_now(self.record.ended_early(), self.sent),
        }
        if let Some(child) = self.child.take() {
            self.record.ctx.tasks.spawn(reap(child, self.pgid));
        }
    }
}
