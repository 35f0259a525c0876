//! Unit tests for the command line definition and its value parsers.

use super::*;
use clap::CommandFactory;

#[test]
fn cli_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn sizes_parse() {
    assert_eq!(parse_size("64"), Ok(64));
    assert_eq!(parse_size("500k"), Ok(500 << 10));
    assert_eq!(parse_size("128MiB"), Ok(128 << 20));
    assert_eq!(parse_size("1GiB"), Ok(1 << 30));
    assert_eq!(parse_size("1.5KB"), Ok(1536));
    for bad in ["", "0", "-1", "5x", "2TiB", "abc"] {
        assert!(parse_size(bad).is_err(), "{bad}");
    }
}

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
    for bad in ["", "0", "-1s", "5h", "abc", "1e9"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn data_dir_is_taken_before_or_after_a_subcommand() {
    let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap();
    for args in [
        &["switchboard", "user", "add", "bob", "--data-dir", "d"][..],
        &["switchboard", "user", "--data-dir", "d", "add", "bob"],
    ] {
        let Some(Command::User(user)) = parse(args).command else {
            panic!("user")
        };
        assert_eq!(user.config.data_dir, Some(PathBuf::from("d")), "{args:?}");
    }
    let cli = parse(&["switchboard", "--data-dir", "d", "user", "list"]);
    assert_eq!(cli.serve.data_dir, Some(PathBuf::from("d")));
    // The clients find the key through the same --data-dir, given
    // after the subcommand or before it.
    let Some(Command::Exec(exec)) =
        parse(&["switchboard", "exec", "9003", "--data-dir", "e", "--", "ls"]).command
    else {
        panic!("exec")
    };
    assert_eq!(exec.key.config.data_dir, Some(PathBuf::from("e")));
    let cli = parse(&["switchboard", "--data-dir", "e", "put", "9004", "f"]);
    assert_eq!(cli.serve.data_dir, Some(PathBuf::from("e")));
}

#[test]
fn dashboard_addresses_parse_from_ports_names_and_urls() {
    for (given, addr, https) in [
        ("8080", "127.0.0.1:8080", None),
        ("localhost:8443", "localhost:8443", None),
        ("[::1]:8080", "[::1]:8080", None),
        ("localhost:08443", "localhost:8443", None),
        ("https://localhost:8443/", "localhost:8443", Some(true)),
        ("http://sb.test/services?x=1", "sb.test:80", Some(false)),
        ("HTTPS://[::1]", "[::1]:443", Some(true)),
    ] {
        let want = DashboardAddr {
            addr: addr.to_owned(),
            https,
        };
        assert_eq!(parse_dashboard(given), Ok(want), "{given}");
    }
    for bad in [
        "",
        "0",
        "localhost",
        "ftp://h:1",
        "https://",
        "::1:8080",
        "[::1:8080",
        "[nope]:80",
        "h:port",
        "h:0",
        "https://u@h:1",
        "h:70000",
        "h:1:2",
    ] {
        assert!(parse_dashboard(bad).is_err(), "{bad}");
    }
}

#[test]
fn port_base_is_taken_after_a_subcommand_too_and_sets_at_both_levels_count() {
    let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap();
    for args in [
        &["switchboard", "service", "list", "--port-base", "29000"][..],
        &["switchboard", "service", "--port-base", "29000", "list"],
    ] {
        let Some(Command::Service(service)) = parse(args).command else {
            panic!("service")
        };
        assert_eq!(service.config.port_base, Some(29000), "{args:?}");
    }
    // Sets before the subcommand and after it are kept apart, and `serve`
    // merges both, the later last.
    let cli = parse(&["switchboard", "--set", "a=1", "serve", "--set", "b=2"]);
    let Some(Command::Serve(serve)) = cli.command else {
        panic!("serve")
    };
    assert_eq!(cli.serve.set, ["a=1"]);
    assert_eq!(serve.set, ["b=2"]);
}

#[test]
fn no_command_means_serve_and_text_keeps_hyphens_after_the_double_dash() {
    let cli = Cli::try_parse_from(["switchboard", "--set", "web.listen=127.0.0.1:1"]).unwrap();
    assert!(cli.command.is_none());
    assert_eq!(cli.serve.set, ["web.listen=127.0.0.1:1"]);
    let echo = |args: &[&str]| {
        let cli = Cli::try_parse_from(args).unwrap();
        let Some(Command::Echo(args)) = cli.command else {
            panic!("echo")
        };
        args
    };
    let args = echo(&["switchboard", "echo", "9000", "--", "hello", "-n", "world"]);
    assert_eq!(args.text, ["hello", "-n", "world"]);
    // Options after the text are options, not text.
    let args = echo(&["switchboard", "echo", "9000", "hi", "--timeout", "500ms"]);
    assert_eq!(args.text, ["hi"]);
    assert_eq!(args.client.timeout, Duration::from_millis(500));
    let err = Cli::try_parse_from(["switchboard", "echo", "9000", "hi", "-n"]).unwrap_err();
    assert!(err.to_string().contains("--"), "{err}");
    let cli =
        Cli::try_parse_from(["switchboard", "time", "9002", "%H", "--timeout", "1s"]).unwrap();
    let Some(Command::Time(args)) = cli.command else {
        panic!("time")
    };
    assert_eq!(args.format.as_deref(), Some("%H"));
    assert_eq!(args.client.timeout, Duration::from_secs(1));
}
