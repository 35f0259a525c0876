//! What a toxic is, as data: its name, stream, toxicity and typed effect,
//! and the description of every toxic type (attributes with their units,
//! bounds and defaults) that both the readers and the dashboard's form use.
//!
//! Attributes are read *through* [`Attr`] descriptions, so a form generated
//! from [`describe`] cannot offer a key the reader refuses or miss one it
//! takes. Units and meanings are Toxiproxy's (milliseconds, KB/s, bytes,
//! microseconds for the slicer's delay). Nothing here does I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Most toxics one proxy holds: each one is consulted per chunk (TCP) or
/// per datagram (UDP), so the list stays short.
pub const MAX_TOXICS: usize = 32;
/// Longest toxic name.
pub const MAX_NAME: usize = 64;

/// Which way the bytes a toxic touches flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Client → server.
    Upstream,
    /// Server → client.
    Downstream,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }

    /// # Errors
    /// Anything but `upstream` or `downstream`.
    pub fn parse(s: &str) -> Result<Stream, ToxicError> {
        match s {
            "upstream" => Ok(Stream::Upstream),
            "downstream" => Ok(Stream::Downstream),
            _ => Err(ToxicError::InvalidStream),
        }
    }
}

/// Which proxies a toxic type applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Applies {
    Tcp,
    Udp,
    Both,
}

/// One attribute of a toxic type, as the form and the reader see it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Attr {
    pub name: &'static str,
    pub unit: &'static str,
    /// `integer` or `number` (a probability).
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub min: f64,
    pub max: f64,
    pub default: f64,
    pub help: &'static str,
}

const fn int(name: &'static str, unit: &'static str, max: f64, help: &'static str) -> Attr {
    Attr {
        name,
        unit,
        ty: "integer",
        min: 0.0,
        max,
        default: 0.0,
        help,
    }
}

const fn prob(name: &'static str, help: &'static str) -> Attr {
    Attr {
        name,
        unit: "probability",
        ty: "number",
        min: 0.0,
        max: 1.0,
        default: 0.0,
        help,
    }
}

/// An hour, the longest delay any toxic takes.
const HOUR_MS: f64 = 3_600_000.0;

/// One toxic type: its name, where it applies, what it does, its attributes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TypeInfo {
    #[serde(rename = "type")]
    pub name: &'static str,
    pub applies: Applies,
    pub help: &'static str,
    pub attributes: &'static [Attr],
}

/// Every toxic type, in the order the form lists them.
pub const TYPES: &[TypeInfo] = &[
    TypeInfo {
        name: "latency",
        applies: Applies::Both,
        help: "delays each chunk (TCP) or datagram (UDP) by latency ± jitter",
        attributes: &[
            int("latency", "ms", HOUR_MS, "delay added"),
            int("jitter", "ms", HOUR_MS, "random ± variation of the delay"),
        ],
    },
    TypeInfo {
        name: "bandwidth",
        applies: Applies::Both,
        help: "limits the rate; 0 means no limit",
        attributes: &[int(
            "rate",
            "KB/s",
            10_000_000.0,
            "kilobytes (1000 bytes) per second",
        )],
    },
    TypeInfo {
        name: "slow_close",
        applies: Applies::Tcp,
        help: "delays the close of the stream by delay after its last byte",
        attributes: &[int("delay", "ms", HOUR_MS, "delay before the close")],
    },
    TypeInfo {
        name: "timeout",
        applies: Applies::Tcp,
        help: "stops all data and closes the connection after timeout; 0 holds it forever",
        attributes: &[int(
            "timeout",
            "ms",
            HOUR_MS,
            "0 = never close, drop data until removed",
        )],
    },
    TypeInfo {
        name: "reset_peer",
        applies: Applies::Tcp,
        help: "resets the connection (TCP RST) after timeout",
        attributes: &[int("timeout", "ms", HOUR_MS, "0 = at once")],
    },
    TypeInfo {
        name: "slicer",
        applies: Applies::Tcp,
        help: "cuts data into segments of about average_size bytes, delay apart",
        attributes: &[
            int(
                "average_size",
                "bytes",
                65_536.0,
                "mean segment size (0 = 1)",
            ),
            int(
                "size_variation",
                "bytes",
                65_536.0,
                "± random variation of the size (at most average_size - 1)",
            ),
            int("delay", "µs", 60_000_000.0, "pause between segments"),
        ],
    },
    TypeInfo {
        name: "limit_data",
        applies: Applies::Tcp,
        help: "closes the connection once bytes have passed in this stream",
        attributes: &[int("bytes", "bytes", 1e15, "bytes let through, then close")],
    },
    TypeInfo {
        name: "loss",
        applies: Applies::Udp,
        help: "drops each datagram with this probability",
        attributes: &[prob("probability", "chance a datagram is dropped")],
    },
    TypeInfo {
        name: "duplicate",
        applies: Applies::Udp,
        help: "sends a datagram twice with this probability",
        attributes: &[prob("probability", "chance a datagram is sent twice")],
    },
    TypeInfo {
        name: "reorder",
        applies: Applies::Udp,
        help: "holds each datagram back a random 0..window ms, so close ones swap places",
        attributes: &[int("window", "ms", 60_000.0, "longest hold")],
    },
];

/// The description of type `name`.
pub fn type_info(name: &str) -> Option<&'static TypeInfo> {
    TYPES.iter().find(|t| t.name == name)
}

/// What a toxic does, typed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Effect {
    Latency {
        latency: Duration,
        jitter: Duration,
    },
    /// Bytes per second; `None` = no limit.
    Bandwidth {
        rate: Option<u64>,
    },
    SlowClose {
        delay: Duration,
    },
    /// `None` = hold forever.
    Timeout {
        timeout: Option<Duration>,
    },
    ResetPeer {
        timeout: Duration,
    },
    Slicer {
        average: usize,
        variation: usize,
        delay: Duration,
    },
    LimitData {
        bytes: u64,
    },
    Loss {
        probability: f64,
    },
    Duplicate {
        probability: f64,
    },
    Reorder {
        window: Duration,
    },
}

/// A toxic as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct Toxic {
    pub name: String,
    pub type_name: &'static str,
    pub stream: Stream,
    pub toxicity: f64,
    /// The on/off switch (ours; Toxiproxy removes a toxic instead).
    pub enabled: bool,
    /// As given, in the type's units: what the APIs show back.
    pub attributes: BTreeMap<String, serde_json::Number>,
    pub effect: Effect,
}

/// A toxic as both APIs show it and `services.toml` keeps it (Toxiproxy's
/// shape, plus `enabled`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToxicJson {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub stream: Stream,
    pub toxicity: f64,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Number>,
}

fn yes() -> bool {
    true
}

/// Why a toxic was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToxicError {
    #[error("invalid toxic type")]
    InvalidType,
    #[error("toxic type `{0}` does not apply to this kind of proxy")]
    WrongProto(String),
    #[error("stream was invalid, can be either upstream or downstream")]
    InvalidStream,
    #[error("toxic name must be 1 to {MAX_NAME} letters, digits, `_`, `-` or `.`")]
    BadName,
    #[error("toxicity must be between 0 and 1")]
    BadToxicity,
    #[error("attribute `{0}` is not one of this toxic type's")]
    UnknownAttribute(String),
    #[error("attribute `{name}` must be {ty} from {min} to {max}")]
    BadAttribute {
        name: String,
        ty: &'static str,
        min: f64,
        max: f64,
    },
    #[error("toxic already exists")]
    Exists,
    #[error("toxic not found")]
    NotFound,
    #[error("at most {MAX_TOXICS} toxics per proxy")]
    TooMany,
    #[error("toxics apply to tcp-proxy and udp-proxy instances only")]
    NotAProxy,
}

/// Whether `name` may name a toxic (it appears in paths, metrics labels and
/// `services.toml` keys).
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl Toxic {
    /// Checks `json` for a proxy of protocol `udp` (or TCP) and types it.
    ///
    /// # Errors
    /// The first thing wrong with it.
    pub fn from_json(json: &ToxicJson, udp: bool) -> Result<Toxic, ToxicError> {
        if !valid_name(&json.name) {
            return Err(ToxicError::BadName);
        }
        let info = type_info(&json.type_name).ok_or(ToxicError::InvalidType)?;
        match (info.applies, udp) {
            (Applies::Tcp, true) | (Applies::Udp, false) => {
                return Err(ToxicError::WrongProto(json.type_name.clone()));
            }
            _ => {}
        }
        if !(0.0..=1.0).contains(&json.toxicity) {
            return Err(ToxicError::BadToxicity);
        }
        if let Some(k) = json
            .attributes
            .keys()
            .find(|k| !info.attributes.iter().any(|a| a.name == k.as_str()))
        {
            return Err(ToxicError::UnknownAttribute(k.clone()));
        }
        let mut values = BTreeMap::new();
        for a in info.attributes {
            let v = match json.attributes.get(a.name) {
                None => a.default,
                Some(n) => {
                    let v = n.as_f64().unwrap_or(f64::NAN);
                    let whole = a.ty != "integer" || n.as_u64().is_some();
                    if !whole || !(a.min..=a.max).contains(&v) {
                        return Err(ToxicError::BadAttribute {
                            name: a.name.into(),
                            ty: if a.ty == "integer" {
                                "a whole number"
                            } else {
                                "a number"
                            },
                            min: a.min,
                            max: a.max,
                        });
                    }
                    v
                }
            };
            values.insert(a.name, v);
        }
        let attributes = info
            .attributes
            .iter()
            .map(|a| {
                let v = values[a.name];
                let n = if a.ty == "integer" {
                    serde_json::Number::from(v as u64)
                } else {
                    serde_json::Number::from_f64(v).unwrap_or_else(|| 0.into())
                };
                (a.name.to_owned(), n)
            })
            .collect();
        Ok(Toxic {
            name: json.name.clone(),
            type_name: info.name,
            stream: json.stream,
            toxicity: json.toxicity,
            enabled: json.enabled,
            attributes,
            effect: effect(info.name, &values),
        })
    }

    pub fn to_json(&self) -> ToxicJson {
        ToxicJson {
            name: self.name.clone(),
            type_name: self.type_name.to_owned(),
            stream: self.stream,
            toxicity: self.toxicity,
            enabled: self.enabled,
            attributes: self.attributes.clone(),
        }
    }
}

/// The typed effect of checked `values` (every attribute of the type).
fn effect(type_name: &str, values: &BTreeMap<&'static str, f64>) -> Effect {
    let v = |k: &str| values.get(k).copied().unwrap_or(0.0);
    let ms = |k: &str| Duration::from_millis(v(k) as u64);
    match type_name {
        "latency" => Effect::Latency {
            latency: ms("latency"),
            jitter: ms("jitter"),
        },
        "bandwidth" => Effect::Bandwidth {
            rate: match v("rate") as u64 {
                0 => None,
                kb => Some(kb * 1000),
            },
        },
        "slow_close" => Effect::SlowClose { delay: ms("delay") },
        "timeout" => Effect::Timeout {
            timeout: match v("timeout") as u64 {
                0 => None,
                t => Some(Duration::from_millis(t)),
            },
        },
        "reset_peer" => Effect::ResetPeer {
            timeout: ms("timeout"),
        },
        "slicer" => Effect::Slicer {
            average: (v("average_size") as usize).max(1),
            variation: v("size_variation") as usize,
            delay: Duration::from_micros(v("delay") as u64),
        },
        "limit_data" => Effect::LimitData {
            bytes: v("bytes") as u64,
        },
        "loss" => Effect::Loss {
            probability: v("probability"),
        },
        "duplicate" => Effect::Duplicate {
            probability: v("probability"),
        },
        // Only the types of TYPES reach here: reorder is the last.
        _ => Effect::Reorder {
            window: ms("window"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(ty: &str, attrs: &[(&str, serde_json::Number)]) -> ToxicJson {
        ToxicJson {
            name: "t".into(),
            type_name: ty.into(),
            stream: Stream::Downstream,
            toxicity: 1.0,
            enabled: true,
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn every_type_reads_its_described_attributes_and_no_other() {
        for info in TYPES {
            let udp = info.applies == Applies::Udp;
            let all: Vec<_> = info
                .attributes
                .iter()
                .map(|a| (a.name, serde_json::Number::from(0)))
                .collect();
            let t = Toxic::from_json(&json(info.name, &all), udp).expect(info.name);
            let keys: Vec<_> = t.attributes.keys().cloned().collect();
            let described: Vec<_> = info.attributes.iter().map(|a| a.name.to_owned()).collect();
            let mut sorted = described.clone();
            sorted.sort();
            assert_eq!(keys, sorted, "{}", info.name);
            let err = Toxic::from_json(&json(info.name, &[("nope", 1.into())]), udp);
            assert_eq!(err, Err(ToxicError::UnknownAttribute("nope".into())));
            for a in info.attributes {
                let over = serde_json::Number::from_f64(a.max * 2.0 + 1.0).expect("finite");
                assert!(
                    Toxic::from_json(&json(info.name, &[(a.name, over)]), udp).is_err(),
                    "{} {}",
                    info.name,
                    a.name
                );
            }
        }
    }

    #[test]
    fn bad_toxics_are_refused_with_toxiproxys_words() {
        assert_eq!(
            Toxic::from_json(&json("nope", &[]), false),
            Err(ToxicError::InvalidType)
        );
        assert_eq!(
            Toxic::from_json(&json("loss", &[]), false),
            Err(ToxicError::WrongProto("loss".into()))
        );
        assert_eq!(
            Toxic::from_json(&json("slicer", &[]), true),
            Err(ToxicError::WrongProto("slicer".into()))
        );
        let mut j = json("latency", &[("latency", (-1).into())]);
        assert!(matches!(
            Toxic::from_json(&j, false),
            Err(ToxicError::BadAttribute { .. })
        ));
        j = json("latency", &[]);
        j.toxicity = 1.5;
        assert_eq!(Toxic::from_json(&j, false), Err(ToxicError::BadToxicity));
        j = json("latency", &[]);
        j.name = "a/b".into();
        assert_eq!(Toxic::from_json(&j, false), Err(ToxicError::BadName));
        j.name = "x".repeat(MAX_NAME + 1);
        assert_eq!(Toxic::from_json(&j, false), Err(ToxicError::BadName));
        assert_eq!(Stream::parse("sideways"), Err(ToxicError::InvalidStream));
    }

    #[test]
    fn effects_carry_toxiproxys_units() {
        let t = Toxic::from_json(
            &json(
                "slicer",
                &[("average_size", 1.into()), ("delay", 10.into())],
            ),
            false,
        )
        .unwrap();
        assert_eq!(
            t.effect,
            Effect::Slicer {
                average: 1,
                variation: 0,
                delay: Duration::from_micros(10)
            }
        );
        let b = Toxic::from_json(&json("bandwidth", &[("rate", 100.into())]), true).unwrap();
        assert_eq!(
            b.effect,
            Effect::Bandwidth {
                rate: Some(100_000)
            }
        );
        let t = Toxic::from_json(&json("timeout", &[]), false).unwrap();
        assert_eq!(t.effect, Effect::Timeout { timeout: None });
    }
}
