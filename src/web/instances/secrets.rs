//! Settings whose values go in and never come back out: `env` (where a
//! stdio program's passwords and tokens go). Every role reads them as
//! `NAME=•••`; an edit that leaves them out, or sends a value back as
//! `•••`, keeps what was saved. The names stay visible (they are not
//! secret, and the form needs them to say what is set).
//!
//! It does not encrypt anything: `services.toml` is owner-only, like the
//! config file the same values could be written in.

use super::Split;

/// What a secret value reads as.
pub(super) const MASK: &str = "•••";

/// Whether `key`'s values are write-only.
pub(super) fn is_secret(key: &str) -> bool {
    key == "env"
}

/// A saved secret table as every role sees it: `NAME=•••, NAME2=•••`.
pub(super) fn masked(value: &toml::Value) -> String {
    match value {
        toml::Value::Table(t) => t
            .keys()
            .map(|k| format!("{k}={MASK}"))
            .collect::<Vec<_>>()
            .join(", "),
        _ => MASK.to_owned(),
    }
}

/// An edit's secret settings, with what it did not change taken from
/// `saved`: left out entirely, or sent back masked (as a table entry or
/// as the masked text the settings page showed).
pub(super) fn keep_unchanged(settings: &mut Split, saved: &toml::Table) {
    let Some(old) = saved.get("env") else {
        return;
    };
    let old_table = old.as_table().cloned().unwrap_or_default();
    if let Some(text) = settings.text.remove("env") {
        // The text form, `NAME=value, NAME2=value2`: a masked entry keeps
        // its saved value; the rest is as sent.
        let mut table = toml::Table::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.split_once('=') {
                Some((name, value)) => {
                    let name = name.trim().to_owned();
                    let kept = (value == MASK)
                        .then(|| old_table.get(&name).cloned())
                        .flatten();
                    let value = kept.unwrap_or_else(|| toml::Value::String(value.to_owned()));
                    table.insert(name, value);
                }
                // Not NAME=value: left for the reader to refuse, as sent.
                None => {
                    settings.text.insert("env".into(), text.clone());
                    return;
                }
            }
        }
        settings
            .typed
            .insert("env".into(), toml::Value::Table(table));
    } else if let Some(toml::Value::Table(sent)) = settings.typed.get_mut("env") {
        for (name, value) in sent.iter_mut() {
            if value.as_str() == Some(MASK)
                && let Some(kept) = old_table.get(name)
            {
                *value = kept.clone();
            }
        }
    } else if !settings.has("env") {
        settings.typed.insert("env".into(), old.clone());
    }
}
