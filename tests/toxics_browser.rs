//! The Toxics panel of the Services page in a real headless Chromium
//! (chromedriver), against the real binary: a slicer toxic added from the
//! dashboard cuts an echo conversation through a tcp-proxy into 1-byte
//! segments, which the wire inspector then shows; the on/off switch and
//! Remove reach the proxy's live toxics; axe-core finds nothing wrong with
//! the open panel. The form is generated from `/api/v1/toxics/types`,
//! which this test does not restate: it only picks a type and fills the
//! field that type's description names.
//!
//! The steps go through the page object in tests/common/dashboard.rs.
//! Needs `chromium`, `chromedriver` and axe-core (`SWITCHBOARD_AXE_JS`, as
//! scripts/test.sh sets it). Without them the test fails and says so,
//! unless `SWITCHBOARD_SKIP_BROWSER=1` (or `SWITCHBOARD_SKIP_AXE=1`).

mod common;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::dashboard::{Dashboard, Screen, Site, axe_source};
use common::guard;

/// The proxy's toxics as the API lists them.
async fn toxics_of(ui: &Dashboard, proxy: &str) -> serde_json::Value {
    let (status, body) = ui.fetch(&format!("/api/v1/services/{proxy}/toxics")).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Replaces what the field at `xpath` holds.
async fn type_at(ui: &Dashboard, what: &str, xpath: &str, text: &str) {
    common::dashboard::type_into(&ui.wait_for(what, xpath).await, text).await;
}

#[tokio::test]
async fn a_slicer_added_from_the_dashboard_shows_as_one_byte_segments_in_the_inspector() {
    let Some(Site {
        ui,
        served,
        dir: _dir,
        ..
    }) = Site::open(Screen::Desktop).await
    else {
        return;
    };
    let Some(axe) = axe_source() else { return };
    ui.sign_in_as_admin().await;

    // A tcp-proxy in front of echo.
    let (made, body) = ui
        .api(
            "POST",
            "/api/v1/services",
            Some(json!({"name": "cut", "kind": "tcp-proxy",
                        "settings": {"listen": "127.0.0.1:0", "upstream": served.addr(switchboard::kind::ServiceKind::Echo)}})),
        )
        .await;
    assert!((200..300).contains(&made), "the proxy added: {made} {body}");

    // Its Toxics panel, opened from its row, by the keyboard.
    ui.go_to("/services").await;
    ui.wait_ready().await;
    let addr = ui
        .text_at("//tr[@data-instance='cut']/td[3]")
        .await
        .trim()
        .to_owned();
    ui.press_enter("cut's Toxics button", "//button[@data-toxics='cut']")
        .await;
    ui.wait_for(
        "the panel, opened by Enter",
        "//section[@id='toxics-panel' and not(@hidden) and @data-proxy='cut']\
         [.//p[@id='toxics-empty' and not(@hidden)]]",
    )
    .await;
    // tcp-only types are offered, udp-only ones are not.
    ui.wait_for(
        "slicer offered",
        "//select[@id='toxic-type']/option[@value='slicer']",
    )
    .await;
    assert!(
        ui.absent("//select[@id='toxic-type']/option[@value='loss']")
            .await,
        "a udp-only type offered for a tcp-proxy"
    );
    ui.choose("toxic-type", "slicer").await;
    ui.choose("toxic-stream", "upstream").await;
    // The slicer's fields, generated from its description, labelled.
    type_at(
        &ui,
        "the average_size field",
        "//label[contains(., 'average_size')]/input[@name='average_size' and @type='number']",
        "1",
    )
    .await;
    // Segments 20 ms apart, so echo reads each alone.
    type_at(&ui, "the delay field", "//input[@name='delay']", "20000").await;

    // A refused value shows at its field first.
    ui.type_in("toxic-toxicity", "2").await;
    ui.click("toxic-save").await;
    ui.wait_for(
        "the error at toxicity",
        "//span[@data-error-for='toxicity' and not(@hidden) and normalize-space()!='']",
    )
    .await;
    ui.type_in("toxic-toxicity", "1").await;
    ui.click("toxic-save").await;
    ui.wait_for(
        "the slicer listed",
        "//tr[@data-toxic='slicer_upstream' and @data-enabled='true']\
         [td[contains(., 'average_size=1')]]",
    )
    .await;
    let violations = ui.axe_violations(&axe).await;
    assert!(
        violations.is_empty(),
        "axe on the open panel: {violations:#?}"
    );
    let listed = toxics_of(&ui, "cut").await;
    assert_eq!(listed[0]["attributes"]["average_size"], 1, "{listed}");
    assert_eq!(listed[0]["stream"], "upstream", "{listed}");

    // An echo conversation through the proxy.
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    conn.write_all(b"slice").await.unwrap();
    let mut reply = [0u8; 5];
    guard("the reply through the slicer", conn.read_exact(&mut reply))
        .await
        .unwrap();
    assert_eq!(&reply, b"SLICE");

    // Echo's side of it in the inspector: one byte per segment.
    ui.go_to("/connections").await;
    // The proxy's connection is marked as under toxics; echo's is not.
    ui.wait_for(
        "the proxy's connection marked",
        "//tr[@data-service='cut'][.//span[@data-toxic='on' and .='toxics']]",
    )
    .await;
    assert!(
        ui.absent("//tr[@data-service='echo']//span[@data-toxic]")
            .await,
        "echo's connection marked, though echo has no toxics"
    );
    let link = ui
        .attr_in_live_table(
            "echo's connection from the proxy",
            "//tr[@data-service='echo']//a[@data-inspect]",
            "href",
        )
        .await;
    ui.go_to(&link).await;
    for (dir, text) in [
        ("in", "s"),
        ("in", "l"),
        ("in", "e"),
        ("out", "S"),
        ("out", "E"),
    ] {
        ui.wait_for(
            &format!("the 1-byte segment {text}"),
            &format!(
                "//ol[@id='inspect-segments']/li[@data-dir='{dir}']\
                 [.//span[@data-field='len' and .='1 B']][.//pre[@data-field='text' and .='{text}']]"
            ),
        )
        .await;
    }
    let lens = ui
        .script(
            "return [...document.querySelectorAll('#inspect-segments li.seg[data-dir=in] [data-field=len]')]
               .map((e) => e.textContent);",
            vec![],
        )
        .await;
    assert_eq!(
        lens,
        json!(["1 B", "1 B", "1 B", "1 B", "1 B"]),
        "every segment from the proxy is one byte"
    );
    drop(conn);

    // Off by its switch (the keyboard's space), then removed.
    ui.go_to("/services").await;
    ui.wait_ready().await;
    ui.click_on("cut's Toxics button", "//button[@data-toxics='cut']")
        .await;
    ui.wait_for(
        "the on switch",
        "//input[@type='checkbox' and @data-toggle='slicer_upstream']",
    )
    .await
    .send_keys(" ")
    .await
    .unwrap();
    ui.wait_for(
        "the slicer off",
        "//tr[@data-toxic='slicer_upstream' and @data-enabled='false']",
    )
    .await;
    assert_eq!(toxics_of(&ui, "cut").await[0]["enabled"], false);
    // By the keyboard (the toast of the switch may cover it for a pointer).
    ui.press_enter(
        "the slicer's Remove button",
        "//button[@data-toxic-remove='slicer_upstream']",
    )
    .await;
    ui.confirm().await;
    ui.wait_for(
        "the list empty",
        "//section[@id='toxics-panel'][.//p[@id='toxics-empty' and not(@hidden)]]\
         [not(.//tr[@data-toxic])]",
    )
    .await;
    assert_eq!(toxics_of(&ui, "cut").await, json!([]));
    ui.close().await;
}
