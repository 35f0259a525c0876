//! The Docker image's contract, checked without a container engine (none
//! runs on these machines, and base images cannot be pulled): the real
//! binary is run with exactly the final stage's `ENV`, as its `USER`, in its
//! `WORKDIR`, on a fresh directory in place of its `VOLUME`. Every `EXPOSE`d
//! port must answer its own protocol, the `HEALTHCHECK` command must pass
//! (also with `SWITCHBOARD_WEB_ALLOWED_HOSTS` set, as the README's Docker
//! section advises), a restart on the same data must keep accounts, key and
//! files (and its certificate), and nothing in the data directory may be
//! readable by others.
//!
//! It binds the image's fixed ports (8080, 9000–9006) on 0.0.0.0, as the
//! container does, and talks to them on 127.0.0.1 only.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::guard;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The final stage's instructions.
fn final_stage() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    common::dockerfile::final_stage(&text)
}

/// The arguments of every `WORD ...` instruction.
fn args_of(stage: &[String], word: &str) -> Vec<String> {
    stage
        .iter()
        .filter_map(|i| i.strip_prefix(&format!("{word} ")))
        .map(|a| a.trim().to_owned())
        .collect()
}

struct Image {
    env: Vec<(String, String)>,
    uid: u32,
    gid: u32,
    volume: String,
    exposed: Vec<(u16, String)>,
    healthcheck: Vec<String>,
}

fn image() -> Image {
    let stage = final_stage();
    let env = args_of(&stage, "ENV")
        .iter()
        .flat_map(|a| a.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .map(|pair| {
            let (k, v) = pair.split_once('=').expect("ENV KEY=VALUE");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let user = args_of(&stage, "USER").pop().expect("a USER");
    let (uid, gid) = user.split_once(':').expect("USER uid:gid");
    let exposed = args_of(&stage, "EXPOSE")
        .iter()
        .flat_map(|a| a.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .map(|p| {
            let (port, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
            (port.parse().unwrap(), proto.to_owned())
        })
        .collect();
    let healthcheck = args_of(&stage, "HEALTHCHECK").pop().expect("a HEALTHCHECK");
    let cmd = healthcheck
        .split("CMD ")
        .nth(1)
        .expect("HEALTHCHECK ... CMD [...]");
    let healthcheck: Vec<String> = serde_json::from_str(cmd.trim()).expect("CMD in exec form");
    Image {
        env,
        uid: uid.parse().unwrap(),
        gid: gid.parse().unwrap(),
        volume: args_of(&stage, "VOLUME").pop().expect("a VOLUME"),
        exposed,
        healthcheck,
    }
}

/// A command as the container would run it: the image's environment with
/// the volume at `data`, as its user, in `data`, `switchboard` on PATH.
fn contained(
    image: &Image,
    data: &Path,
    program_args: &[String],
    extra: &[(&str, &str)],
) -> tokio::process::Command {
    let exe = env!("CARGO_BIN_EXE_switchboard");
    let bin_dir = Path::new(exe).parent().unwrap();
    let program = match program_args[0].as_str() {
        "switchboard" => exe.to_owned(),
        other => other.to_owned(),
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&program_args[1..])
        .env_clear()
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir.display()),
        )
        .current_dir(data)
        .kill_on_drop(true);
    for (k, v) in &image.env {
        let v = if *v == image.volume {
            data.to_str().unwrap().to_owned()
        } else {
            v.clone()
        };
        cmd.env(k, v);
    }
    cmd.envs(extra.iter().copied());
    if is_root() {
        cmd.uid(image.uid).gid(image.gid);
    } else {
        common::skip_allowed("ROOT", "running as the image's USER needs root");
    }
    cmd
}

/// `switchboard serve` (the image's ENTRYPOINT + CMD) until its banner is out.
async fn start(
    image: &Image,
    data: &Path,
    extra: &[(&str, &str)],
) -> (tokio::process::Child, Vec<String>) {
    let mut cmd = contained(image, data, &["switchboard".into(), "serve".into()], extra);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("the binary starts");
    let banner = common::read_banner(&mut child).await;
    (child, banner)
}

async fn stop(mut child: tokio::process::Child) {
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = guard("exit", child.wait()).await.unwrap();
    assert!(status.success(), "{status:?}");
}

/// Checks that `port` answers the protocol its service speaks; `web_tls`
/// is the dashboard's certificate when it speaks HTTPS.
async fn answers(port: u16, proto: &str, web_tls: Option<&Path>) {
    let at = ("127.0.0.1", port);
    match (port, proto) {
        (8080, "tcp") if web_tls.is_some() => {
            let pin = switchboard::tls::pin_of_file(web_tls.unwrap()).unwrap();
            let tls = switchboard::tls::ClientTls::new(&switchboard::tls::Trust::Pin(pin)).unwrap();
            let addr = format!("127.0.0.1:{port}");
            switchboard::client::health::check(&addr, common::GUARD, Some(&tls))
                .await
                .expect("/healthz over HTTPS");
        }
        (8080, "tcp") => {
            let mut s = TcpStream::connect(at).await.unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut reply = String::new();
            guard("http", s.read_to_string(&mut reply)).await.unwrap();
            assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        }
        (9000, "tcp") => {
            let mut s = TcpStream::connect(at).await.unwrap();
            s.write_all(b"hello").await.unwrap();
            let mut reply = [0u8; 5];
            guard("echo", s.read_exact(&mut reply)).await.unwrap();
            assert_eq!(&reply, b"HELLO");
        }
        (9001 | 9002, "udp") => {
            let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            s.connect(at).await.unwrap();
            s.send(if port == 9001 { b"hi" } else { b"%Y" })
                .await
                .unwrap();
            let mut reply = [0u8; 64];
            let n = guard("udp", s.recv(&mut reply)).await.unwrap();
            if port == 9001 {
                assert_eq!(&reply[..n], b"HI");
            } else {
                assert_eq!(n, 4, "a year: {:?}", &reply[..n]);
            }
        }
        (9003 | 9004, "tcp") => {
            // exec and files open with a 32-byte challenge.
            let mut s = TcpStream::connect(at).await.unwrap();
            let mut challenge = [0u8; 32];
            guard("challenge", s.read_exact(&mut challenge))
                .await
                .unwrap();
        }
        (9005, "tcp") => {
            let mut s = TcpStream::connect(at).await.unwrap();
            let body = b"kept across restarts";
            let header =
                switchboard::wire::classic::encode(b"kept.txt", body.len() as i64).unwrap();
            s.write_all(&header).await.unwrap();
            s.write_all(body).await.unwrap();
            s.shutdown().await.unwrap();
            let mut rest = Vec::new();
            guard("files-classic closes", s.read_to_end(&mut rest))
                .await
                .unwrap();
        }
        (9006, "tcp") => {
            let mut s = TcpStream::connect(at).await.unwrap();
            let mut prompt = [0u8; 10];
            guard("login prompt", s.read_exact(&mut prompt))
                .await
                .unwrap();
            assert_eq!(&prompt, b"username: ");
        }
        other => panic!("EXPOSE {other:?} has no check here: add one"),
    }
}

/// What the README's Docker section runs: the `-e NAME='value'` of its
/// `docker run`, and each `docker exec switchboard ...` command.
struct ReadmeDocker {
    run_env: Vec<(String, String)>,
    exec: Vec<Vec<String>>,
}

fn readme_docker() -> ReadmeDocker {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## Docker\n")
        .nth(1)
        .expect("a Docker section");
    // The block's info string carries its docs-test tag (`sh norun: ...`).
    let block = section
        .split("```sh")
        .nth(1)
        .unwrap()
        .split_once('\n')
        .expect("a fence line")
        .1
        .split("```")
        .next()
        .unwrap();
    let joined = block.replace("\\\n", " ");
    let mut out = ReadmeDocker {
        run_env: Vec::new(),
        exec: Vec::new(),
    };
    for line in joined.lines().map(str::trim) {
        if line.starts_with("docker run ") {
            let mut rest = line;
            while let Some(at) = rest.find("-e ") {
                rest = &rest[at + 3..];
                let (name, value) = rest.split_once('=').unwrap();
                let value = value.strip_prefix('\'').unwrap();
                let end = value.find('\'').unwrap();
                out.run_env.push((name.to_owned(), value[..end].to_owned()));
                rest = &value[end..];
            }
        } else if let Some(command) = line.strip_prefix("docker exec switchboard ") {
            out.exec
                .push(command.split_whitespace().map(str::to_owned).collect());
        }
    }
    assert!(!out.run_env.is_empty() && !out.exec.is_empty(), "{block}");
    out
}

/// Whether this test runs as root (the owner of its own /proc entry).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// Paths under `dir` that other users could read (or enter).
fn readable_by_others(dir: &Path) -> Vec<String> {
    let mut open = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.permissions().mode() & 0o007 != 0 {
            open.push(format!(
                "{} {:o}",
                path.display(),
                meta.permissions().mode() & 0o777
            ));
        }
        if meta.is_dir() {
            open.extend(readable_by_others(&path));
        }
    }
    open
}

#[tokio::test]
async fn the_image_runs_as_its_dockerfile_says() {
    let image = image();
    assert_eq!(image.volume, "/data");
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    // As the Dockerfile makes /data: owned by the image's user.
    std::fs::create_dir(&data).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&data, Some(image.uid), Some(image.gid)).unwrap();
        // The test's temp folder must let that user through to it.
        std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // The README's Docker section, run as written: its `docker run -e`
    // values, then its `docker exec` command inside the "container".
    let readme = readme_docker();
    let run_env: Vec<(&str, &str)> = readme
        .run_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert!(
        run_env
            .iter()
            .any(|(k, _)| *k == "SWITCHBOARD_ADMIN_PASSWORD")
    );
    let (child, banner) = start(&image, &data, &run_env).await;
    assert!(
        banner.iter().any(|l| l.starts_with("accounts:")),
        "{banner:?}"
    );
    let tls_on = image
        .env
        .iter()
        .any(|(k, v)| k == "SWITCHBOARD_WEB_TLS" && v != "off");
    let cert = switchboard::tls::self_signed_files(&data).cert;
    for (port, proto) in &image.exposed {
        answers(*port, proto, tls_on.then_some(cert.as_path())).await;
    }
    // The HEALTHCHECK, as the engine runs it inside the container.
    for extra in [
        &[][..],
        &[("SWITCHBOARD_WEB_ALLOWED_HOSTS", "switchboard.example")][..],
    ] {
        let out = contained(&image, &data, &image.healthcheck, extra)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for command in &readme.exec {
        let out = contained(&image, &data, command, &run_env)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stop(child).await;

    // Without SWITCHBOARD_KEY the key is generated into the volume, and the
    // clients in the container find it there.
    let (child, banner) = start(&image, &data, &[]).await;
    assert!(banner.last().unwrap().contains("(1 account;"), "{banner:?}");
    for command in &readme.exec {
        let out = contained(&image, &data, command, &[])
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stop(child).await;
    let key = std::fs::read(data.join("key")).expect("a key kept in the volume");
    let certificate = tls_on.then(|| std::fs::read(&cert).expect("the certificate in the volume"));

    // A restart on the same volume keeps accounts, key, certificate and files.
    let (child, banner) = start(&image, &data, &[]).await;
    assert!(banner.last().unwrap().contains("(1 account;"), "{banner:?}");
    stop(child).await;
    assert_eq!(std::fs::read(data.join("key")).unwrap(), key);
    if let Some(certificate) = certificate {
        assert_eq!(
            std::fs::read(&cert).unwrap(),
            certificate,
            "the same certificate"
        );
    }
    assert_eq!(
        std::fs::read(data.join("files/new_kept.txt")).unwrap(),
        b"kept across restarts"
    );
    assert_eq!(readable_by_others(&data), Vec::<String>::new());
}
