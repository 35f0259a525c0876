//! `switchboard bench KIND`: turn the command line into a load plan, run
//! it against one target and print the report.

use anyhow::{Context, Result};
use bytes::Bytes;

use super::{client_tls, load_key};
use switchboard::bench;
use switchboard::cli::{BenchArgs, BenchCommon, BenchKind, LoadArgs, ServeArgs};

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

/// Where a bench sends its load and how: what every kind of run shares.
struct Target<'a> {
    addr: &'a str,
    tls: Option<switchboard::tls::ClientTls>,
    timeout: std::time::Duration,
    server_pid: Option<u32>,
}

/// The target address and common flags of any `bench KIND`.
fn target_of(kind: &BenchKind) -> (&String, &BenchCommon) {
    match kind {
        BenchKind::Echo { addr, load, .. }
        | BenchKind::Udp { addr, load, .. }
        | BenchKind::Time { addr, load, .. }
        | BenchKind::Exec { addr, load, .. }
        | BenchKind::Http { addr, load, .. } => (addr, &load.common),
        BenchKind::Put { addr, common, .. } | BenchKind::Idle { addr, common, .. } => {
            (addr, common)
        }
    }
}

/// `switchboard bench KIND`: checks the target is loopback (or allowed),
/// raises the open-file limit, runs, prints the report.
pub(crate) async fn bench(args: BenchArgs, top: &ServeArgs) -> Result<()> {
    let (addr, common) = target_of(&args.kind);
    let BenchCommon {
        json,
        server_pid,
        allow_remote,
        allow_errors,
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
    let to = Target {
        addr: addr.as_str(),
        tls,
        timeout,
        server_pid,
    };
    let Some(report) = measure(&args.kind, &to, top, json, allow_errors).await? else {
        return Ok(());
    };
    print_report(json, &report, bench::Report::text);
    let said = match report.refusals.first() {
        Some(r) => format!(" (the server said: {})", r.reason),
        None => String::new(),
    };
    // Nothing was measured: a failure even with --allow-errors.
    anyhow::ensure!(report.requests > 0, "no request succeeded{said}");
    anyhow::ensure!(
        allow_errors || report.errors == 0,
        "{} of the requests failed{said}; --allow-errors exits 0 anyway",
        report.errors,
    );
    Ok(())
}

/// Runs the load `kind` asks for; `None` for `idle`, which reports itself.
async fn measure(
    kind: &BenchKind,
    to: &Target<'_>,
    top: &ServeArgs,
    json: bool,
    allow_errors: bool,
) -> Result<Option<bench::Report>> {
    Ok(Some(match kind {
        BenchKind::Echo { size, load, .. } => echo_or_udp(to, "echo", *size, load).await?,
        BenchKind::Udp { size, load, .. } => echo_or_udp(to, "udp", *size, load).await?,
        BenchKind::Time { format, load, .. } => {
            let payload = Bytes::from(format.clone().into_bytes());
            bench::run("time", to.addr, format, &plan(load), to.server_pid, |_| {
                let (a, p, t) = (to.addr.to_owned(), payload.clone(), to.timeout);
                async move { bench::UdpWorker::connect(&a, p, bench::UdpCheck::NotError, t).await }
            })
            .await?
        }
        BenchKind::Exec {
            classic,
            key,
            load,
            argv,
            ..
        } => exec(to, *classic, key, load, argv, top).await?,
        BenchKind::Http {
            path,
            user,
            password_file,
            load,
            ..
        } => http(to, path, user, password_file.as_deref(), load).await?,
        BenchKind::Put {
            size,
            parallel,
            count,
            classic,
            verify_dir,
            key,
            ..
        } => {
            let put = bench::PutPlan {
                size: *size,
                parallel: *parallel,
                count: count.unwrap_or(*parallel as u64),
                classic: *classic,
                // The classic protocol has no key.
                key: if *classic {
                    Vec::new()
                } else {
                    load_key(key, top)?
                },
                verify_dir: verify_dir.clone(),
                timeout: to.timeout,
                progress: true,
                tls: to.tls.clone(),
            };
            bench::put(to.addr, put, to.server_pid).await?
        }
        BenchKind::Idle {
            connections,
            hold,
            sources,
            ..
        } => {
            let plan = bench::IdlePlan {
                connections: *connections,
                hold: *hold,
                timeout: to.timeout,
                sources: *sources,
            };
            idle(to, &plan, json, allow_errors).await?;
            return Ok(None);
        }
    }))
}

/// `bench echo` or `bench udp`: `size` letters out, the same back.
async fn echo_or_udp(
    to: &Target<'_>,
    name: &str,
    size: u64,
    load: &LoadArgs,
) -> Result<bench::Report> {
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s <= bench::MAX_PAYLOAD)
        .with_context(|| format!("--size is at most {} bytes", bench::MAX_PAYLOAD))?;
    let (payload, expected) = bench::letters(size);
    let (payload, expected) = (Bytes::from(payload), Bytes::from(expected));
    let request = format!("{size} B");
    let (addr, timeout) = (to.addr, to.timeout);
    Ok(if name == "echo" {
        bench::run(name, addr, &request, &plan(load), to.server_pid, |_| {
            let (a, p, e) = (addr.to_owned(), payload.clone(), expected.clone());
            let tls = to.tls.clone();
            async move { bench::EchoWorker::connect(&a, p, e, timeout, tls.as_ref()).await }
        })
        .await?
    } else {
        bench::run(name, addr, &request, &plan(load), to.server_pid, |_| {
            let check = bench::UdpCheck::Equals(expected.clone());
            let (a, p) = (addr.to_owned(), payload.clone());
            async move { bench::UdpWorker::connect(&a, p, check, timeout).await }
        })
        .await?
    })
}

/// `bench exec`: one command per request, our framing or `--classic`.
async fn exec(
    to: &Target<'_>,
    classic: bool,
    key: &switchboard::cli::KeyArgs,
    load: &LoadArgs,
    argv: &[String],
    top: &ServeArgs,
) -> Result<bench::Report> {
    let argv = if argv.is_empty() {
        vec!["echo".to_owned(), "hi".to_owned()]
    } else {
        argv.to_vec()
    };
    let request = argv.join(" ");
    let (addr, timeout) = (to.addr, to.timeout);
    if classic {
        let line = Bytes::from(request.clone().into_bytes());
        let name = "exec --classic";
        return Ok(
            bench::run(name, addr, &request, &plan(load), to.server_pid, |_| {
                let (a, l) = (addr.to_owned(), line.clone());
                async move { bench::ClassicExecWorker::connect(&a, l, timeout).await }
            })
            .await?,
        );
    }
    let key = std::sync::Arc::new(load_key(key, top)?);
    Ok(
        bench::run("exec", addr, &request, &plan(load), to.server_pid, |_| {
            let (a, k, v) = (addr.to_owned(), key.clone(), argv.clone());
            let tls = to.tls.clone();
            async move { bench::ExecWorker::connect(&a, &k, v, timeout, tls.as_ref()).await }
        })
        .await?,
    )
}

/// `bench http`: signs in once, then GETs `path` with the session.
async fn http(
    to: &Target<'_>,
    path: &str,
    user: &str,
    password_file: Option<&std::path::Path>,
    load: &LoadArgs,
) -> Result<bench::Report> {
    let password = match password_file {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read {}", p.display()))?
            .trim_end_matches(['\r', '\n'])
            .to_owned(),
        None => switchboard::terminal::ask("password: ", true).context("no password")?,
    };
    let (addr, timeout) = (to.addr, to.timeout);
    let cookie = bench::http_sign_in(addr, user, &password, timeout, to.tls.as_ref()).await?;
    let request = format!("GET {path}");
    Ok(
        bench::run("http", addr, &request, &plan(load), to.server_pid, |_| {
            let (a, p, c) = (addr.to_owned(), path.to_owned(), cookie.clone());
            let tls = to.tls.clone();
            async move { bench::HttpWorker::connect(&a, p, c, timeout, tls.as_ref()).await }
        })
        .await?,
    )
}

/// `bench idle`: holds connections open and reports how many stayed.
async fn idle(
    to: &Target<'_>,
    plan: &bench::IdlePlan,
    json: bool,
    allow_errors: bool,
) -> Result<()> {
    let report = bench::idle(to.addr, plan, to.server_pid).await?;
    print_report(json, &report, bench::IdleReport::text);
    let lost = report.requested - report.stayed_open;
    anyhow::ensure!(
        allow_errors || lost == 0,
        "{lost} of {} connections were not held ({} not opened, {} closed by the server); \
         --allow-errors exits 0 anyway",
        report.requested,
        report.requested - report.opened,
        report.closed_by_server
    );
    Ok(())
}
