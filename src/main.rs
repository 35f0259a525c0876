//! The binary: parse the command line, start logging, dispatch. The only
//! place that reads the process environment and uses `anyhow`.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use switchboard::bench;
use switchboard::cli::{
    BenchArgs, BenchCommon, BenchKind, Cli, Command, ExecArgs, GetArgs, HealthArgs, KeyArgs,
    ListArgs, LoadArgs, LoginArgs, PutArgs, ServeArgs, TextArgs, TimeArgs, UserAction, UserArgs,
};
use switchboard::client::{
    ClassicClient, CommandClient, CommandOutcome, EchoClient, FilesClient, LoginClient,
    LoginOutcome, OutputKind, TimeClient, UdpEchoClient,
};
use switchboard::config::{Config, FileSource};
use switchboard::server::{self, Running};
use switchboard::shutdown;
use switchboard::supervisor::Supervisor;
use switchboard::terminal::{Progress, human_bytes};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(
        cli.command.is_none() || matches!(cli.command, Some(Command::Serve(_))),
        cli.log_format,
    );
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
            Some(Command::Time(args)) => return time(args).await,
            Some(Command::Exec(args)) => return exec(args, &cli.serve).await,
            Some(Command::Login(args)) => return login(args).await,
            Some(Command::Put(args)) => put(args, &cli.serve).await,
            Some(Command::Get(args)) => get(args, &cli.serve).await,
            Some(Command::List(args)) => list(args, &cli.serve).await,
            Some(Command::Bench(args)) => bench(args, &cli.serve).await,
            Some(Command::Health(args)) => {
                health(HealthArgs {
                    config: merge_serve_args(cli.serve, args.config),
                    ..args
                })
                .await
            }
            Some(Command::Completions { shell }) => {
                // Into a buffer first: clap_complete panics on a failed
                // write, such as a closed pipe (`| head`).
                let mut cli = <Cli as clap::CommandFactory>::command();
                let mut script = Vec::new();
                clap_complete::generate(shell, &mut cli, "switchboard", &mut script);
                write_stdout(&script)
            }
            Some(Command::Man) => man(),
            Some(Command::User(args)) => user(UserArgs {
                config: merge_serve_args(cli.serve, args.config),
                ..args
            }),
            Some(Command::Token(args)) => {
                token(switchboard::cli::TokenArgs {
                    config: merge_serve_args(cli.serve, args.config),
                    ..args
                })
                .await
            }
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
        port_base: sub.port_base.or(top.port_base),
        ready_file: sub.ready_file.or(top.ready_file),
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: info for the server,
/// warnings only for the clients, whose output is the reply itself).
fn init_tracing(server: bool, format: switchboard::cli::LogFormat) {
    let default = if server {
        "switchboard=info"
    } else {
        "switchboard=warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour only for a person at a terminal: escape codes in a log file or
    // `docker logs` are noise (and NO_COLOR is the user's word for it).
    #[allow(clippy::disallowed_methods)] // main is where the environment is read
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        switchboard::cli::LogFormat::Text => logs.with_ansi(colour).init(),
        // One object per line; serde escapes whatever a peer put in a field.
        switchboard::cli::LogFormat::Json => logs.json().with_ansi(false).init(),
    }
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
    if let Some(base) = args.port_base {
        // Each service keeps the address the file and environment give it.
        let before = Config::resolve(file, &env, &flags)?;
        flags.extend(
            switchboard::config::port_base_flags(&before, base).map_err(anyhow::Error::msg)?,
        );
    }
    flags.extend(args.set.iter().cloned());
    Ok(Config::resolve(file, &env, &flags)?)
}

async fn serve(args: ServeArgs) -> Result<()> {
    // Before anything starts: a signal from now on is a graceful shutdown.
    let mut signals = shutdown::Signals::listen();
    // Each connection is a descriptor: the default soft limit (often 1024)
    // would cap the services below their own `max_connections`.
    let fds = switchboard::service::listen::raise_fd_limit();
    tracing::debug!("open file limit: {fds}");
    let config = load_config(&args)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    #[allow(clippy::disallowed_methods)] // main is where the environment is read
    let admin_password = std::env::var(switchboard::config::ENV_ADMIN_PASSWORD)
        .ok()
        .filter(|p| !p.is_empty());
    let web_listen = config.web.listen;
    let running = server::run(config, server::Options { admin_password }).await?;
    // Written before the banner: whoever waits for the banner finds it.
    if let Some(path) = &args.ready_file {
        running
            .write_ready_file(path)
            .with_context(|| format!("cannot write the ready file {}", path.display()))?;
    }
    print_banner(&running, &web_listen);
    if running.all_failed() {
        running.shutdown().await;
        anyhow::bail!("no service could start (see above)");
    }

    signals.next().await;
    tracing::info!("shutting down (press Ctrl-C again to exit at once)");
    // A second signal skips the grace period.
    tokio::spawn(async move {
        signals.next().await;
        eprintln!("switchboard: exiting without waiting");
        std::process::exit(130);
    });
    running.shutdown().await;
    tracing::info!("bye");
    Ok(())
}

/// What listens where, in a few lines anyone can read. For people: programs
/// read `--ready-file`.
fn print_banner(running: &Running, web_listen: &std::net::SocketAddr) {
    let supervisor = &running.supervisor;
    let scheme = running.scheme;
    let mut out = String::new();
    out.push_str(&format!(
        "switchboard {} — Ctrl-C to stop\n",
        env!("CARGO_PKG_VERSION")
    ));
    let statuses = supervisor.statuses();
    let label = |s: &switchboard::supervisor::ServiceStatus| match s.name.name() == s.kind.name() {
        true => s.name.to_string(),
        false => format!("{} ({})", s.name, s.kind),
    };
    let width = statuses
        .iter()
        .map(|s| label(s).len())
        .max()
        .unwrap_or(0)
        .max(13);
    for s in &statuses {
        let addr = s.local_addr.as_deref().unwrap_or(&s.listen);
        let state = if s.enabled {
            s.state.as_str()
        } else {
            "disabled"
        };
        let name = label(s);
        out.push_str(&format!(
            "  {name:<width$} {}  {addr:<24} {state}\n",
            s.proto
        ));
    }
    match &running.web {
        Ok(addr) => out.push_str(&format!(
            "  {:<width$} {scheme:<4} {:<24} running\n",
            "web", addr
        )),
        Err(e) => out.push_str(&format!(
            "  {:<width$} {scheme:<4} {:<24} failed: {}\n",
            "web",
            web_listen,
            switchboard::service::bind_failure(e)
        )),
    }
    if running.port_taken() {
        out.push_str(
            "hint: a port is taken. Move them all with --port-base N (services on N..N+6, \
             the dashboard on N+80), or one with --set services.NAME.listen=IP:PORT\n",
        );
    }
    if let Some(addr) = running.echo_addr() {
        out.push_str(&format!("try:  {} echo {addr} hello\n", program_name()));
    }
    out.push_str(&match &running.key {
        server::KeySource::Config => "HMAC key: from the configuration\n".to_owned(),
        server::KeySource::File(path, true) => {
            format!("HMAC key: generated in {} (owner-only)\n", path.display())
        }
        server::KeySource::File(path, false) => format!("HMAC key: {}\n", path.display()),
    });
    for line in tls_banner(supervisor) {
        out.push_str(&line);
        out.push('\n');
    }
    if let Some(url) = running.web_url() {
        out.push_str(&format!("open: {url}\n"));
    }
    // The last line of the banner.
    out.push_str(&match &running.generated_password {
        // Printed once, on stdout only: never logged.
        Some(password) => format!(
            "sign in as:  admin / {password}   (generated now and shown only this once; \
             change it with `switchboard user passwd admin`)\n"
        ),
        None if supervisor.users().list().is_empty() => "accounts: none yet; the admin \
             password is made and shown at the first start whose dashboard runs (or set \
             SWITCHBOARD_ADMIN_PASSWORD)\n"
            .to_owned(),
        None => format!(
            "accounts: {} ({}; `switchboard user list`)\n",
            supervisor.users().path().display(),
            match supervisor.users().list().len() {
                1 => "1 account".to_owned(),
                n => format!("{n} accounts"),
            }
        ),
    });
    print!("{out}");
    let _ = std::io::stdout().flush();
}

/// How a person can run this program: `switchboard` when that name on PATH
/// is this executable, else the executable's own path (`cargo run` leaves
/// it in target/release/, which is not on PATH).
fn program_name() -> String {
    let me = std::env::current_exe().ok();
    #[allow(clippy::disallowed_methods)] // main is where the environment is read
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            let found = dir.join("switchboard");
            found.is_file()
                && std::fs::canonicalize(&found).ok()
                    == me.as_ref().and_then(|m| std::fs::canonicalize(m).ok())
        })
    });
    match me {
        Some(path) if !on_path => path.display().to_string(),
        _ => "switchboard".to_owned(),
    }
}

/// The banner's TLS lines: each certificate in use, who uses it, and its
/// SHA-256 (what `--pin` takes).
fn tls_banner(supervisor: &Supervisor) -> Vec<String> {
    let certs = supervisor.certs();
    let mut users: Vec<(std::sync::Arc<switchboard::tls::ServerTls>, Vec<String>)> = Vec::new();
    let all = certs
        .web()
        .map(|t| (std::sync::Arc::clone(t), "web".to_owned()))
        .into_iter()
        .chain(
            supervisor
                .ids()
                .into_iter()
                .filter_map(|id| supervisor.tls_of(&id).map(|t| (t, id.to_string()))),
        );
    for (tls, who) in all {
        match users
            .iter_mut()
            .find(|(t, _)| std::sync::Arc::ptr_eq(t, &tls))
        {
            Some((_, names)) => names.push(who),
            None => users.push((tls, vec![who])),
        }
    }
    users
        .into_iter()
        .map(|(tls, names)| {
            let path = &tls.files().cert;
            let how = match certs.generated() {
                Some((p, true)) if p == path.as_path() => "self-signed, generated now",
                Some((p, false)) if p == path.as_path() => "self-signed",
                _ => "from files",
            };
            format!(
                "TLS ({}): {} ({how}), SHA-256 {}",
                names.join(", "),
                path.display(),
                tls.fingerprint()
            )
        })
        .collect()
}

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

/// The client side of `--tls`, `--ca` and `--pin`.
fn client_tls(args: &switchboard::cli::TlsArgs) -> Result<Option<switchboard::tls::ClientTls>> {
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

async fn echo(args: TextArgs) -> Result<()> {
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

async fn udp(args: TextArgs) -> Result<()> {
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
async fn time(args: TimeArgs) -> Result<ExitCode> {
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

/// The HMAC key for exec and files, found as the server finds it:
/// `--key-file`, else `SWITCHBOARD_KEY`, else the config's `key`, else the
/// key file in the data directory (`--data-dir`, `SWITCHBOARD_DATA_DIR`,
/// `--set data_dir=`, the config file, or the default). `top` holds the
/// options given before the subcommand.
fn load_key(args: &KeyArgs, top: &ServeArgs) -> Result<Vec<u8>> {
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

async fn exec(args: ExecArgs, top: &ServeArgs) -> Result<ExitCode> {
    let key = load_key(&args.key, top)?;
    if args.shell.is_none() && args.argv.is_empty() {
        anyhow::bail!("nothing to run: give `-- PROGRAM ARGS...` or `--shell LINE`");
    }
    let tls = client_tls(&args.client.tls)?;
    let mut client =
        CommandClient::connect_tls(&args.client.addr, &key, args.client.timeout, tls.as_ref())
            .await?;
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

async fn login(args: LoginArgs) -> Result<ExitCode> {
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

/// `switchboard man`: the top page, with every command's options after it
/// (`clap_mangen` renders one page per command; they are joined here so
/// one `man -l -` shows everything).
fn man() -> Result<()> {
    let cli = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cli.clone()).render(&mut out)?;
    for sub in cli.get_subcommands() {
        let name = format!("switchboard-{}", sub.get_name());
        let page = sub.clone().display_name(name.clone()).bin_name(name);
        clap_mangen::Man::new(page).render(&mut out)?;
    }
    write_stdout(&out)
}

/// Writes generated text to stdout; a reader that stops early (`| head`)
/// is not an error.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write to standard output"))
        }
        _ => Ok(()),
    }
}

/// `switchboard health`: `/healthz` of ADDR or of the config's dashboard.
async fn health(args: HealthArgs) -> Result<()> {
    let config = load_config(&args.config)?;
    // Over HTTPS, trust exactly the dashboard's own certificate file.
    let cert = match &config.web.tls {
        switchboard::config::WebTls::Off => None,
        switchboard::config::WebTls::SelfSigned => {
            Some(switchboard::tls::self_signed_files(&config.data_dir).cert)
        }
        switchboard::config::WebTls::Files(files) => Some(files.cert.clone()),
    };
    let tls = match &cert {
        Some(path) => Some(switchboard::tls::ClientTls::new(
            &switchboard::tls::Trust::Pin(switchboard::tls::pin_of_file(path)?),
        )?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let addr = match args.addr {
        Some(a) => a,
        None => {
            let mut a = config.web.listen;
            if a.ip().is_unspecified() {
                a.set_ip(match a {
                    std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            a
        }
    };
    switchboard::client::health::check(addr, args.timeout, tls.as_ref()).await?;
    println!("ok: {scheme}://{addr}/healthz");
    Ok(())
}

fn plan(load: &LoadArgs) -> bench::Plan {
    bench::Plan {
        connections: load.connections,
        duration: load.duration,
        requests: load.requests,
        timeout: load.common.timeout,
        progress: true,
    }
}

fn print_report<T: serde::Serialize>(json: bool, report: &T, text: impl FnOnce(&T) -> String) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
    } else {
        print!("{}", text(report));
    }
}

/// `switchboard bench KIND`: checks the target is loopback (or allowed),
/// raises the open-file limit, runs, prints the report.
async fn bench(args: BenchArgs, top: &ServeArgs) -> Result<()> {
    use bytes::Bytes;
    let (addr, common) = match &args.kind {
        BenchKind::Echo { addr, load, .. }
        | BenchKind::Udp { addr, load, .. }
        | BenchKind::Time { addr, load, .. }
        | BenchKind::Exec { addr, load, .. }
        | BenchKind::Http { addr, load, .. } => (addr, &load.common),
        BenchKind::Put { addr, common, .. } | BenchKind::Idle { addr, common, .. } => {
            (addr, common)
        }
    };
    let BenchCommon {
        json,
        server_pid,
        allow_remote,
        timeout,
        ref tls,
    } = *common;
    let tls = client_tls(tls)?;
    if tls.is_some() {
        anyhow::ensure!(
            matches!(
                args.kind,
                BenchKind::Echo { .. }
                    | BenchKind::Exec { classic: false, .. }
                    | BenchKind::Put { .. }
                    | BenchKind::Http { .. }
            ),
            "--tls works with bench echo, exec, put and http"
        );
    }
    bench::check_target(addr, allow_remote).await?;
    switchboard::service::listen::raise_fd_limit();
    let addr = addr.as_str();
    let report = match &args.kind {
        BenchKind::Echo { size, load, .. } | BenchKind::Udp { size, load, .. } => {
            let size = usize::try_from(*size)
                .ok()
                .filter(|&s| s <= bench::MAX_PAYLOAD)
                .with_context(|| format!("--size is at most {} bytes", bench::MAX_PAYLOAD))?;
            let (payload, expected) = bench::letters(size);
            let (payload, expected) = (Bytes::from(payload), Bytes::from(expected));
            let request = format!("{size} B");
            if matches!(args.kind, BenchKind::Echo { .. }) {
                bench::run("echo", addr, &request, &plan(load), server_pid, |_| {
                    let (a, p, e) = (addr.to_owned(), payload.clone(), expected.clone());
                    let tls = tls.clone();
                    async move { bench::EchoWorker::connect(&a, p, e, timeout, tls.as_ref()).await }
                })
                .await?
            } else {
                bench::run("udp", addr, &request, &plan(load), server_pid, |_| {
                    let check = bench::UdpCheck::Equals(expected.clone());
                    let (a, p) = (addr.to_owned(), payload.clone());
                    async move { bench::UdpWorker::connect(&a, p, check, timeout).await }
                })
                .await?
            }
        }
        BenchKind::Time { format, load, .. } => {
            let payload = Bytes::from(format.clone().into_bytes());
            bench::run("time", addr, format, &plan(load), server_pid, |_| {
                let (a, p) = (addr.to_owned(), payload.clone());
                async move { bench::UdpWorker::connect(&a, p, bench::UdpCheck::NotError, timeout).await }
            })
            .await?
        }
        BenchKind::Exec {
            classic,
            key,
            load,
            argv,
            ..
        } => {
            let argv = if argv.is_empty() {
                vec!["echo".to_owned(), "hi".to_owned()]
            } else {
                argv.clone()
            };
            let request = argv.join(" ");
            if *classic {
                let line = Bytes::from(request.clone().into_bytes());
                bench::run(
                    "exec --classic",
                    addr,
                    &request,
                    &plan(load),
                    server_pid,
                    |_| {
                        let (a, l) = (addr.to_owned(), line.clone());
                        async move { bench::ClassicExecWorker::connect(&a, l, timeout).await }
                    },
                )
                .await?
            } else {
                let key = std::sync::Arc::new(load_key(key, top)?);
                bench::run("exec", addr, &request, &plan(load), server_pid, |_| {
                    let (a, k, v) = (addr.to_owned(), key.clone(), argv.clone());
                    let tls = tls.clone();
                    async move { bench::ExecWorker::connect(&a, &k, v, timeout, tls.as_ref()).await }
                })
                .await?
            }
        }
        BenchKind::Http {
            path,
            user,
            password_file,
            load,
            ..
        } => {
            let password = match password_file {
                Some(p) => std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
                None => switchboard::terminal::ask("password: ", true).context("no password")?,
            };
            let cookie = bench::http_sign_in(addr, user, &password, timeout, tls.as_ref()).await?;
            bench::run(
                "http",
                addr,
                &format!("GET {path}"),
                &plan(load),
                server_pid,
                |_| {
                    let (a, p, c) = (addr.to_owned(), path.clone(), cookie.clone());
                    let tls = tls.clone();
                    async move { bench::HttpWorker::connect(&a, p, c, timeout, tls.as_ref()).await }
                },
            )
            .await?
        }
        BenchKind::Put {
            size,
            parallel,
            count,
            classic,
            verify_dir,
            key,
            ..
        } => {
            let key = if *classic {
                Vec::new()
            } else {
                load_key(key, top)?
            };
            let put = bench::PutPlan {
                size: *size,
                parallel: *parallel,
                count: count.unwrap_or(*parallel as u64),
                classic: *classic,
                key,
                verify_dir: verify_dir.clone(),
                timeout,
                progress: true,
                tls: tls.clone(),
            };
            bench::put(addr, put, server_pid).await?
        }
        BenchKind::Idle {
            connections, hold, ..
        } => {
            let plan = bench::IdlePlan {
                connections: *connections,
                hold: *hold,
                timeout,
            };
            let report = bench::idle(addr, &plan, server_pid).await?;
            print_report(json, &report, bench::IdleReport::text);
            return Ok(());
        }
    };
    print_report(json, &report, bench::Report::text);
    if report.requests == 0 {
        anyhow::bail!("no request succeeded");
    }
    Ok(())
}

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

fn user(args: UserArgs) -> Result<()> {
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
async fn token(args: switchboard::cli::TokenArgs) -> Result<()> {
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
            log.record(serde_json::json!({
                "event": "token", "action": "create", "service": "cli", "token": name,
                "role": role, "expires_unix": expires_unix,
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
            log.record(serde_json::json!({
                "event": "token", "action": "revoke", "service": "cli", "token": name,
            }))
            .await;
            log.flush().await;
            println!("revoked {name}");
        }
    }
    Ok(())
}

async fn put(args: PutArgs, top: &ServeArgs) -> Result<()> {
    anyhow::ensure!(
        args.name.is_none() || args.files.len() == 1,
        "--name works with one FILE only"
    );
    let mut files = None;
    let tls = client_tls(&args.client.tls)?;
    if !args.classic {
        let key = load_key(&args.key, top)?;
        files = Some(
            FilesClient::connect_tls(&args.client.addr, &key, args.client.timeout, tls.as_ref())
                .await?,
        );
    }
    for path in &args.files {
        let file = tokio::fs::File::open(path)
            .await
            .with_context(|| format!("cannot open {}", path.display()))?;
        let meta = file.metadata().await?;
        anyhow::ensure!(meta.is_file(), "{} is not a file", path.display());
        let size = meta.len();
        let name = match &args.name {
            Some(n) => n.clone(),
            None => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .with_context(|| format!("{} has no file name", path.display()))?,
        };
        let mut bar = Progress::new(&name, size);
        let started = std::time::Instant::now();
        let body = tokio::io::BufReader::with_capacity(256 * 1024, file);
        let report = match &mut files {
            Some(client) => {
                let stored = client.put(&name, size, body, |n| bar.update(n)).await;
                bar.finish();
                let stored = stored?;
                let renamed = if stored.name == name {
                    String::new()
                } else {
                    format!(" (as {}: {name} was taken)", stored.name)
                };
                format!("stored {}{renamed}  sha256 {}", stored.name, stored.sha256)
            }
            None => {
                let client = ClassicClient::connect_tls(
                    &args.client.addr,
                    args.client.timeout,
                    tls.as_ref(),
                )
                .await?;
                let sha = client.put(&name, size, body, |n| bar.update(n)).await;
                bar.finish();
                format!(
                    "sent {name} (stored as new_{name} or a free variant)  sha256 {}",
                    sha?
                )
            }
        };
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        println!(
            "{report}  {}  {}/s",
            human_bytes(size),
            human_bytes((size as f64 / secs) as u64)
        );
    }
    Ok(())
}

async fn get(args: GetArgs, top: &ServeArgs) -> Result<()> {
    let key = load_key(&args.key, top)?;
    let tls = client_tls(&args.client.tls)?;
    let mut client =
        FilesClient::connect_tls(&args.client.addr, &key, args.client.timeout, tls.as_ref())
            .await?;
    if args.output.as_deref() == Some(std::path::Path::new("-")) {
        let stdout = tokio::io::stdout();
        client.get(&args.name, stdout, |_| {}, |_| {}).await?;
        return Ok(());
    }
    let dest = match args.output {
        Some(p) => p,
        None => std::path::PathBuf::from(switchboard::store::safe_name(args.name.as_bytes())?),
    };
    anyhow::ensure!(
        args.force || !dest.exists(),
        "{} exists; pass --force to replace it or -o PATH",
        dest.display()
    );
    // Written beside the destination and renamed: never a partial file under its name.
    let part = dest.with_file_name(format!(
        ".{}.part-{}",
        dest.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let file = tokio::fs::File::create(&part)
        .await
        .with_context(|| format!("cannot create {}", part.display()))?;
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file);
    let bar = std::cell::RefCell::new(None::<Progress>);
    let started = std::time::Instant::now();
    let got = client
        .get(
            &args.name,
            &mut out,
            |size| *bar.borrow_mut() = Some(Progress::new(&args.name, size)),
            |n| {
                if let Some(b) = bar.borrow_mut().as_mut() {
                    b.update(n);
                }
            },
        )
        .await;
    if let Some(b) = bar.borrow_mut().as_mut() {
        b.finish();
    }
    let got = match got {
        Ok(g) => g,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e.into());
        }
    };
    out.into_inner().sync_all().await?;
    std::fs::rename(&part, &dest)?;
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    println!(
        "saved {}  sha256 {} (checked)  {}  {}/s",
        dest.display(),
        got.sha256,
        human_bytes(got.size),
        human_bytes((got.size as f64 / secs) as u64)
    );
    Ok(())
}

async fn list(args: ListArgs, top: &ServeArgs) -> Result<()> {
    let key = load_key(&args.key, top)?;
    let tls = client_tls(&args.client.tls)?;
    let mut client =
        FilesClient::connect_tls(&args.client.addr, &key, args.client.timeout, tls.as_ref())
            .await?;
    let (files, truncated) = client.list().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&files)?);
        return Ok(());
    }
    if files.is_empty() {
        println!("no files stored yet");
        return Ok(());
    }
    println!(
        "{:>10}  {:<20}  {:<64}  NAME",
        "SIZE", "MODIFIED", "SHA-256"
    );
    for f in &files {
        println!(
            "{:>10}  {:<20}  {:<64}  {}",
            human_bytes(f.size),
            f.modified,
            f.sha256,
            f.name
        );
    }
    if truncated {
        println!("(the server sent only part of the list)");
    }
    Ok(())
}
