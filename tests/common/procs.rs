//! Process groups as the kernel sees them (from /proc), for tests that
//! check no process outlives what owned it.

use std::time::Duration;

use super::guard;

/// Live (not zombie) processes in group `pgid`, from /proc.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let mut live = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue; // exited while we looked
        };
        let rest = &stat[stat.rfind(')').unwrap() + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields[2].parse::<u32>() == Ok(pgid) && fields[0] != "Z" {
            live.push(pid);
        }
    }
    live
}

/// Waits, with the hang guard, until group `pgid` has no live process.
pub async fn await_group_gone(pgid: u32) {
    guard(&format!("process group {pgid} gone"), async {
        while !group_members(pgid).is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}
