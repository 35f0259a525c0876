//! The binary: parse the command line, start logging, dispatch. The only
//! place that reads the process environment and uses `anyhow`.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use switchboard::cli::{Cli, Command, ExecArgs, ServeArgs, TextArgs, TimeArgs};
use switchboard::client::{
    CommandClient, CommandOutcome, EchoClient, OutputKind, TimeClient, UdpEchoClient,
};
use switchboard::config::{Config, FileSource};
use switchboard::kind::ServiceKind;
use switchboard::service::{ServiceState, Supervisor};
use switchboard::shutdown::{self, Shutdown};
use switchboard::stats::Stats;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.command.is_none() || matches!(cli.command, Some(Command::Serve(_))));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("switchboard: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            None => serve(cli.serve).await,
            Some(Command::Serve(args)) => serve(merge_serve_args(cli.serve, args)).await,
            Some(Command::Echo(args)) => echo(args).await,
            Some(Command::Udp(args)) => udp(args).await,
            Some(Command::Time(args)) => time(args).await,
            Some(Command::Exec(args)) => return exec(args).await,
        }
        .map(|()| ExitCode::SUCCESS)
    });
    // Don't wait for blocked stdin readers of the interactive loops.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `switchboard --set a=b serve --set c=d`: both sets count, the later wins.
fn merge_serve_args(top: ServeArgs, sub: ServeArgs) -> ServeArgs {
    ServeArgs {
        config: sub.config.or(top.config),
        set: top.set.into_iter().chain(sub.set).collect(),
        data_dir: sub.data_dir.or(top.data_dir),
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: info for the server,
/// warnings only for the clients, whose output is the reply itself).
fn init_tracing(server: bool) {
    let default = if server {
        "switchboard=info"
    } else {
        "switchboard=warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn load_config(args: &ServeArgs) -> Result<Config> {
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
    flags.extend(args.set.iter().cloned());
    Ok(Config::resolve(file, &env, &flags)?)
}

async fn serve(args: ServeArgs) -> Result<()> {
    let mut config = load_config(&args)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let key_note = if config.key.is_some() {
        "HMAC key: from the configuration".to_owned()
    } else {
        let (key, created) =
            switchboard::keyfile::load_or_create(&config.data_dir).with_context(|| {
                format!("cannot keep the HMAC key in {}", config.data_dir.display())
            })?;
        config.key = Some(key);
        let path = switchboard::keyfile::path(&config.data_dir);
        match created {
            true => format!("HMAC key: generated in {} (owner-only)", path.display()),
            false => format!("HMAC key: {}", path.display()),
        }
    };
    let root = Shutdown::new();
    let stats = Stats::new();
    root.tasks.spawn(stats.clone().run(root.token.clone()));
    let supervisor = Supervisor::new(&config, stats, root.clone());
    let failures = supervisor.start_enabled().await;
    print_banner(&supervisor);
    println!("{key_note}");
    let enabled = config.services.iter().filter(|s| s.enabled).count();
    if enabled > 0 && failures.len() == enabled {
        root.drain(config.shutdown_grace).await;
        anyhow::bail!("no service could start (see above)");
    }

    shutdown::signal().await;
    tracing::info!("shutting down (press Ctrl-C again to exit at once)");
    // A second signal skips the grace period.
    tokio::spawn(async {
        shutdown::signal().await;
        eprintln!("switchboard: exiting without waiting");
        std::process::exit(130);
    });
    supervisor.stop_all().await;
    if !root.drain(config.shutdown_grace).await {
        tracing::warn!(
            "some tasks outlived the {:?} grace period",
            config.shutdown_grace
        );
    }
    tracing::info!("bye");
    Ok(())
}

/// What listens where, in a few lines anyone can read.
fn print_banner(supervisor: &Supervisor) {
    let mut out = String::new();
    out.push_str(&format!(
        "switchboard {} — Ctrl-C to stop\n",
        env!("CARGO_PKG_VERSION")
    ));
    for s in supervisor.statuses() {
        let addr = s.local_addr.as_deref().unwrap_or(&s.listen);
        let state = if s.enabled {
            s.state.as_str()
        } else {
            "disabled"
        };
        out.push_str(&format!(
            "  {:<10} {}  {:<24} {}\n",
            s.name, s.proto, addr, state
        ));
    }
    if let Some(addr) = supervisor.local_addr(ServiceKind::Echo) {
        if supervisor.state(ServiceKind::Echo) == ServiceState::Running {
            out.push_str(&format!("try:  switchboard echo {addr} hello\n"));
        }
    }
    print!("{out}");
    let _ = std::io::stdout().flush();
}

/// Where a client's requests come from: the TEXT given once, or lines
/// typed at a `>>` prompt (the tutorials' clients) until EOF or `quit`.
enum Requests {
    Once(Option<String>),
    Prompt(tokio::sync::mpsc::Receiver<String>),
}

impl Requests {
    fn new(text: Option<String>) -> Self {
        if text.is_some() {
            return Requests::Once(text);
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<String>(1);
        let prompt = std::io::stdin().is_terminal();
        // stdin is blocking: read it on its own thread, a line at a time.
        std::thread::spawn(move || {
            let mut lines = std::io::stdin().lock().lines();
            loop {
                if prompt {
                    print!(">> ");
                    let _ = std::io::stdout().flush();
                }
                let Some(Ok(line)) = lines.next() else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        Requests::Prompt(rx)
    }

    async fn next(&mut self) -> Option<String> {
        match self {
            Requests::Once(text) => text.take(),
            Requests::Prompt(rx) => loop {
                let line = rx.recv().await?;
                match line.trim() {
                    "" => continue,
                    "quit" | "exit" => return None,
                    line => return Some(line.to_owned()),
                }
            },
        }
    }
}

fn joined(words: Vec<String>) -> Option<String> {
    (!words.is_empty()).then(|| words.join(" "))
}

async fn echo(args: TextArgs) -> Result<()> {
    let mut client = EchoClient::connect(&args.client.addr, args.client.timeout).await?;
    let mut requests = Requests::new(joined(args.text));
    while let Some(text) = requests.next().await {
        let reply = client.round_trip(text.as_bytes()).await?;
        println!("{}", String::from_utf8_lossy(&reply));
    }
    Ok(())
}

async fn udp(args: TextArgs) -> Result<()> {
    let mut client = UdpEchoClient::connect(&args.client.addr, args.client.timeout).await?;
    let mut requests = Requests::new(joined(args.text));
    while let Some(text) = requests.next().await {
        let reply = client.round_trip(text.as_bytes()).await?;
        println!("{}", String::from_utf8_lossy(&reply));
    }
    Ok(())
}

async fn time(args: TimeArgs) -> Result<()> {
    let mut client = TimeClient::connect(&args.client.addr, args.client.timeout).await?;
    // An empty FORMAT ('') is a request too: it asks for the default.
    let mut requests = Requests::new(args.format);
    while let Some(format) = requests.next().await {
        println!("{}", client.query(&format).await?);
    }
    Ok(())
}

async fn exec(args: ExecArgs) -> Result<ExitCode> {
    #[allow(clippy::disallowed_methods)] // main is where the environment is read
    let env_key = std::env::var("SWITCHBOARD_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let key = match (&args.key_file, env_key) {
        (Some(path), _) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the key file {}", path.display()))?
            .trim()
            .to_owned(),
        (None, Some(key)) => key,
        (None, None) => switchboard::keyfile::load(&args.data_dir)
            .with_context(|| {
                format!(
                    "no key: pass --key-file, set SWITCHBOARD_KEY, or run next to a server's data directory ({} not readable)",
                    switchboard::keyfile::path(&args.data_dir).display()
                )
            })?
            .expose()
            .to_vec()
            .into_iter()
            .map(char::from)
            .collect(),
    };
    if args.shell.is_none() && args.argv.is_empty() {
        anyhow::bail!("nothing to run: give `-- PROGRAM ARGS...` or `--shell LINE`");
    }
    let mut client =
        CommandClient::connect(&args.client.addr, key.as_bytes(), args.client.timeout).await?;
    let print = |kind: OutputKind, bytes: &[u8]| {
        let _ = match kind {
            OutputKind::Stdout => std::io::stdout()
                .write_all(bytes)
                .and_then(|()| std::io::stdout().flush()),
            OutputKind::Stderr => std::io::stderr().write_all(bytes),
        };
    };
    let outcome = match &args.shell {
        Some(line) => client.shell(line, args.limit, print).await?,
        None => client.run(&args.argv, args.limit, print).await?,
    };
    Ok(match outcome {
        CommandOutcome::Exit(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        CommandOutcome::Signal(signal) => ExitCode::from(u8::try_from(128 + signal).unwrap_or(255)),
        CommandOutcome::Error(why) => {
            eprintln!("switchboard: {why}");
            ExitCode::from(125)
        }
    })
}
