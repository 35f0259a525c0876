//! Fault injection for tests: a named point in the code panics when a test
//! has armed it. Compiled in only with the `failpoints` feature (the test
//! command turns it on); without it [`hit`] is an empty inline function, so
//! release builds carry nothing of this.
//!
//! Points are armed per service and for a number of hits, so a test can
//! make exactly one service's accept loop panic a given number of times.

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
