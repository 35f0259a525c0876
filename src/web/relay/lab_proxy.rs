//! The sticky-packet lab's "through a proxy with toxics": a temporary
//! `tcp-proxy` instance, owned by one lab run, in front of the instance the
//! lab talks to, with one toxic (`slicer` or `latency`) on it. The lab's
//! client connects to the proxy instead of the instance, so the same bytes
//! cross a real proxy whose toxic cuts or delays them, and the lesson shows
//! which framing survives.
//!
//! Why a temporary instance and not one the person picks: a proxy's
//! upstream is fixed, so a proxy chosen by hand would have to point at each
//! exec instance in turn; and toxics put on someone's real proxy would
//! reach its other users. The lab's proxy listens on an ephemeral loopback
//! port, is named `toxic-lab-1` … `toxic-lab-4` (a small pool, so the stats
//! registry, which keeps every name it saw, stays bounded), is never
//! written to `services.toml`, and is removed with its toxic when the run
//! ends — by [`LabProxy::close`], or by its `Drop` when the request is
//! dropped half-way (the browser went away), so no surprise instance is
//! left behind. While it runs it shows on the Services and Connections
//! pages like any instance.
//!
//! What this deliberately doesn't do: take an address from the browser
//! (the upstream is always an instance's own bound address), allow any
//! toxic but the two the lesson needs, or keep anything.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Deserialize;

use super::{AppState, WebError};
use crate::toxic::input::ToxicInput;

/// How many lab proxies may exist at once, process-wide.
pub const LAB_PROXIES: usize = 4;
/// The lab proxies' names: this and a slot number (1-based).
pub const LAB_PROXY_PREFIX: &str = "toxic-lab-";
/// The toxic types the lab offers.
pub const LAB_TOXICS: [&str; 2] = ["slicer", "latency"];

/// Which slots are taken. Held for a few instructions, never across an await.
static SLOTS: Mutex<[bool; LAB_PROXIES]> = Mutex::new([false; LAB_PROXIES]);

/// The toxic a lab run puts on its proxy, as the browser sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabToxic {
    #[serde(rename = "type")]
    pub type_name: String,
    /// `downstream` (server → client, the default) or `upstream`.
    pub stream: Option<String>,
    /// The type's attributes, in its units (see docs/TOXICS.md).
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

impl LabToxic {
    /// The checked toxic, or why not in plain words.
    ///
    /// # Errors
    /// A type the lab does not offer, or what the toxic model refuses.
    pub fn toxic(&self) -> Result<crate::toxic::Toxic, WebError> {
        if !LAB_TOXICS.contains(&self.type_name.as_str()) {
            return Err(WebError::BadRequest(format!(
                "the lab's proxy takes a {} toxic, not `{}`",
                LAB_TOXICS.join(" or a "),
                self.type_name.chars().take(32).collect::<String>()
            )));
        }
        ToxicInput {
            name: Some("lab".into()),
            type_name: Some(self.type_name.clone()),
            stream: self.stream.clone(),
            toxicity: None,
            enabled: None,
            attributes: Some(self.attributes.clone()),
        }
        .create(false)
        .map_err(|e| WebError::BadRequest(format!("the lab's toxic: {e}")))
    }

    /// What the toxic is, for the result's heading.
    pub fn describe(&self) -> String {
        let attrs: Vec<String> = self
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "{} on {} ({})",
            self.type_name,
            self.stream.as_deref().unwrap_or("downstream"),
            attrs.join(", ")
        )
    }
}

/// One taken slot; dropping it frees the slot.
struct Slot(usize);

impl Slot {
    fn take() -> Option<Slot> {
        let mut slots = crate::sync::lock(&SLOTS);
        let free = slots.iter().position(|taken| !taken)?;
        slots[free] = true;
        Some(Slot(free))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        crate::sync::lock(&SLOTS)[self.0] = false;
    }
}

/// A running lab proxy; removed (with its toxic) by [`LabProxy::close`],
/// or in the background when dropped without it.
pub struct LabProxy {
    state: AppState,
    name: String,
    addr: String,
    /// Freed only once the instance is gone, so the name is free too.
    slot: Option<Slot>,
}

impl LabProxy {
    /// Starts a proxy to `upstream` (an instance's own address) with `toxic`.
    ///
    /// # Errors
    /// Every slot in use, the name taken by someone's instance, or the
    /// proxy cannot start (the fd budget, say).
    pub async fn open(
        state: &AppState,
        upstream: &str,
        toxic: crate::toxic::Toxic,
    ) -> Result<LabProxy, WebError> {
        let slot = Slot::take().ok_or_else(|| {
            WebError::Busy(format!(
                "the lab's {LAB_PROXIES} proxies are all in use; try again in a moment"
            ))
        })?;
        let name = format!("{LAB_PROXY_PREFIX}{}", slot.0 + 1);
        let settings = BTreeMap::from([
            ("listen".to_owned(), "127.0.0.1:0".to_owned()),
            ("upstream".to_owned(), upstream.to_owned()),
        ]);
        let (config, _) = crate::config::overlay::validate(
            crate::service::registry::read,
            &name,
            "tcp-proxy",
            &settings,
            &toml::Table::new(),
            &[],
        )
        .map_err(|e| WebError::Internal(format!("the lab's proxy: {}", e.message)))?;
        let sup = state.supervisor();
        if sup.id(&name).is_some() {
            return Err(WebError::Conflict(format!(
                "an instance is named `{name}`, which the lab's proxy needs; rename it"
            )));
        }
        // Owned from here: an early return removes what was made.
        let mut proxy = LabProxy {
            state: state.clone(),
            name: name.clone(),
            addr: String::new(),
            slot: Some(slot),
        };
        // The toxic first, so the first byte through already meets it.
        sup.toxics().forget(&name);
        sup.toxics()
            .add(&name, toxic)
            .map_err(|e| WebError::BadRequest(format!("the lab's toxic: {e}")))?;
        sup.add(config)
            .await
            .map_err(|e| WebError::Busy(format!("the lab's proxy cannot start: {e}")))?;
        proxy.addr = state.target(&name)?;
        tracing::info!(service = %name, %upstream, "the sticky-packet lab's proxy started");
        Ok(proxy)
    }

    /// Where the lab's client connects.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Removes the proxy and its toxic, and waits for it to be gone.
    pub async fn close(mut self) {
        let slot = self.slot.take();
        remove(&self.state, &self.name).await;
        drop(slot);
    }
}

async fn remove(state: &AppState, name: &str) {
    let sup = state.supervisor();
    if sup.id(name).is_some()
        && let Err(e) = sup.remove(name).await
    {
        tracing::warn!(service = %name, "the lab's proxy: {e}");
    }
    sup.toxics().forget(name);
}

impl Drop for LabProxy {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let state = self.state.clone();
        let name = std::mem::take(&mut self.name);
        // Dropped half-way (the request went away): remove it in the
        // background, on the tracker shutdown waits for.
        let tasks = state.inner.shutdown.tasks.clone();
        if tokio::runtime::Handle::try_current().is_ok() {
            tasks.spawn(async move {
                remove(&state, &name).await;
                drop(slot);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The only test in this binary that takes slots: the pool is the
    /// process's.
    #[test]
    fn at_most_four_lab_proxies_and_a_dropped_one_frees_its_slot() {
        let taken: Vec<Slot> = (0..LAB_PROXIES).map(|_| Slot::take().unwrap()).collect();
        let mut numbers: Vec<usize> = taken.iter().map(|s| s.0).collect();
        numbers.sort_unstable();
        assert_eq!(numbers, [0, 1, 2, 3]);
        assert!(Slot::take().is_none(), "a fifth");
        drop(taken);
        assert!(Slot::take().is_some());
    }

    #[test]
    fn only_the_lessons_toxics_are_taken() {
        let toxic = |type_name: &str| LabToxic {
            type_name: type_name.into(),
            stream: None,
            attributes: BTreeMap::new(),
        };
        assert!(toxic("slicer").toxic().is_ok());
        assert!(toxic("latency").toxic().is_ok());
        for refused in [
            "timeout",
            "reset_peer",
            "limit_data",
            "loss",
            "",
            "x".repeat(1000).as_str(),
        ] {
            let e = toxic(refused).toxic().unwrap_err().to_string();
            assert!(e.len() < 200, "{e}");
        }
    }
}
