//! The dashboard's JSON API from a shell, for the commands that manage the
//! running server with a token (`service`, `toxic`): one request, its error
//! turned into a message that names the field the server refused and, on a
//! 401, which role of token is needed. Not a general HTTP client: that is
//! `switchboard::client::health`.

use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::Value;

/// Where the dashboard is and how to reach it, for one command's requests.
pub(crate) struct Api<'a> {
    /// `HOST:PORT`, the host sent as `Host`.
    pub addr: String,
    pub tls: Option<switchboard::tls::ClientTls>,
    pub timeout: Duration,
    pub token: Option<&'a str>,
    /// The role the command needs, said when the server answers 401.
    pub role: &'static str,
}

impl Api<'_> {
    /// Sends one request; a status of 300 or more is an error naming the
    /// server's reason (and the field it refused, when it names one).
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        // Every route these commands call needs a token: without one, say
        // so before the dashboard's Host check (`allowed_hosts`) answers 421.
        if self.token.is_none() {
            bail!(
                "sign in first (give an {} token: --token or SWITCHBOARD_TOKEN)",
                self.role
            );
        }
        let reply = switchboard::client::health::request(
            &self.addr,
            self.timeout,
            self.tls.as_ref(),
            method,
            path,
            self.token,
            body,
        )
        .await?;
        let json = reply.json();
        if reply.status >= 300 {
            let error = json["error"].as_str().unwrap_or(&reply.body).to_owned();
            match (reply.status, json["field"].as_str()) {
                (401, _) => bail!(
                    "{error} (give an {} token: --token or SWITCHBOARD_TOKEN)",
                    self.role
                ),
                (_, Some(field)) => bail!("{field}: {error}"),
                _ => bail!("{error}"),
            }
        }
        Ok(json)
    }
}
