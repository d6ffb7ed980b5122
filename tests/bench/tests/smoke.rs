//! A smoke run of the benchmark with tiny sizes, in-process, so that it
//! cannot rot: the load generator against the native echo server and
//! against `wsbox::Server` with the sample `echo` guest, the
//! connection-scale run, and the report tables. Not a timed test: it checks
//! only that messages were echoed and that the numbers are sane.

use std::time::Duration;
use wsbox_bench::load::{self, LoadConfig, LoadResult};
use wsbox_bench::report::{self, Cell, Measured, ScaleRow};
use wsbox_bench::scale::{self, ScaleResult};

async fn native_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(wsbox_bench::native::serve(listener));
    url
}

async fn wsbox_server(
    stop: tokio::sync::oneshot::Receiver<()>,
) -> (String, tokio::task::JoinHandle<()>) {
    let server = wsbox::Server::new(wsbox_testbed::guest("echo"), wsbox::ServeConfig::default())
        .expect("echo.wasm loads");
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
            let result = load::run(&LoadConfig {
                url: url.clone(),
                connections,
                in_flight: 4,
                size,
                warmup: Duration::from_millis(50),
                duration: Duration::from_millis(300),
            })
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

    let held = scale::run(&wsbox, 20, |r: ScaleResult| async move {
        assert_eq!((r.connections, r.failed), (20, 0));
    })
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
        note: None,
    }]);
    assert!(table.contains("100.0 KiB"), "{table}");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(20), served)
        .await
        .expect("wsbox shuts down")
        .unwrap();
}

#[test]
fn raises_the_file_limit() {
    let limit = wsbox_bench::raise_nofile_limit().unwrap();
    assert!(limit >= 256, "{limit}");
}
