//! Guest code that computes without end yields its tokio worker at every epoch tick: with up to eight handlers spinning on a two-worker runtime, every new connection still gets its echo promptly.

use futures_util::{FutureExt, SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tungstenite::Message;
use wsbox::{InstanceLimits, ServeConfig};
use wsbox_tests::{connect, serve, within, ClientStream, WAIT};

/// How long a new connection may take to get its echo while others spin.
const BOUND: Duration = Duration::from_secs(2);

/// Connects to `url`, sends `text` and checks that its echo came within
/// [`BOUND`]. (Measured after the fact: a stalled runtime cannot fire a
/// timer either; the harness's `WAIT` still bounds the whole.)
async fn echoed_promptly(url: &str, text: &str) -> ClientStream {
    let start = Instant::now();
    let mut ws = connect(url).await;
    within("a send", ws.send(Message::text(text)))
        .await
        .unwrap();
    let echo = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap_or_else(|_| panic!("{text:?} got no echo in time"));
    let took = start.elapsed();
    assert_eq!(echo.unwrap().unwrap(), Message::text(text));
    assert!(
        took < BOUND,
        "{text:?} took {took:?} to echo, over {BOUND:?}"
    );
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_spinning_handlers_do_not_stall_an_echo_on_two_workers() {
    // Long enough that the spinners are still spinning at the end.
    let config = ServeConfig {
        instance: InstanceLimits {
            cpu_deadline: Duration::from_secs(20),
            ..InstanceLimits::default()
        },
        ..ServeConfig::default()
    };
    let faulty = serve("faulty", config.clone()).await;
    let echo = serve("echo", config).await;
    let mut spinners = Vec::new();
    for i in 0..8 {
        // After its echo, the handler loops forever.
        let text = format!("spinner {i}, with {i} spinning");
        spinners.push(echoed_promptly(&faulty.url("/spin"), &text).await);
    }
    echoed_promptly(&echo.url("/"), "while 8 spin").await;
    for (i, ws) in spinners.iter_mut().enumerate() {
        assert!(
            ws.next().now_or_never().is_none(),
            "spinner {i} was stopped before the end"
        );
    }
}
