//! What deployment relies on, checked against the real binary and by the
//! tools that read these files for real: `promtool` on a live `/metrics`
//! (after traffic, so the histograms have samples), on the compose file's
//! Prometheus config and on the alert rules; every metric the Grafana
//! dashboard and the rules name exists in a live scrape; `/healthz`,
//! `/readyz`, `/metrics` and `switchboard health` with `allowed_hosts` set;
//! the Kubernetes manifests agree with the services; the variables
//! Kubernetes injects for a Service named `switchboard` do not stop a start;
//! and the access log. scripts/test.sh installs promtool (Debian's
//! `prometheus`), so a missing one fails here rather than skipping.
//! `kubernetes-validate` and `systemd-analyze verify` run in scripts/test.sh.

mod common;

use std::collections::BTreeSet;
use std::process::{Output, Stdio};

use switchboard::config::{Config, FileSource};
use switchboard::kind::{Proto, ServiceKind};
use tokio::process::Command;

use common::web::{RawReply, get_request, loopback, raw_request};
use common::{ADMIN_PASSWORD, Served, TEST_KEY, guard};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs a program to its end with the hang guard; stdin empty.
async fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let child = Command::new(program)
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {program}: {e} (scripts/test.sh installs what the tests need)")
        });
    guard("the command to finish", child.wait_with_output())
        .await
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn web_addr(served: &Served) -> std::net::SocketAddr {
    served
        .web_url()
        .trim_start_matches("http://")
        .parse()
        .expect("the banner's dashboard address")
}

/// `GET path` with this `Host`, closing after the reply.
fn get_with_host(path: &str, host: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

/// Signs in over raw HTTP; answers the `Cookie` header value.
async fn sign_in(addr: std::net::SocketAddr) -> String {
    let reply = raw_request(
        addr,
        loopback(1),
        &common::web::sign_in_request("admin", ADMIN_PASSWORD),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let cookie = reply
        .head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim().to_owned())
        })
        .expect("a session cookie");
    cookie.split(';').next().unwrap().to_owned()
}

/// The binary with exec, files and files-classic, then some of each kind of
/// traffic: a command, an upload to each file service, dashboard requests
/// (signed in, a 404, a probe). Answers the server and a scrape of /metrics.
async fn served_after_traffic(dir: &std::path::Path) -> (Served, String) {
    use ServiceKind::{Echo, Exec, Files, FilesClassic};
    let served = Served::start(
        &dir.join("data"),
        &[Echo, Exec, Files, FilesClassic],
        &[
            ("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("SWITCHBOARD_KEY", TEST_KEY),
        ],
    )
    .await;
    let key = [("SWITCHBOARD_KEY", TEST_KEY)];
    let o = run(BIN, &["exec", &served.addr(Exec), "--", "echo", "hi"], &key).await;
    assert!(o.status.success(), "{}", text(&o));
    let upload = dir.join("upload.bin");
    std::fs::write(&upload, vec![7u8; 100_000]).unwrap();
    let upload = upload.to_str().unwrap();
    let o = run(BIN, &["put", &served.addr(Files), upload], &key).await;
    assert!(o.status.success(), "{}", text(&o));
    let o = run(
        BIN,
        &["put", "--classic", &served.addr(FilesClassic), upload],
        &key,
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));

    let addr = web_addr(&served);
    let cookie = sign_in(addr).await;
    let signed = format!(
        "GET /api/v1/services/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\
         Connection: close\r\n\r\n"
    );
    assert_eq!(raw_request(addr, loopback(1), &signed).await.status, 200);
    assert_eq!(
        raw_request(addr, loopback(1), &get_request("/no/such/page"))
            .await
            .status,
        404
    );
    assert_eq!(
        raw_request(addr, loopback(1), &get_request("/healthz"))
            .await
            .status,
        200
    );
    let metrics = raw_request(addr, loopback(1), &get_request("/metrics")).await;
    assert_eq!(metrics.status, 200);
    (served, metrics.body)
}

/// The value of the sample `series` (name and labels exactly as written).
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{metrics}"))
        .parse()
        .unwrap()
}

/// The metric names in a scrape, with their `_bucket`/`_sum`/`_count`.
fn sample_names(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            l.split(['{', ' '])
                .next()
                .expect("a name before labels or value")
                .to_owned()
        })
        .collect()
}

/// Names in a PromQL expression that are ours or the process family's.
fn metric_names_in(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut word = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else if !word.is_empty() {
            if word.starts_with("switchboard_") || word.starts_with("process_") {
                names.push(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    names
}

#[tokio::test]
async fn a_live_scrape_after_traffic_passes_promtool_with_histogram_samples() {
    let dir = tempfile::tempdir().unwrap();
    let (served, metrics) = served_after_traffic(dir.path()).await;

    assert_eq!(
        sample(
            &metrics,
            "switchboard_exec_duration_seconds_count{service=\"exec\",kind=\"exec\"}"
        ),
        1.0
    );
    for service in ["files", "files-classic"] {
        let series = format!(
            "switchboard_upload_duration_seconds_count{{service=\"{service}\",kind=\"{service}\"}}"
        );
        assert_eq!(sample(&metrics, &series), 1.0, "{service}");
    }
    // The route template, never the raw path.
    let series = "switchboard_http_request_duration_seconds_count\
                  {route=\"/api/v1/services/{name}\",method=\"GET\",status=\"200\"}";
    assert_eq!(sample(&metrics, series), 1.0);
    let series = "switchboard_http_request_duration_seconds_count\
                  {route=\"unmatched\",method=\"GET\",status=\"404\"}";
    assert_eq!(sample(&metrics, series), 1.0);
    assert!(!metrics.contains("/no/such/page"), "{metrics}");
    assert!(sample(&metrics, "process_resident_memory_bytes") > 1e6);
    assert!(sample(&metrics, "process_open_fds") >= 3.0);
    assert!(sample(&metrics, "process_max_fds") >= sample(&metrics, "process_open_fds"));
    assert!(sample(&metrics, "process_cpu_seconds_total") > 0.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = sample(&metrics, "process_start_time_seconds");
    assert!(started <= now + 1.0 && started > now - 600.0, "{started}");

    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &metrics).unwrap();
    let stdin = std::fs::File::open(&file).unwrap();
    let checked = guard(
        "promtool",
        Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(stdin)
            .output(),
    )
    .await
    .unwrap_or_else(|e| {
        panic!("cannot run promtool: {e} (scripts/test.sh installs Debian's `prometheus`)")
    });
    assert!(
        checked.status.success() && checked.stdout.is_empty() && checked.stderr.is_empty(),
        "{}\n{metrics}",
        text(&checked)
    );
    let (status, _) = served.terminate().await;
    assert!(status.success());
}

#[tokio::test]
async fn every_metric_the_dashboard_and_the_alerts_use_is_in_a_live_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let (served, metrics) = served_after_traffic(dir.path()).await;
    let live = sample_names(&metrics);

    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/switchboard.json")).unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push(target["expr"].as_str().expect("an expr").to_owned());
        }
    }
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        exprs.push(var["definition"].as_str().unwrap().to_owned());
    }
    let rules = read("deploy/prometheus/alerts.yml");
    let rule_exprs: Vec<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .map(str::to_owned)
        .collect();
    assert!(rule_exprs.len() >= 3, "{rules}");
    exprs.extend(rule_exprs);

    let mut used = BTreeSet::new();
    for expr in &exprs {
        used.extend(metric_names_in(expr));
    }
    assert!(used.len() >= 10, "{used:?}");
    let missing: Vec<&String> = used.iter().filter(|n| !live.contains(*n)).collect();
    assert!(missing.is_empty(), "not in /metrics: {missing:?}");
    served.terminate().await;
}

#[tokio::test]
async fn promtool_accepts_the_compose_prometheus_config_and_the_rules() {
    // Laid out as the compose file mounts them: side by side, so the
    // config's `rule_files: [alerts.yml]` is found and checked too.
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path();
    std::fs::write(etc.join("prometheus.yml"), read("deploy/prometheus.yml")).unwrap();
    std::fs::write(etc.join("alerts.yml"), read("deploy/prometheus/alerts.yml")).unwrap();
    let compose = read("docker-compose.yml");
    assert!(compose.contains("./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml"));

    let config = etc.join("prometheus.yml");
    let o = run(
        "promtool",
        &["check", "config", config.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("1 rule files found"),
        "{}",
        text(&o)
    );
    let rules = format!(
        "{}/deploy/prometheus/alerts.yml",
        env!("CARGO_MANIFEST_DIR")
    );
    let o = run("promtool", &["check", "rules", &rules], &[]).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("SUCCESS: 4 rules found"),
        "{}",
        text(&o)
    );
}

/// The compose file's `SWITCHBOARD_WEB_ALLOWED_HOSTS`, its `${VAR:-default}`
/// expanded as compose does when the variable is unset.
fn compose_allowed_hosts() -> String {
    let compose = read("docker-compose.yml");
    let value = compose
        .lines()
        .find_map(|l| l.trim().strip_prefix("SWITCHBOARD_WEB_ALLOWED_HOSTS:"))
        .expect("the compose file sets SWITCHBOARD_WEB_ALLOWED_HOSTS")
        .trim();
    let (before, rest) = value.split_once("${").unwrap_or((value, ""));
    let (inner, after) = rest.split_once('}').unwrap_or(("", rest));
    let default = inner.split_once(":-").map_or("", |(_, d)| d);
    format!("{before}{default}{after}")
}

#[tokio::test]
async fn with_allowed_hosts_set_health_probes_and_the_compose_scrape_answer() {
    let hosts = compose_allowed_hosts();
    assert!(
        hosts.split(',').any(|h| h.trim() == "switchboard"),
        "{hosts}"
    );
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        dir.path(),
        &[ServiceKind::Echo],
        &[("SWITCHBOARD_WEB_ALLOWED_HOSTS", &hosts)],
    )
    .await;
    let addr = web_addr(&served);

    // The Docker HEALTHCHECK: asks 127.0.0.1 by address.
    let o = run(BIN, &["health", &addr.to_string()], &[]).await;
    assert!(o.status.success(), "{}", text(&o));
    // Prometheus on the compose network, and a probe by loopback name.
    for (path, host) in [
        ("/metrics", "switchboard:8080"),
        ("/readyz", "switchboard:8080"),
        ("/healthz", "localhost"),
        ("/readyz", "127.0.0.1:8080"),
    ] {
        let r: RawReply = raw_request(addr, loopback(1), &get_with_host(path, host)).await;
        assert_eq!(r.status, 200, "{path} as {host}: {}", r.body);
    }
    // HAProxy's `option httpchk`: HTTP/1.0 with no `Host` at all. A
    // browser always sends one, so a page gets no further without it.
    for path in ["/healthz", "/readyz"] {
        let check = format!("GET {path} HTTP/1.0\r\n\r\n");
        let r: RawReply = raw_request(addr, loopback(1), &check).await;
        assert_eq!(r.status, 200, "{path} without a Host: {}", r.body);
    }
    let r = raw_request(addr, loopback(1), "GET /login HTTP/1.0\r\n\r\n").await;
    assert_eq!(r.status, 421, "a page without a Host: {}", r.body);
    // A name not in the list is still refused.
    let r = raw_request(
        addr,
        loopback(1),
        &get_with_host("/metrics", "evil.example"),
    )
    .await;
    assert_eq!(r.status, 421);
    served.terminate().await;
}

#[tokio::test]
async fn the_variables_kubernetes_injects_for_a_switchboard_service_do_not_stop_a_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![
        ("SWITCHBOARD_SERVICE_HOST", "10.96.0.10".to_owned()),
        ("SWITCHBOARD_SERVICE_PORT", "8080".to_owned()),
        ("SWITCHBOARD_SERVICE_PORT_WEB", "8080".to_owned()),
        ("SWITCHBOARD_PORT", "tcp://10.96.0.10:8080".to_owned()),
    ];
    let mut names = Vec::new();
    for (port, proto) in [(8080u16, "tcp"), (9000, "tcp"), (9001, "udp")] {
        let prefix = format!("SWITCHBOARD_PORT_{port}_{}", proto.to_uppercase());
        names.push((prefix.clone(), format!("{proto}://10.96.0.10:{port}")));
        names.push((format!("{prefix}_PROTO"), proto.to_owned()));
        names.push((format!("{prefix}_PORT"), port.to_string()));
        names.push((format!("{prefix}_ADDR"), "10.96.0.10".to_owned()));
    }
    let leaked: Vec<(String, String)> = names;
    for (k, v) in &leaked {
        env.push((k.as_str(), v.clone()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let served = Served::start(dir.path(), &[ServiceKind::Echo], &env).await;
    let addr = web_addr(&served);
    let r = raw_request(addr, loopback(1), &get_request("/readyz")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (status, stderr) = served.terminate().await;
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("SWITCHBOARD_PORT_8080_TCP"),
        "a warning names the variable: {stderr}"
    );
}

#[tokio::test]
async fn the_access_log_has_one_line_per_request_and_probes_only_at_debug() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(
        dir.path(),
        &[ServiceKind::Echo],
        &[
            ("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("RUST_LOG", "switchboard=info"),
        ],
    )
    .await;
    let addr = web_addr(&served);
    let cookie = sign_in(addr).await;
    let signed = format!(
        "GET /api/v1/services/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\
         Connection: close\r\n\r\n"
    );
    assert_eq!(raw_request(addr, loopback(1), &signed).await.status, 200);
    // A path with a quote and a backslash: peer text, escaped in the log.
    let odd = raw_request(addr, loopback(1), &get_request("/odd\"path\\x")).await;
    assert_eq!(odd.status, 404);
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            raw_request(addr, loopback(1), &get_request(path))
                .await
                .status,
            200
        );
    }
    let (status, stderr) = served.terminate().await;
    assert!(status.success());
    let access: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("switchboard::web::access"))
        .collect();
    assert_eq!(access.len(), 3, "{stderr}");
    assert!(access.iter().all(|l| l.contains("INFO")), "{access:#?}");
    assert!(
        access[0].contains("method=\"POST\"")
            && access[0].contains("route=/api/v1/session")
            && access[0].contains("status=200")
            && access[0].contains("user=-"),
        "{}",
        access[0]
    );
    assert!(
        access[1].contains("route=/api/v1/services/{name}")
            && access[1].contains("status=200")
            && access[1].contains("user=admin")
            && access[1].contains("ms="),
        "{}",
        access[1]
    );
    assert!(
        access[2].contains(r#"route=/odd\"path\\x"#) && access[2].contains("status=404"),
        "{}",
        access[2]
    );
}

#[test]
fn the_kubernetes_manifests_carry_every_port_the_probes_and_the_hardening() {
    let service = read("deploy/k8s/service.yaml");
    let deployment = read("deploy/k8s/deployment.yaml");
    let mut ports = vec![(8080u16, Proto::Tcp)];
    ports.extend(
        ServiceKind::BUILTIN
            .iter()
            .map(|k| (k.builtin_port().expect("a built-in instance"), k.proto())),
    );
    for (port, proto) in ports {
        let proto = match proto {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        };
        for (file, text, key) in [
            ("service.yaml", &service, "port"),
            ("deployment.yaml", &deployment, "containerPort"),
        ] {
            let needle = format!("{key}: {port}\n");
            let at = text
                .find(&needle)
                .unwrap_or_else(|| panic!("{file} lacks {needle:?}"));
            let after = &text[at..];
            let next_proto = after.find("protocol: ").map(|i| &after[i + 10..i + 13]);
            assert_eq!(next_proto, Some(proto), "{file}: port {port}");
        }
    }
    for needle in [
        "enableServiceLinks: false",
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "drop: [\"ALL\"]",
        "path: /healthz",
        "path: /readyz",
        "claimName: switchboard-data",
        "prometheus.io/scrape: \"true\"",
        "prometheus.io/port: \"8080\"",
        "limits:",
    ] {
        assert!(
            deployment.contains(needle),
            "deployment.yaml lacks {needle}"
        );
    }
}

#[test]
fn the_configmap_toml_is_a_valid_switchboard_config() {
    let configmap = read("deploy/k8s/configmap.yaml");
    let start = configmap
        .find("switchboard.toml: |\n")
        .expect("a switchboard.toml key")
        + "switchboard.toml: |\n".len();
    let toml: String = configmap[start..]
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    let path = std::path::Path::new("/etc/switchboard/switchboard.toml");
    let config = Config::resolve(
        Some(FileSource { path, text: &toml }),
        &Default::default(),
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert_eq!(config.data_dir, std::path::Path::new("/data"));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn the_compose_scrape_speaks_the_dashboards_scheme() {
    let compose = read("docker-compose.yml");
    let prometheus = read("deploy/prometheus.yml");
    let https = compose.contains("SWITCHBOARD_WEB_TLS: self-signed")
        || compose.contains("SWITCHBOARD_WEB_TLS: files");
    assert_eq!(
        prometheus.contains("scheme: https"),
        https,
        "the compose dashboard is {} but Prometheus scrapes it the other way",
        if https { "HTTPS" } else { "plain HTTP" }
    );
}
