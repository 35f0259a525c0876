//! Each instance's last log lines, for the Services row's Log view: a
//! `tracing` [`Layer`] that keeps every line carrying a `service` field
//! (how our log lines name their instance: `service = %ctx.id`) in a small
//! ring per instance, next to whatever writes the log to stderr.
//!
//! Bounded by construction: [`LINES_PER_INSTANCE`] lines per instance,
//! [`MAX_INSTANCES`] instances (the one written to longest ago goes first)
//! and [`MAX_LINE_CHARS`] characters a line, so at most about 256 × 50 ×
//! 400 bytes (≈ 5 MB) whatever a peer makes the services log.
//!
//! What a line holds: its level, its message, and only the fields known to
//! be safe to show (`peer`, `upstream`, `ip`, `ms`); any other field is
//! left out, so a field added later for the operator's log never reaches a
//! page by accident. Secrets are never logged in the first place (the
//! services log reasons, never keys or passwords); control characters are
//! escaped here as well. It keeps only what the log filter lets through
//! (`RUST_LOG`, info by default), and nothing survives a restart.
//!
//! Not here: installing the layer (`main.rs`) or serving the lines
//! (`web/history.rs`).

use std::collections::{HashMap, VecDeque};
use std::fmt::{self, Write as _};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::SystemTime;

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::sync::lock;

/// Lines kept per instance: the Log view shows the last 50.
pub const LINES_PER_INSTANCE: usize = 50;
/// Instances with lines kept; a new one beyond it evicts the quietest.
pub const MAX_INSTANCES: usize = 256;
/// Characters of one line kept; a longer one ends in `…`.
pub const MAX_LINE_CHARS: usize = 400;

/// The fields shown after the message, in this order when present.
const SHOWN_FIELDS: [&str; 4] = ["peer", "upstream", "ip", "ms"];

/// One log line of an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// Increasing across all instances: the order lines were logged.
    pub seq: u64,
    pub at_unix_ms: u64,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: &'static str,
    pub text: String,
}

/// The rings, by instance name.
#[derive(Debug, Default)]
pub struct InstanceLogs {
    inner: Mutex<Rings>,
}

#[derive(Debug, Default)]
struct Rings {
    next_seq: u64,
    by_name: HashMap<String, VecDeque<LogLine>>,
}

static GLOBAL: LazyLock<Arc<InstanceLogs>> = LazyLock::new(Arc::default);

/// The process's rings: what [`layer`] fills and the API reads.
pub fn global() -> &'static Arc<InstanceLogs> {
    &GLOBAL
}

/// A layer filling the process's rings.
pub fn layer() -> LogLayer {
    LogLayer {
        logs: Arc::clone(global()),
    }
}

/// Drops a removed instance's lines from the process's rings.
pub fn forget(name: &str) {
    global().forget(name);
}

impl InstanceLogs {
    /// Keeps `text` as instance `name`'s newest line.
    pub fn push(&self, name: &str, level: &'static str, text: String) {
        let at_unix_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut rings = lock(&self.inner);
        rings.next_seq += 1;
        let seq = rings.next_seq;
        if !rings.by_name.contains_key(name) && rings.by_name.len() >= MAX_INSTANCES {
            // The instance whose newest line is oldest goes.
            let quietest = rings
                .by_name
                .iter()
                .min_by_key(|(_, ring)| ring.back().map_or(0, |l| l.seq))
                .map(|(n, _)| n.clone());
            if let Some(q) = quietest {
                rings.by_name.remove(&q);
            }
        }
        let ring = rings
            .by_name
            .entry(name.to_owned())
            .or_insert_with(|| VecDeque::with_capacity(LINES_PER_INSTANCE));
        if ring.len() == LINES_PER_INSTANCE {
            ring.pop_front();
        }
        ring.push_back(LogLine {
            seq,
            at_unix_ms,
            level,
            text,
        });
    }

    /// Instance `name`'s newest `limit` lines, oldest first.
    pub fn lines(&self, name: &str, limit: usize) -> Vec<LogLine> {
        let rings = lock(&self.inner);
        let Some(ring) = rings.by_name.get(name) else {
            return Vec::new();
        };
        let skip = ring.len().saturating_sub(limit);
        ring.iter().skip(skip).cloned().collect()
    }

    /// Drops instance `name`'s lines.
    pub fn forget(&self, name: &str) {
        lock(&self.inner).by_name.remove(name);
    }
}

/// The [`Layer`]: keeps the lines that name an instance.
#[derive(Debug, Clone)]
pub struct LogLayer {
    logs: Arc<InstanceLogs>,
}

impl LogLayer {
    /// A layer filling `logs` (tests give their own; the process uses
    /// [`layer`]).
    pub fn new(logs: Arc<InstanceLogs>) -> LogLayer {
        LogLayer { logs }
    }
}

impl<S: Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut seen = Seen::default();
        event.record(&mut seen);
        let Some(service) = seen.service else {
            return;
        };
        let mut text = clean(&seen.message);
        for name in SHOWN_FIELDS {
            if let Some((_, v)) = seen.fields.iter().find(|(n, _)| *n == name) {
                let _ = write!(text, " {name}={}", clean(v));
            }
        }
        if text.chars().count() > MAX_LINE_CHARS {
            text = text.chars().take(MAX_LINE_CHARS - 1).collect();
            text.push('…');
        }
        self.logs
            .push(&service, event.metadata().level().as_str(), text);
    }
}

/// Control characters shown escaped: a peer's bytes in a message cannot
/// forge or colour a line (most messages escape them already).
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_LINE_CHARS * 2));
    for c in s.chars().take(MAX_LINE_CHARS * 2) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// What one event carried: its instance, message and the shown fields.
#[derive(Default)]
struct Seen {
    service: Option<String>,
    message: String,
    fields: Vec<(&'static str, String)>,
}

impl Seen {
    fn keep(&mut self, field: &Field, value: String) {
        match field.name() {
            "service" => self.service = Some(value),
            "message" => self.message = value,
            name if SHOWN_FIELDS.contains(&name) => self.fields.push((field.name(), value)),
            // Anything else stays in the operator's log only.
            _ => {}
        }
    }
}

impl Visit for Seen {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.keep(field, value.to_owned());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.keep(field, value.to_string());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.keep(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` fields and the message arrive here printing as Display.
        let name = field.name();
        if name == "service" || name == "message" || SHOWN_FIELDS.contains(&name) {
            self.keep(field, format!("{value:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    fn logged(f: impl FnOnce()) -> Arc<InstanceLogs> {
        let logs = Arc::new(InstanceLogs::default());
        let subscriber = tracing_subscriber::registry().with(LogLayer::new(Arc::clone(&logs)));
        tracing::subscriber::with_default(subscriber, f);
        logs
    }

    #[test]
    fn lines_naming_an_instance_are_kept_with_safe_fields_only() {
        let logs = logged(|| {
            let id = crate::kind::ServiceId::new("echo-a", crate::kind::ServiceKind::Echo);
            let peer = "127.0.0.1:5000";
            tracing::info!(service = %id, %peer, auth_key = "hunter2", "listening on {}", 7);
            tracing::warn!(service = "echo-b", ms = 12u64, "slow\x1b[31m");
            tracing::info!("no instance named: not kept");
        });
        let a = logs.lines("echo-a", 50);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].level, "INFO");
        assert_eq!(a[0].text, "listening on 7 peer=127.0.0.1:5000");
        assert!(
            !a[0].text.contains("hunter2"),
            "an unknown field is never shown"
        );
        let b = logs.lines("echo-b", 50);
        assert_eq!(b[0].text, "slow\\u{1b}[31m ms=12");
        assert!(b[0].seq > a[0].seq);
    }

    #[test]
    fn rings_are_bounded_in_lines_instances_and_length() {
        let logs = logged(|| {
            for i in 0..(LINES_PER_INSTANCE + 7) {
                tracing::info!(service = "busy", "line {i}");
            }
            tracing::info!(service = "long", "{}", "x".repeat(10_000));
            for i in 0..MAX_INSTANCES {
                tracing::info!(service = format!("other-{i}").as_str(), "hello");
            }
        });
        assert_eq!(logs.lines("busy", 1000).len(), 0, "the quietest went first");
        let kept = logs.lines(&format!("other-{}", MAX_INSTANCES - 1), 1000);
        assert_eq!(kept.len(), 1);
        assert!(lock(&logs.inner).by_name.len() <= MAX_INSTANCES);
        let logs = logged(|| {
            for i in 0..(LINES_PER_INSTANCE + 7) {
                tracing::info!(service = "busy", "line {i}");
            }
            tracing::info!(service = "long", "{}", "x".repeat(10_000));
        });
        let busy = logs.lines("busy", 1000);
        assert_eq!(busy.len(), LINES_PER_INSTANCE);
        assert_eq!(busy[0].text, "line 7");
        assert_eq!(logs.lines("busy", 3).len(), 3);
        let long = &logs.lines("long", 1)[0].text;
        assert_eq!(long.chars().count(), MAX_LINE_CHARS);
        assert!(long.ends_with('…'));
        logs.forget("busy");
        assert!(logs.lines("busy", 50).is_empty());
    }
}
