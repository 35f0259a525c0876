//! `store::safe_name`, which turns a name a peer sent (files' JSON header,
//! files-classic's 128 bytes) into the name a file is stored under. A name
//! arrives whole, so instead of splits this checks what the result must
//! be: one normal path component with no separator, no `..`, no control
//! character, no leading dot or surrounding space, at most `MAX_NAME_LEN`
//! bytes, taken from the input, and its own reduction.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use switchboard::store::{MAX_NAME_LEN, StoreError, safe_name};

fuzz_target!(|raw: &[u8]| {
    let name = match safe_name(raw) {
        Ok(name) => name,
        Err(StoreError::BadName(why)) => {
            assert!(!why.is_empty());
            return;
        }
        Err(e) => panic!("not a name refusal: {e}"),
    };
    assert!(!name.is_empty() && name.len() <= MAX_NAME_LEN, "{name:?}");
    assert!(!name.contains(['/', '\\', '\0']), "separator in {name:?}");
    assert!(!name.chars().any(char::is_control), "control in {name:?}");
    assert!(!name.starts_with('.'), "leading dot in {name:?}");
    assert_eq!(name, name.trim(), "surrounding space in {name:?}");
    assert!(name != "." && name != "..");
    let parts: Vec<_> = Path::new(&name).components().collect();
    assert_eq!(parts, [Component::Normal(name.as_ref())], "{name:?}");
    // files-classic stores it as `new_<name>`: still one component.
    let classic = format!("new_{name}");
    let parts: Vec<_> = Path::new(&classic).components().collect();
    assert_eq!(parts, [Component::Normal(classic.as_ref())]);
    let text = std::str::from_utf8(raw).expect("only UTF-8 is accepted");
    assert!(text.contains(&name), "{name:?} is not part of {text:?}");
    assert_eq!(
        safe_name(name.as_bytes()).ok().as_deref(),
        Some(name.as_str()),
        "a safe name is its own reduction"
    );
});
