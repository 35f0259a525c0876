//! `switchboard service list|add|edit|rm`: the Services page from a shell,
//! through the running dashboard's API with a token.

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::api::Api;
use super::load_config;
use super::talk::dashboard;
use switchboard::cli::{ServiceAction, ServiceArgs};

/// Runs one `service` action.
pub(crate) async fn service(args: ServiceArgs) -> Result<()> {
    let (addr, tls, _) = dashboard(&load_config(&args.config)?, args.url)?;
    let api = Api {
        addr,
        tls,
        timeout: args.timeout,
        token: args.token.as_deref(),
        role: "admin",
    };
    let call = |method: &'static str, path: String, body: Option<Value>| {
        let api = &api;
        async move { api.call(method, &path, body.as_ref()).await }
    };
    match args.action {
        ServiceAction::List => {
            let all = call("GET", "/api/v1/services".into(), None).await?;
            let rows = all.as_array().context("the API answered no list")?;
            println!(
                "{:<20} {:<14} {:<5} {:<9} {:<24} DEFINED IN",
                "NAME", "KIND", "PROTO", "STATE", "ADDRESS"
            );
            for s in rows {
                let text = |k: &str| s[k].as_str().unwrap_or("").to_owned();
                let state = if s["enabled"] == false {
                    "disabled".into()
                } else {
                    text("phase")
                };
                let addr = s["local_addr"]
                    .as_str()
                    .map_or_else(|| text("listen"), str::to_owned);
                // Where a change must be made: the config file for
                // `builtin`/`config`, this command or the dashboard for the rest.
                let defined = match text("source").as_str() {
                    "builtin" => "built in",
                    "config" => "config",
                    "dashboard" => "services.toml",
                    _ => "?",
                };
                println!(
                    "{:<20} {:<14} {:<5} {:<9} {addr:<24} {defined}",
                    text("name"),
                    text("kind"),
                    text("proto"),
                    state
                );
            }
        }
        ServiceAction::Add {
            name,
            kind,
            settings,
        } => {
            let body = json!({"name": name, "kind": kind, "settings": pairs(&settings)?});
            call("POST", "/api/v1/services".into(), Some(body)).await?;
            println!("added {name}");
        }
        ServiceAction::Edit {
            name,
            settings,
            replace,
        } => {
            // Only the named settings change (PATCH: the server lays them
            // over what is saved, secrets it never shows included), or
            // with --replace all of them (PUT).
            let method = if replace { "PUT" } else { "PATCH" };
            let body = json!({"settings": pairs(&settings)?});
            call(method, format!("/api/v1/services/{name}"), Some(body)).await?;
            println!("changed {name}");
        }
        ServiceAction::Rm { name } => {
            call("DELETE", format!("/api/v1/services/{name}"), None).await?;
            println!("removed {name}");
        }
    }
    Ok(())
}

/// `KEY=VALUE` settings as a JSON object of text values.
fn pairs(settings: &[String]) -> Result<Value> {
    let mut map = serde_json::Map::new();
    for s in settings {
        let (k, v) = s
            .split_once('=')
            .with_context(|| format!("`--setting` takes KEY=VALUE, got `{s}`"))?;
        map.insert(k.trim().to_owned(), Value::String(v.trim().to_owned()));
    }
    Ok(Value::Object(map))
}
