//! The `files` service's messages, shared by the service and
//! `FilesClient`: requests tagged by `"op"`, each answered by one
//! [`Reply`] (`{"ok":true,...}` or `{"ok":false,"error":"<why>"}`).
//!
//! ```text
//! {"op":"put","name":"a.jpg","size":N} + N bytes -> PutReply  {"ok":true,"name":..,"stored_size":N,"sha256":..}
//! {"op":"get","name":"a.jpg"}                    -> GetReply  {"ok":true,"name":..,"sha256":..,"size":N} + N bytes
//! {"op":"list"}                                  -> ListReply {"ok":true,"files":[{"name","size","sha256","modified"}]}
//! {"op":"put","name":"a.jpg","total":T,"size":0} -> ResumeReply {"ok":true,"partial":"<id>","offset":0,"total":T}
//! {"op":"put","name":..,"total":T,"partial":"<id>","offset":O,"size":N} + N bytes
//!                                                -> PutReply when the file is whole, else ResumeReply
//! ```
//!
//! `size` is never a field of these types: the message layer sets it from
//! the body that follows. A put's reply says `stored_size` for that reason:
//! no body follows it.

use serde::{Deserialize, Deserializer, Serialize};

use super::message::{Request, field_or};
pub use super::reply::Reply;

/// One request. A `Put`'s body (the file) follows its header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum FilesRequest {
    Put {
        #[serde(deserialize_with = "name")]
        name: String,
        /// A resumable put: the whole file's size. Without it, the classic
        /// put (the body is the whole file).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
        /// Resumable: the partial upload this continues (from a
        /// [`ResumeReply`]); none to start one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        partial: Option<String>,
        /// Resumable: where the body starts in the file (what the server
        /// said it holds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
    },
    Get {
        #[serde(deserialize_with = "name")]
        name: String,
    },
    List,
}

impl Request for FilesRequest {
    const OPS: &'static [&'static str] = &["put", "get", "list"];
}

impl FilesRequest {
    /// The request's `"op"`, for messages about it.
    pub fn op(&self) -> &'static str {
        match self {
            FilesRequest::Put { .. } => "put",
            FilesRequest::Get { .. } => "get",
            FilesRequest::List => "list",
        }
    }
}

fn name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    field_or(d, "\"name\" must be a string")
}

/// What a `put` stored (no body follows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutReply {
    /// The name it was stored under (may differ from the one asked for).
    pub name: String,
    pub stored_size: u64,
    pub sha256: String,
}

/// A resumable put not yet complete: the partial upload's id and how many
/// bytes of the file the server holds (the next body starts there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeReply {
    pub partial: String,
    pub offset: u64,
    pub total: u64,
}

/// What a `get` sends before the file's bytes (the body, `size` of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetReply {
    pub name: String,
    pub sha256: String,
}

/// The stored files; cut short (`truncated`, with the `total`) when they
/// would not fit in one header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListReply {
    pub files: Vec<FileEntry>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// One file of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    /// RFC 3339, UTC.
    #[serde(default)]
    pub modified: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::message::fixtures::{doc, header, json_of};
    use serde_json::{Value, json};

    #[test]
    fn requests_are_exactly_the_documented_json_and_round_trip() {
        let put = FilesRequest::Put {
            name: "a.jpg".into(),
            total: None,
            partial: None,
            offset: None,
        };
        let get = FilesRequest::Get {
            name: "a.jpg".into(),
        };
        let cases = [
            (&put, Some(5), r#"{"op":"put","name":"a.jpg","size":5}"#),
            (&get, None, r#"{"op":"get","name":"a.jpg"}"#),
            (&FilesRequest::List, None, r#"{"op":"list"}"#),
        ];
        for (request, body, text) in cases {
            assert_eq!(json_of(request, body), doc(text));
            let h = header(serde_json::from_str(text).unwrap());
            assert_eq!(h.request::<FilesRequest>().as_ref(), Ok(request));
            assert!(text.contains(&format!("\"op\":\"{}\"", request.op())));
        }
    }

    /// Encodes `reply` (with a body of `body_len`), checks the JSON, and
    /// checks it reads back as `reply`.
    fn check<T>(reply: Reply<T>, body_len: Option<u64>, text: &str)
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        assert_eq!(json_of(&reply, body_len), doc(text));
        let h = header(serde_json::from_str(text).unwrap());
        assert_eq!(h.message::<Reply<T>>().unwrap(), reply, "{text}");
    }

    #[test]
    fn replies_are_exactly_the_documented_json_and_round_trip() {
        let put = PutReply {
            name: "a.jpg".into(),
            stored_size: 5,
            sha256: "ab".into(),
        };
        let text = r#"{"ok":true,"name":"a.jpg","stored_size":5,"sha256":"ab"}"#;
        check(Reply::Ok(put), None, text);
        let get = GetReply {
            name: "a.jpg".into(),
            sha256: "ab".into(),
        };
        let text = r#"{"ok":true,"name":"a.jpg","sha256":"ab","size":5}"#;
        check(Reply::Ok(get), Some(5), text);
        let entry = FileEntry {
            name: "a".into(),
            size: 1,
            sha256: "ab".into(),
            modified: "2026-01-01T00:00:00Z".into(),
        };
        let list = ListReply {
            files: vec![entry],
            truncated: false,
            total: None,
        };
        let text = r#"{"ok":true,"files":[{"name":"a","size":1,"sha256":"ab","modified":"2026-01-01T00:00:00Z"}]}"#;
        check(Reply::Ok(list.clone()), None, text);
        let cut = ListReply {
            truncated: true,
            total: Some(9),
            ..list
        };
        let text = r#"{"ok":true,"files":[{"name":"a","size":1,"sha256":"ab","modified":"2026-01-01T00:00:00Z"}],"truncated":true,"total":9}"#;
        check(Reply::Ok(cut), None, text);
        let text = r#"{"ok":false,"error":"no file `a`"}"#;
        check(Reply::<ListReply>::refused("no file `a`"), None, text);
    }

    #[test]
    fn bad_requests_get_errors_that_name_the_problem() {
        let err = |v: Value| header(v).request::<FilesRequest>().unwrap_err().to_string();
        assert_eq!(err(json!({"name": "a"})), "missing \"op\"");
        let unknown = "unknown op `delete` (use put, get or list)";
        assert_eq!(err(json!({"op": "delete"})), unknown);
        assert_eq!(
            err(json!({"op": "get", "name": 7})),
            "\"name\" must be a string"
        );
        assert_eq!(err(json!({"op": "put"})), "missing field `name`");
        for op in FilesRequest::OPS {
            let err = serde_json::from_value::<FilesRequest>(json!({ "op": op, "name": "a" }));
            assert_eq!(err.map(|r| r.op()).ok(), Some(*op));
        }
    }
}
