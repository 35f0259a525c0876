//! The config's unit and property tests.

use super::*;
use std::path::Path;

mod instances;

fn exec(c: &Config) -> &crate::service::exec::Settings {
    let settings = &c.service("exec").unwrap().settings;
    settings
        .get()
        .unwrap_or_else(|| panic!("exec is {settings:?}"))
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn file(text: &str) -> Option<FileSource<'_>> {
    Some(FileSource {
        path: Path::new("/etc/sb.toml"),
        text,
    })
}

#[test]
fn defaults_bind_loopback_at_the_design_ports() {
    let c = Config::resolve(None, &BTreeMap::new(), &[]).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("switchboard-data"));
    assert_eq!(c.web.listen.to_string(), "127.0.0.1:8080");
    let ports: Vec<String> = c.services.iter().map(|s| s.listen.to_string()).collect();
    assert_eq!(
        ports,
        [
            "127.0.0.1:9000",
            "127.0.0.1:9001",
            "127.0.0.1:9002",
            "127.0.0.1:9003",
            "127.0.0.1:9004",
            "127.0.0.1:9005",
            "127.0.0.1:9006"
        ]
    );
    assert!(c.services.iter().all(|s| s.enabled));
    assert!(c.key.is_none());
    assert!(!exec(&c).shell);
}

#[test]
fn web_settings_resolve_from_env_and_flags() {
    let env = BTreeMap::from([
        (
            "SWITCHBOARD_WEB_ALLOWED_HOSTS".to_owned(),
            "a.example, b.example".to_owned(),
        ),
        (
            "SWITCHBOARD_WEB_SECURE_COOKIE".to_owned(),
            "always".to_owned(),
        ),
    ]);
    let c = Config::resolve(None, &env, &["web.header_timeout_ms=500".to_owned()]).unwrap();
    assert_eq!(c.web.allowed_hosts, ["a.example", "b.example"]);
    assert_eq!(c.web.max_connections_per_peer, 64);
    assert_eq!(c.web.first_byte_timeout, Duration::from_secs(2));
    assert_eq!(c.web.max_streams_per_session, 4);
    assert_eq!(c.web.secure_cookie, SecureCookie::Always);
    assert_eq!(c.web.header_timeout, Duration::from_millis(500));
    assert_eq!(c.web.session_idle, WebConfig::default().session_idle);
    let err = Config::resolve(
        None,
        &BTreeMap::new(),
        &["web.secure_cookie=maybe".to_owned()],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("use auto, always or never"), "{err}");
    let err = Config::resolve(
        None,
        &BTreeMap::new(),
        &["web.header_timeout_ms=0".to_owned()],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("web.header_timeout_ms"), "{err}");
}

#[test]
fn web_connection_and_stream_limits_resolve() {
    let env = BTreeMap::from([
        (
            "SWITCHBOARD_WEB_MAX_CONNECTIONS_PER_PEER".to_owned(),
            "16".to_owned(),
        ),
        (
            "SWITCHBOARD_WEB_FIRST_BYTE_TIMEOUT_MS".to_owned(),
            "750".to_owned(),
        ),
    ]);
    let c = Config::resolve(None, &env, &["web.max_streams_per_session=2".to_owned()]).unwrap();
    assert_eq!(c.web.max_connections_per_peer, 16);
    assert_eq!(c.web.first_byte_timeout, Duration::from_millis(750));
    assert_eq!(c.web.max_streams_per_session, 2);
    for bad in [
        "web.max_connections_per_peer=0",
        "web.first_byte_timeout_ms=10",
        "web.max_streams_per_session=65",
    ] {
        let key = bad.split('=').next().unwrap();
        let err = Config::resolve(None, &BTreeMap::new(), &[bad.to_owned()])
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{err}");
    }
}

#[test]
fn later_layers_win_file_then_env_then_flags() {
    let text = r#"
        data_dir = "/var/lib/sb"
        key = "from-file"
        [web]
        listen = "127.0.0.1:8081"
        [services.echo]
        listen = "127.0.0.1:7000"
        enabled = false
        [services.udp-echo]
        listen = "[::1]:7001"
    "#;
    let e = env(&[
        ("SWITCHBOARD_ECHO_LISTEN", "127.0.0.1:7100"),
        ("SWITCHBOARD_KEY", "from-env"),
    ]);
    let flags = vec!["services.echo.listen=unix:/tmp/e.sock".to_string()];
    let c = Config::resolve(file(text), &e, &flags).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/sb"));
    assert_eq!(c.key.as_ref().unwrap().expose(), b"from-env");
    assert_eq!(c.web.listen.port(), 8081);
    let echo = c.service(ServiceKind::Echo).unwrap();
    assert_eq!(echo.listen, ListenAddr::Unix("/tmp/e.sock".into()));
    assert!(!echo.enabled);
    assert_eq!(
        c.service(ServiceKind::UdpEcho).unwrap().listen.to_string(),
        "[::1]:7001"
    );
}

#[test]
fn unknown_keys_are_rejected_by_name_from_every_layer() {
    let err = Config::resolve(
        file("[services.echo]\nlisten_addr = \"x\"\n"),
        &BTreeMap::new(),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "unknown config key `services.echo.listen_addr` (in /etc/sb.toml)"
    );
    let err = Config::resolve(
        file("[services.nope]\nenabled = true\n"),
        &BTreeMap::new(),
        &[],
    )
    .unwrap_err()
    .to_string();
    // A table under a new name is a new instance, which needs a kind.
    assert!(
        err.contains("`services.nope.kind`") && err.contains("needs a kind"),
        "{err}"
    );
    let err = Config::resolve(None, &BTreeMap::new(), &["web.port=1".into()])
        .unwrap_err()
        .to_string();
    assert_eq!(err, "unknown config key `web.port` (from the command line)");
    // UDP-only keys are not accepted on a TCP service.
    assert!(
        Config::resolve(
            file("[services.echo]\npeer_rate = 5\n"),
            &BTreeMap::new(),
            &[]
        )
        .is_err()
    );
}

#[test]
fn unknown_env_vars_warn_instead_of_failing() {
    let c = Config::resolve(
        None,
        &env(&[("SWITCHBOARD_NOPE", "1"), ("SWITCHBOARD_CONFIG", "x")]),
        &[],
    )
    .unwrap();
    assert_eq!(
        c.warnings,
        ["ignoring unknown environment variable SWITCHBOARD_NOPE"]
    );
}

#[test]
fn allowed_hosts_entries_that_could_never_match_are_refused() {
    let with =
        |hosts: &str| Config::resolve(None, &env(&[("SWITCHBOARD_WEB_ALLOWED_HOSTS", hosts)]), &[]);
    let ok = with(
        "Dash.Example, dash.example.:8443, 192.0.2.7, ::1, [::1], [::1]:8080, 10.0.0.1:80, my_host, \
         fe80::1%eth0, [fe80::1%25eth0]:8080, xn--bcher-kva.example",
    )
    .unwrap();
    assert_eq!(ok.web.allowed_hosts.len(), 11);
    for (bad, why) in [
        ("[\"dash.example\"]", "a,b on the command line"),
        ("*.example", "wildcard"),
        ("dash.example:http", "port"),
        ("dash.example:+80", "port"),
        ("bücher.example", "punycode"),
        ("dash example", "not a host name"),
        ("a..b", "not a host name"),
        ("[::1]x", "a,b on the command line"),
        ("[dash.example]", "a,b on the command line"),
    ] {
        let err = with(bad).unwrap_err().to_string();
        assert!(
            err.starts_with("bad value for `web.allowed_hosts` (from environment variable SWITCHBOARD_WEB_ALLOWED_HOSTS)"),
            "{bad}: {err}"
        );
        assert!(err.contains(why), "{bad}: {err}");
    }
    let flag = Config::resolve(
        None,
        &BTreeMap::new(),
        &["web.allowed_hosts=[\"x\"]".to_owned()],
    )
    .unwrap_err()
    .to_string();
    assert!(flag.contains("a,b on the command line"), "{flag}");
}

#[test]
fn bad_values_name_the_key_and_origin() {
    let err = Config::resolve(
        None,
        &env(&[("SWITCHBOARD_ECHO_LISTEN", "localhost:9000")]),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("bad value for `services.echo.listen` (from environment variable SWITCHBOARD_ECHO_LISTEN)"), "{err}");
    let err = Config::resolve(
        file("[services.time]\nlisten = \"unix:/tmp/t\"\n"),
        &BTreeMap::new(),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("UDP service cannot listen on a unix: path"),
        "{err}"
    );
    let err = Config::resolve(
        file("[services.echo]\nmax_connections = 0\n"),
        &BTreeMap::new(),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("expected 1 to 1000000, got 0"), "{err}");
    let err = Config::resolve(
        file("[services.echo]\nenabled = \"yes\"\n"),
        &BTreeMap::new(),
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("expected true or false"), "{err}");
    assert!(matches!(
        Config::resolve(file("data_dir = ["), &BTreeMap::new(), &[]),
        Err(ConfigError::FileSyntax { .. })
    ));
    assert!(matches!(
        Config::resolve(None, &BTreeMap::new(), &["novalue".into()]),
        Err(ConfigError::BadFlag(_))
    ));
}

#[test]
fn the_design_example_parses() {
    let text = r#"
        data_dir = "switchboard-data"
        key = "..."
        [web]
        listen = "127.0.0.1:8080"
        [services.echo]
        listen = "127.0.0.1:9000"
        enabled = true
        [services.exec]
        listen = "127.0.0.1:9003"
        allow = ["date", "uptime", "uname", "ls", "df", "echo", "whoami"]
        shell = false
        timeout_ms = 10000
    "#;
    let c = Config::resolve(file(text), &BTreeMap::new(), &[]).unwrap();
    assert_eq!(exec(&c).allow.len(), 7);
    assert_eq!(exec(&c).timeout, Duration::from_secs(10));
}

#[test]
fn tls_keys_resolve_and_udp_services_refuse_them() {
    let flags = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let none = BTreeMap::new();
    let c = Config::resolve(
        None,
        &none,
        &flags(&["web.tls=self-signed", "services.echo.tls=true"]),
    )
    .unwrap();
    assert_eq!(c.web.tls, WebTls::SelfSigned);
    assert_eq!(c.web.secure_cookie, SecureCookie::Always);
    assert_eq!(
        c.service(ServiceKind::Echo).unwrap().tls,
        ServiceTls::Shared
    );
    assert_eq!(c.service(ServiceKind::Exec).unwrap().tls, ServiceTls::Off);
    let c = Config::resolve(
        None,
        &none,
        &flags(&[
            "services.login.tls=true",
            "services.login.tls_cert=/c.pem",
            "services.login.tls_key=/k.pem",
        ]),
    )
    .unwrap();
    assert_eq!(
        c.service(ServiceKind::Login).unwrap().tls,
        ServiceTls::Own(CertFiles {
            cert: "/c.pem".into(),
            key: "/k.pem".into()
        })
    );
    for (bad, names) in [
        (&["services.time.tls=true"][..], "UDP"),
        (&["web.tls=files", "web.tls_cert=/c.pem"][..], "web.tls_key"),
        (&["web.tls=https"][..], "off, self-signed or files"),
        (&["web.tls_cert=/c.pem"][..], "only read with web.tls"),
        (
            &["services.echo.tls=true", "services.echo.tls_cert=/c.pem"][..],
            "both",
        ),
    ] {
        let err = Config::resolve(None, &none, &flags(bad))
            .unwrap_err()
            .to_string();
        assert!(err.contains(names), "{bad:?}: {err}");
    }
    let err = Config::resolve(None, &env(&[("SWITCHBOARD_UDP_ECHO_TLS", "true")]), &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("services.udp-echo.tls") && err.contains("UDP"),
        "{err}"
    );
}

#[test]
fn env_names_follow_the_keys() {
    assert_eq!(
        env_name("services.udp-echo.listen"),
        "SWITCHBOARD_UDP_ECHO_LISTEN"
    );
    assert_eq!(
        env_name("services.files-classic.enabled"),
        "SWITCHBOARD_FILES_CLASSIC_ENABLED"
    );
    assert_eq!(env_name("web.listen"), "SWITCHBOARD_WEB_LISTEN");
    assert_eq!(env_name("data_dir"), "SWITCHBOARD_DATA_DIR");
    assert_eq!(env_name("key"), "SWITCHBOARD_KEY");
    let c = Config::resolve(
        None,
        &env(&[
            ("SWITCHBOARD_EXEC_ALLOW", "date, ls"),
            ("SWITCHBOARD_TIME_ENABLED", "no"),
        ]),
        &[],
    )
    .unwrap();
    assert_eq!(exec(&c).allow, ["date", "ls"]);
    assert!(!c.service(ServiceKind::Time).unwrap().enabled);
}

#[test]
fn secrets_never_print() {
    let c = Config::resolve(None, &env(&[("SWITCHBOARD_KEY", "hunter2")]), &[]).unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn port_base_moves_every_port_and_keeps_each_address() {
    let mut config = Config::default();
    config.service_mut(ServiceKind::Echo).listen = "0.0.0.0:9000".parse().unwrap();
    config.service_mut(ServiceKind::Login).listen = "unix:/tmp/l.sock".parse().unwrap();
    let flags = port_base_flags(&config, 20000).unwrap();
    assert_eq!(
        flags,
        [
            "services.echo.listen=0.0.0.0:20000",
            "services.udp-echo.listen=127.0.0.1:20001",
            "services.time.listen=127.0.0.1:20002",
            "services.exec.listen=127.0.0.1:20003",
            "services.files.listen=127.0.0.1:20004",
            "services.files-classic.listen=127.0.0.1:20005",
            "web.listen=127.0.0.1:20080",
        ]
    );
    assert!(
        port_base_flags(&config, 65500)
            .unwrap_err()
            .contains("out of range")
    );
    assert!(port_base_flags(&config, 0).is_err());
}

#[test]
fn listen_addrs_parse_and_print() {
    for s in [
        "127.0.0.1:9000",
        "[::1]:9000",
        "unix:/tmp/x.sock",
        "0.0.0.0:1",
    ] {
        assert_eq!(s.parse::<ListenAddr>().unwrap().to_string(), s);
    }
    for s in [
        "localhost:9000",
        "unix:",
        "127.0.0.1",
        "[::1]",
        "70000",
        "-1",
    ] {
        assert!(s.parse::<ListenAddr>().is_err(), "{s}");
    }
    assert_eq!(
        "9000".parse::<ListenAddr>().unwrap().to_string(),
        "127.0.0.1:9000",
        "a bare port is loopback"
    );
}
/// Property tests: a setting means the same from a flag as from the file.
/// (Whether a refusal names its key and layer, for any text, environment
/// and flags, is tests/config_errors.rs's.)
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use std::path::Path;

    fn resolve(
        text: &str,
        env: &[(String, String)],
        flags: &[String],
    ) -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = env.iter().cloned().collect();
        Config::resolve(
            Some(FileSource {
                path: Path::new("/etc/sb.toml"),
                text,
            }),
            &env,
            flags,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn a_value_set_by_flag_resolves_like_the_same_value_in_the_file(
            port in any::<u16>(),
            max in any::<i64>(),
        ) {
            let flags = [
                format!("services.echo.listen=127.0.0.1:{port}"),
                format!("services.echo.max_connections={max}"),
            ];
            let text = format!("[services.echo]\nlisten = \"127.0.0.1:{port}\"\nmax_connections = {max}\n");
            let by_flag = resolve("", &[], &flags).map(|c| format!("{:?}", c.service(ServiceKind::Echo)));
            let by_file = resolve(&text, &[], &[]).map(|c| format!("{:?}", c.service(ServiceKind::Echo)));
            match (by_flag, by_file) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(ConfigError::BadValue { key: a, .. }), Err(ConfigError::BadValue { key: b, .. })) => {
                    prop_assert_eq!(a, b);
                }
                (a, b) => prop_assert!(false, "flag gave {a:?}, file gave {b:?}"),
            }
        }
    }
}
