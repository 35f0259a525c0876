//! `switchboard bench KIND`: turn the command line into a load plan, run
//! it against one target and print the report.

use anyhow::{Context, Result};

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

/// `switchboard bench KIND`: checks the target is loopback (or allowed),
/// raises the open-file limit, runs, prints the report.
pub(crate) async fn bench(args: BenchArgs, top: &ServeArgs) -> Result<()> {
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
            connections,
            hold,
            sources,
            ..
        } => {
            let plan = bench::IdlePlan {
                connections: *connections,
                hold: *hold,
                timeout,
                sources: *sources,
            };
            let report = bench::idle(addr, &plan, server_pid).await?;
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
            return Ok(());
        }
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
