//! `switchboard bench`: a load generator for each service, in the spirit of
//! redis-benchmark.
//!
//! Every bench has the same shape: open C connections (or sockets) first,
//! untimed, then start the clock and let each one do request/response round
//! trips in lockstep until the duration is up or N requests are done, then
//! report throughput, latency percentiles and errors. Latencies go into one
//! shared log-linear [`Histogram`] (the stats module's, lock-free, fixed
//! size), so memory does
//! not grow with the run. With `--server-pid` the server's CPU time and
//! resident memory are read from `/proc` before and after.
//!
//! Everything is bounded: connections, duration, request count, sizes, and
//! every wait has a timeout. Targets must be loopback unless the caller says
//! otherwise ([`check_target`]).

mod idle;
mod put;
pub mod refusal;
mod workers;

use std::io::{IsTerminal, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

pub use crate::stats::Histogram;
pub use idle::{IdlePlan, IdleReport, idle};
pub use put::{PutPlan, put};
pub use workers::{
    ClassicExecWorker, EchoWorker, ExecWorker, HttpWorker, UdpCheck, UdpWorker, http_sign_in,
    letters,
};

use crate::client::{ClientError, Target};

/// Most connections (or sockets) one bench opens at once.
pub const MAX_CONNECTIONS: usize = 20_000;
/// Most connections `bench idle` holds.
pub const MAX_IDLE: usize = 200_000;
/// Longest run.
pub const MAX_DURATION: Duration = Duration::from_secs(600);
/// Largest echo or UDP payload.
pub const MAX_PAYLOAD: usize = 65_507;
/// Most requests one run makes.
pub const MAX_REQUESTS: u64 = 1_000_000_000;
/// At most this many connects are in flight at once, so a server with a
/// short listen backlog (Python's socketserver has 5) is not SYN-flooded.
const CONNECTS_IN_FLIGHT: usize = 64;
/// Distinct error messages kept for the report.
const ERROR_SAMPLES: usize = 5;

/// Why a bench could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(
        "{0} is not a loopback address; benchmarks load the target hard, so pass --allow-remote if you mean it"
    )]
    NotLoopback(String),
    #[error("{0}")]
    Bad(String),
    #[error("no connection could be opened: {0}")]
    NoConnections(String),
}

/// Refuses a target that is not loopback unless `allow_remote`. A Unix
/// socket is local by nature.
///
/// # Errors
/// [`BenchError::NotLoopback`], or the address does not parse or resolve.
pub async fn check_target(addr: &str, allow_remote: bool) -> Result<(), BenchError> {
    match Target::resolve(addr).await? {
        Target::Unix(_) => Ok(()),
        Target::Inet(addrs, label) => {
            let local = addrs.iter().all(|a| is_loopback(a.ip()));
            if local || allow_remote {
                Ok(())
            } else {
                Err(BenchError::NotLoopback(label))
            }
        }
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// How long and how hard a run goes.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Connections (or sockets), each doing one request at a time.
    pub connections: usize,
    /// Stop after this long...
    pub duration: Duration,
    /// ...or after this many requests in all, whichever comes first.
    pub requests: Option<u64>,
    /// Longest wait for a connect or one reply.
    pub timeout: Duration,
    /// Draw a progress line on stderr (only if it is a terminal).
    pub progress: bool,
}

impl Plan {
    /// Checks the bounds.
    ///
    /// # Errors
    /// A message naming the bound exceeded.
    pub fn check(&self) -> Result<(), BenchError> {
        if self.connections == 0 || self.connections > MAX_CONNECTIONS {
            return Err(BenchError::Bad(format!(
                "connections must be 1 to {MAX_CONNECTIONS}, not {}",
                self.connections
            )));
        }
        if self.duration > MAX_DURATION {
            return Err(BenchError::Bad(format!(
                "a run lasts at most {} s",
                MAX_DURATION.as_secs()
            )));
        }
        if let Some(n) = self.requests
            && (n == 0 || n > MAX_REQUESTS)
        {
            return Err(BenchError::Bad(format!(
                "requests must be 1 to {MAX_REQUESTS}, not {n}"
            )));
        }
        Ok(())
    }
}

/// One failed request.
#[derive(Debug)]
pub struct OpError {
    pub message: String,
    /// The reply did not come in time (lost, for UDP).
    pub timeout: bool,
    /// The connection is unusable: this worker stops.
    pub fatal: bool,
}

impl OpError {
    /// A failure after which the connection cannot go on.
    pub fn fatal(message: impl Into<String>) -> Self {
        OpError {
            message: message.into(),
            timeout: false,
            fatal: true,
        }
    }

    /// A wrong answer on a connection that can go on.
    pub fn wrong(message: impl Into<String>) -> Self {
        OpError {
            message: message.into(),
            timeout: false,
            fatal: false,
        }
    }
}

/// A connection (or socket) that makes one request at a time.
pub trait Worker: Send + 'static {
    /// One request and its whole reply; `Ok` carries the bytes moved
    /// (both ways). The worker applies its own timeout.
    fn op(&mut self) -> impl Future<Output = Result<u64, OpError>> + Send;
}

/// Counters the workers share while a run goes on. Per successful request
/// only the histogram is touched (its count is the request count); bytes
/// are summed by each worker and added once when it ends.
struct Shared {
    histogram: Histogram,
    errors: AtomicU64,
    timeouts: AtomicU64,
    bytes: AtomicU64,
    /// Requests still to be started, when the run is counted.
    remaining: Option<AtomicU64>,
    stop: AtomicBool,
    samples: Mutex<Vec<String>>,
    refusals: refusal::Refusals,
}

impl Shared {
    fn new(requests: Option<u64>) -> Self {
        Shared {
            histogram: Histogram::latencies(),
            errors: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            remaining: requests.map(AtomicU64::new),
            stop: AtomicBool::new(false),
            samples: Mutex::new(Vec::new()),
            refusals: refusal::Refusals::default(),
        }
    }

    /// Claims the next request, or says the run is over.
    fn take(&self) -> bool {
        if self.stop.load(Relaxed) {
            return false;
        }
        match &self.remaining {
            None => true,
            Some(left) => left
                .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    /// The distinct error messages kept so far.
    fn samples(&self) -> Vec<String> {
        crate::sync::lock(&self.samples).clone()
    }

    fn failed(&self, e: &OpError) {
        self.errors.fetch_add(1, Relaxed);
        if e.timeout {
            self.timeouts.fetch_add(1, Relaxed);
        }
        self.refusals.note(&e.message);
        let mut samples = crate::sync::lock(&self.samples);
        if samples.len() < ERROR_SAMPLES && !samples.contains(&e.message) {
            samples.push(e.message.clone());
        }
    }
}

/// Server resources, read from `/proc/PID` before and after a run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ServerUsage {
    pub pid: u32,
    /// User + system CPU seconds the server spent during the run.
    pub cpu_s: f64,
    /// Server CPU microseconds per request (per connection for `idle`).
    pub cpu_us_per_op: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
}

/// CPU ticks and resident KiB of a process, from `/proc`.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    cpu_s: f64,
    rss_kib: u64,
}

impl ProcSample {
    /// Reads `/proc/PID/stat` and `/proc/PID/status`; `None` if unreadable
    /// (no such process, or not Linux).
    pub fn read(pid: u32) -> Option<ProcSample> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces: fields are counted after its `)`.
        let after = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = after.split(' ').collect();
        // utime and stime are fields 14 and 15 of the whole line.
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .unwrap_or(100);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(ProcSample {
            cpu_s: ticks as f64 / hz as f64,
            rss_kib,
        })
    }

    pub fn rss_kib(&self) -> u64 {
        self.rss_kib
    }

    /// What the process used between `self` and `after`, over `ops` operations.
    pub fn usage(&self, pid: u32, after: &ProcSample, ops: u64) -> ServerUsage {
        let cpu_s = (after.cpu_s - self.cpu_s).max(0.0);
        ServerUsage {
            pid,
            cpu_s,
            cpu_us_per_op: if ops == 0 {
                0.0
            } else {
                cpu_s * 1e6 / ops as f64
            },
            rss_before_kib: self.rss_kib,
            rss_after_kib: after.rss_kib,
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl Latency {
    /// The percentiles of a [`Histogram::latencies`] histogram.
    pub fn of(h: &Histogram) -> Latency {
        let us = |ns: u64| ns as f64 / 1000.0;
        let n = h.count();
        Latency {
            p50_us: us(h.quantile_ns(0.50)),
            p90_us: us(h.quantile_ns(0.90)),
            p99_us: us(h.quantile_ns(0.99)),
            max_us: us(h.max_ns()),
            mean_us: if n == 0 {
                0.0
            } else {
                us(h.sum_ns()) / n as f64
            },
        }
    }
}

/// What a run measured; printed as text or as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub bench: String,
    pub target: String,
    /// What each request was, e.g. `64 B` or `echo hi`.
    pub request: String,
    pub connections: usize,
    /// Connections that could not be opened (counted in `errors` too).
    pub connect_failures: u64,
    /// Seconds spent opening the connections, before the clock started.
    pub connect_s: f64,
    /// Seconds from the first request to the last reply.
    pub elapsed_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub requests_per_s: f64,
    pub bytes: u64,
    pub mib_per_s: f64,
    pub latency: Latency,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<String>,
    /// The server's refusal lines, each with how many connections got it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refusals: Vec<refusal::Refusal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerUsage>,
    /// Anything else the bench checked, one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Report {
    /// The report as a few lines for a person.
    pub fn text(&self) -> String {
        let mut out = format!(
            "bench {} -> {}: {} x {}, {:.2} s\n",
            self.bench, self.target, self.connections, self.request, self.elapsed_s
        );
        out += &format!(
            "  requests  {} ({:.0}/s, {:.1} MiB/s)   errors {}{}\n",
            self.requests,
            self.requests_per_s,
            self.mib_per_s,
            self.errors,
            if self.timeouts > 0 {
                format!(" ({} timed out)", self.timeouts)
            } else {
                String::new()
            }
        );
        let l = &self.latency;
        out += &format!(
            "  latency   p50 {}  p90 {}  p99 {}  max {}  mean {}\n",
            micros(l.p50_us),
            micros(l.p90_us),
            micros(l.p99_us),
            micros(l.max_us),
            micros(l.mean_us)
        );
        if self.connect_failures > 0 {
            out += &format!(
                "  {} of {} connections could not be opened\n",
                self.connect_failures, self.connections
            );
        }
        for e in &self.error_samples {
            out += &format!("  error: {e}\n");
        }
        out += &refusal::text(&self.refusals);
        for n in &self.notes {
            out += &format!("  {n}\n");
        }
        if let Some(s) = &self.server {
            out += &format!(
                "  server    pid {}: {:.2} s CPU ({:.1} us per request), RSS {} -> {} KiB\n",
                s.pid, s.cpu_s, s.cpu_us_per_op, s.rss_before_kib, s.rss_after_kib
            );
        }
        out
    }
}

/// `12 us`, `1.25 ms`, `2.0 s`.
pub fn micros(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0} us")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// Opens `plan.connections` workers with `connect(i)` (at most
/// [`CONNECTS_IN_FLIGHT`] at once), then runs them all against the clock
/// and returns the report. `server_pid` adds the server's CPU and memory.
///
/// # Errors
/// Bad bounds, or not one connection could be opened.
pub async fn run<W, C, F>(
    bench: &str,
    target: &str,
    request: &str,
    plan: &Plan,
    server_pid: Option<u32>,
    connect: C,
) -> Result<Report, BenchError>
where
    W: Worker,
    C: Fn(usize) -> F,
    F: Future<Output = Result<W, ClientError>> + Send + 'static,
{
    plan.check()?;
    let shared = Arc::new(Shared::new(plan.requests));
    let connect_started = Instant::now();
    let (workers, connect_failures) = connect_all(plan, &shared, connect).await;
    let connect_s = connect_started.elapsed().as_secs_f64();
    if workers.is_empty() {
        let why = shared.samples().into_iter().next().unwrap_or_default();
        return Err(BenchError::NoConnections(why));
    }

    let before = server_pid.and_then(ProcSample::read);
    let started = Instant::now();
    let mut running = JoinSet::new();
    for worker in workers {
        running.spawn(drive(worker, Arc::clone(&shared)));
    }
    let progress = plan.progress && std::io::stderr().is_terminal();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let deadline = tokio::time::sleep(plan.duration);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            joined = running.join_next() => if joined.is_none() { break },
            () = &mut deadline, if !shared.stop.load(Relaxed) => shared.stop.store(true, Relaxed),
            _ = tick.tick(), if progress => draw_progress(bench, target, &shared, started, plan),
        }
    }
    let elapsed = started.elapsed();
    if progress {
        eprint!("\r\x1b[K");
    }
    let after = server_pid.and_then(ProcSample::read);
    let ops = shared.histogram.count();
    let server = match (server_pid, before, after) {
        (Some(pid), Some(b), Some(a)) => Some(b.usage(pid, &a, ops)),
        _ => None,
    };
    let secs = elapsed.as_secs_f64().max(1e-9);
    let bytes = shared.bytes.load(Relaxed);
    Ok(Report {
        bench: bench.to_owned(),
        target: target.to_owned(),
        request: request.to_owned(),
        connections: plan.connections,
        connect_failures,
        connect_s,
        elapsed_s: secs,
        requests: ops,
        errors: shared.errors.load(Relaxed),
        timeouts: shared.timeouts.load(Relaxed),
        requests_per_s: ops as f64 / secs,
        bytes,
        mib_per_s: bytes as f64 / secs / (1024.0 * 1024.0),
        latency: Latency::of(&shared.histogram),
        error_samples: shared.samples(),
        refusals: shared.refusals.snapshot(),
        server,
        notes: Vec::new(),
    })
}

/// Opens the workers, at most [`CONNECTS_IN_FLIGHT`] at once, each within
/// the plan's timeout; a failure is counted and sampled in `shared`.
async fn connect_all<W, C, F>(plan: &Plan, shared: &Shared, connect: C) -> (Vec<W>, u64)
where
    W: Worker,
    C: Fn(usize) -> F,
    F: Future<Output = Result<W, ClientError>> + Send + 'static,
{
    let gate = Arc::new(tokio::sync::Semaphore::new(CONNECTS_IN_FLIGHT));
    let mut connecting = JoinSet::new();
    for i in 0..plan.connections {
        let (gate, fut, timeout) = (Arc::clone(&gate), connect(i), plan.timeout);
        connecting.spawn(async move {
            let _permit = gate.acquire_owned().await;
            tokio::time::timeout(timeout, fut)
                .await
                .unwrap_or_else(|_| {
                    Err(ClientError::Local {
                        path: "connect".into(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("no connection within {timeout:?}"),
                        ),
                    })
                })
        });
    }
    let mut workers = Vec::with_capacity(plan.connections);
    let mut connect_failures = 0u64;
    while let Some(joined) = connecting.join_next().await {
        match joined {
            Ok(Ok(w)) => workers.push(w),
            Ok(Err(e)) => {
                connect_failures += 1;
                shared.failed(&OpError::fatal(e.to_string()));
            }
            Err(e) => {
                connect_failures += 1;
                shared.failed(&OpError::fatal(format!("connect task failed: {e}")));
            }
        }
    }
    (workers, connect_failures)
}

/// One worker's loop: a request at a time until the run is over or its
/// connection breaks.
async fn drive<W: Worker>(mut worker: W, shared: Arc<Shared>) {
    let mut bytes = 0;
    while shared.take() {
        let t = Instant::now();
        match worker.op().await {
            Ok(moved) => {
                shared.histogram.observe(t.elapsed());
                bytes += moved;
            }
            Err(e) => {
                shared.failed(&e);
                if e.fatal {
                    break;
                }
            }
        }
    }
    shared.bytes.fetch_add(bytes, Relaxed);
}

fn draw_progress(bench: &str, target: &str, shared: &Shared, started: Instant, plan: &Plan) {
    let secs = started.elapsed().as_secs_f64();
    let ops = shared.histogram.count();
    let goal = match plan.requests {
        Some(n) => format!("{ops}/{n} requests"),
        None => format!("{secs:.1}/{:.0} s", plan.duration.as_secs_f64()),
    };
    eprint!(
        "\r\x1b[Kbench {bench} -> {target}: {} conns  {goal}  {:.0}/s  errors {}",
        plan.connections,
        ops as f64 / secs.max(1e-3),
        shared.errors.load(Relaxed)
    );
    let _ = std::io::stderr().flush();
}

#[cfg(test)]
mod tests;
