//! A proxy's upstream state is typed data of the instance view: the probe
//! records up/down and when it last probed; `/api/v1/services/{name}` and
//! the Overview card read those fields, never the text of an event.
//!
//! Not here: the probing's timing and the events a change also becomes
//! (tests/proxy.rs).

mod common;

use axum::http::StatusCode;
use serde_json::{Value, json};

use common::web::{Web, poll_until};

/// Adds a tcp-proxy `px` in front of the built-in echo, as admin.
async fn proxy_to_echo(w: &Web) -> String {
    let echo = w.h.target("echo");
    let admin = w.admin().await;
    let r = w
        .send(admin.act_json(
            "POST",
            "/api/v1/services",
            &json!({"name": "px", "kind": "tcp-proxy",
                    "settings": {"listen": "127.0.0.1:0", "upstream": echo}}),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    echo
}

/// The Overview card's upstream line for `name`: its opening tag and text.
fn card_upstream(html: &str, name: &str) -> (String, String) {
    let card = html
        .split("<article class=\"card\"")
        .find(|c| c.contains(&format!("data-service=\"{name}\"")))
        .unwrap_or_else(|| panic!("no card for {name}"));
    let at = card
        .find("data-field=\"upstream\"")
        .expect("the card has an upstream line");
    let open = card[..at].rfind('<').expect("the line's tag opens");
    let rest = &card[open..];
    let end = rest.find('>').expect("the tag closes");
    let text = &rest[end + 1..rest.find("</p>").expect("the line ends")];
    (rest[..=end].to_owned(), text.to_owned())
}

#[tokio::test]
async fn the_card_and_the_view_show_the_upstream_from_its_typed_state() {
    let w = Web::start().await;
    let echo = proxy_to_echo(&w).await;
    let id = w.h.supervisor.id("px").expect("px was added");
    // The probe connects at once, then every few seconds.
    poll_until("the probe records the upstream up", || {
        w.h.stats
            .upstream(&id)
            .is_some_and(|u| u.up && u.probed_unix_ms.is_some())
    })
    .await;

    let admin = w.admin().await;
    let view: Value = w.send(admin.get("/api/v1/services/px")).await.json();
    assert_eq!(view["upstream"]["upstream"], echo, "{view}");
    assert_eq!(view["upstream"]["up"], true, "{view}");
    assert!(view["upstream"]["probed_unix_ms"].is_u64(), "{view}");
    assert!(view["upstream"].get("reason").is_none(), "{view}");
    // Other kinds have none.
    let plain: Value = w.send(admin.get("/api/v1/services/echo")).await.json();
    assert!(plain.get("upstream").is_none(), "{plain}");

    let page = w.send(admin.get("/")).await;
    let (tag, text) = card_upstream(&page.body, "px");
    assert_eq!(text, format!("upstream {echo} up"));
    assert!(tag.contains("data-down=\"false\""), "{tag}");
    assert!(tag.contains("title=\"last probed "), "{tag}");
    assert!(!tag.contains("hidden"), "{tag}");

    // A state that exists only as typed data (no event says it) is what
    // the card and the view show: nothing reads event text.
    let why = "typed state, in no event";
    w.h.stats
        .upstream_changed(&id, "192.0.2.1:9".into(), Some(why.into()));
    assert!(
        w.h.stats
            .recent_events()
            .iter()
            .all(|e| !format!("{:?}", e.kind).contains(why)),
        "the change made no event"
    );
    let page = w.send(admin.get("/")).await;
    let (tag, text) = card_upstream(&page.body, "px");
    assert_eq!(text, format!("upstream 192.0.2.1:9 down: {why}"));
    assert!(tag.contains("data-down=\"true\""), "{tag}");
    let view: Value = w.send(admin.get("/api/v1/services/px")).await.json();
    assert_eq!(view["upstream"]["up"], false, "{view}");
    assert_eq!(view["upstream"]["reason"], why, "{view}");

    // A card of another kind has no upstream line to show.
    let (tag, text) = card_upstream(&page.body, "echo");
    assert!(text.is_empty() && tag.contains("hidden"), "{tag}{text}");
}
