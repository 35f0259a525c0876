//! The description against the readers: every key a reader declares is
//! described, every description names a key some reader has, and every
//! listed choice is what the reader accepts.

use std::collections::{BTreeMap, BTreeSet};

use super::{SECRET, WORDS, keys};
use crate::config::{ServiceConfig, overlay};
use crate::kind::ServiceKind;
use crate::settings::{ConfigError, Layers, Shape};

/// Reads instance `x` of `kind` from `--set` flags (the sample's required
/// keys included), then checks nothing was left unread.
fn read(kind: ServiceKind, extra: &[(&str, &str)]) -> Result<ServiceConfig, ConfigError> {
    let mut flags = vec![
        format!("services.x.kind={kind}"),
        "services.x.listen=127.0.0.1:0".to_owned(),
    ];
    let keys: BTreeSet<String> = keys(kind).into_iter().map(|k| k.key).collect();
    for (k, v) in overlay::SAMPLE_REQUIRED.iter().chain(extra) {
        if keys.contains(*k) {
            flags.push(format!("services.x.{k}={v}"));
        }
    }
    let layers = Layers::new(None, &BTreeMap::new(), &flags)?;
    let config = ServiceConfig::read(
        crate::service::registry::read,
        "x",
        &layers.section("services.x"),
    )?;
    layers.finish(&[])?;
    Ok(config)
}

#[test]
fn every_key_a_reader_declares_is_described() {
    let mut used = BTreeSet::new();
    for &kind in ServiceKind::ALL {
        let described = keys(kind);
        assert!(described.len() >= 5, "{kind}: {described:?}");
        for key in &described {
            assert!(
                !key.description.is_empty(),
                "{kind}.{}: the reader declares it but service/describe.rs has no words for it",
                key.key
            );
            used.insert(key.key.clone());
        }
        for common in ["listen", "enabled", "capture", "capture_bytes", "public"] {
            assert!(
                described.iter().any(|k| k.key == common),
                "{kind} lacks {common}"
            );
        }
    }
    for words in WORDS {
        assert!(
            used.contains(words.key),
            "`{}` is described but no kind reads it",
            words.key
        );
    }
    for secret in SECRET {
        assert!(used.contains(*secret), "{secret}");
    }
}

#[test]
fn the_sample_reads_every_kind_to_its_end() {
    // A reader that failed on the sample would hide the keys it declares
    // after the failure from the form.
    for &kind in ServiceKind::ALL {
        read(kind, &[]).unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
}

#[test]
fn the_proxy_and_stdio_keys_the_form_once_missed_are_there() {
    let tcp_proxy: Vec<String> = keys(ServiceKind::TcpProxy)
        .into_iter()
        .map(|k| k.key)
        .collect();
    for key in [
        "upstream",
        "connect_timeout_ms",
        "proxy_protocol",
        "capture",
        "capture_bytes",
    ] {
        assert!(tcp_proxy.iter().any(|k| k == key), "{key}: {tcp_proxy:?}");
    }
    let stdio = keys(ServiceKind::Stdio);
    let env = stdio
        .iter()
        .find(|k| k.key == "env")
        .expect("stdio has env");
    assert!(env.secret && env.shape == Shape::Table);
    assert!(stdio.iter().any(|k| k.key == "capture"));
    let timeout = tcp_proxy_key("connect_timeout_ms");
    assert_eq!(
        timeout,
        Shape::Duration {
            default: 5000,
            min: 1,
            max: 600_000
        }
    );
}

fn tcp_proxy_key(key: &str) -> Shape {
    keys(ServiceKind::TcpProxy)
        .into_iter()
        .find(|k| k.key == key)
        .map(|k| k.shape)
        .expect("declared")
}

#[test]
fn every_choice_is_accepted_and_nothing_else() {
    for &kind in ServiceKind::ALL {
        for key in keys(kind).into_iter().filter(|k| !k.choices.is_empty()) {
            assert_eq!(key.shape, Shape::Text, "{kind}.{}", key.key);
            for choice in key.choices {
                let mut set = vec![(key.key.as_str(), *choice)];
                if key.key == "auth" {
                    set.push(("auth_key", "k"));
                }
                if let Err(e) = read(kind, &set) {
                    panic!("{kind}.{} = {choice}: {e}", key.key);
                }
            }
            let err = read(kind, &[(key.key.as_str(), "not-a-choice")]).unwrap_err();
            assert!(
                matches!(&err, ConfigError::BadValue { key: k, .. } if k.ends_with(&key.key)),
                "{kind}.{}: {err}",
                key.key
            );
        }
    }
}

#[test]
fn bounds_and_defaults_are_the_readers() {
    for &kind in ServiceKind::ALL {
        for key in keys(kind) {
            let (default, min, max) = match key.shape {
                Shape::Int { default, min, max } | Shape::Duration { default, min, max } => {
                    (default, min, max)
                }
                _ => continue,
            };
            assert!((min..=max).contains(&default), "{kind}.{}", key.key);
            for ok in [min, max] {
                let v = ok.to_string();
                // A bound may be refused for another reason (a file budget):
                // never as out of bounds.
                if let Err(e) = read(kind, &[(key.key.as_str(), &v)]) {
                    assert!(
                        !e.to_string().contains("expected"),
                        "{kind}.{}={v}: {e}",
                        key.key
                    );
                }
            }
            if max < u64::MAX {
                let v = (max + 1).to_string();
                let err = read(kind, &[(key.key.as_str(), &v)]).unwrap_err();
                assert!(
                    err.to_string().contains(&key.key),
                    "{kind}.{}: {err}",
                    key.key
                );
            }
        }
    }
}
