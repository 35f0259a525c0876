//! The `{"ok":...}` reply shared by the HMAC handshake's verdict and every
//! reply of `files`: `{"ok":true, ...the payload's fields}` or
//! `{"ok":false,"error":"<why>"}`.
//!
//! Typed once here, so the service that writes a reply and the client that
//! reads it cannot disagree on a field's name.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A request's outcome: done, with a payload `T`, or refused with a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<T> {
    Ok(T),
    Refused(String),
}

/// The payload of a reply that carries nothing but `"ok":true`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// The handshake's verdict: `{"ok":true}` or `{"ok":false,"error":"..."}`.
pub type Verdict = Reply<Empty>;

impl<T> Reply<T> {
    /// A refusal, with `why` as its reason.
    pub fn refused(why: impl std::fmt::Display) -> Self {
        Reply::Refused(why.to_string())
    }
}

#[derive(Serialize)]
struct Done<'a, T> {
    ok: bool,
    #[serde(flatten)]
    payload: &'a T,
}

#[derive(Serialize)]
struct NotDone<'a> {
    ok: bool,
    error: &'a str,
}

impl<T: Serialize> Serialize for Reply<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Reply::Ok(payload) => Done { ok: true, payload }.serialize(s),
            Reply::Refused(error) => NotDone { ok: false, error }.serialize(s),
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Reply<T> {
    /// Anything but `"ok":true` is a refusal, with `error` as its reason
    /// when the peer gave one.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fields = Map::<String, Value>::deserialize(d)?;
        if fields.get("ok") == Some(&Value::Bool(true)) {
            return T::deserialize(&fields)
                .map(Reply::Ok)
                .map_err(D::Error::custom);
        }
        let why = fields.get("error").and_then(Value::as_str);
        Ok(Reply::Refused(why.unwrap_or("no reason given").to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_verdicts_are_exact() {
        let ok = serde_json::to_string(&Verdict::Ok(Empty {})).unwrap();
        assert_eq!(ok, r#"{"ok":true}"#);
        let no = serde_json::to_string(&Verdict::refused("wrong key")).unwrap();
        assert_eq!(no, r#"{"ok":false,"error":"wrong key"}"#);
    }

    #[test]
    fn a_payload_sits_beside_ok_and_round_trips() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct P {
            name: String,
        }
        let reply = Reply::Ok(P { name: "a".into() });
        let value = serde_json::to_value(&reply).unwrap();
        assert_eq!(value, json!({"ok": true, "name": "a"}));
        assert_eq!(serde_json::from_value::<Reply<P>>(value).unwrap(), reply);
    }

    #[test]
    fn anything_but_ok_true_is_a_refusal() {
        let read = |v: Value| serde_json::from_value::<Verdict>(v).unwrap();
        assert_eq!(
            read(json!({"ok": false, "error": "no"})),
            Reply::refused("no")
        );
        assert_eq!(
            read(json!({"ok": "yes"})),
            Reply::refused("no reason given")
        );
        assert_eq!(read(json!({})), Reply::refused("no reason given"));
        // A payload missing a field is an error, not a refusal.
        #[derive(Debug, Deserialize)]
        struct P {
            #[allow(dead_code)] // read only to be required
            name: String,
        }
        assert!(serde_json::from_value::<Reply<P>>(json!({"ok": true})).is_err());
    }
}
