//! Instances in the config: names, kinds, their keys and mistakes.

use super::*;

#[test]
fn instances_are_declared_by_name_with_a_kind() {
    let text = r#"
        [services.echo-2]
        kind = "echo"
        listen = "127.0.0.1:9100"
        max_connections = 7
        [services.backup]
        kind = "files"
        listen = "127.0.0.1:9104"
        folder = "/srv/backup"
        [services.echo]
        enabled = false
    "#;
    let e = env(&[("SWITCHBOARD_ECHO_2_IDLE_TIMEOUT_MS", "900")]);
    let c = Config::resolve(file(text), &e, &[]).unwrap();
    let names: Vec<&str> = c.services.iter().map(|s| s.id.name()).collect();
    // The built-in seven first, in their order, then the others by name.
    assert_eq!(
        names,
        [
            "echo",
            "udp-echo",
            "time",
            "exec",
            "files",
            "files-classic",
            "login",
            "backup",
            "echo-2"
        ]
    );
    let mut c = c;
    let echo2 = c.service_mut("echo-2");
    assert_eq!(echo2.id.kind(), ServiceKind::Echo);
    assert_eq!(echo2.listen.to_string(), "127.0.0.1:9100");
    assert_eq!(echo2.tcp_mut().max_connections, 7);
    assert_eq!(echo2.tcp_mut().idle_timeout, Duration::from_millis(900));
    let backup = c.service_mut("backup");
    let files = backup.settings_mut::<crate::service::files::Settings>();
    assert_eq!(files.folder.as_deref(), Some(Path::new("/srv/backup")));
    assert!(!c.service("echo").unwrap().enabled);
}

#[test]
fn instance_mistakes_name_the_instance_and_the_key() {
    let cases: [(&str, &str); 6] = [
        (
            "[services.echo-2]\nkind = \"echo\"\nlisten = \"127.0.0.1:1\"\nfolder = \"/x\"\n",
            "unknown config key `services.echo-2.folder`",
        ),
        (
            "[services.echo-2]\nkind = \"echo\"\n",
            "`services.echo-2.listen` (not set): is required",
        ),
        (
            "[services.echo-2]\nkind = \"ehco\"\nlisten = \"1\"\n",
            "unknown kind `ehco`",
        ),
        ("[services.Echo2]\nkind = \"echo\"\n", "not a service name"),
        ("[services.web]\nkind = \"echo\"\n", "dashboard's name"),
        (
            "[services.t2]\nkind = \"time\"\nlisten = \"1\"\ntls = true\n",
            "TLS is for the TCP services only",
        ),
    ];
    for (text, want) in cases {
        let err = Config::resolve(file(text), &BTreeMap::new(), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
}

#[test]
fn an_environment_variable_naming_two_keys_is_refused() {
    // `echo-idle` + `timeout_ms` and `echo` + `idle_timeout_ms` are both
    // SWITCHBOARD_ECHO_IDLE_TIMEOUT_MS.
    let text = "[services.echo-idle]\nkind = \"exec\"\nlisten = \"127.0.0.1:1\"\n";
    let e = env(&[("SWITCHBOARD_ECHO_IDLE_TIMEOUT_MS", "500")]);
    let err = Config::resolve(file(text), &e, &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("ambiguous"), "{err}");
}

#[test]
fn keys_are_the_ones_the_readers_declare() {
    let keys = Config::keys();
    for key in [
        "data_dir",
        "web.listen",
        "services.echo.idle_timeout_ms",
        "services.time.max_reply_bytes",
        "services.exec.allow",
        "services.files.folder",
        "services.udp-echo.peer_rate",
    ] {
        assert!(keys.iter().any(|k| k == key), "{key} not in {keys:?}");
    }
    assert!(!keys.iter().any(|k| k == "services.echo.peer_rate"));
    assert!(!keys.iter().any(|k| k == "services.echo.max_reply_bytes"));
    assert!(!keys.iter().any(|k| k == "services.time.tls"));
}
