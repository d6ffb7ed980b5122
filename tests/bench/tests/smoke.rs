//! A smoke run of the benchmark with tiny sizes, in-process, so that it
//! cannot rot: the load generator against the native echo server and
//! against `wsbox::Server` with the sample `echo` guest, the
//! connection-scale run, the outbound clients (the `bench-client` guest with
//! `wsbox::Runner`, and the native client), the instantiation figure, the
//! compression figure's load generator and held connections against
//! `wsbox::Server` with and without permessage-deflate, the fan-out load
//! generator against `wsbox::Server` with the `fanout` handler (one node,
//! and two nodes through a real `nats-server` when there is one), the native
//! broadcast server and Node `ws` (when there is node), and the report
//! tables. Not a timed test: it checks only that messages were echoed (or
//! delivered) and that the numbers are sane.

use std::time::Duration;
use wsbox_bench::client::{ClientConfig, ClientResult};
use wsbox_bench::load::{self, LoadConfig, LoadResult};
use wsbox_bench::report::{self, Cell, HandlerRow, Measured, OutboundRow, ScaleRow};
use wsbox_bench::scale::{self, ScaleResult};

/// How long one step of the smoke run may take before the test fails.
const WAIT: Duration = Duration::from_secs(120);

/// Awaits `future` at most [`WAIT`]; past it the test fails naming `what`.
async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    wsbox_testbed::wait::within_for(WAIT, what, future).await
}

async fn native_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(wsbox_bench::native::serve(listener));
    url
}

async fn wsbox_server(
    stop: tokio::sync::oneshot::Receiver<()>,
) -> (String, tokio::task::JoinHandle<()>) {
    wsbox_server_with(wsbox::ServeConfig::default(), stop).await
}

async fn wsbox_server_with(
    config: wsbox::ServeConfig,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> (String, tokio::task::JoinHandle<()>) {
    serve_guest("echo", config, stop).await
}

/// `wsbox::Server` with the handler guest `name` on a free port: its URL
/// and its task, which ends once `stop` fires.
async fn serve_guest(
    name: &str,
    config: wsbox::ServeConfig,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> (String, tokio::task::JoinHandle<()>) {
    let server = wsbox::Server::new(wsbox_testbed::guest(name), config)
        .unwrap_or_else(|e| panic!("{name}.wasm loads: {e:#}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        server
            .serve(listener, async {
                let _ = stop.await;
            })
            .await
            .expect("serve");
    });
    (url, task)
}

fn check(what: &str, r: &LoadResult) {
    assert!(r.messages > 0, "{what}: nothing echoed: {r:?}");
    assert!(r.total_messages >= r.messages, "{what}: {r:?}");
    assert!(r.per_second() > 0.0, "{what}: {r:?}");
    assert!(r.p50_us <= r.p99_us, "{what}: {r:?}");
    assert_eq!(
        LoadResult::from_line(&r.to_line()).unwrap().messages,
        r.messages
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benchmark_smoke_run() {
    let native = native_server().await;
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (wsbox, served) = wsbox_server(stopped).await;

    let mut cells = Vec::new();
    for (connections, size) in [(1, 32), (4, 1024)] {
        let mut measured = Vec::new();
        for (target, url) in [("native", &native), ("wsbox", &wsbox)] {
            let result = within(
                &format!("the load run against {target}"),
                load::run(&LoadConfig {
                    url: url.clone(),
                    connections,
                    in_flight: 4,
                    size,
                    warmup: Duration::from_millis(50),
                    duration: Duration::from_millis(300),
                }),
            )
            .await
            .unwrap_or_else(|e| panic!("{target}: {e:#}"));
            check(&format!("{target} {connections}×{size}"), &result);
            measured.push(Measured {
                target: target.into(),
                result: Ok(result),
                server_cpu_us: None,
            });
        }
        cells.push(Cell {
            connections,
            size,
            measured,
        });
    }
    let table = report::echo_tables(&cells, "native");
    assert!(table.contains("| 4 | 1 KiB | wsbox |"), "{table}");
    assert!(table.contains("wsbox / native"), "{table}");
    // The charts are drawn from what was measured.
    let charts = std::env::temp_dir().join(format!("wsbox-charts-{}", std::process::id()));
    let written = wsbox_bench::charts::write_all(&charts, &cells, &[], &[]).unwrap();
    assert_eq!(written.len(), 2, "{written:?}");
    let throughput = std::fs::read_to_string(&written[0]).unwrap();
    assert!(
        throughput.contains("4 × 1 KiB") && throughput.contains("<rect"),
        "{throughput}"
    );
    std::fs::remove_dir_all(&charts).unwrap();

    let held = within(
        "the connection-scale run",
        scale::run(&wsbox, 20, 4, |r: ScaleResult| async move {
            assert_eq!((r.connections, r.failed), (20, 0));
        }),
    )
    .await
    .expect("20 connections held");
    assert!(held.handshake_p50_us <= held.handshake_p99_us, "{held:?}");
    assert!(held.first_echo_p50_us <= held.first_echo_p99_us, "{held:?}");
    assert!(held.handshake_p50_us <= held.first_echo_p99_us, "{held:?}");
    let parsed = ScaleResult::from_line(&held.to_line()).unwrap();
    assert_eq!(
        (parsed.connections, parsed.first_echo_p99_us),
        (held.connections, held.first_echo_p99_us)
    );
    let table = report::scale_table(&[ScaleRow {
        target: "wsbox".into(),
        result: Ok(held),
        idle_rss_kib: Some(1000),
        held_rss_kib: Some(3000),
        held_maps: Some(100),
        accept_to_handle_us: Some((42, 420)),
        request_to_handle_us: Some((30, 300)),
        instantiate_us: Some((9, 90)),
        note: None,
    }]);
    assert!(table.contains("100.0 KiB"), "{table}");
    assert!(table.contains("| 42 / 420; 30 / 300; 9 / 90 |"), "{table}");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(20), served)
        .await
        .expect("wsbox shuts down")
        .unwrap();
}

fn check_client(what: &str, r: &ClientResult, count: u64) {
    assert_eq!(r.messages, count, "{what}: {r:?}");
    assert!(r.seconds > 0.0 && r.per_second() > 0.0, "{what}: {r:?}");
    assert!(r.p50_us <= r.p99_us, "{what}: {r:?}");
    let parsed = ClientResult::from_line(&r.to_line()).unwrap();
    assert_eq!((parsed.messages, parsed.p99_us), (r.messages, r.p99_us));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_and_instantiation_smoke() {
    let native = native_server().await;
    let mut outbound = Vec::new();
    for size in [1024, 64 * 1024] {
        let config = ClientConfig {
            url: native.clone(),
            size,
            count: 40,
            window: 4,
            warmup: 4,
        };
        // The guest, as `wsbox run` runs it (in-process here).
        let runner = wsbox::Runner::new().unwrap();
        let component = runner
            .load(wsbox_testbed::guest("bench-client"))
            .expect("bench-client.wasm loads");
        let allow = native.trim_end_matches('/');
        let policy = wsbox::Policy::from_patterns(&[allow]).unwrap();
        let args: Vec<String> = std::iter::once("bench-client".to_string())
            .chain(config.guest_args())
            .collect();
        let out = within(
            "the bench-client guest",
            runner.run(
                &component,
                std::sync::Arc::new(wsbox::Config {
                    policy,
                    ..wsbox::Config::default()
                }),
                &args,
                wsbox::Output::Capture,
            ),
        )
        .await
        .unwrap();
        assert_eq!(out.exit, wsbox::Exit::Code(0), "{}", out.stderr);
        assert!(out.stdout.starts_with("start\n"), "{}", out.stdout);
        let line = out
            .stdout
            .lines()
            .find(|l| l.contains("messages="))
            .unwrap();
        let guest = ClientResult::from_line(line).unwrap();
        check_client("guest", &guest, 40);
        let mut started = false;
        let plain = within(
            "the native client",
            wsbox_bench::client::run(&config, || started = true),
        )
        .await
        .unwrap();
        assert!(started);
        check_client("native", &plain, 40);
        for (client, result) in [("wsbox", guest), ("native", plain)] {
            outbound.push(OutboundRow {
                size,
                window: 4,
                client: client.into(),
                result: Ok(result),
                client_cpu_us: None,
                rounds: 1,
            });
        }
    }
    let table = report::outbound_table(&outbound, "native");
    assert!(table.contains("| 64 KiB | 4 | wsbox | 1 |"), "{table}");
    let target = report::outbound_target(&outbound, "wsbox", "native");
    assert!(
        target.contains("1 KiB: ") && target.contains("64 KiB: "),
        "{target}"
    );

    let echo = wsbox_testbed::guest("echo");
    let mut row = HandlerRow {
        name: "rust-echo".into(),
        size_bytes: Some(std::fs::metadata(&echo).unwrap().len()),
        default: Err("not run".into()),
        pooling: Err("not run".into()),
        echo: None,
    };
    for pooling in [false, true] {
        let i = within(
            "the instantiation figure",
            wsbox_bench::instantiate::measure(&echo, pooling, 5, 3),
        )
        .await
        .unwrap();
        assert_eq!((i.count, i.held), (5, 3));
        assert!(i.p50_ns > 0 && i.p50_ns <= i.p99_ns, "{i:?}");
        assert!(i.held_p50_ns > 0 && i.held_p50_ns <= i.held_p99_ns, "{i:?}");
        assert!(i.compile.as_nanos() > 0, "{i:?}");
        if pooling {
            row.pooling = Ok(i);
        } else {
            row.default = Ok(i);
        }
    }
    let table = report::instantiation_table(std::slice::from_ref(&row));
    assert!(table.contains("| rust-echo | pooling |"), "{table}");
    let table = report::handlers_table(&[row], None);
    assert!(table.contains("| rust-echo | "), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_smoke() {
    use wsbox_bench::deflate::{self, DeflateLoadConfig, DeflateLoadResult, HoldResult};
    let mut deflating = wsbox::ServeConfig::default();
    deflating.websocket.deflate = wsbox::DeflateConfig::enabled();
    let mut stops = Vec::new();
    let mut rows = Vec::new();
    let mut memory = Vec::new();
    for (target, config) in [
        ("wsbox-deflate", deflating),
        ("wsbox", wsbox::ServeConfig::default()),
    ] {
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (url, task) = wsbox_server_with(config, stopped).await;
        stops.push((stop, task));
        for size in [1024, 16 * 1024] {
            let r = within(
                &format!("the compression load run against {target}"),
                deflate::run(&DeflateLoadConfig {
                    url: url.clone(),
                    connections: 3,
                    in_flight: 2,
                    size,
                    warmup: Duration::from_millis(50),
                    duration: Duration::from_millis(300),
                }),
            )
            .await
            .unwrap_or_else(|e| panic!("{target}: {e:#}"));
            assert!(r.messages > 0 && r.total_messages >= r.messages, "{r:?}");
            assert_eq!(r.compressed, target == "wsbox-deflate", "{target}: {r:?}");
            // JSON-like text compresses severalfold both ways; plain frames
            // cost the message and a header.
            let wire = size as f64;
            if r.compressed {
                assert!(r.out_per_message() < wire / 2.0, "{target} {size}: {r:?}");
                assert!(r.in_per_message() < wire / 2.0, "{target} {size}: {r:?}");
            } else {
                assert!(r.out_per_message() > wire, "{target} {size}: {r:?}");
                assert!(r.in_per_message() > wire, "{target} {size}: {r:?}");
            }
            assert_eq!(DeflateLoadResult::from_line(&r.to_line()).unwrap(), r);
            rows.push(report::CompressionRow {
                size,
                target: target.into(),
                result: Ok(r),
                server_cpu_us: None,
            });
        }
        let held = within(
            "holding connections",
            deflate::hold(&url, 5, 2, 16 * 1024, |h: HoldResult| async move {
                assert_eq!(h.connections, 5);
            }),
        )
        .await
        .unwrap();
        assert_eq!(held.compressed, target == "wsbox-deflate");
        assert_eq!(HoldResult::from_line(&held.to_line()).unwrap(), held);
        memory.push(report::MemoryRow {
            target: target.into(),
            result: Ok(held),
            idle_rss_kib: Some(1000),
            held_rss_kib: Some(1000 + 5 * 300),
        });
    }
    let table = report::compression_table(&rows, "wsbox");
    assert!(
        table.contains("| 16 KiB | wsbox-deflate | yes |"),
        "{table}"
    );
    assert!(table.contains("| 1 KiB | wsbox | no |"), "{table}");
    let table = report::memory_table(&memory);
    assert!(table.contains("| wsbox-deflate | yes | 5 |"), "{table}");
    assert!(table.contains("300.0 KiB"), "{table}");
    // Each message differs, and is exactly its size.
    let messages = deflate::json_messages(1024, 3);
    assert!(messages.iter().all(|m| m.len() == 1024));
    assert!(messages[0] != messages[1] && messages[1] != messages[2]);
    for (stop, task) in stops {
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("wsbox shuts down")
            .unwrap();
    }
}

/// Receivers, measured messages and warm-up messages of the fan-out smoke
/// runs.
const FANOUT: (usize, usize, usize) = (20, 50, 5);

/// `loadgen fanout` against `publisher` and `receivers`, with [`FANOUT`]'s
/// sizes: every message must reach every receiver.
async fn fanout_run(
    target: &str,
    publisher: String,
    receivers: Vec<String>,
) -> wsbox_bench::fanout::FanoutResult {
    use wsbox_bench::fanout::{self, FanoutConfig, FanoutResult};
    let (count, messages, warmup) = FANOUT;
    let config = FanoutConfig {
        publisher,
        receiver_urls: receivers,
        receivers: count,
        size: 1024,
        messages,
        warmup,
        window: 4,
    };
    let mut measuring = false;
    let mut line = String::new();
    let r = within(
        &format!("the fan-out run against {target}"),
        fanout::run(&config, || measuring = true, |r| line = r.to_line()),
    )
    .await
    .unwrap_or_else(|e| panic!("{target}: {e:#}"));
    assert!(measuring, "{target}");
    // The line the driver parses says what was measured (the times to the
    // microsecond it prints).
    let parsed = FanoutResult::from_line(&line).unwrap();
    let counts = |r: &FanoutResult| {
        let ints = [r.deliveries, r.lost, r.total_deliveries];
        (r.receivers, r.messages, ints, r.p50_us, r.p99_us, r.closed)
    };
    assert_eq!(counts(&parsed), counts(&r), "{target}: {line}");
    assert!(
        (parsed.seconds - r.seconds).abs() < 1e-5,
        "{target}: {line}"
    );
    let all = (count * messages) as u64;
    assert_eq!(
        (r.deliveries, r.lost, r.closed),
        (all, 0, 0),
        "{target}: {r:?}"
    );
    assert_eq!(
        r.total_deliveries,
        (count * (messages + warmup)) as u64,
        "{target}: {r:?}"
    );
    assert!(r.seconds > 0.0 && r.per_second() > 0.0, "{target}: {r:?}");
    assert!(r.p50_us > 0 && r.p50_us <= r.p99_us, "{target}: {r:?}");
    r
}

/// Whether `program --version` runs.
fn runs(program: &std::path::Path) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The Node `ws` broadcast server (`wsbox_bench::broadcast::NODE_SERVER`)
/// with the test suite's pinned `ws`: the process and its URL.
async fn node_broadcast(dir: &std::path::Path) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let script = dir.join("broadcast-server.js");
    std::fs::write(&script, wsbox_bench::broadcast::NODE_SERVER).unwrap();
    let mut child = tokio::process::Command::new("node")
        .arg(&script)
        .env("NODE_PATH", wsbox_testbed::node_peers())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = within("the Node server to listen", lines.next_line())
        .await
        .unwrap()
        .expect("a line from the Node server");
    let address = line.split("ws://").nth(1).expect("ws:// in its line");
    (child, format!("ws://{}/", address.trim()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_smoke() {
    use wsbox_bench::report::{self, FanoutRow};
    let mut rows = Vec::new();
    let mut row = |target: &str, r| {
        rows.push(FanoutRow {
            receivers: FANOUT.0,
            target: target.into(),
            result: Ok(r),
            server_cpu_us: Some(1.5),
        })
    };

    // wsbox, one node.
    let mut stops = Vec::new();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (url, task) = serve_guest("fanout", wsbox::ServeConfig::default(), stopped).await;
    stops.push((stop, task));
    row(
        "wsbox",
        fanout_run("wsbox", format!("{url}pub"), vec![format!("{url}sub")]).await,
    );

    // The native broadcast server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let native = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(wsbox_bench::broadcast::serve(listener));
    row(
        "native",
        fanout_run(
            "native",
            format!("{native}pub"),
            vec![format!("{native}sub")],
        )
        .await,
    );
    assert_eq!(wsbox_bench::broadcast::lagged(), 0);

    // wsbox on two nodes through NATS: the publisher on the first, the
    // receivers on both.
    let logs = std::env::temp_dir().join(format!("wsbox-fanout-{}", std::process::id()));
    std::fs::create_dir_all(&logs).unwrap();
    if runs(&wsbox_bench::nats::binary()) {
        let nats = wsbox_bench::nats::Nats::start(&logs.join("nats.log")).unwrap();
        let mut urls = Vec::new();
        for _ in 0..2 {
            let mut config = wsbox::ServeConfig::default();
            config.websocket.broker = wsbox::Broker::connect(&wsbox::ClusterConfig {
                servers: vec![nats.url.clone()],
                ..wsbox::ClusterConfig::default()
            })
            .await
            .expect("the nodes reach nats-server");
            let (stop, stopped) = tokio::sync::oneshot::channel();
            let (url, task) = serve_guest("fanout", config, stopped).await;
            stops.push((stop, task));
            urls.push(url);
        }
        let receivers = urls.iter().map(|u| format!("{u}sub")).collect();
        row(
            "wsbox-2-nodes",
            fanout_run("wsbox-2-nodes", format!("{}pub", urls[0]), receivers).await,
        );
    } else {
        eprintln!("fanout_smoke: no nats-server, two wsbox nodes not run");
    }

    // Node `ws`.
    if runs("node".as_ref()) && runs("npm".as_ref()) {
        let (_node, url) = node_broadcast(&logs).await;
        row(
            "node-ws",
            fanout_run("node-ws", format!("{url}pub"), vec![format!("{url}sub")]).await,
        );
    } else {
        eprintln!("fanout_smoke: no node, Node `ws` not run");
    }

    let table = report::fanout_table(&rows, "native");
    assert!(table.contains("| 20 | wsbox | 50 | "), "{table}");
    assert!(table.contains("| 1.50 |"), "{table}");
    let targets = report::fanout_targets(&rows, "wsbox", "native", "node-ws");
    assert!(
        targets.contains("/ native ≥ 1.00") && targets.contains("20: "),
        "{targets}"
    );
    let written = wsbox_bench::charts::write_all(&logs, &[], &[], &rows).unwrap();
    assert_eq!(written.len(), 2, "{written:?}");
    let chart = std::fs::read_to_string(&written[0]).unwrap();
    assert!(
        chart.contains("20 receivers") && chart.contains("<rect") && chart.contains("native"),
        "{chart}"
    );
    let latency = std::fs::read_to_string(&written[1]).unwrap();
    assert!(latency.contains("wsbox p99"), "{latency}");
    std::fs::remove_dir_all(&logs).unwrap();
    for (stop, task) in stops {
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("wsbox shuts down")
            .unwrap();
    }
}

#[test]
fn fanout_labels() {
    use wsbox_bench::report::count_label;
    assert_eq!(
        [1, 999, 1000, 10_000, 1_234_567].map(count_label),
        ["1", "999", "1,000", "10,000", "1,234,567"]
    );
}

#[test]
fn raises_the_file_limit() {
    let limit = wsbox_bench::raise_nofile_limit().unwrap();
    assert!(limit >= 256, "{limit}");
}
