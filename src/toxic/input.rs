//! A toxic as a client submits it (both APIs) and as `services.toml` keeps
//! it, turned into a checked [`Toxic`].
//!
//! Toxiproxy's defaults apply to what is left out: `stream` downstream,
//! `toxicity` 1, the name `<type>_<stream>`, attributes 0. An update
//! starts from the toxic as it is and changes only what is given, as
//! Toxiproxy's does. Nothing here touches the registry or a file.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::model::{Stream, Toxic, ToxicError, ToxicJson};

/// What a client sends; every field may be left out.
#[derive(Debug, Default, Deserialize)]
pub struct ToxicInput {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub type_name: Option<String>,
    pub stream: Option<String>,
    pub toxicity: Option<f64>,
    pub enabled: Option<bool>,
    pub attributes: Option<BTreeMap<String, serde_json::Value>>,
}

fn numbers(
    attrs: BTreeMap<String, serde_json::Value>,
) -> Result<BTreeMap<String, serde_json::Number>, ToxicError> {
    attrs
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::Number(n) => Ok((k, n)),
            _ => Err(ToxicError::BadAttribute {
                name: k,
                ty: "a number",
                min: 0.0,
                max: f64::MAX,
            }),
        })
        .collect()
}

impl ToxicInput {
    /// A new toxic for a proxy (`udp` or TCP).
    ///
    /// # Errors
    /// What is wrong with it ([`ToxicError`]).
    pub fn create(self, udp: bool) -> Result<Toxic, ToxicError> {
        let type_name = self.type_name.unwrap_or_default();
        let stream = match self.stream.as_deref() {
            None | Some("") => Stream::Downstream,
            Some(s) => Stream::parse(s)?,
        };
        let name = match self.name {
            Some(n) if !n.is_empty() => n,
            _ => format!("{type_name}_{}", stream.as_str()),
        };
        let json = ToxicJson {
            name,
            type_name,
            stream,
            toxicity: self.toxicity.unwrap_or(1.0),
            enabled: self.enabled.unwrap_or(true),
            attributes: numbers(self.attributes.unwrap_or_default())?,
        };
        Toxic::from_json(&json, udp)
    }

    /// `current` changed by what is given; its name stays.
    ///
    /// # Errors
    /// What is wrong with the result.
    pub fn update(self, current: &Toxic, udp: bool) -> Result<Toxic, ToxicError> {
        let mut json = current.to_json();
        if let Some(t) = self.type_name.filter(|t| !t.is_empty()) {
            if t != json.type_name {
                json.attributes.clear();
            }
            json.type_name = t;
        }
        if let Some(s) = self.stream.filter(|s| !s.is_empty()) {
            json.stream = Stream::parse(&s)?;
        }
        if let Some(t) = self.toxicity {
            json.toxicity = t;
        }
        if let Some(e) = self.enabled {
            json.enabled = e;
        }
        if let Some(attrs) = self.attributes {
            json.attributes.extend(numbers(attrs)?);
        }
        Toxic::from_json(&json, udp)
    }
}

/// A proxy's toxics as `services.toml` keeps them.
pub fn to_toml(toxics: &[Toxic]) -> toml::Value {
    toml::Value::Array(
        toxics
            .iter()
            .filter_map(|t| toml::Value::try_from(t.to_json()).ok())
            .collect(),
    )
}

/// Reads a proxy's kept toxics.
///
/// # Errors
/// A kept toxic that no longer reads, with its position.
pub fn from_toml(value: &toml::Value, udp: bool) -> Result<Vec<Toxic>, String> {
    let items = value
        .as_array()
        .ok_or_else(|| "expected an array of toxics".to_owned())?;
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let json: ToxicJson = v
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| format!("toxic {}: {e}", i + 1))?;
            Toxic::from_json(&json, udp).map_err(|e| format!("toxic `{}`: {e}", json.name))
        })
        .collect()
}

/// Puts the toxics kept in `services.toml` (`[[toxics.<proxy>]]`) into
/// `registry`; `udp_of(name)` says whether an instance is a udp-proxy
/// (`None`: no such proxy). What no longer reads is skipped with a warning,
/// not a failed start: a toxic is a test fault, not a service.
pub fn load(registry: &super::Toxics, kept: &toml::Table, udp_of: impl Fn(&str) -> Option<bool>) {
    for (proxy, value) in kept {
        let Some(udp) = udp_of(proxy) else {
            tracing::warn!(
                "services.toml keeps toxics for `{proxy}`, which is not a proxy: skipped"
            );
            continue;
        };
        let loaded = from_toml(value, udp)
            .and_then(|list| registry.replace(proxy, list).map_err(|e| e.to_string()));
        if let Err(e) = loaded {
            tracing::warn!("services.toml: the toxics of `{proxy}` are skipped: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toxiproxys_defaults_fill_what_is_left_out() {
        let t = ToxicInput {
            type_name: Some("latency".into()),
            ..ToxicInput::default()
        }
        .create(false)
        .unwrap();
        assert_eq!(t.name, "latency_downstream");
        assert_eq!(t.stream, Stream::Downstream);
        assert!((t.toxicity - 1.0).abs() < f64::EPSILON);
        assert_eq!(t.attributes["latency"], 0.into());
        let up = ToxicInput {
            attributes: Some([("latency".to_owned(), serde_json::json!(100))].into()),
            ..ToxicInput::default()
        }
        .update(&t, false)
        .unwrap();
        assert_eq!(up.attributes["latency"], 100.into());
        assert_eq!(up.name, t.name);
        let bad = ToxicInput {
            attributes: Some([("latency".to_owned(), serde_json::json!("x"))].into()),
            ..ToxicInput::default()
        };
        assert!(bad.update(&t, false).is_err());
    }

    #[test]
    fn kept_toxics_read_back_the_same() {
        let t = ToxicInput {
            type_name: Some("slicer".into()),
            stream: Some("upstream".into()),
            toxicity: Some(0.5),
            attributes: Some([("average_size".to_owned(), serde_json::json!(1))].into()),
            ..ToxicInput::default()
        }
        .create(false)
        .unwrap();
        let kept = to_toml(std::slice::from_ref(&t));
        let mut table = toml::Table::new();
        table.insert("x".into(), kept.clone());
        let text = table.to_string();
        assert!(text.contains("slicer"), "{text}");
        assert_eq!(from_toml(&kept, false).unwrap(), vec![t]);
        assert!(from_toml(&toml::Value::Integer(1), false).is_err());
    }
}
