//! `login` (TCP): the seeds/000 login prompt, against the real accounts.
//!
//! ```text
//! server: "username: "      client: "alice\n"
//! server: "password: "      client: "secret\n"
//! server: "login ok\n"      (then closes)
//!      or "login failed\n"  (then prompts again, up to max_tries)
//! ```
//!
//! With `prompts = "tutorial"` the texts are the seed's own, byte for byte
//! and without newlines (`请输入用户名:`, `请输入密码:`, `登录成功`,
//! `用户名或密码输入错误`), so the seed's client, which compares the reply
//! with `登录成功`, signs in and exits.
//!
//! An answer ends with `\n` (a `\r` before it is dropped), or, for clients
//! like the seed's that send what `input()` returned without a newline, with
//! a pause: bytes followed by `answer_pause_ms` of silence are an answer.
//! Answers are capped at [`MAX_LINE`] bytes: a longer one is answered with an error and the
//! connection closed, having read no more than the cap. Unknown users and
//! wrong passwords get the same answer after the same work (see
//! [`Users::verify`]). Failures are counted per peer address in a token
//! bucket (`max_failures_per_minute`, refilled continuously); a peer out of
//! tokens is told when to come back and is not asked for a password.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::listen::{Listener, Peer, Stream};
use super::{Kind, ServiceError, TcpCtx};
use crate::audit::{AuditEvent, AuditLog};
use crate::ratelimit::FailureLimit;
use crate::settings::{ConfigError, Section};
use crate::stats::ConnGuard;
use crate::users::Users;
use crate::wire::line;

/// The longest line read, newline included.
pub const MAX_LINE: usize = 256;
pub const PROMPT_USER: &str = "username: ";
pub const PROMPT_PASSWORD: &str = "password: ";
pub const OK: &str = "login ok\n";
pub const FAILED: &str = "login failed\n";

/// The texts of one `prompts` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prompts {
    pub user: &'static str,
    pub password: &'static str,
    pub ok: &'static str,
    pub failed: &'static str,
}

/// `prompts = "plain"`: our own, newline-terminated texts.
pub const PLAIN: Prompts = Prompts {
    user: PROMPT_USER,
    password: PROMPT_PASSWORD,
    ok: OK,
    failed: FAILED,
};

/// `prompts = "tutorial"`: seeds/000's server's texts, exactly.
pub const TUTORIAL: Prompts = Prompts {
    user: "请输入用户名:",
    password: "请输入密码:",
    ok: "登录成功",
    failed: "用户名或密码输入错误",
};

struct Shared {
    users: Users,
    audit: AuditLog,
    config: Settings,
    failures: FailureLimit,
}

/// A login instance's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Attempts per connection before it is closed.
    pub max_tries: u32,
    /// Failed logins allowed per peer address per minute (a token bucket).
    pub max_failures_per_minute: u32,
    /// The texts: ours (`plain`) or the tutorial's (`tutorial`).
    pub prompts: Prompts,
    /// Silence after bytes without a newline that makes them an answer.
    pub answer_pause: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_tries: 3,
            max_failures_per_minute: 10,
            prompts: PLAIN,
            answer_pause: Duration::from_millis(200),
        }
    }
}

impl Kind for Settings {
    type Socket = Listener;

    fn read(s: &Section<'_>) -> Result<Self, ConfigError> {
        let d = Settings::default();
        Ok(Settings {
            max_tries: s.u32("max_tries", d.max_tries, 1, 100)?,
            max_failures_per_minute: s.u32(
                "max_failures_per_minute",
                d.max_failures_per_minute,
                1,
                1_000_000,
            )?,
            prompts: match s.opt_str("prompts")?.as_deref() {
                None | Some("plain") => PLAIN,
                Some("tutorial") => TUTORIAL,
                Some(other) => {
                    return Err(s.bad(
                        "prompts",
                        format!("`{other}`: expected \"plain\" or \"tutorial\""),
                    ));
                }
            },
            answer_pause: s.ms("answer_pause_ms", d.answer_pause, 10, 60_000)?,
        })
    }

    async fn run(self, listener: Listener, ctx: TcpCtx) -> Result<(), ServiceError> {
        run(listener, ctx, self).await
    }
}

/// Runs the login service until `ctx.cancel` fires.
///
/// # Errors
/// None in practice: accept errors are logged and retried.
async fn run(listener: Listener, ctx: TcpCtx, config: Settings) -> Result<(), ServiceError> {
    let shared = Shared {
        failures: FailureLimit::per_minute(config.max_failures_per_minute),
        users: ctx.resources.users.clone(),
        audit: ctx.resources.audit.clone(),
        config,
    };
    super::accept::serve_tcp_shared(listener, ctx, shared, serve_conn).await;
    Ok(())
}

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
enum LoginError {
    #[error("line longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("closed mid-dialogue")]
    Closed,
    #[error("idle for {0:?}")]
    Idle(Duration),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads answers of at most [`MAX_LINE`] bytes, keeping what follows a
/// line (a client may send both answers at once): a `\n`-terminated line,
/// or bytes followed by `pause` of silence.
struct Lines<S> {
    stream: S,
    buf: [u8; MAX_LINE],
    len: usize,
    pause: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Lines<S> {
    fn new(stream: S, pause: Duration) -> Self {
        Lines {
            stream,
            buf: [0; MAX_LINE],
            len: 0,
            pause,
        }
    }

    /// Everything buffered, as one answer (a `\r` at its end dropped).
    fn take_all(&mut self) -> String {
        let mut answer = &self.buf[..self.len];
        if let [rest @ .., b'\r'] = answer {
            answer = rest;
        }
        let text = String::from_utf8_lossy(answer).into_owned();
        self.len = 0;
        text
    }

    async fn read_line(&mut self, conn: &ConnGuard, idle: Duration) -> Result<String, LoginError> {
        loop {
            if let Some(text) =
                line::take_line(&mut self.buf, &mut self.len).map_err(|_| LoginError::TooLong)?
            {
                return Ok(text);
            }
            // Part of an answer without its newline: the peer's silence ends it.
            let wait = if self.len > 0 { self.pause } else { idle };
            let Ok(read) =
                tokio::time::timeout(wait, self.stream.read(&mut self.buf[self.len..])).await
            else {
                if self.len > 0 {
                    return Ok(self.take_all());
                }
                return Err(LoginError::Idle(idle));
            };
            let n = read?;
            if n == 0 {
                return Err(LoginError::Closed);
            }
            conn.received(&self.buf[self.len..self.len + n]);
            self.len += n;
        }
    }

    async fn say(
        &mut self,
        text: &str,
        conn: &ConnGuard,
        idle: Duration,
    ) -> Result<(), LoginError> {
        tokio::time::timeout(idle, self.stream.write_all(text.as_bytes()))
            .await
            .map_err(|_| LoginError::Idle(idle))??;
        conn.sent(text.as_bytes());
        Ok(())
    }
}

/// One connection, from the first prompt to the close.
async fn serve_conn(
    stream: Stream,
    peer: Peer,
    conn: ConnGuard,
    shared: Arc<Shared>,
    ctx: TcpCtx,
) -> Result<(), LoginError> {
    let idle = ctx.limits.idle_timeout;
    let mut lines = Lines::new(stream, shared.config.answer_pause);
    match dialogue(&mut lines, peer, &shared, &ctx, &conn).await {
        Err(LoginError::TooLong) => {
            let refusal = format!("error: line longer than {MAX_LINE} bytes\n");
            let _ = lines.say(&refusal, &conn, idle).await;
            super::accept::linger_close(&mut lines.stream).await;
            Err(LoginError::TooLong)
        }
        Err(e) => Err(e),
        Ok(()) => {
            let _ = lines.stream.shutdown().await;
            Ok(())
        }
    }
}

/// Up to `max_tries` rounds of the prompts.
async fn dialogue<S: AsyncRead + AsyncWrite + Unpin>(
    lines: &mut Lines<S>,
    peer: Peer,
    shared: &Shared,
    ctx: &TcpCtx,
    conn: &ConnGuard,
) -> Result<(), LoginError> {
    let idle = ctx.limits.idle_timeout;
    let texts = shared.config.prompts;
    // Unix-socket peers share one bucket: they are all this machine.
    let ip = match peer {
        Peer::Inet(addr) => addr.ip(),
        Peer::Unix => IpAddr::from([127, 0, 0, 1]),
    };
    for _ in 0..shared.config.max_tries {
        if let Err(wait) = shared.failures.check(ip) {
            let text = format!(
                "too many failed logins from {ip}; try again in {} s\n",
                wait.as_secs() + 1
            );
            lines.say(&text, conn, idle).await?;
            ctx.stats
                .refused(&ctx.id, conn.peer(), "too many failed logins");
            return Ok(());
        }
        lines.say(texts.user, conn, idle).await?;
        let user = lines.read_line(conn, idle).await?;
        lines.say(texts.password, conn, idle).await?;
        let password = lines.read_line(conn, idle).await?;
        let verdict = shared.users.verify(&user, &password).await;
        drop(password);
        match verdict {
            Ok(Some(role)) => {
                shared
                    .audit
                    .record(AuditEvent::Login {
                        service: "login".into(),
                        peer: conn.peer().to_owned(),
                        user: Some(user.clone()),
                        role: Some(role),
                        ok: true,
                    })
                    .await;
                lines.say(texts.ok, conn, idle).await?;
                return Ok(());
            }
            Ok(None) => {
                // Only names of real accounts are written down: a password
                // typed into the name field must not end up in the log.
                let known = shared.users.role(&user).map(|_| user.as_str());
                shared.failures.charge(ip);
                ctx.stats.auth_failed(&ctx.id, conn.peer(), "login failed");
                shared
                    .audit
                    .record(AuditEvent::Login {
                        service: "login".into(),
                        peer: conn.peer().to_owned(),
                        user: known.map(str::to_owned),
                        role: None,
                        ok: false,
                    })
                    .await;
                lines.say(texts.failed, conn, idle).await?;
            }
            Err(e) => {
                lines.say(&format!("error: {e}\n"), conn, idle).await?;
                return Ok(());
            }
        }
    }
    Ok(())
}
