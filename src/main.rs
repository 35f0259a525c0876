//! The binary: parse the command line, start logging, dispatch. The only
//! place that reads the process environment and uses `anyhow`.

mod cmd;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;

use switchboard::cli::{Cli, Command, HealthArgs, UserArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(
        cli.command.is_none() || matches!(cli.command, Some(Command::Serve(_))),
        cli.log_format,
    );
    if cli.command.is_none() || matches!(cli.command, Some(Command::Serve(_))) {
        adopt_sockets();
    }
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
            None => cmd::serve::serve(cli.serve).await,
            Some(Command::Serve(args)) => {
                cmd::serve::serve(cmd::merge_serve_args(cli.serve, args)).await
            }
            Some(Command::Echo(args)) => cmd::talk::echo(args).await,
            Some(Command::Udp(args)) => cmd::talk::udp(args).await,
            Some(Command::Time(args)) => return cmd::talk::time(args).await,
            Some(Command::Exec(args)) => return cmd::talk::exec(args, &cli.serve).await,
            Some(Command::Login(args)) => return cmd::talk::login(args).await,
            Some(Command::Put(args)) => cmd::files::put(args, &cli.serve).await,
            Some(Command::Get(args)) => cmd::files::get(args, &cli.serve).await,
            Some(Command::List(args)) => cmd::files::list(args, &cli.serve).await,
            Some(Command::Replay(args)) => return Ok(cmd::replay::replay(args).await),
            Some(Command::Bench(args)) => cmd::bench::bench(args, &cli.serve).await,
            Some(Command::Health(args)) => {
                cmd::talk::health(HealthArgs {
                    config: cmd::merge_serve_args(cli.serve, args.config),
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
            Some(Command::User(args)) => cmd::accounts::user(UserArgs {
                config: cmd::merge_serve_args(cli.serve, args.config),
                ..args
            }),
            Some(Command::Service(args)) => {
                cmd::service::service(switchboard::cli::ServiceArgs {
                    config: cmd::merge_serve_args(cli.serve, args.config),
                    ..args
                })
                .await
            }
            Some(Command::Toxic(args)) => {
                cmd::toxic::toxic(switchboard::cli::ToxicArgs {
                    config: cmd::merge_serve_args(cli.serve, args.config),
                    ..args
                })
                .await
            }
            Some(Command::Reload(args)) => {
                cmd::lifecycle::control(cli.serve, args, switchboard::control::Request::Reload)
                    .await
            }
            Some(Command::Upgrade(args)) => {
                cmd::lifecycle::control(cli.serve, args, switchboard::control::Request::Upgrade)
                    .await
            }
            Some(Command::Token(args)) => {
                cmd::accounts::token(switchboard::cli::TokenArgs {
                    config: cmd::merge_serve_args(cli.serve, args.config),
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

/// Takes the sockets systemd (or the process an upgrade replaces) handed
/// over. Before any thread starts: `listenfd` clears `LISTEN_FDS` and
/// `LISTEN_PID`, so the commands `exec` runs do not inherit them.
fn adopt_sockets() {
    let fds = listenfd::ListenFd::from_env();
    #[allow(clippy::disallowed_methods)] // main is where the environment is read
    let names = std::env::var("LISTEN_FDNAMES").ok();
    if fds.len() > 0 {
        tracing::info!(
            "{} socket(s) handed over ({})",
            fds.len(),
            names.as_deref().unwrap_or("unnamed")
        );
    }
    for warning in switchboard::activation::adopt(fds, names.as_deref()) {
        tracing::warn!("{warning}");
    }
    #[allow(clippy::disallowed_methods)] // main is where the environment is read
    switchboard::notify::init(std::env::var_os("NOTIFY_SOCKET"));
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: info for the server,
/// warnings only for the clients, whose output is the reply itself).
fn init_tracing(server: bool, format: switchboard::cli::LogFormat) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
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
    // Beside stderr, each instance's last lines for the Services row's Log.
    let lines = switchboard::stats::log_lines::layer();
    match format {
        switchboard::cli::LogFormat::Text => logs.with_ansi(colour).finish().with(lines).init(),
        // One object per line; serde escapes whatever a peer put in a field.
        switchboard::cli::LogFormat::Json => {
            logs.json().with_ansi(false).finish().with(lines).init()
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
    out.extend_from_slice(cmd::exit_status::roff().as_bytes());
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
