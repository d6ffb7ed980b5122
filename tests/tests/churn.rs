//! Leak churn (ignored by default; `.ci/run` runs it): 20,000 connections through wsbox serve and 2,000 client guest runs, with drops, resets, traps, returns without close and handshake timeouts mixed in; afterwards open file descriptors, live tasks and resident memory are back near the baseline.

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tungstenite::Message;
use wsbox::{Config, InstanceLimits, Limits, ServeConfig};
use wsbox_tests::raw::{frame, reset};
use wsbox_tests::{allow, connect, drain, next_message, probe_with, send, serve, within, RustPeer};

/// What may remain above the baseline after the churn.
const FD_SLACK: usize = 16;
const TASK_SLACK: usize = 16;
const RSS_SLACK_KIB: usize = 96 * 1024;

#[derive(Debug, Clone, Copy)]
struct Usage {
    fds: usize,
    tasks: usize,
    rss_kib: usize,
}

fn usage() -> Usage {
    let fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let tasks = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    Usage {
        fds,
        tasks,
        rss_kib,
    }
}

/// Waits (bounded) for closes and timeouts to finish, then compares.
async fn assert_back_to(baseline: Usage) {
    let mut now = usage();
    for _ in 0..60 {
        if now.fds <= baseline.fds + FD_SLACK && now.tasks <= baseline.tasks + TASK_SLACK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        now = usage();
    }
    eprintln!("baseline {baseline:?}, after churn {now:?}");
    assert!(
        now.fds <= baseline.fds + FD_SLACK,
        "file descriptors: {baseline:?} -> {now:?}"
    );
    assert!(
        now.tasks <= baseline.tasks + TASK_SLACK,
        "tasks: {baseline:?} -> {now:?}"
    );
    assert!(
        now.rss_kib <= baseline.rss_kib + RSS_SLACK_KIB,
        "resident memory: {baseline:?} -> {now:?}"
    );
    assert_eq!(wsbox::panics(), 0, "a host task panicked");
}

/// One connection's worth of behaviour, chosen by `i`, within
/// [`wsbox_tests::WAIT`].
async fn one_connection(port: u16, i: usize) {
    within(&format!("churn connection {i}"), exchange(port, i)).await;
}

async fn exchange(port: u16, i: usize) {
    let url = |path: &str| format!("ws://127.0.0.1:{port}{path}");
    match i % 20 {
        // A trap in handle.
        0 | 1 => {
            if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url("/trap")).await {
                let _ = ws.send(Message::text("x")).await;
                drain(&mut ws).await;
            }
        }
        // The handler returns without closing.
        2 | 3 => {
            if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url("/return-open")).await {
                let _ = ws.send(Message::text("x")).await;
                drain(&mut ws).await;
            }
        }
        // The client drops TCP without a close frame.
        4..=6 => {
            if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url("/drop")).await {
                let _ = ws.send(Message::text("x")).await;
                let _ = ws.next().await;
            }
        }
        // A reset in the middle of a frame.
        7 | 8 => {
            let tcp = wsbox_tests::raw::connect(port, "/reset").await;
            let mut tcp = tcp;
            let _ = tcp
                .write_all(&frame(0x82, &[1; 64], Some([1, 2, 3, 4]))[..20])
                .await;
            reset(tcp);
        }
        // A client that never sends its request: the handshake timeout.
        9 => {
            if let Ok(tcp) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                tokio::time::sleep(Duration::from_millis(50)).await;
                drop(tcp);
            }
        }
        // A normal exchange and close.
        _ => {
            let mut ws = connect(&url("/echo")).await;
            send(&mut ws, Message::text("ping")).await;
            assert_eq!(next_message(&mut ws).await, Message::text("ping"));
            within("our close", ws.close(None)).await.unwrap();
            drain(&mut ws).await;
        }
    }
}

async fn churn_serve(total: usize) {
    let config = ServeConfig {
        handshake_timeout: Duration::from_millis(200),
        max_connections: 256,
        websocket: Config {
            limits: Limits {
                close_timeout: Duration::from_millis(500),
                ..Limits::default()
            },
            ..Config::default()
        },
        ..ServeConfig::default()
    };
    let served = serve("faulty", config).await;
    let port = served.port;
    for i in 0..200 {
        one_connection(port, i).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline = usage();
    let workers = 32;
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            tokio::spawn(async move {
                for i in (w..total).step_by(workers) {
                    one_connection(port, i).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_back_to(baseline).await;
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a long churn; .ci/run runs it"]
async fn twenty_thousand_connections_through_serve_leave_nothing_behind() {
    churn_serve(20_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_churn_through_serve_leaves_nothing_behind() {
    churn_serve(400).await;
}

async fn churn_client(total: usize) {
    let peer = RustPeer::echo().await;
    let url = peer.url();
    let config = Config {
        limits: Limits {
            close_timeout: Duration::from_millis(300),
            ..Limits::default()
        },
        ..allow(peer.port)
    };
    let instance = InstanceLimits {
        cpu_deadline: Duration::from_millis(200),
        ..InstanceLimits::default()
    };
    let faults: [&[&str]; 6] = [
        &["send-text:x", "recv", "close:1000"],
        &["send-text:x", "recv", "drop"],
        &["send-text:x", "abort"],
        &["send-frag:text:half:0", "trap"],
        &["send-text:x", "spin"],
        &["send-text:x", "recv", "exit"],
    ];
    let run = |i: usize| {
        let (config, url) = ((config.clone(), instance.clone()), url.clone());
        async move {
            let steps = faults[i % faults.len()];
            // Traps end the run; probe_with only accepts exit 0.
            if i % faults.len() >= 3 && i % faults.len() <= 4 {
                let args: Vec<&str> = std::iter::once(url.as_str())
                    .chain(steps.iter().copied())
                    .collect();
                wsbox_tests::run_guest("close-probe", config, &args).await;
            } else {
                probe_with(config, &url, steps).await;
            }
        }
    };
    for i in 0..30 {
        run(i).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline = usage();
    for i in 0..total {
        run(i).await;
    }
    assert_back_to(baseline).await;
    drop(peer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a long churn; .ci/run runs it"]
async fn two_thousand_client_guest_runs_leave_nothing_behind() {
    churn_client(2_000).await;
}
