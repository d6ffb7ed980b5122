//! `wsbox serve` as a process: it prints the bound address, tags guest output with the client's address on stderr, refuses a component of the wrong world or a maximum past the mapping limit, prints its latencies and panic count as one line of JSON with `--stats`, pings idle clients with `--keepalive` (a zero `--keepalive-timeout` is one line, exit 2), and on SIGTERM sends 1001 to every client and exits 0.

mod support;

use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{first_line_within, output_within, wait_within, within};
use tungstenite::Message;

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to `url`, sends "hi" and checks the echo.
async fn connect_and_echo(url: &str) -> Client {
    let (mut ws, _) = within("the connection", tokio_tungstenite::connect_async(url))
        .await
        .unwrap();
    within("the send", ws.send(Message::text("hi")))
        .await
        .unwrap();
    let echo = within("the echo", ws.next()).await;
    assert_eq!(echo.unwrap().unwrap(), Message::text("hi"));
    ws
}

/// Sends SIGTERM to `child`.
fn terminate(child: &Child) {
    let mut kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .spawn()
        .unwrap();
    assert!(wait_within(&mut kill, "kill -TERM").success());
}

struct Serving {
    child: Child,
    port: u16,
    stderr: std::sync::mpsc::Receiver<String>,
}

fn start(handler: &str) -> Serving {
    start_with(handler, &[])
}

fn start_with(handler: &str, options: &[&str]) -> Serving {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wsbox"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(options)
        .arg(wsbox_testbed::guest(handler))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wsbox serve starts");
    let first = first_line_within(&mut child, "wsbox serve");
    let port = first
        .trim()
        .strip_prefix("wsbox serve: listening on ws://127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    let (tx, stderr) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    Serving {
        child,
        port,
        stderr,
    }
}

impl Serving {
    fn stderr_line(&self, needle: &str) -> String {
        loop {
            let line = self
                .stderr
                .recv_timeout(Duration::from_secs(30))
                .expect("stderr line in time");
            if line.contains(needle) {
                return line;
            }
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn guest_output_is_tagged_and_sigterm_sends_1001_then_exits_0() {
    let mut serving = start("close-reporter");
    let url = format!("ws://127.0.0.1:{}/tagged", serving.port);
    let mut clients = Vec::new();
    for _ in 0..2 {
        clients.push(connect_and_echo(&url).await);
    }
    let address = match clients[0].get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap().to_string(),
        _ => unreachable!("plain ws"),
    };
    // The first upgrade logged is the first client's.
    let line = serving.stderr_line("close-reporter: upgrade");
    assert!(
        line.starts_with(&format!("[{address}] close-reporter: upgrade /tagged")),
        "{line}"
    );

    terminate(&serving.child);
    for mut ws in clients {
        let close = loop {
            match tokio::time::timeout(Duration::from_secs(30), ws.next())
                .await
                .unwrap()
            {
                Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        };
        assert_eq!(close, Some(1001));
        let _ = within("our close answer", ws.close(None)).await;
    }
    let exit = tokio::task::spawn_blocking(move || {
        let status = wait_within(&mut serving.child, "wsbox serve after SIGTERM");
        (status, serving)
    })
    .await
    .unwrap();
    assert_eq!(exit.0.code(), Some(0));
}

#[tokio::test]
async fn stats_at_shutdown_count_every_handled_connection() {
    let serving = start_with("echo", &["--stats"]);
    let url = format!("ws://127.0.0.1:{}/", serving.port);
    for _ in 0..3 {
        let mut ws = connect_and_echo(&url).await;
        within("our close", ws.close(None)).await.unwrap();
        within("the end of the connection", async {
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
    }
    terminate(&serving.child);
    // One line of JSON after a fixed prefix (README, `wsbox serve`).
    let line = serving.stderr_line("wsbox serve: stats ");
    let json = line
        .strip_prefix("wsbox serve: stats ")
        .unwrap_or_else(|| panic!("the stats line does not start with its prefix: {line}"));
    let stats: serde_json::Value = serde_json::from_str(json).unwrap();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(
        keys(&stats),
        [
            "accept_to_handle",
            "instantiate",
            "panics",
            "request_to_handle"
        ],
        "{line}"
    );
    assert_eq!(stats["panics"].as_u64(), Some(0), "{line}");
    for what in ["accept_to_handle", "request_to_handle", "instantiate"] {
        let latency = &stats[what];
        assert_eq!(
            keys(latency),
            ["count", "max_us", "p50_us", "p99_us"],
            "{line}"
        );
        let field = |key: &str| latency[key].as_u64().unwrap();
        assert_eq!(field("count"), 3, "{what}: {line}");
        assert!(
            field("p50_us") <= field("p99_us") && field("p99_us") <= field("max_us"),
            "{what}: {line}"
        );
        assert!(field("p50_us") > 0, "{what}: {line}");
    }
    // The library's own type reads it back.
    let typed: wsbox::ServeStats = serde_json::from_str(json).unwrap();
    assert_eq!(typed.instantiate.map(|p| p.count), Some(3), "{line}");
    assert_eq!(typed.panics, 0, "{line}");
    let mut serving = serving;
    let status = tokio::task::spawn_blocking(move || {
        wait_within(&mut serving.child, "wsbox serve after SIGTERM")
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_client_component_is_refused_by_serve() {
    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_wsbox"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .arg(wsbox_testbed::guest("echo-client")),
        "wsbox serve with a client component",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot run as a `wsbox:websocket/server` component"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

/// `--keepalive` reaches the connections: an idle client gets the host's
/// pings.
#[tokio::test]
async fn keepalive_flags_ping_idle_clients() {
    let serving = start_with(
        "echo",
        &["--keepalive", "200ms", "--keepalive-timeout", "5s"],
    );
    let url = format!("ws://127.0.0.1:{}/", serving.port);
    let mut ws = connect_and_echo(&url).await;
    let mut pings = 0;
    let idle_until = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Ok(next) = tokio::time::timeout_at(idle_until, ws.next()).await {
        match next.expect("open").unwrap() {
            Message::Ping(payload) => {
                assert_eq!(&payload[..], b"wsbox-keepalive");
                pings += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pings >= 3, "{pings} pings in 1.5 s");
}

/// A zero `--keepalive-timeout` is refused in one line that says the fix,
/// by both commands.
#[test]
fn a_zero_keepalive_timeout_is_refused() {
    for (command, guest) in [("serve", "echo"), ("run", "echo-client")] {
        let out = output_within(
            Command::new(env!("CARGO_BIN_EXE_wsbox"))
                .args([command, "--keepalive", "1s", "--keepalive-timeout", "0s"])
                .arg(wsbox_testbed::guest(guest)),
            "wsbox with --keepalive-timeout 0s",
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains("--keepalive-timeout must be more than 0s")
                && stderr.contains("--keepalive 0s"),
            "{command}: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}

/// More connections than `vm.max_map_count` allows instances for is refused
/// at start-up, in one line that names a number that does start.
#[cfg(target_os = "linux")]
#[test]
fn max_connections_past_the_mapping_limit_is_refused_with_a_number_that_works() {
    // Every connection costs more than one mapping (its instance, and its
    // stack and guard page), so as many connections as the machine's limit
    // allows mappings can never fit, whatever the sysctl says.
    let max_map_count: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .expect("/proc/sys/vm/max_map_count is readable")
        .trim()
        .parse()
        .expect("vm.max_map_count is a number");
    let too_many = max_map_count.to_string();
    let echo = wsbox_testbed::guest("echo");
    for pooling in [false, true] {
        let mut serve = Command::new(env!("CARGO_BIN_EXE_wsbox"));
        serve.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--max-connections",
            &too_many,
        ]);
        if pooling {
            serve.arg("--pooling");
        }
        let out = output_within(
            serve.arg(&echo),
            &format!("wsbox serve --max-connections {too_many} (pooling: {pooling})"),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!("vm.max_map_count is {max_map_count} ")),
            "{stderr}"
        );
        assert_eq!(stderr.contains("use --pooling"), !pooling, "{stderr}");
        let allowed: usize = stderr
            .split("lower --max-connections to at most ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number in {stderr}"));
        assert!(
            allowed > 0 && allowed < max_map_count / 2,
            "{allowed} of {max_map_count}: {stderr}"
        );
        // Linux's default limit (65530) leaves room for thousands.
        if max_map_count >= 65530 {
            assert!(allowed > 1000, "{stderr}");
        }

        let mut serve = Command::new(env!("CARGO_BIN_EXE_wsbox"));
        serve.args(["serve", "--listen", "127.0.0.1:0", "--max-connections"]);
        serve.arg(allowed.to_string());
        if pooling {
            serve.arg("--pooling");
        }
        let mut child = serve
            .arg(&echo)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let what = format!("wsbox serve --max-connections {allowed} (pooling: {pooling})");
        let first = first_line_within(&mut child, &what);
        let _ = child.kill();
        wait_within(&mut child, &what);
        assert!(
            first.starts_with("wsbox serve: listening on"),
            "{what} did not start: {first:?}"
        );
    }
}
