//! The `exec` service's messages, shared by the service and
//! `CommandClient`: requests tagged by `"op"`, replies tagged by `"type"`.
//!
//! ```text
//! {"op":"run","argv":["ls","-l"]}      {"type":"stdout","size":N} + N bytes
//! {"op":"shell","line":"ls | wc -l"}   {"type":"stderr","size":N} + N bytes
//! either may add "timeout_ms":N        {"type":"exit","code":C} / {"type":"exit","signal":S}
//!                                      {"type":"error","error":"<why>"}
//! ```
//!
//! `size` is not a field of these types: the message layer sets it from the
//! body it writes (`message::encode`), so it cannot disagree with the body.
//! What a request may do (the allowlist, shell mode) is the service's
//! business, not this module's.

use serde::{Deserialize, Deserializer, Serialize};

use super::message::{Request, field_or};

/// One request: a command, and an optional shorter time limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    #[serde(flatten)]
    pub command: Command,
    /// A shorter limit than the service's own (never a longer one).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "timeout_ms"
    )]
    pub timeout_ms: Option<u64>,
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Command {
    /// A program on the allowlist with exactly this argv, no shell.
    Run {
        #[serde(deserialize_with = "argv")]
        argv: Vec<String>,
    },
    /// `/bin/sh -c LINE`, when the operator enabled shell mode.
    Shell {
        #[serde(deserialize_with = "line")]
        line: String,
    },
}

impl Request for ExecRequest {
    const OPS: &'static [&'static str] = &["run", "shell"];
}

fn argv<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    field_or(d, "\"argv\" must be a list of strings")
}

fn line<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    field_or(d, "\"line\" must be a string")
}

fn timeout_ms<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    field_or(d, "\"timeout_ms\" must be a whole number of milliseconds")
}

/// One message from the service. `Stdout` and `Stderr` carry their bytes
/// as the body; every request ends with exactly one `Exit` or `Error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ExecReply {
    Stdout,
    Stderr,
    Exit(Exit),
    /// Not allowed, timed out, output cap, busy, ...
    Error {
        error: String,
    },
}

/// How a command's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Exit {
    Code { code: i32 },
    Signal { signal: i32 },
}

impl ExecReply {
    /// A final `error` message with `why` as its reason.
    pub fn error(why: impl std::fmt::Display) -> Self {
        ExecReply::Error {
            error: why.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::message::fixtures::{doc, header, json_of};
    use serde_json::{Value, json};

    #[test]
    fn requests_are_exactly_the_documented_json() {
        let run = ExecRequest {
            command: Command::Run {
                argv: vec!["echo".into(), "hi".into()],
            },
            timeout_ms: None,
        };
        assert_eq!(
            json_of(&run, None),
            doc(r#"{"op":"run","argv":["echo","hi"]}"#)
        );
        let shell = ExecRequest {
            command: Command::Shell {
                line: "ls | wc -l".into(),
            },
            timeout_ms: Some(100),
        };
        let text = r#"{"op":"shell","line":"ls | wc -l","timeout_ms":100}"#;
        assert_eq!(json_of(&shell, None), doc(text));
        for request in [run, shell] {
            let bytes = serde_json::to_value(&request).unwrap();
            assert_eq!(header(bytes).request::<ExecRequest>(), Ok(request));
        }
    }

    #[test]
    fn replies_are_exactly_the_documented_json() {
        let cases = [
            (ExecReply::Stdout, Some(3), r#"{"type":"stdout","size":3}"#),
            (ExecReply::Stderr, Some(1), r#"{"type":"stderr","size":1}"#),
            (
                ExecReply::Exit(Exit::Code { code: 0 }),
                None,
                r#"{"type":"exit","code":0}"#,
            ),
            (
                ExecReply::Exit(Exit::Signal { signal: 9 }),
                None,
                r#"{"type":"exit","signal":9}"#,
            ),
            (
                ExecReply::error("busy"),
                None,
                r#"{"type":"error","error":"busy"}"#,
            ),
        ];
        for (reply, body, text) in cases {
            assert_eq!(json_of(&reply, body), doc(text));
            let h = header(serde_json::from_str(text).unwrap());
            assert_eq!(h.message::<ExecReply>().unwrap(), reply, "{text}");
        }
    }

    #[test]
    fn bad_requests_get_errors_that_name_the_problem() {
        let err = |v: Value| header(v).request::<ExecRequest>().unwrap_err().to_string();
        assert_eq!(err(json!({"argv": ["ls"]})), "missing \"op\"");
        assert_eq!(err(json!({"op": 5})), "missing \"op\"");
        assert_eq!(
            err(json!({"op": "rm"})),
            "unknown op `rm` (use run or shell)"
        );
        assert_eq!(err(json!({"op": "run"})), "missing field `argv`");
        let bad_argv = "\"argv\" must be a list of strings";
        assert_eq!(err(json!({"op": "run", "argv": "ls"})), bad_argv);
        assert_eq!(err(json!({"op": "run", "argv": [1]})), bad_argv);
        let bad_line = "\"line\" must be a string";
        assert_eq!(err(json!({"op": "shell", "line": ["ls"]})), bad_line);
        let bad_ms = json!({"op": "run", "argv": ["ls"], "timeout_ms": -1});
        assert!(err(bad_ms).contains("\"timeout_ms\""));
        // Unknown fields are ignored, as JSON peers expect.
        let extra = header(json!({"op": "run", "argv": [], "x": 1}));
        assert!(extra.request::<ExecRequest>().is_ok());
    }

    #[test]
    fn every_listed_op_is_a_variant() {
        for op in ExecRequest::OPS {
            let err = serde_json::from_value::<ExecRequest>(json!({ "op": op })).unwrap_err();
            assert!(!err.to_string().contains("unknown variant"), "{op}: {err}");
        }
    }
}
