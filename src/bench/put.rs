//! `bench put`: P uploads at a time of a given size to `files` (SHA-256
//! checked against the server's reply) or to `files-classic` / the
//! tutorial's server (no reply: an upload ends when the server, having
//! stored it, closes; `--verify-dir` hashes what it stored afterwards).
//!
//! The body is a 1 MiB block of pseudo-random bytes repeated, produced on
//! the fly, so the bench reads no disk and holds no file in memory.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::store::Sha256;
use tokio::io::{AsyncRead, ReadBuf};

use super::{BenchError, OpError, Plan, Report, Worker, run};
use crate::client::{ClassicClient, ClientError, FilesClient};
use crate::wire::hex;

/// Largest upload size.
pub const MAX_SIZE: u64 = 64 << 30;
/// Most uploads at once.
pub const MAX_PARALLEL: usize = 64;
/// Most uploads in one run.
pub const MAX_COUNT: u64 = 10_000;
const BLOCK: usize = 1 << 20;

/// What `bench put` does.
#[derive(Debug, Clone)]
pub struct PutPlan {
    pub size: u64,
    pub parallel: usize,
    /// Uploads in all (default: `parallel`, one each).
    pub count: u64,
    /// Speak the 136-byte header of files-classic (no key, no reply).
    pub classic: bool,
    /// The HMAC key (files only).
    pub key: Vec<u8>,
    /// Where the server stores files, to hash them after a classic run.
    pub verify_dir: Option<PathBuf>,
    /// Bounds each connect and each wait for the server.
    pub timeout: Duration,
    pub progress: bool,
    /// TLS to the service, when it speaks it.
    pub tls: Option<crate::tls::ClientTls>,
}

/// The body: `size` bytes cycling through one random block.
struct Pattern {
    block: Arc<[u8]>,
    pos: usize,
    left: u64,
}

impl AsyncRead for Pattern {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = &mut *self;
        let n = buf
            .remaining()
            .min(me.block.len() - me.pos)
            .min(usize::try_from(me.left).unwrap_or(usize::MAX));
        buf.put_slice(&me.block[me.pos..me.pos + n]);
        me.pos = (me.pos + n) % me.block.len();
        me.left -= n as u64;
        Poll::Ready(Ok(()))
    }
}

fn block() -> Arc<[u8]> {
    // xorshift64*: incompressible enough, and the same every run.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..BLOCK / 8)
        .flat_map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes()
        })
        .collect()
}

/// The SHA-256 of `size` bytes cycling through `block`.
fn pattern_sha256(block: &[u8], size: u64) -> String {
    let mut h = Sha256::new();
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        h.update(&block[..n]);
        left -= n as u64;
    }
    hex(&h.finalize())
}

/// Names stored by a classic run, to check once the clock has stopped.
type Sent = Arc<Mutex<Vec<(String, String)>>>;

struct PutWorker {
    addr: String,
    plan: Arc<PutPlan>,
    block: Arc<[u8]>,
    files: Option<FilesClient>,
    /// The body's SHA-256, computed once before the clock starts.
    sha256: Arc<str>,
    id: usize,
    done: usize,
    sent: Sent,
}

impl PutWorker {
    fn body(&self) -> Pattern {
        Pattern {
            block: Arc::clone(&self.block),
            pos: 0,
            left: self.plan.size,
        }
    }
}

impl Worker for PutWorker {
    async fn op(&mut self) -> Result<u64, OpError> {
        let name = format!("bench-{}-{}-{}.bin", std::process::id(), self.id, self.done);
        self.done += 1;
        let size = self.plan.size;
        let body = self.body();
        if let Some(client) = &mut self.files {
            let stored = client
                .put_known(&name, size, body, &self.sha256)
                .await
                .map_err(|e| OpError::fatal(e.to_string()))?;
            if stored.size != size {
                return Err(OpError::fatal(format!(
                    "stored {} of {size} bytes",
                    stored.size
                )));
            }
            return Ok(size);
        }
        let client =
            ClassicClient::connect_tls(&self.addr, self.plan.timeout, self.plan.tls.as_ref())
                .await
                .map_err(|e| OpError::fatal(e.to_string()))?;
        client
            .put_unhashed(&name, size, body)
            .await
            .map_err(|e| OpError::fatal(e.to_string()))?;
        crate::sync::lock(&self.sent).push((format!("new_{name}"), self.sha256.to_string()));
        Ok(size)
    }
}

/// Runs the upload bench.
///
/// # Errors
/// Bad bounds, or no connection could be opened.
pub async fn put(addr: &str, plan: PutPlan, server_pid: Option<u32>) -> Result<Report, BenchError> {
    if plan.size == 0 || plan.size > MAX_SIZE {
        return Err(BenchError::Bad(format!(
            "size must be 1 B to {} GiB",
            MAX_SIZE >> 30
        )));
    }
    if plan.parallel == 0 || plan.parallel > MAX_PARALLEL {
        return Err(BenchError::Bad(format!(
            "parallel must be 1 to {MAX_PARALLEL}"
        )));
    }
    if plan.count == 0 || plan.count > MAX_COUNT {
        return Err(BenchError::Bad(format!("count must be 1 to {MAX_COUNT}")));
    }
    let block = block();
    // Hashed once, untimed: the uploads then send without hashing, and the
    // server's hash (or the stored file's) is checked against this one.
    let sha256: Arc<str> = {
        let (block, size) = (Arc::clone(&block), plan.size);
        tokio::task::spawn_blocking(move || pattern_sha256(&block, size))
            .await
            .map_err(|e| BenchError::Bad(format!("hashing the body failed: {e}")))?
            .into()
    };
    let sent: Sent = Arc::default();
    let plan = Arc::new(plan);
    let run_plan = Plan {
        connections: plan.parallel,
        duration: super::MAX_DURATION,
        requests: Some(plan.count),
        timeout: plan.timeout,
        progress: plan.progress,
    };
    let label = if plan.classic { "put --classic" } else { "put" };
    let request = format!("{} upload", crate::terminal::human_bytes(plan.size));
    let mut report = run(label, addr, &request, &run_plan, server_pid, |id| {
        let (addr, plan, block, sent, sha256) = (
            addr.to_owned(),
            Arc::clone(&plan),
            Arc::clone(&block),
            Arc::clone(&sent),
            Arc::clone(&sha256),
        );
        async move {
            let files = if plan.classic {
                None
            } else {
                Some(
                    FilesClient::connect_tls(&addr, &plan.key, plan.timeout, plan.tls.as_ref())
                        .await?,
                )
            };
            Ok::<_, ClientError>(PutWorker {
                addr,
                plan,
                block,
                files,
                sha256,
                id,
                done: 0,
                sent,
            })
        }
    })
    .await?;
    if !plan.classic {
        report.notes.push(format!(
            "{} uploads checked: the server's SHA-256 matched the body's",
            report.requests
        ));
    } else if let Some(dir) = &plan.verify_dir {
        let sent = std::mem::take(&mut *crate::sync::lock(&sent));
        let (good, bad) = verify(dir, sent).await;
        report.notes.push(format!(
            "{good} stored files hashed in {}: SHA-256 matched{}",
            dir.display(),
            if bad.is_empty() {
                String::new()
            } else {
                format!("; {} did not: {}", bad.len(), bad.join(", "))
            }
        ));
        report.errors += bad.len() as u64;
    } else {
        report.notes.push(
            "not checked on the server's side (the protocol has no reply; give --verify-dir)"
                .into(),
        );
    }
    Ok(report)
}

/// Hashes each stored file and compares; returns the count that matched and
/// the names that did not (or could not be read). The files are removed.
async fn verify(dir: &std::path::Path, sent: Vec<(String, String)>) -> (u64, Vec<String>) {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut good = 0;
        let mut bad = Vec::new();
        for (name, want) in sent {
            let path = dir.join(&name);
            let got = std::fs::File::open(&path).and_then(|mut f| {
                use std::io::Read;
                let (mut h, mut buf) = (Sha256::new(), vec![0u8; BLOCK]);
                loop {
                    match f.read(&mut buf)? {
                        0 => return Ok(hex(&h.finalize())),
                        n => h.update(&buf[..n]),
                    }
                }
            });
            match got {
                Ok(sha) if sha == want => good += 1,
                Ok(_) => bad.push(format!("{name} (hash differs)")),
                Err(e) => bad.push(format!("{name} ({e})")),
            }
            let _ = std::fs::remove_file(&path);
        }
        (good, bad)
    })
    .await
    .unwrap_or_else(|e| (0, vec![format!("verification failed: {e}")]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn the_pattern_gives_exactly_size_bytes() {
        let block = block();
        for size in [0u64, 1, BLOCK as u64, BLOCK as u64 * 2 + 7] {
            let mut body = Pattern {
                block: Arc::clone(&block),
                pos: 0,
                left: size,
            };
            let mut all = Vec::new();
            body.read_to_end(&mut all).await.unwrap();
            assert_eq!(all.len() as u64, size);
            if size > BLOCK as u64 {
                assert_eq!(all[..BLOCK], all[BLOCK..2 * BLOCK]);
            }
        }
        assert_ne!(block[..8], block[8..16]);
        let mut body = Pattern {
            block: Arc::clone(&block),
            pos: 0,
            left: 3 * BLOCK as u64 + 5,
        };
        let mut all = Vec::new();
        body.read_to_end(&mut all).await.unwrap();
        assert_eq!(
            pattern_sha256(&block, all.len() as u64),
            hex(&Sha256::digest(&all))
        );
    }
}
