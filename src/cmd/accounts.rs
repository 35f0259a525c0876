//! `switchboard user` and `switchboard token`: the accounts and API tokens
//! of the configured data directory, edited offline.

use anyhow::{Context, Result};
use switchboard::audit::{AuditEvent, TokenEvent};

use super::load_config;
use switchboard::cli::{UserAction, UserArgs};

/// A new password: generated (and printed), or asked for twice.
fn new_password(generate: bool) -> Result<String> {
    if generate {
        let password = switchboard::users::generate_password()?;
        println!("password: {password}");
        return Ok(password);
    }
    let password = switchboard::terminal::ask("new password: ", true).context("no password")?;
    switchboard::users::check_password(&password)?;
    if switchboard::terminal::interactive() {
        let again = switchboard::terminal::ask("again: ", true).context("no password")?;
        anyhow::ensure!(again == password, "the passwords differ; nothing changed");
    }
    Ok(password)
}

pub(crate) fn user(args: UserArgs) -> Result<()> {
    let config = load_config(&args.config)?;
    let users = switchboard::users::Users::open(&config.data_dir)?;
    match args.action {
        UserAction::Add {
            name,
            role,
            generate,
        } => {
            let role = role.parse()?;
            switchboard::users::check_name(&name)?;
            let password = new_password(generate)?;
            users.add(&name, role, &password)?;
            println!("added {name} ({role}) to {}", users.path().display());
        }
        UserAction::Passwd { name, generate } => {
            anyhow::ensure!(users.role(&name).is_some(), "no user `{name}`");
            let password = new_password(generate)?;
            users.set_password(&name, &password)?;
            println!("password of {name} changed");
        }
        UserAction::Role { name, role } => {
            let role = role.parse()?;
            users.set_role(&name, role)?;
            println!("{name} is now {role}");
        }
        UserAction::Del { name } => {
            users.remove(&name)?;
            switchboard::web::forget_saved_messages(&config.data_dir, &name)
                .with_context(|| format!("removed {name}, but not their saved messages"))?;
            println!("removed {name}");
        }
        UserAction::List => {
            let list = users.list();
            if list.is_empty() {
                println!(
                    "no accounts in {} yet (the first `switchboard serve` creates admin)",
                    users.path().display()
                );
            }
            for u in list {
                let created = chrono::DateTime::from_timestamp(i64::try_from(u.created_unix)?, 0)
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default();
                println!("{:<32} {:<8} created {created} UTC", u.name, u.role);
            }
        }
    }
    Ok(())
}

/// `switchboard token ...`: the token store of the config's data
/// directory, found as `switchboard user` finds the accounts. Creating and
/// revoking are audited (the name, never the token).
pub(crate) async fn token(args: switchboard::cli::TokenArgs) -> Result<()> {
    use switchboard::cli::TokenAction;
    let config = load_config(&args.config)?;
    let tokens = switchboard::tokens::Tokens::open(&config.data_dir)?;
    let audit = || {
        switchboard::audit::AuditLog::open(&config.data_dir).with_context(|| {
            format!(
                "cannot open {}",
                switchboard::audit::path(&config.data_dir).display()
            )
        })
    };
    let when = |unix: Option<u64>| {
        unix.and_then(|t| i64::try_from(t).ok())
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map_or_else(
                || "never".to_owned(),
                |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
            )
    };
    match args.action {
        TokenAction::Create {
            name,
            role,
            expires,
        } => {
            let role: switchboard::users::Role = role.parse()?;
            let expires = expires
                .as_deref()
                .map(switchboard::tokens::parse_expiry)
                .transpose()?;
            let log = audit()?;
            let (token, expires_unix) = tokens.create(&name, role, expires)?;
            log.record(AuditEvent::Token(TokenEvent::Create {
                service: "cli".into(),
                user: None,
                peer: None,
                token: name.clone(),
                role,
                expires_unix,
            }))
            .await;
            log.flush().await;
            // The token alone on stdout, so `$(switchboard token create ...)`
            // captures just it; the rest goes to stderr.
            println!("{token}");
            eprintln!(
                "created token {name} ({role}), expires {}; it is not shown again",
                when(expires_unix)
            );
        }
        TokenAction::List => {
            let list = tokens.list();
            if list.is_empty() {
                println!("no tokens in {}", tokens.path().display());
            }
            for t in list {
                println!(
                    "{:<32} {:<8} created {}  expires {}{}  last used {}",
                    t.name,
                    t.role,
                    when(Some(t.created_unix)),
                    when(t.expires_unix),
                    if t.expired { " (expired)" } else { "" },
                    when(t.last_used_unix),
                );
            }
        }
        TokenAction::Revoke { name } => {
            let log = audit()?;
            tokens.revoke(&name)?;
            log.record(AuditEvent::Token(TokenEvent::Revoke {
                service: "cli".into(),
                user: None,
                peer: None,
                token: name.clone(),
            }))
            .await;
            log.flush().await;
            println!("revoked {name}");
        }
    }
    Ok(())
}
