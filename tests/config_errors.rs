//! Config refusals name the key at fault and where it was set: property
//! tests over `Config::resolve` with a file, environment variables and
//! `--set` flags. A refusal's key and origin are checked against the input
//! (the key is one the input sets, in the layer the origin names), and a
//! value planted at a known key in a known layer must be refused naming
//! exactly that key and layer. A non-empty message alone proves nothing.
//!
//! Not here: which values each key accepts (src/config's own tests).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proptest::prelude::*;
use switchboard::config::{Config, ConfigError, FileSource, Origin, env_name};

const FILE: &str = "/etc/switchboard-props.toml";

fn resolve(
    text: Option<&str>,
    env: &BTreeMap<String, String>,
    flags: &[String],
) -> Result<Config, ConfigError> {
    let file = text.map(|text| FileSource {
        path: Path::new(FILE),
        text,
    });
    Config::resolve(file, env, flags)
}

/// The dotted keys a TOML table sets, as the config reads them: every
/// table's path, and every leaf's.
fn file_keys(prefix: &str, table: &toml::Table, out: &mut BTreeSet<String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if let toml::Value::Table(t) = v {
            file_keys(&key, t, out);
        }
        out.insert(key);
    }
}

/// Why `err` does not name a key and an origin the input really has, if it
/// does not; the message must also show both as a person reads them.
fn misnamed(
    err: &ConfigError,
    text: Option<&str>,
    env: &BTreeMap<String, String>,
    flags: &[String],
) -> Option<String> {
    let message = err.to_string();
    let flag_keys: BTreeSet<&str> = flags
        .iter()
        .filter_map(|f| f.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    let parsed = text.map(|t| t.parse::<toml::Table>());
    let (key, origin) = match err {
        ConfigError::FileSyntax { path, .. } => {
            return match parsed {
                Some(Err(_)) if path == Path::new(FILE) && message.contains(FILE) => None,
                _ => Some(format!("a syntax error for a file that parses: {message}")),
            };
        }
        ConfigError::BadFlag(flag) => {
            let given =
                flags.contains(flag) && !flag.contains('=') && message.contains(flag.as_str());
            return (!given).then(|| format!("a bad flag that is not given: {message}"));
        }
        ConfigError::UnknownKey { key, origin } | ConfigError::BadValue { key, origin, .. } => {
            (key, origin)
        }
    };
    if !message.contains(&format!("`{key}`")) || !message.contains(&origin.to_string()) {
        return Some(format!(
            "the message does not show `{key}` and {origin}: {message}"
        ));
    }
    let mut in_file = BTreeSet::new();
    if let Some(Ok(table)) = &parsed {
        file_keys("", table, &mut in_file);
    }
    let in_env = env.contains_key(&env_name(key));
    let true_origin = match origin {
        Origin::File(path) => path == Path::new(FILE) && in_file.contains(key),
        Origin::Env(name) => env.contains_key(name) && *name == env_name(key),
        Origin::Flag => flag_keys.contains(key.as_str()),
        // A check across keys may name one nobody set: then it must be so.
        Origin::Default => !in_file.contains(key) && !in_env && !flag_keys.contains(key.as_str()),
    };
    (!true_origin).then(|| format!("`{key}` is not {origin}: {message}"))
}

/// Text that is often TOML, sometimes almost: real keys and tables,
/// values of every type (and wrong ones), stray brackets and quotes.
fn tomlish() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        prop::sample::select(Config::keys()),
        Just("services.echo".to_owned()),
        "[a-z_.-]{1,10}",
    ];
    let value = prop_oneof![
        Just("\"127.0.0.1:0\"".to_owned()),
        Just("\"unix:/tmp/x.sock\"".to_owned()),
        Just("\"unix:\"".to_owned()),
        Just("\"\"".to_owned()),
        any::<i64>().prop_map(|i| i.to_string()),
        Just("99999999999999999999".to_owned()),
        Just("1.5".to_owned()),
        Just("true".to_owned()),
        Just("[\"ls\", 1]".to_owned()),
        Just("{ a = 1 }".to_owned()),
        "\"[^\"\\\\]{0,8}\"",
    ];
    let line = prop_oneof![
        (key.clone(), value).prop_map(|(k, v)| format!("{k} = {v}")),
        key.clone().prop_map(|k| format!("[{k}]")),
        key.prop_map(|k| format!("[[{k}]]")),
        "[\\[\\]{}=\"#. a-z0-9\n]{0,12}",
    ];
    prop::collection::vec(line, 0..8).prop_map(|lines| lines.join("\n"))
}

/// A value for the environment or a flag: often fine, often not.
fn setting_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("127.0.0.1:0".to_owned()),
        Just("unix:/tmp/x.sock".to_owned()),
        Just("true".to_owned()),
        Just(String::new()),
        any::<i64>().prop_map(|i| i.to_string()),
        ".{0,12}",
    ]
}

/// A key a layer may set: a real one, a near miss, or noise.
fn any_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(Config::keys()),
        1 => "services\\.[a-z-]{1,8}\\.[a-z_]{1,10}",
        1 => "[a-z_.-]{0,16}",
    ]
}

/// Keys whose value has a shape ("banana" is no number, no address).
fn typed_keys() -> Vec<String> {
    Config::keys()
        .into_iter()
        .filter(|k| k.ends_with("_ms") || k.ends_with(".listen") || k.ends_with("max_connections"))
        .collect()
}

/// `key = value` written the way a person writes it in the file.
fn in_file(key: &str, value: &str) -> String {
    match key.rsplit_once('.') {
        Some((table, leaf)) => format!("[{table}]\n{leaf} = {value}\n"),
        None => format!("{key} = {value}\n"),
    }
}

#[derive(Clone, Copy, Debug)]
enum Layer {
    File,
    Env,
    Flag,
}

/// The input with `key` set to `value` (text, unquoted) in `layer` only.
fn planted(
    layer: Layer,
    key: &str,
    value: &str,
) -> (Option<String>, BTreeMap<String, String>, Vec<String>) {
    match layer {
        Layer::File => (
            Some(in_file(key, &format!("{value:?}"))),
            BTreeMap::new(),
            Vec::new(),
        ),
        Layer::Env => (
            None,
            BTreeMap::from([(env_name(key), value.to_owned())]),
            Vec::new(),
        ),
        Layer::Flag => (None, BTreeMap::new(), vec![format!("{key}={value}")]),
    }
}

fn origin_of(layer: Layer, key: &str) -> Origin {
    match layer {
        Layer::File => Origin::File(FILE.into()),
        Layer::Env => Origin::Env(env_name(key)),
        Layer::Flag => Origin::Flag,
    }
}

fn any_layer() -> impl Strategy<Value = Layer> {
    prop_oneof![Just(Layer::File), Just(Layer::Env), Just(Layer::Flag)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_refused_file_names_a_key_it_sets_in_it(text in tomlish()) {
        if let Err(e) = resolve(Some(&text), &BTreeMap::new(), &[]) {
            let wrong = misnamed(&e, Some(&text), &BTreeMap::new(), &[]);
            prop_assert!(wrong.is_none(), "{}\nfrom the file:\n{text}", wrong.unwrap_or_default());
        }
    }

    #[test]
    fn a_refusal_from_any_layer_names_a_key_and_the_layer_that_set_it(
        text in prop::option::of(tomlish()),
        env in prop::collection::vec((any_key(), setting_text()), 0..4),
        flags in prop::collection::vec(
            prop_oneof![
                4 => (any_key(), setting_text()).prop_map(|(k, v)| format!("{k}={v}")),
                1 => "[a-z_.-]{0,24}",
            ],
            0..4,
        ),
    ) {
        let env: BTreeMap<String, String> =
            env.into_iter().map(|(k, v)| (env_name(&k), v)).collect();
        if let Err(e) = resolve(text.as_deref(), &env, &flags) {
            let wrong = misnamed(&e, text.as_deref(), &env, &flags);
            prop_assert!(
                wrong.is_none(),
                "{}\nfile {text:?}, env {env:?}, flags {flags:?}",
                wrong.unwrap_or_default()
            );
        }
    }

    #[test]
    fn any_text_environment_and_flags_resolve_or_are_refused_naming_what_set_them(
        text in prop::option::of(".{0,200}"),
        env in prop::collection::vec(("SWITCHBOARD_[A-Z_]{0,24}", ".{0,12}"), 0..4),
        flags in prop::collection::vec("[a-z_.-]{0,24}=?.{0,12}", 0..4),
    ) {
        let env: BTreeMap<String, String> = env.into_iter().collect();
        if let Err(e) = resolve(text.as_deref(), &env, &flags) {
            let wrong = misnamed(&e, text.as_deref(), &env, &flags);
            prop_assert!(
                wrong.is_none(),
                "{}\nfile {text:?}, env {env:?}, flags {flags:?}",
                wrong.unwrap_or_default()
            );
        }
    }

    #[test]
    fn a_value_of_the_wrong_shape_is_refused_naming_its_key_and_layer(
        key in prop::sample::select(typed_keys()),
        layer in any_layer(),
        value in prop::sample::select(vec!["banana", "12 parsecs", "-", "unix"]),
    ) {
        let (text, env, flags) = planted(layer, &key, value);
        match resolve(text.as_deref(), &env, &flags) {
            Err(ConfigError::BadValue { key: named, origin, message }) => {
                prop_assert_eq!(&named, &key, "{}", message);
                prop_assert_eq!(origin, origin_of(layer, &key), "{}", message);
            }
            other => prop_assert!(false, "{key} = {value:?} {layer:?}: {other:?}"),
        }
    }

    #[test]
    fn an_unknown_key_is_refused_naming_it_and_its_layer_or_warned_from_the_environment(
        table in prop::sample::select(vec!["", "web.", "services.echo.", "services.udp-echo."]),
        leaf in "zz_[a-z]{1,8}",
        layer in any_layer(),
    ) {
        let key = format!("{table}{leaf}");
        let (text, env, flags) = planted(layer, &key, "1");
        match (layer, resolve(text.as_deref(), &env, &flags)) {
            // An environment is often shared with other tools: a warning.
            (Layer::Env, Ok(config)) => {
                let name = env_name(&key);
                prop_assert!(
                    config.warnings.iter().any(|w| w.contains(&name)),
                    "{name} not warned about: {:?}", config.warnings
                );
            }
            (Layer::File | Layer::Flag, Err(ConfigError::UnknownKey { key: named, origin })) => {
                prop_assert_eq!(&named, &key);
                prop_assert_eq!(origin, origin_of(layer, &key));
            }
            (_, other) => prop_assert!(false, "{key} {layer:?}: {other:?}"),
        }
    }
}
