//! Unit tests for the web relay: deframing and download dispositions.

use super::files::disposition;
use super::*;

#[test]
fn deframe_splits_length_prefixed_messages_and_stops_at_a_partial_one() {
    let bytes = [
        &[0, 0, 0, 2][..],
        b"ab",
        &[0, 0, 0, 0],
        &[0, 0, 0, 3],
        b"xyz",
        &[0, 0, 0, 9],
        b"x",
    ]
    .concat();
    assert_eq!(deframe(&bytes), ["ab", "", "xyz"]);
}

#[test]
fn dispositions_are_percent_encoded() {
    assert_eq!(
        disposition("a b\"c;.txt"),
        "attachment; filename*=UTF-8''a%20b%22c%3B.txt"
    );
    assert_eq!(disposition("é"), "attachment; filename*=UTF-8''%C3%A9");
}
