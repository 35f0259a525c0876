//! The subcommands of the binary, one module per family, and what they
//! share: finding the configuration and the HMAC key as the server finds
//! them, and the client side of `--tls`. Only the binary uses `anyhow`.

pub(crate) mod accounts;
pub(crate) mod api;
pub(crate) mod bench;
pub(crate) mod exit_status;
pub(crate) mod files;
pub(crate) mod files_resume;
pub(crate) mod lifecycle;
pub(crate) mod replay;
pub(crate) mod serve;
pub(crate) mod service;
pub(crate) mod talk;
pub(crate) mod toxic;
pub(crate) mod upgrade;

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use switchboard::cli::{KeyArgs, ServeArgs};
use switchboard::config::{Config, FileSource};

/// `switchboard --set a=b serve --set c=d`: both sets count, the later wins.
pub(crate) fn merge_serve_args(top: ServeArgs, sub: ServeArgs) -> ServeArgs {
    ServeArgs {
        config: sub.config.or(top.config),
        set: top.set.into_iter().chain(sub.set).collect(),
        data_dir: sub.data_dir.or(top.data_dir),
        port_base: sub.port_base.or(top.port_base),
        ready_file: sub.ready_file.or(top.ready_file),
        keep_going: sub.keep_going || top.keep_going,
    }
}

pub(crate) fn load_config(args: &ServeArgs) -> Result<Config> {
    #[allow(clippy::disallowed_methods)] // main is where the environment is read
    let env: BTreeMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("SWITCHBOARD_"))
        .collect();
    let text = match &args.config {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?,
        ),
        None => None,
    };
    let file = args
        .config
        .as_deref()
        .zip(text.as_deref())
        .map(|(path, text)| FileSource { path, text });
    let mut flags = Vec::new();
    if let Some(dir) = &args.data_dir {
        flags.push(format!("data_dir={}", dir.display()));
    }
    if let Some(base) = args.port_base {
        // Each service keeps the address the file and environment give it.
        let before = Config::resolve(file, &env, &flags)?;
        flags.extend(
            switchboard::config::port_base_flags(&before, base).map_err(anyhow::Error::msg)?,
        );
    }
    if args.keep_going {
        flags.push("keep_going=true".to_owned());
    }
    flags.extend(args.set.iter().cloned());
    let mut config = Config::resolve(file, &env, &flags)?;
    // Sockets handed over at start win over the configured addresses.
    let warnings = switchboard::activation::apply(&mut config);
    config.warnings.extend(warnings);
    Ok(config)
}

/// The HMAC key for exec and files, found as the server finds it:
/// `--key-file`, else `SWITCHBOARD_KEY`, else the config's `key`, else the
/// key file in the data directory (`--data-dir`, `SWITCHBOARD_DATA_DIR`,
/// `--set data_dir=`, the config file, or the default). `top` holds the
/// options given before the subcommand.
pub(crate) fn load_key(args: &KeyArgs, top: &ServeArgs) -> Result<Vec<u8>> {
    if let Some(path) = &args.key_file {
        return Ok(std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the key file {}", path.display()))?
            .trim()
            .as_bytes()
            .to_vec());
    }
    // Also read by load_config; checked first so a bad config file cannot
    // stand between a client and a key it was given.
    #[allow(clippy::disallowed_methods)] // main is where the environment is read
    if let Some(key) = std::env::var("SWITCHBOARD_KEY")
        .ok()
        .filter(|k| !k.is_empty())
    {
        return Ok(key.into_bytes());
    }
    let config = load_config(&merge_serve_args(top.clone(), args.config.clone()))?;
    if let Some(key) = config.key {
        return Ok(key.expose().to_vec());
    }
    let path = switchboard::keyfile::path(&config.data_dir);
    Ok(switchboard::keyfile::load(&config.data_dir)
        .with_context(|| {
            format!(
                "no key: {} is not readable. Pass --key-file, set SWITCHBOARD_KEY, or point \
                 --data-dir at the server's data directory",
                path.display()
            )
        })?
        .expose()
        .to_vec())
}

/// The client side of `--tls`, `--ca` and `--pin`.
pub(crate) fn client_tls(
    args: &switchboard::cli::TlsArgs,
) -> Result<Option<switchboard::tls::ClientTls>> {
    if !args.tls {
        return Ok(None);
    }
    let trust = match (&args.ca, &args.pin) {
        (Some(ca), _) => switchboard::tls::Trust::Ca(ca.clone()),
        (None, Some(pin)) => switchboard::tls::Trust::Pin(switchboard::tls::parse_pin(pin)?),
        (None, None) => anyhow::bail!(
            "--tls needs --ca FILE (the certificate or its CA, PEM) or --pin SHA256HEX \
             (the fingerprint `serve` prints)"
        ),
    };
    Ok(Some(switchboard::tls::ClientTls::new(&trust)?))
}
