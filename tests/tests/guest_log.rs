//! A handler's output cannot forge or flood the host's log: control characters arrive escaped, and past its budget an instance's output stops after one notice while its connection and the server go on.

use futures_util::{SinkExt, StreamExt};
use tungstenite::Message;
use wsbox::ServeConfig;
use wsbox_tests::{connect, serve, ClientStream, Served, WAIT};

/// Sends `text` and expects it back, within [`WAIT`].
async fn echoes(ws: &mut ClientStream, text: &str) {
    tokio::time::timeout(WAIT, ws.send(Message::text(text)))
        .await
        .expect("sent in time")
        .expect("sent");
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("echo in time")
        .expect("connection open")
        .expect("a message");
    assert_eq!(reply, Message::text(text));
}

/// The line `/flood` prints `i`-th.
fn flood_line(i: usize) -> String {
    format!("flood {i:05} {}", "x".repeat(188))
}

/// No character in `line` can move the cursor, erase, recolour or reorder
/// what a terminal shows.
fn assert_inert(line: &str) {
    assert!(
        !line
            .chars()
            .any(|c| c.is_control()
                || matches!(c, '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
        "{line:?}"
    );
}

/// Floods from a fresh connection; returns every line it logged, up to and
/// including the notice, which must say `budget`. The connection goes on
/// echoing after the flood.
async fn flood(served: &mut Served, budget: &str) -> Vec<String> {
    let mut ws = connect(&served.url("/flood")).await;
    echoes(&mut ws, "before the flood").await;
    echoes(&mut ws, "after the flood").await;
    let mut lines = served.log_lines_until("dropped from now on").await;
    let notice = lines.pop().unwrap();
    assert!(notice.contains(budget), "{notice}");
    echoes(&mut ws, "still there").await;
    assert_eq!(
        served.logged(),
        Vec::<String>::new(),
        "output past the notice"
    );
    lines
}

#[tokio::test]
async fn a_forged_line_arrives_escaped() {
    let mut served = serve("faulty", ServeConfig::default()).await;
    let mut ws = connect(&served.url("/forge")).await;
    echoes(&mut ws, "one").await;
    echoes(&mut ws, "two").await;
    let lines = served.log_lines_until("red").await;
    assert_eq!(
        lines,
        [
            r"\r\x1b[2K[1.2.3.4:5] wsbox: forged\x7f\x00 \\ \t\u{9b}\u{202e} \xff end",
            r"\x1b]0;title\x07\x1b[1A\x1b[31mred\x08",
        ]
    );
    for line in &lines {
        assert_inert(line);
    }
    drop(ws);
    served.shutdown().await;
}

#[tokio::test]
async fn a_flood_stops_at_the_line_budget_of_each_instance_with_one_notice() {
    let config = ServeConfig {
        guest_log_lines: 100,
        ..ServeConfig::default()
    };
    let mut served = serve("faulty", config).await;
    let mut healthy = connect(&served.url("/fine")).await;
    echoes(&mut healthy, "before").await;

    let expected: Vec<String> = (0..100).map(flood_line).collect();
    let notice =
        "past its budget of 100 lines and is dropped from now on; raise it with --guest-log-lines";
    assert_eq!(flood(&mut served, notice).await, expected);
    echoes(&mut healthy, "between").await;
    // The budget is each instance's, not the server's.
    assert_eq!(flood(&mut served, notice).await, expected);
    echoes(&mut healthy, "after").await;
    drop(healthy);
    served.shutdown().await;
}

#[tokio::test]
async fn a_flood_stops_at_the_default_byte_budget_with_one_notice() {
    let mut served = serve("faulty", ServeConfig::default()).await;
    let mut healthy = connect(&served.url("/fine")).await;
    echoes(&mut healthy, "before").await;

    let notice = "past its budget of 1048576 bytes and is dropped from now on; raise it with --guest-log-bytes";
    let lines = flood(&mut served, notice).await;
    // Lines of 200 bytes: 5242 fit in 1 MiB, the next one does not.
    let expected: Vec<String> = (0..5242).map(flood_line).collect();
    assert_eq!(lines.len(), expected.len());
    assert!(lines == expected, "the lines differ from the flood's");
    echoes(&mut healthy, "after").await;
    drop(healthy);
    served.shutdown().await;
}
