//! One process-wide budget of file descriptors: every instance's caps
//! (`max_connections`, a udp-proxy's `max_peers`, a stdio's
//! `max_instances`, the listener itself) are promised against it when the
//! instance starts, so no setting can promise more sockets than the
//! process may open. A start that would not fit is refused with the key
//! and the numbers; the config file's start and the Services API both
//! come through here (`Supervisor::start_locked`).
//!
//! Deliberately not a live count: it admits *caps*, not open sockets (the
//! open count is `process_open_fds` in /metrics). Built-in defaults that
//! do not fit only warn (a small soft limit must not stop the default
//! config); only values someone set are refused.

use std::sync::Mutex;

use crate::config::ServiceConfig;
use crate::kind::{ServiceId, ServiceKind};
use crate::service::{Limits, ServiceError, stdio, udp_proxy};
use crate::settings::{TcpLimits, UdpLimits};

/// Kept out of the budget besides the dashboard's `web.max_connections`:
/// descriptors the process opens on its own — the data files, audit and
/// log files, capture exports, the TLS and key files, stdin/out/err, the
/// runtime's own (epoll, eventfd), a proxy's upstream lookups. A few
/// hundred covers them with room to spare.
pub const RESERVE_MARGIN: u64 = 256;

/// The budget, and the lock that makes checking and promising one step.
pub(super) struct Budget {
    /// Descriptors instances may be promised.
    pub total: u64,
    /// The open-file limit it came from.
    pub limit: u64,
    /// Held from admission until the instance is marked running, so two
    /// starts cannot both take the last room.
    pub admitting: Mutex<()>,
}

impl Budget {
    /// The soft `RLIMIT_NOFILE` now (after `raise_fd_limit`), less the
    /// dashboard's connections and [`RESERVE_MARGIN`].
    pub fn new(web_max_connections: usize) -> Budget {
        let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_or(0, |(soft, _)| soft);
        Budget {
            total: limit.saturating_sub(reserve(limit, web_max_connections)),
            limit,
            admitting: Mutex::new(()),
        }
    }
}

/// What is kept out of the budget: the dashboard's `web.max_connections`
/// and [`RESERVE_MARGIN`], but never more than half of `limit`. Under a
/// small limit (1024, when raising it failed) the dashboard could not hold
/// its 1,024 connections anyway, and instances keep half rather than none.
pub fn reserve(limit: u64, web_max_connections: usize) -> u64 {
    (web_max_connections as u64)
        .saturating_add(RESERVE_MARGIN)
        .min(limit / 2)
}

/// What an instance may hold open: the total, and the key that sets the
/// biggest part of it, with whether that key was set (not the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    pub fds: u64,
    pub key: &'static str,
    pub set: bool,
}

/// The descriptors `config` may hold open at its caps.
pub fn needs(config: &ServiceConfig) -> Needs {
    let listener = 1u64;
    match &config.limits {
        Limits::Udp(limits) => {
            // One socket per peer, upstream.
            if config.settings.get::<udp_proxy::Settings>().is_some() {
                let set = limits.max_peers != UdpLimits::default().max_peers;
                return Needs {
                    fds: listener + limits.max_peers as u64,
                    key: "max_peers",
                    set,
                };
            }
            Needs {
                fds: listener,
                key: "listen",
                set: false,
            }
        }
        Limits::Tcp(limits) => {
            let conns = limits.max_connections as u64;
            let conn_set = limits.max_connections != TcpLimits::default().max_connections;
            let conn = |fds| Needs {
                fds,
                key: "max_connections",
                set: conn_set,
            };
            match config.id.kind() {
                // Client and upstream.
                ServiceKind::TcpProxy => conn(listener + 2 * conns),
                ServiceKind::Stdio => {
                    let max = config
                        .settings
                        .get::<stdio::Settings>()
                        .map_or(0, |s| s.max_instances as u64);
                    let set = max != stdio::Settings::new(Vec::new()).max_instances as u64;
                    // A child's three pipes, plus the connections.
                    let fds = listener + conns + 3 * max;
                    if set || !conn_set {
                        Needs {
                            fds,
                            key: "max_instances",
                            set,
                        }
                    } else {
                        conn(fds)
                    }
                }
                _ => conn(listener + conns),
            }
        }
    }
}

impl super::Supervisor {
    /// The descriptors instances may be promised (`switchboard_fd_budget`).
    pub fn fd_budget(&self) -> u64 {
        self.inner.budget.total
    }

    /// Promises `config`'s needs for `id`, or refuses them. The guard is
    /// held until the instance is marked running (the end of
    /// `start_locked`), so its promise and another start's cannot overlap.
    pub(super) fn admit_fds(
        &self,
        id: &ServiceId,
        config: &ServiceConfig,
    ) -> Result<std::sync::MutexGuard<'_, ()>, ServiceError> {
        let guard = crate::sync::lock(&self.inner.budget.admitting);
        admit(
            id,
            &needs(config),
            self.fd_promised(Some(id)),
            &self.inner.budget,
        )?;
        Ok(guard)
    }

    /// The sum of the running instances' needs, but `except`'s
    /// (`switchboard_fd_promised`).
    pub fn fd_promised(&self, except: Option<&ServiceId>) -> u64 {
        self.slots()
            .iter()
            .filter(|slot| Some(&slot.id) != except)
            .filter_map(|slot| {
                let st = crate::sync::lock(&slot.state);
                st.running.as_ref().map(|_| needs(&st.config).fds)
            })
            .sum()
    }
}

/// Refuses `needs` when `promised` plus it passes `budget` and the key was
/// set; warns (and admits) when only built-in defaults do not fit.
pub(super) fn admit(
    id: &ServiceId,
    needs: &Needs,
    promised: u64,
    budget: &Budget,
) -> Result<(), ServiceError> {
    if promised.saturating_add(needs.fds) <= budget.total {
        return Ok(());
    }
    let err = ServiceError::Budget {
        service: id.clone(),
        key: needs.key,
        needs: needs.fds,
        promised,
        budget: budget.total,
        limit: budget.limit,
    };
    if needs.set {
        return Err(err);
    }
    tracing::warn!(
        "{id}: its built-in caps need {} file descriptors, more than the {} left of the budget \
         {} (open-file limit {}); started anyway: raise the limit (ulimit -n, LimitNOFILE=) or \
         set lower caps",
        needs.fds,
        budget.total.saturating_sub(promised),
        budget.total,
        budget.limit
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(total: u64) -> Budget {
        Budget {
            total,
            limit: total + 1280,
            admitting: Mutex::new(()),
        }
    }

    #[test]
    fn a_set_key_that_does_not_fit_is_refused_and_a_default_is_admitted() {
        let id = ServiceId::new("echo", ServiceKind::Echo);
        let set = Needs {
            fds: 600,
            key: "max_connections",
            set: true,
        };
        assert!(admit(&id, &set, 400, &budget(1000)).is_ok());
        let e = admit(&id, &set, 401, &budget(1000)).expect_err("over by one");
        let text = e.to_string();
        assert!(
            text.contains("max_connections") && text.contains("600"),
            "{text}"
        );
        assert!(text.contains("401 of the budget 1000"), "{text}");
        let default = Needs { set: false, ..set };
        assert!(admit(&id, &default, 999, &budget(1000)).is_ok());
    }

    #[test]
    fn the_reserve_is_the_dashboards_share_but_never_more_than_half() {
        assert_eq!(reserve(20_000, 1024), 1024 + RESERVE_MARGIN);
        assert_eq!(reserve(1024, 1024), 512);
        assert_eq!(reserve(0, 1024), 0);
    }
}
