//! Configuration loader tests: defaults, the shipped example, environment overrides, unknown and
//! invalid keys named in full, `STATE_DIRECTORY`, `check_open`, unreadable and non-TOML files.

use super::*;
use std::collections::HashMap;

const TOKEN: &str = "0123456789abcdef-secret";

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

/// Loads `text` written to a temporary file; returns the file's path too.
fn load_text(text: &str, vars: &[(&str, &str)]) -> (Result<Config, ConfigError>, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vwed.toml");
    std::fs::write(&path, text).unwrap();
    (load(Some(&path), &env(vars)), path)
}

fn example() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/vwed.example.toml");
    std::fs::read_to_string(path).unwrap()
}

fn assert_defaults(c: &Config) {
    assert_eq!(c.listen, LISTEN_DEFAULT.parse::<SocketAddr>().unwrap());
    assert_eq!(c.data_dir, PathBuf::from("data"));
    assert!(c.tokens.is_empty() && !c.insecure_open && c.log.is_none());
    assert_eq!(c.scheduler.runs_active_max, limits::RUNS_ACTIVE_MAX);
    assert_eq!(c.scheduler.backlog_max, limits::BACKLOG_MAX);
    assert_eq!(c.scheduler.ready_ring_capacity, limits::READY_RING_CAPACITY);
    assert_eq!(c.scheduler.aging_step_ms, limits::AGING_STEP_MS);
    assert_eq!(c.http, HttpConfig::default());
    assert_eq!(c.http.connections_max, 32);
    assert_eq!(c.http.body_bytes_max, 2 * 1024 * 1024);
    assert_eq!(c.http.header_timeout_ms, 10_000);
    assert_eq!(c.http.handler_timeout_ms, 30_000);
}

#[test]
fn defaults_without_file_or_env() {
    let c = load(None, &env(&[])).unwrap();
    assert_defaults(&c);
    assert!(c.is_loopback() && !c.mutations_need_token());
    c.check_open().unwrap();
}

#[test]
fn the_shipped_example_parses_to_the_defaults() {
    let (c, _) = load_text(&example(), &[]);
    assert_defaults(&c.unwrap());
}

#[test]
fn every_key_the_example_documents_is_accepted() {
    // Uncomment every `# key = value` and `# [[table]]` line: the example must document only
    // real keys.
    let text: String = example()
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest
                    .split_once(" = ")
                    .is_some_and(|(k, _)| !k.contains(' '))
                    || (rest.starts_with("[[") && rest.ends_with("]]")) =>
            {
                rest
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("\nhandler_timeout_ms = "), "{text}");
    let c = load_text(&text, &[]).0.unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/vwed"));
    assert_eq!(c.tokens.len(), 2);
    assert_eq!(c.log.as_deref(), Some("info"));
    assert_eq!(c.scheduler.runs_active_max, limits::RUNS_ACTIVE_MAX);
    assert_eq!(c.http, HttpConfig::default());
    assert_eq!(c.webhooks.len(), 1);
    assert_eq!(c.webhooks[0].url, "http://127.0.0.1:9000/vwed-events");
}

#[test]
fn a_full_file_sets_every_field() {
    let text = format!(
        "listen = \"0.0.0.0:9000\"\ndata_dir = \"/srv/vwed\"\ntoken = \"{TOKEN}\"\n\
         tokens = [\"{TOKEN}-2\"]\ninsecure_open = true\nlog = \"debug\"\n\
         [scheduler]\nruns_active_max = 1024\nbacklog_max = 10000000\n\
         ready_ring_capacity = 2\naging_step_ms = 5\n\
         [http]\nconnections_max = 3\nbody_bytes_max = 67108864\n\
         header_timeout_ms = 7\nhandler_timeout_ms = 8\n"
    );
    let c = load_text(&text, &[("STATE_DIRECTORY", "/var/lib/x")])
        .0
        .unwrap();
    assert_eq!(c.listen, "0.0.0.0:9000".parse::<SocketAddr>().unwrap());
    assert_eq!(c.data_dir, PathBuf::from("/srv/vwed"));
    assert_eq!(c.tokens, vec![TOKEN.to_string(), format!("{TOKEN}-2")]);
    assert!(c.insecure_open);
    assert_eq!(c.log.as_deref(), Some("debug"));
    let s = &c.scheduler;
    assert_eq!(
        (
            s.runs_active_max,
            s.backlog_max,
            s.ready_ring_capacity,
            s.aging_step_ms
        ),
        (1024, 10_000_000, 2, 5)
    );
    let h = HttpConfig {
        connections_max: 3,
        body_bytes_max: 64 * 1024 * 1024,
        header_timeout_ms: 7,
        handler_timeout_ms: 8,
    };
    assert_eq!(c.http, h);
}

#[test]
fn the_environment_wins_over_the_file() {
    let text = format!(
        "listen = \"127.0.0.1:1\"\ndata_dir = \"/a\"\ntoken = \"{TOKEN}\"\nlog = \"info\"\n"
    );
    let vars = [
        ("VWED_LISTEN", "[::]:8081"),
        ("VWED_DATA_DIR", "/b"),
        ("VWED_TOKEN", "aaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbb,"),
        ("VWED_LOG", "vwed=trace"),
    ];
    let c = load_text(&text, &vars).0.unwrap();
    assert_eq!(c.listen, "[::]:8081".parse::<SocketAddr>().unwrap());
    assert_eq!(c.data_dir, PathBuf::from("/b"));
    assert_eq!(c.tokens, ["a".repeat(16), "b".repeat(16)]);
    assert_eq!(c.log.as_deref(), Some("vwed=trace"));
    // Empty variables count as unset.
    let empty = [
        ("VWED_LISTEN", ""),
        ("VWED_TOKEN", " "),
        ("VWED_DATA_DIR", ""),
    ];
    let c = load_text(&text, &empty).0.unwrap();
    assert_eq!((c.listen.port(), c.tokens.len()), (1, 1));
    assert_eq!(c.data_dir, PathBuf::from("/a"));
}

#[test]
fn unknown_keys_are_named_in_full() {
    let cases = [
        ("lisen = \"x\"", "lisen"),
        (
            "[scheduler]\nrun_active_max = 1",
            "scheduler.run_active_max",
        ),
        ("[http]\nbody_max = 1", "http.body_max"),
        ("[store]\nread_pool_size = 4", "store"),
        ("[scheduler.extra]\na = 1", "scheduler.extra"),
    ];
    for (text, key) in cases {
        let (r, path) = load_text(text, &[]);
        let e = r.unwrap_err();
        let want = ConfigError::UnknownKey {
            path: path.clone(),
            key: key.into(),
        };
        assert_eq!(e, want, "{text}");
        let shown = e.to_string();
        assert!(shown.contains(&format!("`{key}`")), "{shown}");
        assert!(shown.contains(&path.display().to_string()), "{shown}");
    }
}

#[test]
fn invalid_values_are_named() {
    let cases = [
        ("listen = \"nope\"", "listen"),
        ("listen = 8080", "listen"),
        ("data_dir = \"\"", "data_dir"),
        ("token = \"short\"", "token"),
        ("tokens = [\"short\"]", "tokens"),
        ("tokens = \"0123456789abcdef0\"", "tokens"),
        ("tokens = [1]", "tokens"),
        ("insecure_open = \"yes\"", "insecure_open"),
        ("log = 3", "log"),
        ("scheduler = 5", "scheduler"),
        (
            "[scheduler]\nruns_active_max = 0",
            "scheduler.runs_active_max",
        ),
        (
            "[scheduler]\nruns_active_max = 1025",
            "scheduler.runs_active_max",
        ),
        (
            "[scheduler]\nbacklog_max = 10000001",
            "scheduler.backlog_max",
        ),
        ("[scheduler]\nbacklog_max = -1", "scheduler.backlog_max"),
        (
            "[scheduler]\nready_ring_capacity = 1",
            "scheduler.ready_ring_capacity",
        ),
        ("[scheduler]\naging_step_ms = 0", "scheduler.aging_step_ms"),
        (
            "[scheduler]\naging_step_ms = \"1s\"",
            "scheduler.aging_step_ms",
        ),
        ("[http]\nconnections_max = 0", "http.connections_max"),
        ("[http]\nconnections_max = 4097", "http.connections_max"),
        ("[http]\nbody_bytes_max = 67108865", "http.body_bytes_max"),
        ("[http]\nheader_timeout_ms = 0", "http.header_timeout_ms"),
        (
            "[http]\nhandler_timeout_ms = 1.5",
            "http.handler_timeout_ms",
        ),
    ];
    for (text, key) in cases {
        let (r, path) = load_text(text, &[]);
        match r {
            Err(ConfigError::Invalid {
                path: p, key: k, ..
            }) => {
                assert_eq!((p, k.as_str()), (Some(path), key), "{text}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
    let e = load_text("token = \"short\"", &[])
        .0
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`token`") && e.contains("16") && !e.contains("short"),
        "{e}"
    );
}

#[test]
fn invalid_environment_values_name_the_variable() {
    for (var, value) in [
        ("VWED_LISTEN", "localhost"),
        ("VWED_TOKEN", "ok-but-short,x"),
    ] {
        match load(None, &env(&[(var, value)])) {
            Err(ConfigError::Invalid {
                path: None, key, ..
            }) => assert_eq!(key, var),
            other => panic!("{var}: {other:?}"),
        }
    }
}

#[test]
fn state_directory_is_the_fallback_data_dir() {
    let first = [("STATE_DIRECTORY", "/var/lib/vwed:/var/lib/other")];
    assert_eq!(
        load(None, &env(&first)).unwrap().data_dir,
        PathBuf::from("/var/lib/vwed")
    );
    let empty = [("STATE_DIRECTORY", "")];
    assert_eq!(
        load(None, &env(&empty)).unwrap().data_dir,
        PathBuf::from("data")
    );
    let file = load_text("data_dir = \"/srv\"", &first).0.unwrap();
    assert_eq!(file.data_dir, PathBuf::from("/srv"));
    let both = [
        ("STATE_DIRECTORY", "/var/lib/vwed"),
        ("VWED_DATA_DIR", "/env"),
    ];
    assert_eq!(
        load(None, &env(&both)).unwrap().data_dir,
        PathBuf::from("/env")
    );
}

#[test]
fn check_open_refuses_an_open_non_loopback_listen() {
    let open = load(None, &env(&[("VWED_LISTEN", "0.0.0.0:8080")])).unwrap();
    assert!(!open.is_loopback() && open.mutations_need_token());
    let e = open.check_open().unwrap_err();
    assert!(
        matches!(&e, ConfigError::Invalid { key, .. } if key == "token"),
        "{e}"
    );
    assert!(e.to_string().contains("insecure_open"), "{e}");
    let (insecure, _) = load_text("listen = \"0.0.0.0:80\"\ninsecure_open = true", &[]);
    insecure.unwrap().check_open().unwrap();
    let vars = [("VWED_LISTEN", "10.0.0.5:80"), ("VWED_TOKEN", TOKEN)];
    load(None, &env(&vars)).unwrap().check_open().unwrap();
    for loopback in ["[::1]:80", "127.0.0.2:80", "[::ffff:127.0.0.1]:80"] {
        let c = load(None, &env(&[("VWED_LISTEN", loopback)])).unwrap();
        assert!(c.is_loopback(), "{loopback}");
        c.check_open().unwrap();
    }
}

#[test]
fn a_file_that_is_not_toml_is_a_parse_error() {
    for text in ["listen = ", "[scheduler\n", "not toml at all"] {
        let (r, path) = load_text(text, &[]);
        match r {
            Err(ConfigError::Parse { path: p, .. }) => assert_eq!(p, path),
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn a_missing_or_oversized_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.toml");
    let e = load(Some(&missing), &env(&[])).unwrap_err();
    assert!(matches!(&e, ConfigError::Io { path, .. } if path == &missing));
    assert!(e.to_string().contains("absent.toml"), "{e}");
    let big = format!("# {}\n", "x".repeat(limits::CONFIG_FILE_BYTES_MAX as usize));
    let e = load_text(&big, &[]).0.unwrap_err();
    assert!(e.to_string().contains("CONFIG_FILE_BYTES_MAX"), "{e}");
}

const HOOK_SECRET: &str = "0123456789abcdef";

#[test]
fn webhooks_parse_with_default_events() {
    let text = format!(
        "[[webhook]]\nurl = \"http://127.0.0.1:9000/hook?x=1\"\nsecret = \"{HOOK_SECRET}\"\n\
         [[webhook]]\nurl = \"http://recv.local/\"\nevents = [\"task\"]\nsecret = \"{HOOK_SECRET}\"\n"
    );
    let c = load_text(&text, &[]).0.unwrap();
    assert_eq!(c.webhooks.len(), 2);
    let a = &c.webhooks[0];
    assert_eq!(
        (a.host.as_str(), a.port, a.path.as_str()),
        ("127.0.0.1", 9000, "/hook?x=1")
    );
    assert!(a.wants("task") && a.wants("block") && a.wants("task-state"));
    let b = &c.webhooks[1];
    assert_eq!(
        (b.host.as_str(), b.port, b.path.as_str()),
        ("recv.local", 80, "/")
    );
    assert!(b.wants("task") && !b.wants("block"));
    assert!(
        !format!("{b:?}").contains(HOOK_SECRET),
        "Debug hides the secret"
    );
    assert!(load_text("", &[]).0.unwrap().webhooks.is_empty());
}

#[test]
fn bad_webhooks_are_named() {
    let ok_secret = format!("secret = \"{HOOK_SECRET}\"");
    let hook = |body: &str| format!("[[webhook]]\n{body}\n");
    let cases = [
        (
            hook(&format!("url = \"https://h:1/\"\n{ok_secret}")),
            "webhook.url",
        ),
        (
            hook(&format!("url = \"ftp://h:1/\"\n{ok_secret}")),
            "webhook.url",
        ),
        (
            hook(&format!("url = \"http://:1/\"\n{ok_secret}")),
            "webhook.url",
        ),
        (
            hook(&format!("url = \"http://h:99999/\"\n{ok_secret}")),
            "webhook.url",
        ),
        (hook(&format!("url = 5\n{ok_secret}")), "webhook.url"),
        (hook(&ok_secret), "webhook.url"),
        (
            hook(&format!(
                "url = \"http://h:1/\"\nevents = [\"tasks\"]\n{ok_secret}"
            )),
            "webhook.events",
        ),
        (
            hook(&format!("url = \"http://h:1/\"\nevents = []\n{ok_secret}")),
            "webhook.events",
        ),
        (
            hook(&format!(
                "url = \"http://h:1/\"\nevents = \"task\"\n{ok_secret}"
            )),
            "webhook.events",
        ),
        (
            hook("url = \"http://h:1/\"\nsecret = \"short\""),
            "webhook.secret",
        ),
        (hook("url = \"http://h:1/\""), "webhook.secret"),
        ("webhook = 1".to_string(), "webhook"),
        ("[webhook]\nurl = \"http://h:1/\"".to_string(), "webhook"),
        (
            hook(&format!("url = \"http://h:1/\"\n{ok_secret}")).repeat(2),
            "webhook.url",
        ),
        (
            (0..=limits::WEBHOOKS_MAX)
                .map(|i| hook(&format!("url = \"http://h:1/{i}\"\n{ok_secret}")))
                .collect(),
            "webhook",
        ),
    ];
    for (text, key) in cases {
        let (r, path) = load_text(&text, &[]);
        match r {
            Err(ConfigError::Invalid {
                path: p, key: k, ..
            }) => {
                assert_eq!((p, k.as_str()), (Some(path), key), "{text}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
    let e = load_text(&hook(&format!("url = \"https://h:1/\"\n{ok_secret}")), &[])
        .0
        .unwrap_err()
        .to_string();
    assert!(e.contains("`webhook.url`") && e.contains("TLS"), "{e}");
    let e = load_text(
        &hook("url = \"http://h:1/\"\nsecret = \"shortsecret\""),
        &[],
    )
    .0
    .unwrap_err()
    .to_string();
    assert!(!e.contains("shortsecret"), "the secret is not echoed: {e}");
    let e = load_text(
        &hook(&format!("url = \"http://h:1/\"\n{ok_secret}\nretries = 3")),
        &[],
    )
    .0
    .unwrap_err();
    assert!(
        matches!(&e, ConfigError::UnknownKey { key, .. } if key == "webhook.retries"),
        "{e:?}"
    );
    assert!(e.to_string().contains("url, events, secret"), "{e}");
}

#[test]
fn fleet_settings_are_read_and_checked() {
    let (c, _) = load_text(
        "[fleet]\nkind = \"sim\"\nrobots = 5\nspeed_m_per_s = 2\noperation_ms = 500\n\
         strict = true\nmap = \"m.json\"\ngroup = \"T1\"\n",
        &[],
    );
    let f = c.unwrap().fleet;
    assert_eq!(f.group, "T1");
    assert!(f.sim_config().unwrap_err().contains("fleet map m.json"));
    assert_eq!(
        (f.robots, f.speed_m_per_s, f.operation_ms, f.strict),
        (5, 2.0, 500, true)
    );
    assert_eq!(f.map, Some(PathBuf::from("m.json")));
    let bad = [
        (
            "[fleet]\nkind = \"rdscore\"\n",
            "fleet.url",
            "needs the core's URL",
        ),
        ("[fleet]\nurl = \"https://core\"\n", "fleet.url", "http://"),
        ("[fleet]\npoll_ms = 5\n", "fleet.poll_ms", "outside 100..="),
        (
            "[fleet]\nkind = \"vda\"\n",
            "fleet.kind",
            "unknown fleet kind",
        ),
        ("[fleet]\nrobots = 0\n", "fleet.robots", "outside 1..=64"),
        (
            "[fleet]\nspeed_m_per_s = -1.0\n",
            "fleet.speed_m_per_s",
            "outside",
        ),
        (
            "[fleet]\nspeed_m_per_s = \"fast\"\n",
            "fleet.speed_m_per_s",
            "a number",
        ),
        (
            "[fleet]\noperation_ms = -5\n",
            "fleet.operation_ms",
            "outside",
        ),
        ("[fleet]\nwheels = 4\n", "fleet.wheels", "unknown"),
    ];
    for (text, key, what) in bad {
        let e = load_text(text, &[]).0.unwrap_err().to_string();
        assert!(e.contains(key) && e.contains(what), "{text}: {e}");
    }
    let e = load(None, &env(&[("VWED_FLEET", "rdscore")]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("fleet.url") && e.contains("VWED_FLEET_URL"),
        "{e}"
    );
    let e = load(None, &env(&[("VWED_FLEET_URL", "ftp://core")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("VWED_FLEET_URL"), "{e}");
    let core = [
        ("VWED_FLEET", "rdscore"),
        ("VWED_FLEET_URL", "http://127.0.0.1:8088"),
    ];
    let c = load(None, &env(&core)).unwrap();
    assert_eq!(c.fleet.kind, FleetKind::RdsCore);
    let rds = c.fleet.rdscore_config().unwrap();
    assert_eq!(
        (rds.url.as_str(), rds.poll_ms),
        ("http://127.0.0.1:8088", 500)
    );
    let (c, _) = load_text(
        "[fleet]\nkind = \"rdscore\"\nurl = \"http://10.0.0.5:8088\"\npoll_ms = 250\n\
         connect_timeout_ms = 700\ntimeout_ms = 3000\n",
        &[],
    );
    let rds = c.unwrap().fleet.rdscore_config().unwrap();
    assert_eq!(rds.poll_ms, 250);
    assert_eq!(
        (rds.limits.connect_timeout_ms, rds.limits.total_timeout_ms),
        (700, 3000)
    );
    assert!(load(None, &env(&[("VWED_FLEET", "sim")])).is_ok());
}

#[test]
fn a_fleet_map_file_is_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("map.json");
    std::fs::write(&good, r#"{"locations": {"P1": [0, 0], "P2": [3, 4]}}"#).unwrap();
    let mut f = FleetConfig {
        map: Some(good),
        robots: 2,
        ..FleetConfig::default()
    };
    let sim = f.sim_config().unwrap();
    assert_eq!(sim.map.position("P2"), Some((3.0, 4.0)));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"locations": {"P1": ["x", 0]}}"#).unwrap();
    f.map = Some(bad);
    let e = f.sim_config().unwrap_err();
    assert!(e.contains("bad.json") && e.contains("P1"), "{e}");
    f.map = Some(dir.path().join("missing.json"));
    assert!(f.sim_config().unwrap_err().contains("missing.json"));
}
