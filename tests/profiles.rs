//! Every shipped profile, run end to end with one scenario: the defaults
//! (`switchboard serve`), the Docker image (the Dockerfile's final `ENV`,
//! `USER`, `WORKDIR` and `HEALTHCHECK`), docker-compose.yml (the image plus
//! the compose `environment`, interpolated as compose does), the systemd unit
//! (`Environment=`, `ExecStart=`, `WorkingDirectory=`) and Kubernetes (the
//! image plus the Deployment's `env` with the Secret's values, the ConfigMap
//! as the config file, `runAsUser`, each probe performed as the kubelet
//! performs it from its spec, and the `prometheus.io/*` annotations scraped
//! as written).
//!
//! The profiles are read from their files, never copied here, so a file that
//! drifts (a probe on the wrong scheme, a variable renamed) fails. What the
//! test changes is where things live: paths under `/data`,
//! `/var/lib/switchboard` and `/etc/switchboard` move into a temp folder,
//! and every port moves by `--port-base` (`SWITCHBOARD_PORT_BASE`) (a container's port mapping: the
//! probe of container port 8080 dials base+80, of 9000+i base+i).
//!
//! The scenario: /healthz and /readyz, a sign-in, every built-in service
//! through its CLI client, `service list/add/rm` with a token, a capture
//! export, and /metrics through `promtool check metrics`. YAML is read by
//! Python's PyYAML (installed with kubernetes-validate by scripts/test.sh);
//! curl and promtool are installed there too.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::guard;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const PASSWORD: &str = "profiles-admin-password";

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every document of a YAML file, as JSON (PyYAML does the reading).
fn yaml(path: &str) -> Vec<Value> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, yaml, json; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(format!("{ROOT}/{path}"))
        .output()
        .expect("python3 (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "PyYAML reads {path} (scripts/test.sh installs it with kubernetes-validate): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A way to run switchboard, as its files say.
#[derive(Default)]
struct Profile {
    name: &'static str,
    env: BTreeMap<String, String>,
    /// The arguments after the program.
    args: Vec<String>,
    /// The user to run as (the image's `USER`, the pod's `runAsUser`).
    user: Option<(u32, u32)>,
    /// Kubelet-style probes: (scheme, container port, path, Host header).
    probes: Vec<(String, u16, String, Option<String>)>,
    /// A scrape as annotated: (scheme, container port, path).
    scrape: Option<(String, u16, String)>,
    /// The image's HEALTHCHECK command, run inside the "container".
    healthcheck: Option<Vec<String>>,
}

/// Remaps the profile's absolute paths into `dir`.
fn remap(value: &str, dir: &Path) -> String {
    let mut v = value.to_owned();
    for (from, to) in [
        ("/var/lib/switchboard", "data"),
        ("/etc/switchboard", "etc"),
        ("/data", "data"),
    ] {
        if v == from || v.starts_with(&format!("{from}/")) {
            v = format!("{}{}", dir.join(to).display(), &v[from.len()..]);
        }
    }
    v
}

/// The Dockerfile's final stage: ENV, USER and HEALTHCHECK.
fn image(dir: &Path) -> Profile {
    let text = read("Dockerfile");
    let stage = common::dockerfile::final_stage(&text);
    let args = |word: &str| -> Vec<String> {
        stage
            .iter()
            .filter_map(|i| i.strip_prefix(&format!("{word} ")))
            .map(|a| a.trim().to_owned())
            .collect()
    };
    let mut p = Profile {
        name: "image",
        ..Profile::default()
    };
    for pair in args("ENV").iter().flat_map(|a| a.split_whitespace()) {
        let (k, v) = pair.split_once('=').expect("ENV KEY=VALUE");
        p.env.insert(k.to_owned(), remap(v, dir));
    }
    let user = args("USER").pop().expect("a USER");
    let (uid, gid) = user.split_once(':').expect("USER uid:gid");
    p.user = Some((uid.parse().unwrap(), gid.parse().unwrap()));
    let entry: Vec<String> =
        serde_json::from_str(&args("ENTRYPOINT").pop().expect("an ENTRYPOINT")).unwrap();
    let cmd: Vec<String> = serde_json::from_str(&args("CMD").pop().expect("a CMD")).unwrap();
    assert_eq!(entry, ["switchboard"]);
    p.args = cmd;
    let health = args("HEALTHCHECK").pop().expect("a HEALTHCHECK");
    let health = health.split("CMD ").nth(1).expect("HEALTHCHECK ... CMD");
    p.healthcheck = Some(serde_json::from_str(health.trim()).unwrap());
    p
}

/// `${NAME:?msg}` and `${NAME:-default}` as compose interpolates them,
/// from `shell`.
fn interpolate(value: &str, shell: &BTreeMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find('}').expect("a closing }") + at;
        let inner = &rest[at + 2..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner.split(":?").next().unwrap(), None),
        };
        match (shell.get(name), default) {
            (Some(v), _) => out.push_str(v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => panic!("compose needs {name} set: {value}"),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn compose(dir: &Path) -> Profile {
    let mut p = image(dir);
    p.name = "compose";
    let doc = &yaml("docker-compose.yml")[0];
    let env = doc["services"]["switchboard"]["environment"]
        .as_object()
        .expect("services.switchboard.environment as a map");
    let shell = BTreeMap::from([("SWITCHBOARD_ADMIN_PASSWORD", PASSWORD)]);
    for (k, v) in env {
        let v = v.as_str().expect("text values");
        p.env.insert(k.clone(), interpolate(v, &shell));
    }
    p
}

fn systemd(dir: &Path) -> Profile {
    let mut p = Profile {
        name: "systemd",
        ..Profile::default()
    };
    for line in read("deploy/switchboard.service").lines() {
        if let Some(pair) = line.strip_prefix("Environment=") {
            let (k, v) = pair.split_once('=').expect("Environment=KEY=VALUE");
            p.env.insert(k.to_owned(), remap(v, dir));
        } else if let Some(cmd) = line.strip_prefix("ExecStart=") {
            let mut words = cmd.split_whitespace();
            assert_eq!(words.next(), Some("/usr/local/bin/switchboard"));
            p.args = words.map(|w| remap(w, dir)).collect();
        } else if let Some(cred) = line.strip_prefix("LoadCredential=") {
            // systemd copies the file into $CREDENTIALS_DIRECTORY.
            let (name, _) = cred.split_once(':').expect("LoadCredential=NAME:PATH");
            let creds = dir.join("credentials");
            std::fs::create_dir_all(&creds).unwrap();
            std::fs::write(creds.join(name), format!("{PASSWORD}\n")).unwrap();
            p.env
                .insert("CREDENTIALS_DIRECTORY".into(), creds.display().to_string());
        }
    }
    // `%d` is the credentials directory.
    if let Some(creds) = p.env.get("CREDENTIALS_DIRECTORY").cloned() {
        for v in p.env.values_mut() {
            *v = v.replace("%d", &creds);
        }
    } else {
        p.env
            .insert("SWITCHBOARD_ADMIN_PASSWORD".into(), PASSWORD.into());
    }
    p
}

fn kubernetes(dir: &Path) -> Profile {
    let mut p = image(dir);
    p.name = "kubernetes";
    let deployment = &yaml("deploy/k8s/deployment.yaml")[0];
    let secret = &yaml("deploy/k8s/secret.yaml")[0]["stringData"];
    let configmap = &yaml("deploy/k8s/configmap.yaml")[0]["data"];
    let pod = &deployment["spec"]["template"];
    let security = &pod["spec"]["securityContext"];
    let container = &pod["spec"]["containers"][0];
    p.user = Some((
        security["runAsUser"].as_u64().unwrap() as u32,
        security["runAsGroup"].as_u64().unwrap() as u32,
    ));
    p.args = serde_json::from_value(container["args"].clone()).unwrap();
    // The ConfigMap, mounted where its volume says.
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "config")
        .expect("the config volume mounted");
    let folder = PathBuf::from(remap(mount["mountPath"].as_str().unwrap(), dir));
    std::fs::create_dir_all(&folder).unwrap();
    for (file, text) in configmap.as_object().unwrap() {
        let text = text
            .as_str()
            .unwrap()
            .replace("\"/data\"", &format!("{:?}", remap("/data", dir)));
        std::fs::write(folder.join(file), text).unwrap();
    }
    for var in container["env"].as_array().unwrap() {
        let name = var["name"].as_str().unwrap().to_owned();
        let value = match var["value"].as_str() {
            Some(v) => remap(v, dir),
            None => {
                let key = var["valueFrom"]["secretKeyRef"]["key"].as_str().unwrap();
                secret[key]
                    .as_str()
                    .expect("the Secret has the key")
                    .to_owned()
            }
        };
        p.env.insert(name, value);
    }
    let ports: BTreeMap<String, u16> = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|port| {
            let n = port["containerPort"].as_u64().unwrap() as u16;
            (port["name"].as_str().unwrap().to_owned(), n)
        })
        .collect();
    let port_of = |v: &Value| match v {
        Value::String(name) => ports[name],
        v => v.as_u64().unwrap() as u16,
    };
    for probe in ["livenessProbe", "readinessProbe"] {
        let get = &container[probe]["httpGet"];
        let host = get["httpHeaders"].as_array().and_then(|h| {
            h.iter()
                .find(|h| {
                    h["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case("host"))
                })
                .map(|h| h["value"].as_str().unwrap().to_owned())
        });
        p.probes.push((
            get["scheme"].as_str().unwrap_or("HTTP").to_lowercase(),
            port_of(&get["port"]),
            get["path"].as_str().unwrap().to_owned(),
            host,
        ));
    }
    let notes = &pod["metadata"]["annotations"];
    assert_eq!(notes["prometheus.io/scrape"], "true");
    p.scrape = Some((
        notes["prometheus.io/scheme"]
            .as_str()
            .unwrap_or("http")
            .to_owned(),
        notes["prometheus.io/port"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
        notes["prometheus.io/path"]
            .as_str()
            .unwrap_or("/metrics")
            .to_owned(),
    ));
    p
}

/// A base port whose services' ports (base..base+6) and dashboard port
/// (base+80) are free now.
fn free_base() -> u16 {
    (0..200)
        .map(|i| 21000 + i * 97)
        .find(|base| {
            (0..7)
                .chain([80])
                .all(|o| std::net::TcpListener::bind(("0.0.0.0", base + o)).is_ok())
        })
        .expect("a free port range")
}

/// Where a container port is reached from here (`--port-base` mapping).
fn host_port(base: u16, container: u16) -> u16 {
    match container {
        8080 => base + 80,
        p => base + (p - 9000),
    }
}

/// A command run as the profile runs things: its env (on an empty one), its
/// user, in its data folder.
fn command(p: &Profile, dir: &Path, program_args: &[String]) -> tokio::process::Command {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let program = match program_args[0].as_str() {
        "switchboard" => BIN.to_owned(),
        other => other.to_owned(),
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&program_args[1..])
        .env_clear()
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir.display()),
        )
        .envs(&p.env)
        .current_dir(dir.join("data"))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some((uid, gid)) = p.user {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// `switchboard ARGS` in the profile; its stdout, asserting success.
async fn client(p: &Profile, dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut all = vec!["switchboard".to_owned()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let mut cmd = command(p, dir, &all);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("the client starts");
    if let Some(text) = stdin {
        use tokio::io::AsyncWriteExt;
        let mut input = child.stdin.take().unwrap();
        input.write_all(text.as_bytes()).await.unwrap();
    }
    let out = guard("the client", child.wait_with_output()).await.unwrap();
    assert!(
        out.status.success(),
        "{}: switchboard {args:?}: {}",
        p.name,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// curl (status code, body): `-k` as a kubelet or the annotations' scraper
/// (which verify nothing), else trusting the dashboard's own certificate.
async fn curl(url: &str, extra: &[&str], cert: Option<&Path>) -> (u16, String) {
    let mut cmd = tokio::process::Command::new("curl");
    cmd.args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"]);
    if let Some(cert) = cert {
        cmd.arg("--cacert").arg(cert);
    }
    let out = guard("curl", cmd.args(extra).arg(url).output())
        .await
        .expect("curl (scripts/test.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

async fn promtool_check(p: &Profile, metrics: &str) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/test.sh installs it)");
    let mut input = child.stdin.take().unwrap();
    input.write_all(metrics.as_bytes()).await.unwrap();
    drop(input);
    let out = guard("promtool", child.wait_with_output()).await.unwrap();
    assert!(
        out.status.success(),
        "{}: promtool: {}{}",
        p.name,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts the profile on a fresh data folder under `dir`, runs the
/// scenario, stops it with SIGTERM.
async fn run_profile(p: &mut Profile, dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    if let Some((uid, gid)) = p.user {
        if !is_root() && common::skip_allowed("ROOT", "running as the profile's user needs root") {
            return;
        }
        std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
    }
    let base = free_base();
    // The port mapping, for the server and every command run beside it (the
    // HEALTHCHECK's `health` finds the dashboard the same way).
    p.env
        .insert("SWITCHBOARD_PORT_BASE".into(), base.to_string());
    let p = &*p;
    // Where the profile's user may write.
    let ready_file = data.join("ready.json");
    let mut args = vec!["switchboard".to_owned()];
    args.extend(p.args.iter().cloned());
    args.extend(["--ready-file".to_owned(), ready_file.display().to_string()]);
    let mut server = command(p, dir, &args);
    server.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = server.spawn().expect("the server starts");
    let banner = common::read_banner(&mut child).await;
    let ready: Value = serde_json::from_slice(&std::fs::read(&ready_file).unwrap()).unwrap();
    let password = banner
        .last()
        .and_then(|l| l.strip_prefix("sign in as:  admin / "))
        .and_then(|l| l.split_whitespace().next())
        .or_else(|| p.env.get("SWITCHBOARD_ADMIN_PASSWORD").map(String::as_str))
        .unwrap_or(PASSWORD)
        .to_owned();
    let url = ready["web"]
        .as_str()
        .expect("the dashboard runs")
        .trim_end_matches('/');
    let cert = banner.iter().find_map(|l| {
        let rest = l.strip_prefix("TLS (web")?.split_once("): ")?.1;
        Some(PathBuf::from(rest.split(" (").next()?))
    });
    let cert = cert.as_deref();
    let addr = |name: &str| {
        let entry = &ready["services"][name];
        assert_eq!(entry["state"], "running", "{}: {name}: {ready}", p.name);
        entry["addr"]
            .as_str()
            .unwrap()
            .replace("0.0.0.0", "127.0.0.1")
    };
    let name = p.name;

    for path in ["/healthz", "/readyz"] {
        let (code, body) = curl(&format!("{url}{path}"), &[], cert).await;
        assert_eq!(code, 200, "{name}: {path}: {body}");
    }
    // As the kubelet probes: its scheme, the container port, its path and
    // Host header, no certificate check; 200–399 is a success.
    for (scheme, port, path, host) in &p.probes {
        let probe = format!("{scheme}://127.0.0.1:{}{path}", host_port(base, *port));
        let mut extra = vec!["-k".to_owned()];
        if let Some(host) = host {
            extra.extend(["-H".to_owned(), format!("Host: {host}")]);
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let (code, body) = curl(&probe, &extra, None).await;
        assert!(
            (200..400).contains(&code),
            "{name}: probe {probe}: {code} {body}"
        );
    }
    if let Some(check) = &p.healthcheck {
        let out = command(p, dir, check).output().await.unwrap();
        assert!(
            out.status.success(),
            "{name}: HEALTHCHECK {check:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let sign_in = serde_json::json!({"username": "admin", "password": password}).to_string();
    let (code, body) = curl(
        &format!("{url}/api/v1/session"),
        &["-H", "Content-Type: application/json", "-d", &sign_in],
        cert,
    )
    .await;
    assert_eq!(code, 200, "{name}: sign-in: {body}");

    // Every built-in service through its client.
    let c = |args: Vec<String>, stdin: Option<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        client(p, dir, &args, stdin.as_deref()).await
    };
    let v = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        c(v(&["echo", &addr("echo"), "hello"]), None).await,
        "HELLO\n"
    );
    assert_eq!(c(v(&["udp", &addr("udp-echo"), "hi"]), None).await, "HI\n");
    assert_eq!(c(v(&["time", &addr("time"), "%Y"]), None).await.len(), 5);
    let exec = c(
        v(&["exec", &addr("exec"), "--", "echo", "from", name]),
        None,
    )
    .await;
    assert_eq!(exec, format!("from {name}\n"));
    let upload = dir.join("up.txt");
    std::fs::write(&upload, format!("uploaded by {name}")).unwrap();
    let upload = upload.to_str().unwrap();
    c(v(&["put", &addr("files"), upload]), None).await;
    assert!(
        c(v(&["list", &addr("files")]), None)
            .await
            .contains("up.txt")
    );
    c(v(&["get", &addr("files"), "up.txt", "-o", "got.txt"]), None).await;
    assert_eq!(
        std::fs::read_to_string(data.join("got.txt")).unwrap(),
        format!("uploaded by {name}")
    );
    c(
        v(&["put", "--classic", &addr("files-classic"), upload]),
        None,
    )
    .await;
    let login = v(&["login", &addr("login"), "--user", "admin"]);
    c(login, Some(format!("{password}\n"))).await;

    // `service` with a token, against the dashboard as configured.
    let token = c(v(&["token", "create", "profile", "--role", "admin"]), None).await;
    let token = token.trim();
    let web = url.split("://").nth(1).unwrap();
    let api = |args: &[&str]| {
        let mut all = v(args);
        all.extend(v(&["--url", web, "--token", token]));
        all
    };
    assert!(c(api(&["service", "list"]), None).await.contains("echo "));
    let add = [
        "service",
        "add",
        "echo-extra",
        "--kind",
        "echo",
        "--setting",
        "listen=127.0.0.1:0",
    ];
    c(api(&add), None).await;
    c(api(&["service", "rm", "echo-extra"]), None).await;

    // A capture, exported.
    let auth = format!("Authorization: Bearer {token}");
    let on = [
        "-X",
        "PUT",
        "-H",
        &auth,
        "-H",
        "Content-Type: application/json",
    ];
    let on: Vec<&str> = on
        .into_iter()
        .chain(["-d", r#"{"capture": true}"#])
        .collect();
    let (code, body) = curl(&format!("{url}/api/v1/services/echo/capture"), &on, cert).await;
    assert_eq!(code, 200, "{name}: capture on: {body}");
    assert_eq!(c(v(&["echo", &addr("echo"), "seen"]), None).await, "SEEN\n");
    let export = format!("{url}/api/v1/services/echo/capture.pcapng");
    let (code, body) = curl(&export, &["-H", &auth], cert).await;
    assert_eq!(code, 200, "{name}: export");
    assert!(
        body.starts_with("\n\r\r\n"),
        "{name}: a pcapng section header"
    );

    let (code, metrics) = curl(&format!("{url}/metrics"), &[], cert).await;
    assert_eq!(code, 200, "{name}: /metrics");
    promtool_check(p, &metrics).await;
    // As the annotations say: no certificate check (the scrape job's
    // `insecure_skip_verify`).
    if let Some((scheme, port, path)) = &p.scrape {
        let at = format!("{scheme}://127.0.0.1:{}{path}", host_port(base, *port));
        let (code, metrics) = curl(&at, &["-k"], None).await;
        assert_eq!(code, 200, "{name}: annotated scrape {at}");
        promtool_check(p, &metrics).await;
    }

    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = guard("the server exits", child.wait()).await.unwrap();
    assert!(status.success(), "{name}: {status:?}");
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// One after the other: they share the port-mapping scheme, and on two
/// cores one at a time is quicker than five at once.
#[tokio::test]
async fn every_shipped_profile_passes_the_one_scenario() {
    let defaults = |_: &Path| Profile {
        name: "defaults",
        args: vec!["serve".into()],
        ..Profile::default()
    };
    let profiles: [fn(&Path) -> Profile; 5] = [defaults, image, compose, systemd, kubernetes];
    for make in profiles {
        let dir = tempfile::tempdir().unwrap();
        let mut profile = make(dir.path());
        let started = std::time::Instant::now();
        run_profile(&mut profile, dir.path()).await;
        eprintln!(
            "profile {}: passed in {:?}",
            profile.name,
            started.elapsed()
        );
    }
}
