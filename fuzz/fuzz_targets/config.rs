//! `Config::resolve`: an operator's TOML file, `SWITCHBOARD_*` variables and
//! `--set` flags, merged and checked. It must never panic, and its verdict
//! must not depend on how the file is written: the file's table printed
//! back by `toml` (another spelling of the same settings) must resolve to
//! the same config or the same refusal. What resolves must hold the rules
//! the services rely on (a UDP service never on a unix: path).
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use switchboard::config::{Config, FileSource, ListenAddr};
use switchboard::kind::{Proto, ServiceKind};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    env: Vec<(String, String)>,
    flags: Vec<String>,
    text: &'a str,
}

/// The verdict, comparable: a config's Debug text or the refusal.
fn resolve(text: &str, env: &BTreeMap<String, String>, flags: &[String]) -> Result<String, String> {
    let file = FileSource {
        path: Path::new("/etc/switchboard.toml"),
        text,
    };
    match Config::resolve(Some(file), env, flags) {
        Ok(config) => {
            for kind in ServiceKind::ALL {
                let listen = &config.service(kind).listen;
                if kind.proto() == Proto::Udp {
                    assert!(matches!(listen, ListenAddr::Inet(_)), "{kind} on {listen}");
                }
            }
            Ok(format!("{config:?}"))
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.is_empty());
            Err(message)
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
