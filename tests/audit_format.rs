//! The audit log's format does not change with the code that writes it:
//! `tests/fixtures/audit.log` holds lines written before records were an
//! `AuditEvent` (by the `json!` objects of that time, one of each shape
//! every call site wrote). Each is read as an event and written back,
//! byte for byte; and the log itself writes the same bytes.

use std::collections::BTreeSet;

use switchboard::audit::{self, AuditEvent, AuditLog};

fn fixture() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/audit.log");
    std::fs::read_to_string(path)
        .expect("the fixture reads")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn at_of(line: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
    value["at"].as_str().expect("an `at` string").to_owned()
}

#[test]
fn old_lines_are_read_and_written_back_byte_for_byte() {
    let lines = fixture();
    assert!(lines.len() >= 30, "the fixture holds every shape");
    let mut events = BTreeSet::new();
    for line in &lines {
        let event: AuditEvent = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not an AuditEvent ({e}): {line}"));
        assert_eq!(&audit::line(&event, &at_of(line)), line);
        let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
        events.insert(value["event"].as_str().expect("an event").to_owned());
    }
    let every = [
        "capture",
        "chat_reply",
        "close_connection",
        "command",
        "file_stored",
        "login",
        "reload",
        "replay",
        "service",
        "service_config",
        "token",
        "toxic",
        "upload",
        "web_delete",
        "web_exec",
        "web_sticky_exec",
        "web_upload",
    ];
    assert_eq!(events, every.map(String::from).into());
}

/// A field dropped, renamed, or written as `null` where it used to be
/// absent (or the reverse) shows as a difference: the check above can fail.
#[test]
fn a_changed_shape_is_caught() {
    let line = fixture()
        .into_iter()
        .find(|l| l.contains(r#""event":"service""#))
        .expect("a service line");
    let event: AuditEvent = serde_json::from_str(&line).expect("an event");
    // `error` has always been written as null on success; skipping it
    // would change the line.
    assert!(line.contains(r#""error":null"#), "{line}");
    let without: String = line.replace(r#""error":null,"#, "");
    let back: AuditEvent = serde_json::from_str(&without).expect("still an event");
    assert_eq!(back, event, "a missing null reads as None");
    assert_ne!(audit::line(&back, &at_of(&line)), without);
    // An unknown field is not kept: written back, the line differs.
    let extra = line.replacen('{', r#"{"extra":1,"#, 1);
    let read: AuditEvent = serde_json::from_str(&extra).expect("an event");
    assert_ne!(audit::line(&read, &at_of(&line)), extra);
}

#[tokio::test]
async fn the_log_writes_the_same_bytes() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let log = AuditLog::open(dir.path()).expect("the log opens");
    let lines = fixture();
    for line in &lines {
        log.record(serde_json::from_str(line).expect("an event"))
            .await;
    }
    log.flush().await;
    let written = std::fs::read_to_string(audit::path(dir.path())).expect("the log reads");
    let written: Vec<&str> = written.lines().collect();
    assert_eq!(written.len(), lines.len());
    for (new, old) in written.iter().zip(&lines) {
        // Only the time differs: put the old one in and compare bytes.
        let stamped = new.replacen(&at_of(new), &at_of(old), 1);
        assert_eq!(&stamped, old);
    }
}
