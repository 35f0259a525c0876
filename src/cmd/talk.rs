//! The clients that talk to one service: echo, udp, time, exec, login and
//! health, with the `>>` prompt the tutorials' clients read lines at.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{client_tls, load_config, load_key};
use switchboard::cli::{ExecArgs, HealthArgs, LoginArgs, ServeArgs, TextArgs, TimeArgs};
use switchboard::client::{
    CommandClient, CommandOutcome, EchoClient, LoginClient, LoginOutcome, OutputKind, TimeClient,
    UdpEchoClient,
};

/// Where a client's requests come from: the TEXT given once, or lines
/// typed at a `>>` prompt (the tutorials' clients) until EOF or `quit`.
enum Requests {
    Once(Option<String>),
    /// Lines from the stdin thread, each asked for in turn, so the prompt
    /// for the next one comes after the reply to the last.
    Prompt {
        ask: std::sync::mpsc::Sender<()>,
        lines: tokio::sync::mpsc::Receiver<String>,
    },
}

impl Requests {
    fn new(text: Option<String>) -> Self {
        if text.is_some() {
            return Requests::Once(text);
        }
        let (ask, asked) = std::sync::mpsc::channel::<()>();
        let (tx, lines) = tokio::sync::mpsc::channel::<String>(1);
        let prompt = std::io::stdin().is_terminal();
        // stdin is blocking: read it on its own thread, a line when asked.
        std::thread::spawn(move || {
            let mut input = std::io::stdin().lock().lines();
            while asked.recv().is_ok() {
                if prompt {
                    print!(">> ");
                    let _ = std::io::stdout().flush();
                }
                let Some(Ok(line)) = input.next() else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        Requests::Prompt { ask, lines }
    }

    async fn next(&mut self) -> Option<String> {
        match self {
            Requests::Once(text) => text.take(),
            Requests::Prompt { ask, lines } => loop {
                ask.send(()).ok()?;
                let line = lines.recv().await?;
                match line.trim() {
                    "" => continue,
                    "quit" | "exit" => return None,
                    line => return Some(line.to_owned()),
                }
            },
        }
    }
}

fn no_tls_over_udp(args: &switchboard::cli::TlsArgs) -> Result<()> {
    anyhow::ensure!(
        !args.tls,
        "--tls is for the TCP services; udp-echo and time speak UDP, which has no TLS"
    );
    Ok(())
}

fn joined(words: Vec<String>) -> Option<String> {
    (!words.is_empty()).then(|| words.join(" "))
}

pub(crate) async fn echo(args: TextArgs) -> Result<()> {
    let tls = client_tls(&args.client.tls)?;
    let mut client =
        EchoClient::connect_tls(&args.client.addr, args.client.timeout, tls.as_ref()).await?;
    let mut requests = Requests::new(joined(args.text));
    while let Some(text) = requests.next().await {
        let reply = client.round_trip(text.as_bytes()).await?;
        println!("{}", String::from_utf8_lossy(&reply));
    }
    Ok(())
}

pub(crate) async fn udp(args: TextArgs) -> Result<()> {
    no_tls_over_udp(&args.client.tls)?;
    let mut client = UdpEchoClient::connect(&args.client.addr, args.client.timeout).await?;
    let mut requests = Requests::new(joined(args.text));
    while let Some(text) = requests.next().await {
        let reply = client.round_trip(text.as_bytes()).await?;
        println!("{}", String::from_utf8_lossy(&reply));
    }
    Ok(())
}

/// Prints each time. An `error: ...` reply makes the exit code 1, so a
/// script can tell a refused format from a time; given as FORMAT it goes
/// to stderr, while in the line-by-line dialogue it stays in line.
pub(crate) async fn time(args: TimeArgs) -> Result<ExitCode> {
    no_tls_over_udp(&args.client.tls)?;
    let mut client = TimeClient::connect(&args.client.addr, args.client.timeout).await?;
    let one_shot = args.format.is_some();
    // An empty FORMAT ('') is a request too: it asks for the default.
    let mut requests = Requests::new(args.format);
    let mut code = ExitCode::SUCCESS;
    while let Some(format) = requests.next().await {
        let reply = client.query(&format).await?;
        if reply.starts_with("error: ") {
            code = ExitCode::FAILURE;
            if one_shot {
                eprintln!("{reply}");
                continue;
            }
        }
        println!("{reply}");
    }
    Ok(code)
}

/// `exec`'s status when the command did not run (refused by the service,
/// not allowed, no connection, a broken stream).
const EXIT_NOT_RUN: u8 = 125;
/// `exec`'s status when the service refused our HMAC key.
const EXIT_KEY_REFUSED: u8 = 126;

pub(crate) async fn exec(args: ExecArgs, top: &ServeArgs) -> Result<ExitCode> {
    let key = load_key(&args.key, top)?;
    if args.shell.is_none() && args.argv.is_empty() {
        anyhow::bail!("nothing to run: give `-- PROGRAM ARGS...` or `--shell LINE`");
    }
    let tls = client_tls(&args.client.tls)?;
    // Our own failures must not pass for the remote command's exit code:
    // a refused key is 126, any other failure to run it 125 (as `env` and
    // `docker run` do); the remote's code is passed through as it is.
    let connected =
        CommandClient::connect_tls(&args.client.addr, &key, args.client.timeout, tls.as_ref())
            .await;
    let mut client = match connected {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchboard: {e}");
            return Ok(ExitCode::from(match e {
                switchboard::client::ClientError::AuthRejected { .. } => EXIT_KEY_REFUSED,
                _ => EXIT_NOT_RUN,
            }));
        }
    };
    let print = |kind: OutputKind, bytes: &[u8]| {
        let _ = match kind {
            OutputKind::Stdout => std::io::stdout()
                .write_all(bytes)
                .and_then(|()| std::io::stdout().flush()),
            OutputKind::Stderr => std::io::stderr().write_all(bytes),
        };
    };
    let outcome = match &args.shell {
        Some(line) => client.shell(line, args.limit, print).await,
        None => client.run(&args.argv, args.limit, print).await,
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            eprintln!("switchboard: {e}");
            return Ok(ExitCode::from(EXIT_NOT_RUN));
        }
    };
    Ok(match outcome {
        CommandOutcome::Exit(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        CommandOutcome::Signal(signal) => ExitCode::from(u8::try_from(128 + signal).unwrap_or(255)),
        CommandOutcome::Error(why) => {
            eprintln!("switchboard: {why}");
            ExitCode::from(EXIT_NOT_RUN)
        }
    })
}

pub(crate) async fn login(args: LoginArgs) -> Result<ExitCode> {
    let tls = client_tls(&args.client.tls)?;
    let mut client =
        LoginClient::connect_tls(&args.client.addr, args.client.timeout, tls.as_ref()).await?;
    let interactive = switchboard::terminal::interactive();
    loop {
        let user = match &args.user {
            Some(u) => u.clone(),
            None => switchboard::terminal::ask("username: ", false).context("no user name")?,
        };
        let password = switchboard::terminal::ask("password: ", true).context("no password")?;
        match client.attempt(&user, &password).await? {
            LoginOutcome::Ok => {
                println!("login ok");
                return Ok(ExitCode::SUCCESS);
            }
            LoginOutcome::Failed => {
                println!("login failed");
                // A person may try again on the same connection; a script gets one go.
                if !interactive || args.user.is_some() {
                    return Ok(ExitCode::FAILURE);
                }
                // Not after the server's last try: it has hung up.
                if !client.prompts_again().await? {
                    eprintln!(
                        "switchboard: {}: no more tries on this connection",
                        client.addr()
                    );
                    return Ok(ExitCode::FAILURE);
                }
            }
            LoginOutcome::Refused(said) => {
                eprintln!("switchboard: {}: {said}", client.addr());
                return Ok(ExitCode::FAILURE);
            }
        }
    }
}

/// `switchboard health`: `/healthz` of ADDR or of the config's dashboard.
pub(crate) async fn health(args: HealthArgs) -> Result<()> {
    let (addr, tls, scheme) = dashboard(&load_config(&args.config)?, args.addr)?;
    switchboard::client::health::check(&addr, args.timeout, tls.as_ref()).await?;
    println!("ok: {scheme}://{addr}/healthz");
    Ok(())
}

/// Where the config's dashboard is reached from here (or `addr`), with the
/// TLS that trusts exactly its certificate when it speaks HTTPS. An
/// `https://` or `http://` URL says which; without one, `web.tls` does. An
/// `https://` URL with no certificate to trust is refused before anything
/// (a token, say) is sent.
pub(crate) fn dashboard(
    config: &switchboard::config::Config,
    addr: Option<switchboard::cli::DashboardAddr>,
) -> Result<(String, Option<switchboard::tls::ClientTls>, &'static str)> {
    // Over HTTPS, trust exactly the dashboard's own certificate file.
    let cert = match &config.web.tls {
        switchboard::config::WebTls::Off => None,
        switchboard::config::WebTls::SelfSigned => {
            Some(switchboard::tls::self_signed_files(&config.data_dir).cert)
        }
        switchboard::config::WebTls::Files(files) => Some(files.cert.clone()),
    };
    let https = addr
        .as_ref()
        .and_then(|a| a.https)
        .unwrap_or(cert.is_some());
    let tls = match (https, &cert) {
        (false, _) => None,
        (true, Some(path)) => Some(switchboard::tls::ClientTls::new(
            &switchboard::tls::Trust::Pin(switchboard::tls::pin_of_file(path)?),
        )?),
        (true, None) => anyhow::bail!(
            "{} is an https:// address, and this command knows no certificate to trust for it: \
             {}",
            addr.map(|a| a.addr).unwrap_or_default(),
            switchboard::client::health::HTTPS_SETTINGS
        ),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let addr = match addr {
        Some(a) => a.addr,
        // A wildcard address is asked on loopback.
        None => switchboard::config::ListenAddr::Inet(config.web.listen)
            .connectable()
            .inet()
            .expect("an IP address stays one")
            .to_string(),
    };
    Ok((addr, tls, scheme))
}
