//! Unit tests of the manifest: what each key sets, and one clear line for every mistake.

use super::*;
use crate::policy::Destination;

const EXAMPLE: &str = include_str!("../../../wsbox.example.toml");

/// A folder with `wsbox.toml` holding `text`, and the files it names
/// (empty: only their existence is checked here).
fn folder(text: &str, files: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for name in files {
        std::fs::write(dir.path().join(name), b"").unwrap();
    }
    let file = dir.path().join("wsbox.toml");
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

fn load(text: &str) -> Result<Manifest, ManifestError> {
    let (_dir, file) = folder(
        text,
        &["echo.wasm", "router.wasm", "ca.pem", "cert.pem", "key.pem"],
    );
    Manifest::load(&file)
}

#[test]
fn the_example_manifest_loads() {
    let (_dir, file) = folder(EXAMPLE, &["echo.wasm", "router.wasm"]);
    let manifest = Manifest::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.listen.as_deref(), Some("127.0.0.1:8080"));
    assert_eq!(manifest.metrics.as_deref(), Some("127.0.0.1:9090"));
    assert_eq!(manifest.tls, None);
    assert_eq!(manifest.server.keepalive, Some(Duration::from_secs(30)));
    assert_eq!(manifest.server.max_connections, Some(1024));
    let paths: Vec<&str> = manifest.routes.iter().map(|r| &*r.path).collect();
    assert_eq!(paths, ["/chat", "/"], "longest first");
    let chat = manifest.routes.find("/chat/lobby?user=1").unwrap();
    assert_eq!(chat.component, file.parent().unwrap().join("router.wasm"));
    assert_eq!(chat.limits.max_message_size, Some(64 << 10));
    assert_eq!(chat.limits.cpu_deadline, Some(Duration::from_secs(2)));
    let config = chat.websocket(&Config::default()).unwrap();
    assert_eq!(config.limits.max_message_size, 64 << 10);
    assert_eq!(
        config.limits.max_frame_size,
        Limits::default().max_frame_size
    );
    assert!(chat.origins.check(Some("https://chat.example.com")).is_ok());
    assert!(chat.origins.check(Some("http://localhost:5173")).is_ok());
    assert!(chat.origins.check(Some("https://evil.example")).is_err());
    assert!(chat.origins.check(None).is_err(), "require-origin");
    let root = manifest.routes.find("/anything").unwrap();
    assert_eq!(&*root.path, "/");
    assert!(root.origins.check(Some("https://evil.example")).is_ok());
    let policy = root.websocket(&Config::default()).unwrap().policy;
    assert!(policy.permits(true, Destination::Name("echo.websocket.org"), 443));
    assert!(!policy.permits(true, Destination::Name("other.example"), 443));
}

#[test]
fn longest_prefix_on_segment_boundaries() {
    let manifest = load(
        r#"
            [[route]]
            path = "/"
            component = "echo.wasm"
            [[route]]
            path = "/chat/"
            component = "router.wasm"
            [[route]]
            path = "/chat/admin"
            component = "echo.wasm"
            "#,
    )
    .unwrap();
    for (target, want) in [
        ("/chat", Some("/chat")),
        ("/chat/", Some("/chat")),
        ("/chat/room", Some("/chat")),
        ("/chat?x=/admin", Some("/chat")),
        ("/chat/admin", Some("/chat/admin")),
        ("/chat/admin/x", Some("/chat/admin")),
        ("/chat/administrator", Some("/chat")),
        ("/chatroom", Some("/")),
        ("/", Some("/")),
        ("", None),
        ("*", None),
        ("http://example.com/chat", None),
    ] {
        assert_eq!(
            manifest.routes.find(target).map(|r| &*r.path),
            want,
            "{target:?}"
        );
    }
    let only_chat = load("[[route]]\npath = \"/chat\"\ncomponent = \"echo.wasm\"\n").unwrap();
    assert!(only_chat.routes.find("/").is_none(), "no route: 404");
    assert!(only_chat.routes.find("/chatroom").is_none());
    assert!(only_chat.routes.find("/chat/x").is_some());
}

/// A manifest that sets every key.
const EVERYTHING: &str = r#"
            listen = "[::1]:8443"
            metrics = "localhost:9090"
            max-connections = 10
            max-handshakes = 5
            handshake-timeout = "2s"
            shutdown-timeout = "500ms"
            keepalive = "0s"
            keepalive-timeout = "1m"
            pooling = true
            guest-log-bytes = 4096
            guest-log-lines = 7

            [tls]
            cert = "cert.pem"
            key = "key.pem"

            [[route]]
            path = "/"
            component = "echo.wasm"
            allow = ["ws://127.0.0.1:9001"]
            ca-file = "ca.pem"
            max-message-size = "1MiB"
            max-frame-size = 1024
            inbound-buffer = "64KiB"
            send-timeout = "1s"
            connect-timeout = "2s"
            close-timeout = "3s"
            instance-inbound-buffer = "2MiB"
            max-websockets = 4
            max-handles = 64
            max-memory = "32MiB"
            cpu-deadline = "100ms"
            "#;

#[test]
fn everything_a_manifest_may_say() {
    let manifest = load(EVERYTHING).unwrap();
    let dir = manifest.file.parent().unwrap();
    assert_eq!(manifest.listen.as_deref(), Some("[::1]:8443"));
    assert_eq!(
        manifest.tls,
        Some(TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem")
        })
    );
    let s = Duration::from_secs;
    assert_eq!(
        manifest.server,
        ServerSettings {
            max_connections: Some(10),
            max_handshakes: Some(5),
            handshake_timeout: Some(s(2)),
            shutdown_timeout: Some(Duration::from_millis(500)),
            keepalive: Some(Duration::ZERO),
            keepalive_timeout: Some(s(60)),
            pooling: Some(true),
            guest_log_bytes: Some(4096),
            guest_log_lines: Some(7),
        }
    );
}

#[test]
fn everything_a_route_may_say() {
    let manifest = load(EVERYTHING).unwrap();
    let dir = manifest.file.parent().unwrap();
    let s = Duration::from_secs;
    let route = manifest.routes.find("/").unwrap();
    assert_eq!(route.ca_file.as_deref(), Some(&*dir.join("ca.pem")));
    let limits = route.limits.apply(&Limits::default());
    let instance = route.limits.apply_instance(&InstanceLimits::default());
    assert_eq!(
        (
            limits.max_message_size,
            limits.max_frame_size,
            limits.inbound_buffer,
            limits.send_timeout,
            limits.connect_timeout,
            limits.close_timeout,
            limits.instance_inbound_buffer,
            limits.max_websockets,
            instance.max_handles,
            instance.max_memory,
            instance.cpu_deadline
        ),
        (
            1 << 20,
            1024,
            64 << 10,
            s(1),
            s(2),
            s(3),
            2 << 20,
            4,
            64,
            32 << 20,
            Duration::from_millis(100)
        )
    );
    // `websocket` loads the CA file: the test's is empty (and gone with its
    // folder), so it is refused, naming the file.
    match route.websocket(&Config::default()) {
        Err(crate::Error::CaFile { path, .. }) => assert!(path.ends_with("ca.pem"), "{path}"),
        other => panic!("expected the CA file refused, got {other:?}"),
    }
    let without_ca = Route {
        ca_file: None,
        ..route.clone()
    };
    let policy = without_ca.websocket(&Config::default()).unwrap().policy;
    assert!(policy.permits(false, Destination::Ip("127.0.0.1".parse().unwrap()), 9001));
    assert!(!policy.permits(false, Destination::Ip("127.0.0.1".parse().unwrap()), 9002));
}

/// Asserts that each manifest (what, text, words) is refused in one line
/// that names the file and holds every word. `echo.wasm`, `router.wasm`,
/// `ca.pem`, `cert.pem` and `key.pem` exist; nothing else does.
fn assert_refused(cases: &[(&str, String, &[&str])]) {
    for (what, text, words) in cases {
        let err = load(text)
            .map(|_| ())
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"))
            .to_string();
        eprintln!("{what}: {err}");
        assert!(!err.contains('\n'), "{what}: not one line: {err}");
        assert!(err.contains("wsbox.toml"), "{what}: no file: {err}");
        for word in words.iter() {
            assert!(err.contains(word), "{what}: {err:?} lacks {word:?}");
        }
    }
}

/// An unknown key, at the top, in a route or in `[tls]`.
#[test]
fn unknown_keys_name_their_line_and_table() {
    let route = "[[route]]\npath = \"/\"\ncomponent = \"echo.wasm\"\n";
    assert_refused(&[
        (
            "unknown top-level key",
            format!("colour = \"red\"\n{route}"),
            &[
                "line 1",
                "key `colour`",
                "unknown key",
                "expected one of",
                "`listen`",
            ],
        ),
        (
            "unknown route key",
            "[[route]]\npath = \"/\"\ncomponent = \"echo.wasm\"\ncompnent = \"x\"\n".into(),
            &[
                "line 4",
                "[[route]] #1",
                "key `compnent`",
                "unknown key",
                "fix its spelling",
            ],
        ),
        (
            "unknown key in the second route",
            format!(
                "{route}[[route]]\npath = \"/a\"\ncomponent = \"echo.wasm\"\nmax-msg-size = 3\n"
            ),
            &[
                "line 7",
                "[[route]] #2",
                "key `max-msg-size`",
                "unknown key",
            ],
        ),
        (
            "unknown tls key",
            format!("[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\npassword = \"x\"\n{route}"),
            &["line 4", "[tls]", "key `password`", "unknown key"],
        ),
    ]);
}

/// A required key left out, or a file that does not exist.
#[test]
fn missing_keys_and_files_say_what_to_add_or_fix() {
    let route = "[[route]]\npath = \"/\"\ncomponent = \"echo.wasm\"\n";
    assert_refused(&[
        (
            "missing component key",
            "[[route]]\npath = \"/\"\n".into(),
            &["key `component`", "required"],
        ),
        (
            "missing component file",
            "[[route]]\npath = \"/\"\ncomponent = \"missing.wasm\"\n".into(),
            &[
                "line 3",
                "key `component`",
                "missing.wasm does not exist",
                "fix the path",
            ],
        ),
        (
            "missing CA file",
            format!("{route}ca-file = \"nope.pem\"\n"),
            &["line 4", "key `ca-file`", "nope.pem does not exist"],
        ),
        (
            "missing TLS key file",
            format!("[tls]\ncert = \"cert.pem\"\nkey = \"nope.key\"\n{route}"),
            &["line 3", "[tls]", "key `key`", "nope.key does not exist"],
        ),
        (
            "TLS without its key",
            format!("[tls]\ncert = \"cert.pem\"\n{route}"),
            &["key `key`", "required"],
        ),
    ]);
}

/// Routes: none, listed twice, a path that is not a prefix, not a table.
#[test]
fn routes_need_their_own_path_prefix() {
    let route = "[[route]]\npath = \"/\"\ncomponent = \"echo.wasm\"\n";
    assert_refused(&[
        (
            "route listed twice",
            format!("{route}\n[[route]]\npath = \"/\"\ncomponent = \"router.wasm\"\n"),
            &["line 6", "[[route]] #2", "key `path`", "`/` is listed twice (first on line 2)"],
        ),
        (
            "route listed twice, once with a trailing slash",
            "[[route]]\npath = \"/chat\"\ncomponent = \"echo.wasm\"\n[[route]]\npath = \"/chat/\"\ncomponent = \"echo.wasm\"\n".into(),
            &["line 5", "`/chat` is listed twice (first on line 2)"],
        ),
        (
            "path without a slash",
            "[[route]]\npath = \"chat\"\ncomponent = \"echo.wasm\"\n".into(),
            &["line 2", "key `path`", "start it with `/`"],
        ),
        (
            "path with a query",
            "[[route]]\npath = \"/chat?x\"\ncomponent = \"echo.wasm\"\n".into(),
            &["line 2", "key `path`", "no query"],
        ),
        (
            "no route",
            "listen = \"127.0.0.1:8080\"\n".into(),
            &["no route", "[[route]]"],
        ),
        ("empty file", String::new(), &["no route"]),
        (
            "a route that is not a table",
            "route = \"/\"\n".into(),
            &["line 1", "key `route`", "invalid type"],
        ),
    ]);
}

/// Values: sizes, durations, counts, addresses, and the TOML itself.
#[test]
fn values_say_how_to_write_them() {
    let route = "[[route]]\npath = \"/\"\ncomponent = \"echo.wasm\"\n";
    assert_refused(&[
        (
            "bad size unit",
            format!("{route}max-message-size = \"16XB\"\n"),
            &[
                "line 4",
                "[[route]] #1",
                "key `max-message-size`",
                "unknown size unit `XB`",
            ],
        ),
        (
            "zero size",
            format!("{route}max-memory = 0\n"),
            &["line 4", "key `max-memory`", "above 0"],
        ),
        (
            "bad duration unit",
            format!("{route}cpu-deadline = \"10h\"\n"),
            &["line 4", "key `cpu-deadline`", "use ms, s or m"],
        ),
        (
            "duration as a number",
            format!("handshake-timeout = 10\n{route}"),
            &["line 1", "key `handshake-timeout`", "\"10s\""],
        ),
        (
            "count as a string",
            format!("{route}max-websockets = \"many\"\n"),
            &[
                "line 4",
                "key `max-websockets`",
                "a whole number such as 128",
            ],
        ),
        (
            "negative count",
            format!("max-connections = -1\n{route}"),
            &["line 1", "key `max-connections`", "-1 is not a count"],
        ),
        (
            "bad listen address",
            format!("listen = \"8080\"\n{route}"),
            &["line 1", "key `listen`", "not HOST:PORT"],
        ),
        (
            "bad metrics address",
            format!("metrics = \"localhost:http\"\n{route}"),
            &["line 1", "key `metrics`", "not HOST:PORT"],
        ),
        (
            "zero keepalive timeout",
            format!("keepalive-timeout = \"0s\"\n{route}"),
            &["line 1", "key `keepalive-timeout`", "more than 0s"],
        ),
        (
            "TOML syntax",
            format!("{route}max-memory = \"16MiB\n"),
            &["line 4"],
        ),
        (
            "a key given twice",
            "[[route]]\npath = \"/\"\npath = \"/a\"\ncomponent = \"echo.wasm\"\n".into(),
            &["line 3", "key `path`", "given twice"],
        ),
    ]);
}

/// `allow` and `allow-origin` patterns, as their flags would say.
#[test]
fn bad_patterns_name_their_flag() {
    let route = "[[route]]\npath = \"/\"\ncomponent = \"echo.wasm\"\n";
    assert_refused(&[
        (
            "bad allow pattern",
            format!("{route}allow = [\"ws://127.0.0.1:9001\",\n  \"ftp://x\"]\n"),
            &[
                "line 5",
                "key `allow`",
                "invalid --allow pattern `ftp://x`",
                "ws, wss or *",
            ],
        ),
        (
            "bad allow-origin pattern",
            format!("{route}allow-origin = [\"example.com\"]\n"),
            &[
                "line 4",
                "key `allow-origin`",
                "invalid --allow-origin pattern `example.com`",
            ],
        ),
    ]);
}

#[test]
fn an_unreadable_manifest_names_the_flag() {
    let err = Manifest::load(Path::new("/nonexistent/wsbox.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/nonexistent/wsbox.toml") && err.contains("--config"),
        "{err}"
    );
}
