//! `<data_dir>/services.toml`: the instances added or changed from the
//! dashboard (or `switchboard service`), kept across restarts.
//!
//! It holds `[services.<name>]` tables in the config file's own format. At
//! start it overlays the configuration: an instance it defines is added as
//! it says; for an instance the config file (or the built-in defaults)
//! defines, it may only say `enabled` — the config file stays the source of
//! those. Validation is the config's own: a submitted instance is read by
//! the same code as `[services.<name>]` in a file, so the same key is
//! refused with the same message, which names the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Config, ServiceConfig, Source};
use crate::kind::ServiceKind;
use crate::settings::{ConfigError, FileSource, Layers, Shape};

/// The file's name in the data directory.
pub const FILE: &str = "services.toml";

/// Where `data_dir`'s overlay lives.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// Why a submitted instance was refused: a message, and the field (a key
/// of the instance, `name` or `kind`) it is about, for the form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    pub field: Option<String>,
    pub message: String,
}

impl FieldError {
    fn from_config(name: &str, e: ConfigError) -> FieldError {
        let prefix = format!("services.{name}.");
        let field = match &e {
            ConfigError::UnknownKey { key, .. } | ConfigError::BadValue { key, .. } => {
                key.strip_prefix(&prefix).map(str::to_owned)
            }
            _ => None,
        };
        let message = match &e {
            ConfigError::UnknownKey { key, .. } => {
                let field = key.strip_prefix(&prefix).unwrap_or(key);
                format!("`{field}` is not a setting of this kind")
            }
            ConfigError::BadValue { message, .. } => message.clone(),
            other => other.to_string(),
        };
        FieldError { field, message }
    }
}

/// Checks an instance as submitted (each setting as text, as `--set`
/// takes it) and returns it with its settings as typed TOML, ready to keep.
///
/// # Errors
/// A [`FieldError`] naming the field at fault.
pub fn validate(
    kinds: super::ReadKind,
    name: &str,
    kind: &str,
    settings: &BTreeMap<String, String>,
    typed: &toml::Table,
    stdio_allow: &[String],
) -> Result<(ServiceConfig, toml::Table), FieldError> {
    crate::kind::check_name(name).map_err(|message| FieldError {
        field: Some("name".into()),
        message,
    })?;
    let kind: ServiceKind = kind
        .parse()
        .map_err(|e: crate::kind::UnknownKind| FieldError {
            field: Some("kind".into()),
            message: e.to_string(),
        })?;
    let mut flags = vec![format!("services.{name}.kind={kind}")];
    for (key, value) in settings {
        if key == "kind" || key.contains('.') {
            return Err(FieldError {
                field: Some(key.clone()),
                message: format!("`{key}` is not a setting"),
            });
        }
        flags.push(format!("services.{name}.{key}={value}"));
    }
    // Lists and tables sent typed (JSON) are read as a file's would be:
    // their elements exactly as sent, never joined and split again.
    let file_text = typed_file(name, typed)?;
    let file = file_text.as_deref().map(|text| FileSource {
        path: Path::new("the submitted settings"),
        text,
    });
    let layers = Layers::new(file, &BTreeMap::new(), &flags)
        .map_err(|e| FieldError::from_config(name, e))?;
    let mut config = ServiceConfig::read(kinds, name, &layers.section(&format!("services.{name}")))
        .map_err(|e| FieldError::from_config(name, e))?;
    super::dashboard::check(&config, stdio_allow).map_err(|r| FieldError {
        field: Some(r.field.to_owned()),
        message: r.message,
    })?;
    let typed = layers.typed_values();
    layers
        .finish(&[])
        .map_err(|e| FieldError::from_config(name, e))?;
    config.source = Source::Dashboard;
    let prefix = format!("services.{name}.");
    let table = typed
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|f| (f.to_owned(), v)))
        .collect();
    Ok((config, table))
}

/// `typed` as a file holding `[services.<name>]`, or `None` when empty.
fn typed_file(name: &str, typed: &toml::Table) -> Result<Option<String>, FieldError> {
    if typed.is_empty() {
        return Ok(None);
    }
    if let Some(key) = typed.keys().find(|k| *k == "kind" || k.contains('.')) {
        return Err(FieldError {
            field: Some(key.clone()),
            message: format!("`{key}` is not a setting"),
        });
    }
    let mut services = toml::Table::new();
    services.insert(name.to_owned(), toml::Value::Table(typed.clone()));
    let mut whole = toml::Table::new();
    whole.insert("services".into(), toml::Value::Table(services));
    Ok(Some(whole.to_string()))
}

/// The keys an instance of `kind` takes besides `kind`: `listen` and
/// `enabled` first, then the rest by name. What the dashboard's form offers.
pub fn keys_of(kinds: super::ReadKind, kind: ServiceKind) -> Vec<String> {
    shapes_of(kinds, kind).into_iter().map(|(k, _)| k).collect()
}

/// The required keys some kinds have besides `listen`, with a value that
/// reads, so that [`shapes_of`] reads every kind to its end.
pub const SAMPLE_REQUIRED: &[(&str, &str)] = &[("upstream", "127.0.0.1:1"), ("argv", "/bin/cat")];

/// As [`keys_of`], with each key's type, default and bounds as its reader
/// declared them. The instance read is given every required key (a kind
/// that does not take one leaves it unread, which is no error here), so
/// the keys a reader declares after its required ones are listed too. A
/// kind whose sample does not read yields the keys declared before the
/// failure (`service::describe`'s tests catch that).
pub fn shapes_of(kinds: super::ReadKind, kind: ServiceKind) -> Vec<(String, Shape)> {
    let name = "x";
    let mut flags = vec![
        format!("services.{name}.kind={kind}"),
        format!("services.{name}.listen=127.0.0.1:0"),
    ];
    flags.extend(
        SAMPLE_REQUIRED
            .iter()
            .map(|(k, v)| format!("services.{name}.{k}={v}")),
    );
    let Ok(layers) = Layers::new(None, &BTreeMap::new(), &flags) else {
        return Vec::new();
    };
    let _ = ServiceConfig::read(kinds, name, &layers.section(&format!("services.{name}")));
    let prefix = format!("services.{name}.");
    let mut keys: Vec<(String, Shape)> = layers
        .shapes()
        .into_iter()
        .filter_map(|(k, s)| k.strip_prefix(&prefix).map(|k| (k.to_owned(), s)))
        .filter(|(k, _)| k != "kind")
        .collect();
    keys.sort_by_key(|(k, _)| (k != "listen", k != "enabled", k.clone()));
    keys
}

/// The overlay file's instances.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overlay {
    /// By instance name: its keys as TOML values.
    pub services: BTreeMap<String, toml::Table>,
    /// `[[toxics.<proxy>]]`: each proxy's toxics, kept as written
    /// (read and checked by `crate::toxic::keep`, not here).
    pub toxics: toml::Table,
}

impl Overlay {
    /// Reads `<data_dir>/services.toml`; an absent file is an empty overlay.
    ///
    /// # Errors
    /// It cannot be read, or is not a TOML file of `[services.<name>]` tables.
    pub fn read(data_dir: &Path) -> Result<Overlay, ConfigError> {
        let path = path(data_dir);
        // Not followed: a link could point the dashboard's writes (and the
        // instances it starts) at a file someone else controls.
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(ConfigError::FileSyntax {
                path,
                message: "is a symbolic link; switchboard keeps this file itself: replace \
                          the link with a regular file (or remove it)"
                    .into(),
            });
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Overlay::default()),
            Err(e) => {
                return Err(ConfigError::FileSyntax {
                    path,
                    message: e.to_string(),
                });
            }
        };
        let syntax = |message: String| ConfigError::FileSyntax {
            path: path.clone(),
            message,
        };
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| syntax(e.to_string()))?;
        let toxics = match table.remove("toxics") {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(_) => return Err(syntax("`toxics` must be a table".into())),
        };
        let services = match table.remove("services") {
            None => toml::Table::new(),
            Some(toml::Value::Table(t)) => t,
            Some(_) => return Err(syntax("`services` must be a table".into())),
        };
        if let Some(other) = table.keys().next() {
            return Err(syntax(format!(
                "only [services.<name>] and [[toxics.<name>]] tables belong here, not `{other}`"
            )));
        }
        let mut overlay = Overlay {
            toxics,
            ..Overlay::default()
        };
        for (name, value) in services {
            match value {
                toml::Value::Table(t) => {
                    overlay.services.insert(name, t);
                }
                _ => return Err(syntax(format!("`services.{name}` must be a table"))),
            }
        }
        Ok(overlay)
    }

    /// Applies the overlay to a resolved config: adds the instances it
    /// defines, and sets `enabled` and `capture` on those the config
    /// defines.
    ///
    /// # Errors
    /// An invalid instance, or a key other than `enabled` or `capture` for
    /// an instance the config file defines; each names the key and the file.
    pub fn apply(&self, config: &mut Config) -> Result<(), ConfigError> {
        let file = path(&config.data_dir);
        for (name, table) in &self.services {
            if let Some(existing) = config.services.iter_mut().find(|s| s.id.name() == name) {
                for (key, value) in table {
                    match (key.as_str(), value) {
                        ("enabled", toml::Value::Boolean(on)) => existing.enabled = *on,
                        // The wire inspector's live switch, kept.
                        ("capture", toml::Value::Boolean(on)) => existing.capture.on = *on,
                        _ => {
                            return Err(ConfigError::BadValue {
                                key: format!("services.{name}.{key}"),
                                origin: crate::settings::Origin::File(file.clone()),
                                message: format!(
                                    "{name} is defined by the config file (or built in): only \
                                     `enabled` and `capture` can be set here"
                                ),
                            });
                        }
                    }
                }
                continue;
            }
            let mut whole = toml::Table::new();
            let mut services = toml::Table::new();
            services.insert(name.clone(), toml::Value::Table(table.clone()));
            whole.insert("services".into(), toml::Value::Table(services));
            let text = whole.to_string();
            let layers = Layers::new(
                Some(FileSource {
                    path: &file,
                    text: &text,
                }),
                &BTreeMap::new(),
                &[],
            )?;
            let mut instance = ServiceConfig::read(
                config.kinds,
                name,
                &layers.section(&format!("services.{name}")),
            )?;
            layers.finish(&[])?;
            super::dashboard::check(&instance, &config.stdio_allow).map_err(|r| {
                ConfigError::BadValue {
                    key: format!("services.{name}.{}", r.field),
                    origin: crate::settings::Origin::File(file.clone()),
                    message: r.message,
                }
            })?;
            instance.source = Source::Dashboard;
            config.services.push(instance);
        }
        Ok(())
    }

    /// Writes the overlay to `<data_dir>/services.toml`, owner-only and
    /// atomically (a reader sees the old file or the new one).
    ///
    /// # Errors
    /// When it cannot be written.
    pub fn write(&self, data_dir: &Path) -> std::io::Result<()> {
        let mut services = toml::Table::new();
        for (name, table) in &self.services {
            services.insert(name.clone(), toml::Value::Table(table.clone()));
        }
        let mut whole = toml::Table::new();
        whole.insert("services".into(), toml::Value::Table(services));
        if !self.toxics.is_empty() {
            whole.insert("toxics".into(), toml::Value::Table(self.toxics.clone()));
        }
        let text = format!(
            "# Instances added or changed from the switchboard dashboard or `switchboard service`.\n\
             # Written by switchboard; it overlays the config file at start.\n{whole}"
        );
        crate::jsonfile::write_atomic(&path(data_dir), &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // Unit tests may reach up: the kinds' reader, which config is given.
    use crate::service::registry::read as kinds;

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_submitted_instance_is_checked_by_the_config_reader() {
        let (config, table) = validate(
            kinds,
            "echo-9",
            "echo",
            &settings(&[("listen", "127.0.0.1:9100"), ("max_connections", "7")]),
            &toml::Table::new(),
            &[],
        )
        .unwrap();
        assert_eq!(config.id.kind(), ServiceKind::Echo);
        assert_eq!(config.source, Source::Dashboard);
        assert_eq!(table["max_connections"], toml::Value::Integer(7));
        assert_eq!(
            table["listen"],
            toml::Value::String("127.0.0.1:9100".into())
        );
        for (name, kind, pairs, field) in [
            ("Bad", "echo", vec![("listen", "1")], "name"),
            ("ok", "nope", vec![("listen", "1")], "kind"),
            ("ok", "echo", vec![], "listen"),
            (
                "ok",
                "echo",
                vec![("listen", "1"), ("folder", "/x")],
                "folder",
            ),
            (
                "ok",
                "echo",
                vec![("listen", "1"), ("max_connections", "0")],
                "max_connections",
            ),
            ("ok", "time", vec![("listen", "1"), ("tls", "true")], "tls"),
        ] {
            let err = validate(
                kinds,
                name,
                kind,
                &settings(&pairs),
                &toml::Table::new(),
                &[],
            )
            .unwrap_err();
            assert_eq!(
                err.field.as_deref(),
                Some(field),
                "{name} {kind} {pairs:?}: {err}"
            );
        }
    }

    #[test]
    fn a_services_toml_that_is_a_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("elsewhere.toml");
        std::fs::write(&real, "[services.x]\nkind = \"echo\"\n").unwrap();
        std::os::unix::fs::symlink(&real, path(dir.path())).unwrap();
        let err = Overlay::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn the_overlay_round_trips_and_applies() {
        let dir = tempfile::tempdir().unwrap();
        let (_, table) = validate(
            kinds,
            "echo-9",
            "echo",
            &settings(&[("listen", "127.0.0.1:0"), ("idle_timeout_ms", "900")]),
            &toml::Table::new(),
            &[],
        )
        .unwrap();
        let mut overlay = Overlay::default();
        overlay.services.insert("echo-9".into(), table);
        let mut off = toml::Table::new();
        off.insert("enabled".into(), toml::Value::Boolean(false));
        overlay.services.insert("time".into(), off);
        overlay.write(dir.path()).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(path(dir.path())).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let read = Overlay::read(dir.path()).unwrap();
        assert_eq!(read, overlay);
        let mut config = Config::ephemeral(dir.path());
        read.apply(&mut config).unwrap();
        assert!(!config.service("time").unwrap().enabled);
        let added = config.service_mut("echo-9");
        assert_eq!(added.source, Source::Dashboard);
        assert_eq!(
            added.tcp_mut().idle_timeout,
            std::time::Duration::from_millis(900)
        );
        // Only `enabled` for what the config defines.
        let mut bad = Overlay::default();
        let mut listen = toml::Table::new();
        listen.insert("listen".into(), toml::Value::String("1".into()));
        bad.services.insert("echo".into(), listen);
        let err = bad.apply(&mut config).unwrap_err().to_string();
        assert!(err.contains("only `enabled`"), "{err}");
    }

    #[test]
    fn form_keys_follow_the_kind() {
        let echo = keys_of(kinds, ServiceKind::Echo);
        assert_eq!(echo.first().map(String::as_str), Some("listen"));
        assert!(echo.iter().any(|k| k == "idle_timeout_ms"));
        assert!(!echo.iter().any(|k| k == "peer_rate"));
        let exec = keys_of(kinds, ServiceKind::Exec);
        assert!(exec.iter().any(|k| k == "allow"));
        let time = keys_of(kinds, ServiceKind::Time);
        assert!(time.iter().any(|k| k == "max_reply_bytes"));
        assert!(!time.iter().any(|k| k == "tls"));
    }
}
