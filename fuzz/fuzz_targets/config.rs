//! `Config::resolve`: an operator's TOML file, `SWITCHBOARD_*` variables and
//! `--set` flags, merged and checked. It must never panic, and its verdict
//! must not depend on how the file is written: the file's table printed
//! back by `toml` (another spelling of the same settings) must resolve to
//! the same config or the same refusal. What resolves must hold the rules
//! the services rely on (a UDP service never on a unix: path); what is
//! refused must name a key the input really sets, in the layer (file,
//! environment variable, flag) that set it, as tests/config_errors.rs
//! checks with proptest.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use switchboard::config::{Config, ConfigError, FileSource, ListenAddr, Origin, env_name};
use switchboard::kind::Proto;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    env: Vec<(String, String)>,
    flags: Vec<String>,
    text: &'a str,
}

const FILE: &str = "/etc/switchboard.toml";

/// The dotted keys a TOML table sets: every table's path and every leaf's.
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

/// Panics unless `err` names a key the input sets, in the layer that set
/// it, and its message shows both.
fn assert_names_its_source(err: &ConfigError, text: &str, env: &BTreeMap<String, String>, flags: &[String]) {
    let message = err.to_string();
    let (key, origin) = match err {
        ConfigError::FileSyntax { path, .. } => {
            assert!(path == Path::new(FILE) && text.parse::<toml::Table>().is_err(), "{message}");
            return;
        }
        ConfigError::BadFlag(flag) => {
            assert!(flags.contains(flag) && !flag.contains('='), "{message}");
            return;
        }
        ConfigError::UnknownKey { key, origin } | ConfigError::BadValue { key, origin, .. } => (key, origin),
    };
    assert!(
        message.contains(&format!("`{key}`")) && message.contains(&origin.to_string()),
        "the message hides `{key}` or {origin}: {message}"
    );
    let mut in_file = BTreeSet::new();
    if let Ok(table) = text.parse::<toml::Table>() {
        file_keys("", &table, &mut in_file);
    }
    let in_flags = flags
        .iter()
        .any(|f| f.split_once('=').is_some_and(|(k, _)| k.trim() == key));
    let true_origin = match origin {
        Origin::File(path) => path == Path::new(FILE) && in_file.contains(key),
        Origin::Env(name) => env.contains_key(name) && *name == env_name(key),
        Origin::Flag => in_flags,
        // A check across keys may name one nobody set: then it must be so.
        Origin::Default => !in_file.contains(key) && !env.contains_key(&env_name(key)) && !in_flags,
    };
    assert!(true_origin, "`{key}` is not {origin}: {message}");
}

/// The verdict, comparable: a config's Debug text or the refusal.
fn resolve(text: &str, env: &BTreeMap<String, String>, flags: &[String]) -> Result<String, String> {
    let file = FileSource {
        path: Path::new(FILE),
        text,
    };
    match Config::resolve(Some(file), env, flags) {
        Ok(config) => {
            for service in &config.services {
                let (kind, listen) = (service.id.kind(), &service.listen);
                if kind.proto() == Proto::Udp {
                    assert!(matches!(listen, ListenAddr::Inet(_)), "{kind} on {listen}");
                }
            }
            Ok(format!("{config:?}"))
        }
        Err(e) => {
            assert_names_its_source(&e, text, env, flags);
            Err(e.to_string())
        }
    }
}

fuzz_target!(|input: Input<'_>| {
    let env: BTreeMap<String, String> = input.env.into_iter().collect();
    let verdict = resolve(input.text, &env, &input.flags);
    let Ok(table) = input.text.parse::<toml::Table>() else {
        return;
    };
    let Ok(again) = toml::to_string(&table) else {
        return;
    };
    assert_eq!(
        resolve(&again, &env, &input.flags),
        verdict,
        "the same settings spelt {again:?}"
    );
});
