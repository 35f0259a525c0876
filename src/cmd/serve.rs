//! `switchboard serve`: load the configuration, start every instance and
//! the dashboard, print the banner, and shut down on a signal.

use std::io::Write;

use anyhow::{Context, Result};

use super::load_config;
use switchboard::cli::ServeArgs;
use switchboard::server::{self, Running};
use switchboard::shutdown;
use switchboard::supervisor::Supervisor;

pub(crate) async fn serve(args: ServeArgs) -> Result<()> {
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
    let admin_password = admin_password()?;
    let web_listen = config.web.listen;
    let data_dir = config.data_dir.clone();
    let grace = config.shutdown_grace;
    let reload = {
        let args = args.clone();
        server::ReloadSource(std::sync::Arc::new(move || {
            load_config(&args).map_err(|e| format!("{e:#}"))
        }))
    };
    let options = server::Options {
        admin_password,
        reload: Some(reload),
    };
    let running = server::run(config, options).await?;
    let failed = running.start_failures();
    if !failed.is_empty() && !running.keep_going() {
        // A partial start would look healthy to a supervisor (systemd's
        // Restart=on-failure, a container engine) while a port it promised
        // is dead: fail loudly instead, naming every address.
        print_banner(&running, &web_listen);
        running.shutdown().await;
        anyhow::bail!(
            "not started: {}\n  {}\n(`serve --keep-going`, or keep_going = true, runs on without them)",
            match failed.len() {
                1 => "1 listener failed".to_owned(),
                n => format!("{n} listeners failed"),
            },
            failed.join("\n  ")
        );
    }
    #[allow(clippy::disallowed_methods)] // main is where the environment is read
    let upgraded_from = std::env::var_os(super::upgrade::ENV_UPGRADE_FROM).is_some();
    if upgraded_from {
        // The old process sends READY (with our pid) for us.
        super::upgrade::report_ready(&data_dir, running.supervisor.stats()).await;
    } else {
        switchboard::notify::notify("READY=1");
    }
    #[cfg(feature = "failpoints")]
    control_bind_delay().await;
    let control = super::lifecycle::Control::start(&running, &data_dir, upgraded_from);
    switchboard::activation::close_unused();
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

    if let super::lifecycle::Ended::Upgraded =
        super::lifecycle::wait(&mut signals, &running, control).await?
    {
        switchboard::handoff::draining().cancel();
        super::upgrade::drain(running.supervisor.stats(), grace).await;
    }
    tracing::info!("shutting down (press Ctrl-C again to exit at once)");
    switchboard::notify::notify("STOPPING=1");
    // A second signal skips the grace period.
    tokio::spawn(async move {
        signals.next().await;
        eprintln!("switchboard: exiting without waiting");
        std::process::exit(130);
    });
    running.shutdown().await;
    super::lifecycle::remove_control(&data_dir);
    tracing::info!("bye");
    Ok(())
}

/// The first admin password: `SWITCHBOARD_ADMIN_PASSWORD`, else the file
/// `SWITCHBOARD_ADMIN_PASSWORD_FILE` names (one line; its end of line is not
/// part of it). A file keeps it out of `systemctl show` and `/proc/PID/environ`.
fn admin_password() -> Result<Option<String>> {
    use switchboard::config::{ENV_ADMIN_PASSWORD, ENV_ADMIN_PASSWORD_FILE};
    #[allow(clippy::disallowed_methods)] // main is where the environment is read
    let (direct, file) = (
        std::env::var(ENV_ADMIN_PASSWORD).ok(),
        std::env::var_os(ENV_ADMIN_PASSWORD_FILE),
    );
    if let Some(p) = direct.filter(|p| !p.is_empty()) {
        return Ok(Some(p));
    }
    let Some(path) = file.filter(|f| !f.is_empty()) else {
        return Ok(None);
    };
    // A password file is small; anything bigger is not one.
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(
            std::fs::File::open(&path).with_context(|| {
                format!("{ENV_ADMIN_PASSWORD_FILE}: cannot read {}", path.display())
            })?,
            4096,
        ),
        &mut text,
    )
    .with_context(|| format!("{ENV_ADMIN_PASSWORD_FILE}: cannot read {}", path.display()))?;
    let password = text.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        anyhow::bail!("{ENV_ADMIN_PASSWORD_FILE}: {} is empty", path.display());
    }
    Ok(Some(password.to_owned()))
}

/// The banner's `open:` line, and the note beside it when the URL is not
/// the address the dashboard listens on.
fn open_lines(running: &Running) -> String {
    match running.open_url() {
        Some((url, Some(note))) => format!("open: {url}\n      {note}\n"),
        Some((url, None)) => format!("open: {url}\n"),
        None => String::new(),
    }
}

/// The banner's `try:` line: a command that reaches the built-in echo.
/// Behind a proxy (`accept_proxy`) echo refuses a direct connection, so
/// the line says where to try it instead of a command that is refused.
fn try_line(running: &Running) -> String {
    let Some(addr) = running.echo_addr() else {
        return String::new();
    };
    if running.behind_proxy("echo") {
        return format!(
            "try:  echo ({addr}) takes connections through a trusted proxy only \
             (accept_proxy): try it through that proxy\n"
        );
    }
    // On TLS the line must say so, or it prints the TLS alert as a reply.
    let tls = running
        .supervisor
        .tls_of("echo")
        .map(|t| format!(" --tls --pin {}", t.fingerprint()))
        .unwrap_or_default();
    format!("try:  {} echo{tls} {addr} hello\n", program_name())
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
    out.push_str(&try_line(running));
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
    out.push_str(&open_lines(running));
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
    // Not `print!`: a closed stdout (the terminal gone, the reader of an
    // upgraded process's parent gone) must not end the server.
    let _ = std::io::stdout().write_all(out.as_bytes());
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

/// Tests only (`failpoints`): holds the control socket's bind for
/// `SWITCHBOARD_FAILPOINT_CONTROL_BIND_DELAY_MS`, the window in which an
/// upgraded process's old one must not answer for it.
#[cfg(feature = "failpoints")]
async fn control_bind_delay() {
    #[allow(clippy::disallowed_methods)] // a test's own setting
    let ms = std::env::var("SWITCHBOARD_FAILPOINT_CONTROL_BIND_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok());
    if let Some(ms) = ms {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}
