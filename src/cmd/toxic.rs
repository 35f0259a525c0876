//! `switchboard toxic list|add|edit|rm PROXY`: a proxy's toxics from a
//! shell, through the running dashboard's API with a token.

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::api::Api;
use super::load_config;
use super::talk::dashboard;
use switchboard::cli::{ToxicAction, ToxicArgs};

/// Runs one `toxic` action.
pub(crate) async fn toxic(args: ToxicArgs) -> Result<()> {
    let (addr, tls, _) = dashboard(&load_config(&args.config)?, args.url)?;
    let api = Api {
        addr,
        tls,
        timeout: args.timeout,
        token: args.token.as_deref(),
        role: "operator",
    };
    let call = |method: &'static str, path: String, body: Option<Value>| {
        let api = &api;
        async move { api.call(method, &path, body.as_ref()).await }
    };
    let base = |proxy: &str| format!("/api/v1/services/{proxy}/toxics");
    match args.action {
        ToxicAction::List { proxy } => {
            let all = call("GET", base(&proxy), None).await?;
            let rows = all.as_array().context("the API answered no list")?;
            println!(
                "{:<24} {:<11} {:<10} {:<8} {:<3} ATTRIBUTES",
                "NAME", "TYPE", "STREAM", "TOXICITY", "ON"
            );
            for t in rows {
                let text = |k: &str| t[k].as_str().unwrap_or("").to_owned();
                let attrs = t["attributes"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                let on = if t["enabled"] == false { "off" } else { "on" };
                println!(
                    "{:<24} {:<11} {:<10} {:<8} {on:<3} {attrs}",
                    text("name"),
                    text("type"),
                    text("stream"),
                    t["toxicity"]
                );
            }
        }
        ToxicAction::Add {
            proxy,
            type_name,
            name,
            stream,
            toxicity,
            attributes,
        } => {
            let mut body = json!({
                "type": type_name, "stream": stream, "toxicity": toxicity,
                "attributes": numbers(&attributes)?,
            });
            if let Some(name) = name {
                body["name"] = json!(name);
            }
            let t = call("POST", base(&proxy), Some(body)).await?;
            println!("added {} to {proxy}", t["name"].as_str().unwrap_or("?"));
        }
        ToxicAction::Edit {
            proxy,
            name,
            toxicity,
            enabled,
            attributes,
        } => {
            let mut body = json!({"attributes": numbers(&attributes)?});
            if let Some(t) = toxicity {
                body["toxicity"] = json!(t);
            }
            if let Some(e) = enabled {
                body["enabled"] = json!(e);
            }
            call("PUT", format!("{}/{name}", base(&proxy)), Some(body)).await?;
            println!("changed {name} on {proxy}");
        }
        ToxicAction::Rm { proxy, name } => {
            call("DELETE", format!("{}/{name}", base(&proxy)), None).await?;
            println!("removed {name} from {proxy}");
        }
    }
    Ok(())
}

/// `NAME=NUMBER` attributes as a JSON object of numbers.
fn numbers(attributes: &[String]) -> Result<Value> {
    let mut map = serde_json::Map::new();
    for a in attributes {
        let (k, v) = a
            .split_once('=')
            .with_context(|| format!("`--attribute` takes NAME=NUMBER, got `{a}`"))?;
        let n: serde_json::Number = v
            .trim()
            .parse()
            .ok()
            .with_context(|| format!("attribute `{k}`: `{v}` is not a number"))?;
        map.insert(k.trim().to_owned(), Value::Number(n));
    }
    Ok(Value::Object(map))
}
