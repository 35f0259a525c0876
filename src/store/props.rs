//! Property tests: whatever a peer sends as a name, what comes back is one plain file name in the files folder, or a refusal.

use super::*;
use proptest::prelude::*;
use std::path::Component;

/// Checks everything a stored name must be.
fn assert_safe(name: &str) {
    assert!(!name.is_empty() && name.len() <= MAX_NAME_LEN, "{name:?}");
    assert!(!name.contains(['/', '\\']), "separator in {name:?}");
    assert!(!name.chars().any(char::is_control), "control in {name:?}");
    assert!(!name.starts_with('.'), "leading dot in {name:?}");
    assert_eq!(name, name.trim(), "surrounding space in {name:?}");
    let parts: Vec<_> = Path::new(name).components().collect();
    assert_eq!(
        parts,
        [Component::Normal(name.as_ref())],
        "not one normal component: {name:?}"
    );
    assert_eq!(
        safe_name(name.as_bytes()).ok().as_deref(),
        Some(name),
        "a safe name is its own reduction"
    );
}

/// Names built from the pieces that make path tricks.
fn tricky() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"..".to_vec()),
        Just(b".".to_vec()),
        Just(b"/".to_vec()),
        Just(b"\\".to_vec()),
        Just(b" ".to_vec()),
        Just("\u{a0}".as_bytes().to_vec()),
        Just("\u{3000}".as_bytes().to_vec()),
        Just(b"\0".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\xff".to_vec()),
        Just(b".upload-".to_vec()),
        "[a-z.]{1,4}".prop_map(String::into_bytes),
        ".{1,2}".prop_map(String::into_bytes),
    ];
    prop::collection::vec(piece, 0..10).prop_map(|p| p.concat())
}

#[test]
fn dots_and_spaces_in_turn_leave_no_leading_dot() {
    // Found by the property test below: `.. ..` once reduced to `..`,
    // and `. .upload-x` to a name the start-up sweep deletes.
    for raw in [&b".. .."[..], b". . .", b" . ", "\u{3000}.".as_bytes()] {
        assert!(
            matches!(safe_name(raw), Err(StoreError::BadName(_))),
            "{raw:?}"
        );
    }
    assert_eq!(safe_name(b". .upload-x").unwrap(), "upload-x");
    assert_eq!(safe_name(b"a/ . .b c .").unwrap(), "b c .");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_give_a_safe_name_or_a_reason(raw in prop::collection::vec(any::<u8>(), 0..260)) {
        match safe_name(&raw) {
            Ok(name) => assert_safe(&name),
            Err(StoreError::BadName(why)) => prop_assert!(!why.is_empty()),
            Err(e) => prop_assert!(false, "not a name refusal: {e}"),
        }
    }

    #[test]
    fn path_tricks_give_a_safe_name_or_a_reason(raw in tricky()) {
        match safe_name(&raw) {
            Ok(name) => assert_safe(&name),
            Err(StoreError::BadName(why)) => prop_assert!(!why.is_empty()),
            Err(e) => prop_assert!(false, "not a name refusal: {e}"),
        }
    }
}
