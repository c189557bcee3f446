//! Config loading, merging and printing.

use super::load::{deserialize_all, set};
use super::print::toml_value;
use super::*;

fn sources(file_text: Option<&str>, env: &[(&str, &str)]) -> ConfigSources {
    let file = file_text.map(|text| {
        let dir = std::env::temp_dir().join(format!("clarion-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.toml", text.len()));
        std::fs::write(&path, text).unwrap();
        path
    });
    ConfigSources {
        file,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        flags: Vec::new(),
    }
}

#[test]
fn defaults_have_the_demo_namespaces() {
    let config = load(&ConfigSources::default()).unwrap();
    assert!(config.hub.namespaces["chat"].presence);
    assert!(config.hub.namespaces["leaderboard"].allow_publish);
    assert!(config.auth.allow_anonymous);
    assert!(config.api.key.is_none());
}

#[test]
fn file_then_env_then_flags() {
    let mut src = sources(
        Some("listen = \"127.0.0.1:1\"\n[api]\nkey = \"file\"\nmax_body_bytes = 10\n"),
        &[
            ("CLARION_API_KEY", "env"),
            ("CLARION_LISTEN", "127.0.0.1:2"),
        ],
    );
    let config = load(&src).unwrap();
    assert_eq!(config.api.key.as_deref(), Some("env"));
    assert_eq!(config.listen.port(), 2);
    assert_eq!(config.api.max_body_bytes, 10);
    src.flags
        .push(("listen".into(), Override::Str("127.0.0.1:3".into())));
    assert_eq!(load(&src).unwrap().listen.port(), 3);
}

#[test]
fn errors_are_listed() {
    let src = sources(
        Some("[tls]\ncert = \"/nope.pem\"\n[api]\nkey = \"\"\n[hub.namespaces.x]\nhistory_size = 3\n"),
        &[],
    );
    let errors = load(&src).unwrap_err();
    assert!(errors.len() >= 3, "{errors:?}");
    assert!(load(&sources(Some("nope = 1"), &[])).is_err());
}

#[test]
fn every_bad_key_is_listed_not_just_the_first() {
    let src = sources(
        Some("nope = 1\nshutdown_timeout = \"ten\"\n[api]\nmax_body_bytes = \"x\"\nbogus = true\n[hub.namespaces.chat]\nhistory_ttl = \"5 min\"\n"),
        &[("CLARION_API_KEY", "")],
    );
    let errors = load(&src).unwrap_err();
    for key in [
        "nope",
        "shutdown_timeout",
        "api.max_body_bytes",
        "api.bogus",
        "history_ttl",
        "api.key",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(key)),
            "{key} missing in {errors:?}"
        );
    }
}

#[test]
fn env_hub_keys_keep_the_demo_namespaces() {
    let config = load(&sources(None, &[("CLARION_MAX_CONNECTIONS_PER_USER", "3")])).unwrap();
    assert_eq!(config.hub.max_connections_per_user, 3);
    assert!(config.hub.namespaces.contains_key("chat"));
}

#[test]
fn durations_read_the_same_from_file_env_and_flags() {
    let mut src = sources(
        Some("shutdown_delay = 1.5\n[websocket]\nidle_timeout = \"1h\"\n"),
        &[("CLARION_SHUTDOWN_TIMEOUT", "10")],
    );
    let config = load(&src).unwrap();
    assert_eq!(config.shutdown_delay, Duration::from_millis(1500));
    assert_eq!(config.websocket.idle_timeout, Duration::from_secs(3600));
    assert_eq!(config.shutdown_timeout, Duration::from_secs(10));
    for (flag, want) in [
        ("10", 10_000),
        ("1.5", 1500),
        ("250ms", 250),
        ("1h", 3_600_000),
    ] {
        src.flags = vec![("shutdown_timeout".into(), Override::Str(flag.into()))];
        let config = load(&src).unwrap();
        assert_eq!(
            config.shutdown_timeout,
            Duration::from_millis(want),
            "{flag}"
        );
    }
    for bad in ["-1s", "1.5.s", "0.0001ms"] {
        src.flags = vec![("shutdown_timeout".into(), Override::Str(bad.into()))];
        let errors = load(&src).unwrap_err();
        assert!(
            errors[0].starts_with("shutdown_timeout: invalid duration"),
            "{errors:?}"
        );
    }
    let env = sources(None, &[("CLARION_SHUTDOWN_TIMEOUT", "-1")]);
    assert!(load(&env).is_err());
}

#[test]
fn printed_config_reads_back_the_same() {
    let mut config = load(&sources(
        Some("[broker]\nurls = [\"redis://u:pw@h:1\", \"redis://h:2\"]\n"),
        &[("CLARION_API_KEY", "k1"), ("CLARION_HMAC_SECRET", "s1")],
    ))
    .unwrap();
    let printed = config.to_toml();
    for secret in ["k1", "s1", "pw"] {
        assert!(
            !printed.contains(&format!("\"{secret}")),
            "{secret} in {printed}"
        );
        assert!(
            !printed.contains(&format!(":{secret}@")),
            "{secret} in {printed}"
        );
    }
    assert!(printed.contains("key = \"<masked>\""), "{printed}");
    assert!(printed.contains("\"redis://u:<masked>@h:1\""), "{printed}");
    assert!(printed.contains("# cert = (not set)"), "{printed}");
    // Without secrets, what is printed loads to a config printed the same.
    config.api.key = None;
    config.auth.hmac_secret = None;
    config.broker.urls.clear();
    config.shutdown_timeout = Duration::from_millis(1500);
    let printed = config.to_toml();
    let reread = load(&sources(Some(&printed), &[])).unwrap();
    assert_eq!(reread.to_toml(), printed);
}

#[test]
fn every_listed_key_is_known_to_the_deserializer() {
    let keys = config_keys();
    for key in [
        "listen",
        "websocket.max_connections",
        "hub.rate_limits.refused_window",
        "hub.namespaces.NAME.history_ttl",
        "tls.cert",
        "broker.prefix",
        "trusted_proxies",
    ] {
        assert!(keys.iter().any(|k| k == key), "{key} missing in {keys:?}");
    }
    // Each key alone in a file: no "unknown field" (the deserializer
    // knows it); a made-up key next to it is refused.
    let defaults = serde_json::to_value(ServerConfig::default()).unwrap();
    for key in &keys {
        let pointer = format!("/{}", key.replace('.', "/").replace("NAME", "chat"));
        let value = match defaults.pointer(&pointer) {
            None => panic!("{key} is not in the default config"),
            // Unset options: a string fits every one of them.
            Some(serde_json::Value::Null) => toml::Value::String("x".into()),
            Some(value) => toml_value(value),
        };
        if value.as_str() == Some("") {
            continue; // a table
        }
        let mut tree = toml::Table::new();
        set(&mut tree, &key.replace("NAME", "x"), value);
        let (_, errors) = deserialize_all(tree.clone());
        assert!(
            errors.iter().all(|e| !e.contains("unknown")),
            "{key}: {errors:?}"
        );
        set(
            &mut tree,
            &format!("{key}_nope").replace("NAME", "x"),
            toml::Value::Boolean(true),
        );
        let (_, errors) = deserialize_all(tree);
        assert!(
            errors.iter().any(|e| e.contains("unknown")),
            "{key}_nope accepted"
        );
    }
}

#[test]
fn origins_default_to_loopback_of_the_port() {
    let config = ServerConfig::default();
    let policy = config.origin_policy(8080).unwrap();
    assert!(policy.check(Some("http://localhost:8080"), "x").is_ok());
    assert!(policy.check(Some("http://evil.example"), "x").is_err());
    assert!(policy.check(None, "x").is_ok());
    let env = sources(None, &[("CLARION_ALLOWED_ORIGINS", "https://a.example,*")]);
    let any = load(&env).unwrap().origin_policy(1).unwrap();
    assert!(any.is_any());
}
