//! The Docker files agree with the services: no Docker engine runs here, so
//! the image is checked by reading it (and linted by hadolint in the test
//! command). A service added without its port, its 0.0.0.0 listen or its
//! compose mapping fails here.

mod common;

use switchboard::config::{Config, env_name};
use switchboard::kind::{Proto, ServiceKind};

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

use common::dockerfile::{final_stage, instructions};

#[test]
fn every_port_is_exposed_bound_to_all_interfaces_and_published() {
    let dockerfile = read("Dockerfile");
    let stage = final_stage(&dockerfile);
    let expose: Vec<&str> = stage
        .iter()
        .filter_map(|i| i.strip_prefix("EXPOSE "))
        .flat_map(str::split_whitespace)
        .collect();
    let env: String = stage
        .iter()
        .filter_map(|i| i.strip_prefix("ENV "))
        .collect::<Vec<_>>()
        .join(" ");
    let compose = read("docker-compose.yml");
    let defaults = Config::default();

    let mut ports = vec![(
        "web.listen".to_owned(),
        defaults.web.listen.port(),
        Proto::Tcp,
    )];
    for kind in ServiceKind::BUILTIN {
        ports.push((
            format!("services.{kind}.listen"),
            kind.builtin_port().expect("a built-in instance"),
            kind.proto(),
        ));
    }
    for (key, port, proto) in ports {
        let proto = match proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        };
        assert!(
            expose.contains(&format!("{port}/{proto}").as_str()),
            "EXPOSE lacks {port}/{proto} ({key}): {expose:?}"
        );
        let var = format!("{}=0.0.0.0:{port}", env_name(&key));
        assert!(env.contains(&var), "ENV lacks {var}");
        let published = match proto {
            "udp" => format!("\"127.0.0.1:{port}:{port}/udp\""),
            _ => format!("\"127.0.0.1:{port}:{port}\""),
        };
        assert!(
            compose.contains(&published),
            "docker-compose.yml does not publish {published}"
        );
    }
    assert_eq!(expose.len(), ServiceKind::BUILTIN.len() + 1, "{expose:?}");
    assert!(env.contains("SWITCHBOARD_DATA_DIR=/data"), "{env}");
}

#[test]
fn the_image_runs_unprivileged_with_a_volume_and_its_own_healthcheck() {
    let dockerfile = read("Dockerfile");
    let stage = final_stage(&dockerfile);
    let user = stage
        .iter()
        .filter_map(|i| i.strip_prefix("USER "))
        .next_back()
        .expect("a USER in the final stage");
    assert!(
        !user.starts_with("root") && !user.starts_with("0"),
        "{user}"
    );
    assert!(stage.iter().any(|i| i == "VOLUME /data"), "{stage:?}");
    let health = stage
        .iter()
        .find(|i| i.starts_with("HEALTHCHECK "))
        .expect("a HEALTHCHECK");
    assert!(
        health.contains(r#"CMD ["switchboard", "health"]"#),
        "{health}"
    );
    // Multi-stage: built in the official Rust image, run in a slim one.
    let all = instructions(&dockerfile);
    let froms: Vec<&String> = all.iter().filter(|i| i.starts_with("FROM ")).collect();
    assert!(froms[0].starts_with("FROM rust:"), "{froms:?}");
    assert!(froms.last().unwrap().contains("slim"), "{froms:?}");
}

#[test]
fn prometheus_scrapes_the_metrics_route() {
    let prometheus = read("deploy/prometheus.yml");
    assert!(
        prometheus.contains("metrics_path: /metrics"),
        "{prometheus}"
    );
    assert!(prometheus.contains("switchboard:8080"), "{prometheus}");
    let compose = read("docker-compose.yml");
    assert!(compose.contains("./deploy/prometheus.yml:/etc/prometheus/prometheus.yml"));
    assert!(compose.contains("switchboard-data:/data"));
}

/// The final stage's `ENV` pairs.
fn image_env(stage: &[String]) -> std::collections::BTreeMap<String, String> {
    stage
        .iter()
        .filter_map(|i| i.strip_prefix("ENV "))
        .flat_map(str::split_whitespace)
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn the_image_serves_https_by_default_and_its_environment_starts() {
    use switchboard::config::WebTls;
    let stage = final_stage(&read("Dockerfile"));
    let mut env = image_env(&stage);
    assert_eq!(
        env.get("SWITCHBOARD_WEB_TLS").map(String::as_str),
        Some("self-signed"),
        "{env:?}"
    );
    let compose = read("docker-compose.yml");
    assert!(
        compose.contains("SWITCHBOARD_WEB_TLS: self-signed"),
        "docker-compose.yml sets no web TLS"
    );
    // The image's environment is a configuration that starts: a dashboard
    // on 0.0.0.0 is allowed because it has TLS...
    let config = Config::resolve(None, &env, &[]).expect("the image's ENV resolves");
    assert_eq!(config.web.tls, WebTls::SelfSigned);
    assert!(config.web.listen.ip().is_unspecified());
    // ...and would be refused without it.
    env.remove("SWITCHBOARD_WEB_TLS");
    let err = Config::resolve(None, &env, &[]).unwrap_err().to_string();
    assert!(err.contains("web.behind_proxy"), "{err}");
}
