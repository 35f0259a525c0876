//! The conversations of the `chat` and `udp-chat` kinds, shared between the
//! services (which hear the peers) and the dashboard (where a person types
//! the replies, as the tutorials' server's person did at its keyboard).
//!
//! One *thread* per peer: its lines (peer, operator, notes), whether it is
//! still open and whether the peer is waiting for a reply. A service opens
//! a thread with [`ChatHub::open`] and holds the [`ChatThread`]; dropping it
//! ends the thread. The dashboard reads [`ChatHub::threads`] (long-polling
//! on [`ChatHub::changed`]) and answers with [`ChatHub::reply`].
//!
//! Bounded: [`MAX_OPEN`] open threads per instance (a new peer past that is
//! refused), [`MAX_LINES`] lines kept per thread, [`MAX_ENDED`] ended
//! threads kept per instance, [`MAX_TEXT`] bytes per line. What this does
//! not do: keep conversations across a restart.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{mpsc, watch};

/// Open threads per instance.
pub const MAX_OPEN: usize = 64;
/// Ended threads kept per instance for the page, the oldest forgotten first.
pub const MAX_ENDED: usize = 32;
/// Lines kept per thread, the oldest forgotten first.
pub const MAX_LINES: usize = 200;
/// The longest line, in bytes (a peer's read, an operator's reply).
pub const MAX_TEXT: usize = 1024;

/// Why a thread could not be opened or answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("{MAX_OPEN} conversations are open on this instance already")]
    TooMany,
    #[error("no open conversation with `{0}`")]
    NoThread(String),
    #[error("`{0}` is not waiting for a reply")]
    NotWaiting(String),
    #[error("a reply is at most {MAX_TEXT} bytes")]
    TooLong,
    #[error("a reply must not be empty")]
    Empty,
}

/// Who wrote a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Who {
    Peer,
    Operator,
    /// What the service itself says about the thread (ended, timed out).
    Note,
}

#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub from: Who,
    pub text: String,
    /// Unix milliseconds.
    pub at_ms: u64,
}

/// A thread as the dashboard sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadView {
    pub peer: String,
    pub open: bool,
    pub waiting: bool,
    pub lines: Vec<Line>,
}

struct Thread {
    id: u64,
    peer: String,
    open: bool,
    waiting: bool,
    lines: VecDeque<Line>,
    replies: Option<mpsc::Sender<String>>,
}

#[derive(Default)]
struct State {
    /// Per instance name, in the order the threads were opened.
    threads: HashMap<String, Vec<Thread>>,
    next_id: u64,
}

/// The hub: cheap to clone, one per process.
#[derive(Clone)]
pub struct ChatHub {
    state: Arc<Mutex<State>>,
    version: Arc<watch::Sender<u64>>,
}

impl Default for ChatHub {
    fn default() -> Self {
        ChatHub {
            state: Arc::default(),
            version: Arc::new(watch::channel(0).0),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `text` cut to [`MAX_TEXT`] bytes at a character boundary.
fn bounded(text: &str) -> String {
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

impl ChatHub {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only lines behind: usable.
        crate::sync::lock(&self.state)
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// The current version; it grows with every change.
    pub fn version(&self) -> u64 {
        *self.version.borrow()
    }

    /// Waits until the version passes `after`, or `within` elapses.
    pub async fn changed(&self, after: u64, within: Duration) {
        let mut rx = self.version.subscribe();
        let _ = tokio::time::timeout(within, rx.wait_for(|v| *v > after)).await;
    }

    /// Opens a thread with `peer` on `service`.
    ///
    /// # Errors
    /// [`ChatError::TooMany`] open threads on `service`.
    pub fn open(&self, service: &str, peer: &str) -> Result<ChatThread, ChatError> {
        let (tx, rx) = mpsc::channel(4);
        let id = {
            let mut state = self.lock();
            state.next_id += 1;
            let id = state.next_id;
            let threads = state.threads.entry(service.to_owned()).or_default();
            if threads.iter().filter(|t| t.open).count() >= MAX_OPEN {
                return Err(ChatError::TooMany);
            }
            let mut ended = threads.iter().filter(|t| !t.open).count();
            while ended >= MAX_ENDED {
                let oldest = threads.iter().position(|t| !t.open);
                let Some(oldest) = oldest else { break };
                threads.remove(oldest);
                ended -= 1;
            }
            threads.push(Thread {
                id,
                peer: peer.to_owned(),
                open: true,
                waiting: false,
                lines: VecDeque::new(),
                replies: Some(tx),
            });
            id
        };
        self.bump();
        Ok(ChatThread {
            hub: self.clone(),
            service: service.to_owned(),
            id,
            replies: rx,
        })
    }

    fn with_thread(&self, service: &str, id: u64, f: impl FnOnce(&mut Thread)) {
        {
            let mut state = self.lock();
            if let Some(t) = state
                .threads
                .get_mut(service)
                .and_then(|ts| ts.iter_mut().find(|t| t.id == id))
            {
                f(t);
            }
        }
        self.bump();
    }

    /// Every thread of `service`, oldest first.
    pub fn threads(&self, service: &str) -> Vec<ThreadView> {
        let state = self.lock();
        state.threads.get(service).map_or_else(Vec::new, |ts| {
            ts.iter()
                .map(|t| ThreadView {
                    peer: t.peer.clone(),
                    open: t.open,
                    waiting: t.waiting,
                    lines: t.lines.iter().cloned().collect(),
                })
                .collect()
        })
    }

    /// Hands the operator's `text` to the open thread with `peer`.
    ///
    /// # Errors
    /// No such open thread, the peer not waiting, an empty or long text.
    pub fn reply(&self, service: &str, peer: &str, text: &str) -> Result<(), ChatError> {
        if text.is_empty() {
            return Err(ChatError::Empty);
        }
        if text.len() > MAX_TEXT {
            return Err(ChatError::TooLong);
        }
        let mut state = self.lock();
        let thread = state
            .threads
            .get_mut(service)
            .and_then(|ts| ts.iter_mut().rev().find(|t| t.open && t.peer == peer))
            .ok_or_else(|| ChatError::NoThread(peer.to_owned()))?;
        if !thread.waiting {
            return Err(ChatError::NotWaiting(peer.to_owned()));
        }
        let sent = thread
            .replies
            .as_ref()
            .is_some_and(|tx| tx.try_send(text.to_owned()).is_ok());
        if !sent {
            return Err(ChatError::NotWaiting(peer.to_owned()));
        }
        // Answered: a second reply before the service has sent this one
        // would be refused rather than queued.
        thread.waiting = false;
        Ok(())
    }
}

/// A service's end of one thread; dropping it ends the thread.
pub struct ChatThread {
    hub: ChatHub,
    service: String,
    id: u64,
    replies: mpsc::Receiver<String>,
}

impl ChatThread {
    fn push(&self, from: Who, text: &str, waiting: Option<bool>) {
        let line = Line {
            from,
            text: bounded(text),
            at_ms: now_ms(),
        };
        self.hub.with_thread(&self.service, self.id, |t| {
            if t.lines.len() >= MAX_LINES {
                t.lines.pop_front();
            }
            t.lines.push_back(line);
            if let Some(w) = waiting {
                t.waiting = w;
            }
        });
    }

    /// The peer said `text` and now waits for a reply.
    pub fn heard(&self, text: &str) {
        self.push(Who::Peer, text, Some(true));
    }

    /// The service's own remark (shown apart from the people's lines).
    pub fn note(&self, text: &str) {
        self.push(Who::Note, text, Some(false));
    }

    /// The operator's next reply, or `None` after `within` (or if the hub
    /// went away). The reply is recorded as the operator's line.
    pub async fn reply_within(&mut self, within: Duration) -> Option<String> {
        let reply = tokio::time::timeout(within, self.replies.recv())
            .await
            .ok()
            .flatten();
        match &reply {
            Some(text) => self.push(Who::Operator, text, Some(false)),
            None => self
                .hub
                .with_thread(&self.service, self.id, |t| t.waiting = false),
        }
        reply
    }
}

impl Drop for ChatThread {
    fn drop(&mut self) {
        self.hub.with_thread(&self.service, self.id, |t| {
            t.open = false;
            t.waiting = false;
            t.replies = None;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reply_reaches_the_waiting_thread_and_is_recorded() {
        let hub = ChatHub::default();
        let mut t = hub.open("chat", "1.2.3.4:5").unwrap();
        assert_eq!(
            hub.reply("chat", "1.2.3.4:5", "too early"),
            Err(ChatError::NotWaiting("1.2.3.4:5".into()))
        );
        t.heard("hello");
        hub.reply("chat", "1.2.3.4:5", "hi there").unwrap();
        assert_eq!(
            t.reply_within(Duration::from_secs(5)).await.as_deref(),
            Some("hi there")
        );
        let v = hub.threads("chat");
        assert_eq!(v[0].lines.len(), 2);
        assert_eq!(v[0].lines[1].from, Who::Operator);
        drop(t);
        assert!(!hub.threads("chat")[0].open);
        assert!(matches!(
            hub.reply("chat", "1.2.3.4:5", "gone"),
            Err(ChatError::NoThread(_))
        ));
    }

    #[test]
    fn threads_lines_and_texts_are_bounded() {
        let hub = ChatHub::default();
        let held: Vec<_> = (0..MAX_OPEN)
            .map(|i| hub.open("c", &format!("p{i}")).unwrap())
            .collect();
        assert!(matches!(hub.open("c", "one more"), Err(ChatError::TooMany)));
        assert!(hub.open("other", "p").is_ok(), "per instance");
        for _ in 0..MAX_LINES + 10 {
            held[0].heard(&"é".repeat(MAX_TEXT));
        }
        let view = &hub.threads("c")[0];
        assert_eq!(view.lines.len(), MAX_LINES);
        assert!(view.lines[0].text.len() <= MAX_TEXT);
        assert_eq!(
            hub.reply("c", "p0", &"x".repeat(MAX_TEXT + 1)),
            Err(ChatError::TooLong)
        );
        drop(held);
        for i in 0..MAX_ENDED + 5 {
            drop(hub.open("c", &format!("late{i}")).unwrap());
        }
        assert!(hub.threads("c").len() <= MAX_ENDED + 1);
    }
}
