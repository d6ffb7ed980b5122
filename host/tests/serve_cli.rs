//! `wsbox serve` as a process: it prints the bound address, tags guest output with the client's address on stderr, refuses a component of the wrong world or a maximum past the mapping limit, prints its latencies with `--stats`, and on SIGTERM sends 1001 to every client and exits 0.

use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tungstenite::Message;

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
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
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
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        ws.send(Message::text("hi")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hi"));
        clients.push(ws);
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

    let status = Command::new("kill")
        .args(["-TERM", &serving.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
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
        let _ = ws.close(None).await;
    }
    let exit = tokio::task::spawn_blocking(move || {
        let status = serving.child.wait().unwrap();
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
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        ws.send(Message::text("hi")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hi"));
        ws.close(None).await.unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    }
    let status = Command::new("kill")
        .args(["-TERM", &serving.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for what in ["accept-to-handle", "request-to-handle", "instantiate"] {
        let line = serving.stderr_line(&format!("wsbox serve: {what} "));
        let fields: Vec<(&str, u64)> = line
            .split_whitespace()
            .filter_map(|f| f.split_once('='))
            .map(|(k, v)| (k, v.parse().unwrap()))
            .collect();
        let names: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["n", "p50_us", "p99_us", "max_us"], "{line}");
        assert_eq!(fields[0].1, 3, "{line}");
        assert!(
            fields[1].1 <= fields[2].1 && fields[2].1 <= fields[3].1,
            "{line}"
        );
        assert!(fields[1].1 > 0, "{line}");
    }
    let mut serving = serving;
    assert_eq!(serving.child.wait().unwrap().code(), Some(0));
}

#[test]
fn a_client_component_is_refused_by_serve() {
    let out = Command::new(env!("CARGO_BIN_EXE_wsbox"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg(wsbox_testbed::guest("echo-client"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot run as a `wsbox:websocket/server` component"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

/// More connections than `vm.max_map_count` allows instances for is refused
/// at start-up, in one line that names a number that does start.
#[cfg(target_os = "linux")]
#[test]
fn max_connections_past_the_mapping_limit_is_refused_with_a_number_that_works() {
    let echo = wsbox_testbed::guest("echo");
    for pooling in [false, true] {
        let mut serve = Command::new(env!("CARGO_BIN_EXE_wsbox"));
        serve.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--max-connections",
            "50000",
        ]);
        if pooling {
            serve.arg("--pooling");
        }
        let out = serve.arg(&echo).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("vm.max_map_count"), "{stderr}");
        assert_eq!(stderr.contains("use --pooling"), !pooling, "{stderr}");
        let allowed: usize = stderr
            .split("lower --max-connections to at most ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number in {stderr}"));
        assert!(allowed > 1000, "{stderr}");

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
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            first.starts_with("wsbox serve: listening on"),
            "--max-connections {allowed} (pooling: {pooling}) did not start: {first:?}"
        );
    }
}
