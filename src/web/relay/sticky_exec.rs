//! The sticky-packet lab through `exec`'s framings: the same commands, one
//! per write, sent to each `exec` instance in turn (`raw`, `length-ready`,
//! `struct` or `header`) through the clients the CLI uses, over real
//! sockets; the replies as each client read them, side by side, and which
//! framing kept them whole.
//!
//! What this deliberately doesn't do: take a shortcut into a service (it
//! only knows where an instance listens and what its settings say), run
//! unbounded (commands, bytes per reply and time are capped), or show any
//! key (the tutorial framings' `auth_key` and the HMAC key stay here).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::lab_proxy::{LabProxy, LabToxic};
use super::{AppState, CLIENT_TIMEOUT, WebError};
use crate::client::{CommandClient, CommandOutcome, OutputKind, RAW_READ, TutorialExecClient};
use crate::kind::ServiceKind;
use crate::service::exec::{Framing, Settings};
use crate::web::session::{Admin, ClientIp};

/// The most commands in one run, and bytes in one command line.
pub const MAX_LAB_COMMANDS: usize = 8;
pub const MAX_LAB_COMMAND: usize = 200;
/// The most instances one run goes through.
pub const MAX_LAB_INSTANCES: usize = 8;
/// The most bytes kept of one reply (more is an error on the framed sides,
/// cut on `header`), and of what `raw` left unread.
pub const MAX_LAB_REPLY: usize = 16 * 1024;
/// The whole run through one instance, whatever each step's timeout.
const LAB_TIME: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabRequest {
    commands: Vec<String>,
    /// Which `exec` instances; all running ones when absent.
    instances: Option<Vec<String>>,
    /// Through a temporary proxy with this toxic (see [`super::lab_proxy`]).
    through: Option<LabToxic>,
}

/// One instance's side of the lab.
#[derive(Debug, Serialize)]
pub struct LabSide {
    pub instance: String,
    pub framing: &'static str,
    /// The reply to each command as its client read it (control bytes
    /// shown as `\u{..}`), and its size.
    pub replies: Vec<String>,
    pub reply_sizes: Vec<usize>,
    /// What the server still sent after the last reply was read.
    pub leftover: String,
    pub leftover_size: usize,
    /// Each reply came back whole: no piece of one in another's read.
    pub whole: bool,
    pub verdict: String,
    pub error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct LabReply {
    pub commands: Vec<String>,
    /// The toxic every side went through, when one did.
    pub through: Option<String>,
    pub sides: Vec<LabSide>,
}

fn framing_name(f: Framing) -> &'static str {
    match f {
        Framing::Header => "header",
        Framing::Raw => "raw",
        Framing::LengthReady => "length-ready",
        Framing::Struct => "struct",
    }
}

fn check(req: &LabRequest) -> Result<(), WebError> {
    if req.commands.is_empty() || req.commands.len() > MAX_LAB_COMMANDS {
        return Err(WebError::BadRequest(format!(
            "send 1 to {MAX_LAB_COMMANDS} commands"
        )));
    }
    if let Some(bad) = req.commands.iter().find(|c| {
        c.trim().is_empty() || c.len() > MAX_LAB_COMMAND || c.chars().any(char::is_control)
    }) {
        return Err(WebError::BadRequest(format!(
            "each command is one line of 1 to {MAX_LAB_COMMAND} bytes without control \
             characters; `{}` ({} bytes) is not",
            bad.chars()
                .filter(|c| !c.is_control())
                .take(20)
                .collect::<String>(),
            bad.len()
        )));
    }
    if req
        .instances
        .as_ref()
        .is_some_and(|i| i.is_empty() || i.len() > MAX_LAB_INSTANCES)
    {
        return Err(WebError::BadRequest(format!(
            "name 1 to {MAX_LAB_INSTANCES} exec instances"
        )));
    }
    Ok(())
}

/// `POST /api/v1/sticky/exec` (admin, as running commands is): the
/// commands back to back through each named (or every running) `exec`
/// instance; audited.
///
/// # Errors
/// Bad input, a name that is not an `exec` instance, one that is not running.
pub async fn sticky_exec(
    State(state): State<AppState>,
    Admin(session): Admin,
    ClientIp(from): ClientIp,
    body: Result<Json<LabRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<LabReply>, WebError> {
    let Json(req) = body?;
    check(&req)?;
    let toxic = req.through.as_ref().map(LabToxic::toxic).transpose()?;
    let supervisor = state.supervisor();
    let names: Vec<String> = match &req.instances {
        Some(names) => names.clone(),
        None => supervisor
            .statuses()
            .into_iter()
            .filter(|s| s.kind == ServiceKind::Exec && s.phase == "running")
            .map(|s| s.name.name().to_owned())
            .take(MAX_LAB_INSTANCES)
            .collect(),
    };
    if names.is_empty() {
        return Err(WebError::Busy("no exec instance is running".into()));
    }
    let mut plan = Vec::with_capacity(names.len());
    for name in &names {
        let settings = supervisor
            .config_of(name)
            .and_then(|c| c.settings.get::<Settings>().cloned())
            .ok_or_else(|| WebError::BadRequest(format!("`{name}` is not an exec instance")))?;
        plan.push((name.clone(), settings, state.target(name)?));
    }
    state
        .audit()
        .record(crate::audit::AuditEvent::WebStickyExec {
            user: session.user.clone(),
            peer: Some(from.to_string()),
            instances: names.clone(),
            commands: req.commands.clone(),
            through: req.through.as_ref().map(LabToxic::describe),
        })
        .await;
    let mut sides = Vec::with_capacity(plan.len());
    for (name, settings, target) in plan {
        // Each side through its own proxy (a proxy's upstream is fixed),
        // removed before the next one starts.
        let proxy = match &toxic {
            Some(t) => Some(LabProxy::open(&state, &target, t.clone()).await?),
            None => None,
        };
        let via = proxy.as_ref().map_or(target.as_str(), LabProxy::addr);
        // Marked as ours, like every relay (see `service::internal`).
        let run = side(&state, name, &settings, via, &req.commands);
        sides.push(crate::service::internal::scope(run).await);
        if let Some(proxy) = proxy {
            proxy.close().await;
        }
    }
    Ok(Json(LabReply {
        commands: req.commands,
        through: req.through.as_ref().map(LabToxic::describe),
        sides,
    }))
}

/// One instance's run; a failure is reported on its side, not the page's.
async fn side(
    state: &AppState,
    instance: String,
    settings: &Settings,
    target: &str,
    commands: &[String],
) -> LabSide {
    let framing = settings.framing;
    let run = async {
        match framing {
            Framing::Header => header(state, &instance, target, commands).await,
            _ => tutorial(state, &instance, settings, target, commands).await,
        }
    };
    let outcome = tokio::time::timeout(LAB_TIME, run)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {LAB_TIME:?}")));
    let (replies, leftover, error) = match outcome {
        Ok((replies, leftover)) => (replies, leftover, None),
        Err(e) => (Vec::new(), Vec::new(), Some(e)),
    };
    let whole = error.is_none()
        && leftover.is_empty()
        && (framing != Framing::Raw || replies.iter().all(|r| r.len() < RAW_READ));
    let verdict = match (&error, whole) {
        (Some(_), _) => "failed".to_owned(),
        (None, true) => "survived: every reply whole".to_owned(),
        (None, false) => "split/glued: replies spill into each other".to_owned(),
    };
    LabSide {
        instance,
        framing: framing_name(framing),
        reply_sizes: replies.iter().map(Vec::len).collect(),
        replies: replies.iter().map(|r| shown(r)).collect(),
        leftover_size: leftover.len(),
        leftover: shown(&leftover),
        whole,
        verdict,
        error,
    }
}

type Replies = Result<(Vec<Vec<u8>>, Vec<u8>), String>;

async fn tutorial(
    state: &AppState,
    instance: &str,
    settings: &Settings,
    target: &str,
    commands: &[String],
) -> Replies {
    let tls = state.tls(instance).map_err(|e| e.to_string())?;
    let mut client = TutorialExecClient::connect_tls(target, CLIENT_TIMEOUT, tls.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    if settings.auth.is_on() {
        client
            .answer_challenge(&settings.auth)
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut replies = Vec::with_capacity(commands.len());
    for command in commands {
        let reply = match settings.framing {
            Framing::Raw => client.raw(command).await,
            Framing::LengthReady => client.length_ready(command, MAX_LAB_REPLY).await,
            _ => client.struct_framed(command, MAX_LAB_REPLY).await,
        };
        replies.push(reply.map_err(|e| e.to_string())?);
    }
    let leftover = client
        .finish(MAX_LAB_REPLY)
        .await
        .map_err(|e| e.to_string())?;
    Ok((replies, leftover))
}

async fn header(state: &AppState, instance: &str, target: &str, commands: &[String]) -> Replies {
    let tls = state.tls(instance).map_err(|e| e.to_string())?;
    let key = state.key().map_err(|e| e.to_string())?;
    let mut client = CommandClient::connect_tls(target, key, CLIENT_TIMEOUT, tls.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    let mut replies = Vec::with_capacity(commands.len());
    for command in commands {
        let argv = match shell_words::split(command) {
            Ok(argv) if !argv.is_empty() => argv,
            Ok(_) => return Err("an empty command".into()),
            Err(e) => {
                replies.push(format!("cannot read the command: {e}\n").into_bytes());
                continue;
            }
        };
        let mut out = Vec::new();
        let keep = |_: OutputKind, bytes: &[u8]| {
            let room = MAX_LAB_REPLY.saturating_sub(out.len());
            out.extend_from_slice(&bytes[..bytes.len().min(room)]);
        };
        let outcome = client
            .run(&argv, None, keep)
            .await
            .map_err(|e| e.to_string())?;
        // A refusal (not allowed, timeout, cap) is the reply, as the
        // tutorial framings answer it.
        if let CommandOutcome::Error(why) = outcome {
            out.extend_from_slice(format!("{why}\n").as_bytes());
        }
        replies.push(out);
    }
    Ok((replies, Vec::new()))
}

/// Text with control bytes visible, as the echo side of the panel shows it.
fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                format!("\\u{{{:02x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}
