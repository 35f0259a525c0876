//! Fault injection for tests: a named point in the code panics when a test
//! has armed it. Compiled in only with the `failpoints` feature (the test
//! command turns it on); without it [`hit`] is an empty inline function, so
//! release builds carry nothing of this.
//!
//! Points are armed per service and for a number of hits, so a test can
//! make exactly one service's accept loop panic a given number of times.
//! A [`Pause`] holds a task at a point until the test releases it, so a
//! race can be run in one chosen order.

use crate::kind::ServiceKind;

/// Where a failpoint sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// A TCP service's accept loop, right after a connection is admitted.
    Accept,
    /// A connection's own task, before it is served.
    Connection,
}

#[cfg(feature = "failpoints")]
static ARMED: std::sync::Mutex<Vec<(Point, ServiceKind, u32)>> = std::sync::Mutex::new(Vec::new());

/// Makes `point` panic for `service` on its next `times` hits.
#[cfg(feature = "failpoints")]
pub fn arm(point: Point, service: ServiceKind, times: u32) {
    let mut armed = crate::sync::lock(&ARMED);
    armed.retain(|(p, s, _)| (*p, *s) != (point, service));
    armed.push((point, service, times));
}

/// Panics if `point` is armed for `service` (and counts the hit down).
#[cfg(feature = "failpoints")]
pub fn hit(point: Point, service: ServiceKind) {
    let fire = {
        let mut armed = crate::sync::lock(&ARMED);
        match armed
            .iter_mut()
            .find(|(p, s, left)| (*p, *s) == (point, service) && *left > 0)
        {
            Some((_, _, left)) => {
                *left -= 1;
                true
            }
            None => false,
        }
    };
    if fire {
        panic!("failpoint {point:?} hit in {service}");
    }
}

/// Without the `failpoints` feature: nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_point: Point, _service: ServiceKind) {}

/// A place where a test can hold a task (see [`gate`]): the reload
/// between reading its files and applying them; a capture's decoding,
/// holding its place among the decodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pause {
    ReloadApply,
    CaptureDecode,
}

/// A test's hold on a [`Pause`]: the next task to reach it waits there
/// until [`Gate::release`] (or until the gate is dropped).
#[cfg(feature = "failpoints")]
pub struct Gate {
    at: Pause,
    reached: std::sync::Arc<tokio::sync::Semaphore>,
    release: std::sync::Arc<tokio::sync::Semaphore>,
}

#[cfg(feature = "failpoints")]
type Gates = std::sync::Mutex<
    Vec<(
        Pause,
        std::sync::Arc<tokio::sync::Semaphore>,
        std::sync::Arc<tokio::sync::Semaphore>,
    )>,
>;

#[cfg(feature = "failpoints")]
static GATES: Gates = std::sync::Mutex::new(Vec::new());

/// Arms `at`: the next task to reach it waits for the gate's release.
#[cfg(feature = "failpoints")]
pub fn gate(at: Pause) -> Gate {
    let reached = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let release = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let mut gates = GATES.lock().unwrap_or_else(|p| p.into_inner());
    gates.retain(|(p, _, _)| *p != at);
    gates.push((
        at,
        std::sync::Arc::clone(&reached),
        std::sync::Arc::clone(&release),
    ));
    Gate {
        at,
        reached,
        release,
    }
}

#[cfg(feature = "failpoints")]
impl Gate {
    /// Waits until a task is held at the gate.
    pub async fn reached(&self) {
        let _ = self.reached.acquire().await.map(|p| p.forget());
    }

    /// Lets the held task (or the next one) go on, and disarms the gate.
    pub fn release(&self) {
        GATES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(p, _, _)| *p != self.at);
        self.release.add_permits(1);
    }
}

#[cfg(feature = "failpoints")]
impl Drop for Gate {
    fn drop(&mut self) {
        self.release();
    }
}

/// Waits at `at` while a test holds it (see [`gate`]).
#[cfg(feature = "failpoints")]
pub async fn pause(at: Pause) {
    let armed = GATES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(p, _, _)| *p == at)
        .map(|(_, reached, release)| {
            (
                std::sync::Arc::clone(reached),
                std::sync::Arc::clone(release),
            )
        });
    if let Some((reached, release)) = armed {
        reached.add_permits(1);
        let _ = release.acquire().await.map(|p| p.forget());
    }
}

/// Without the `failpoints` feature: nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub async fn pause(_at: Pause) {}
