//! When the guest leaves the peer's close unanswered, the host echoes the peer's own code once the close timeout runs out (not at the guest's exit), in both roles, and the guest's late send is `closed`.

use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use wsbox::{Config, Limits, ServeConfig};
use wsbox_tests::raw::{accept, close_code, close_payload, frame, RawServer};
use wsbox_tests::{allow, connect, probe_with, serve, within};

const CLOSE_TIMEOUT: Duration = Duration::from_millis(300);

/// The echo must come long before the guest's 5 s sleep ends (its exit, or
/// its drop of the websocket, would echo too).
const ECHO_BY: Duration = Duration::from_secs(2);

fn limits() -> Limits {
    Limits {
        close_timeout: CLOSE_TIMEOUT,
        ..Limits::default()
    }
}

/// Asserts that the echo came after the close timeout and well before
/// `ECHO_BY`.
fn assert_echo_time(elapsed: Duration) {
    assert!(
        elapsed >= CLOSE_TIMEOUT,
        "the host answered after {elapsed:?}, before the close timeout: the answer is the guest's"
    );
    assert!(
        elapsed < ECHO_BY,
        "the echo took {elapsed:?}: it waited for the guest instead of the close timeout"
    );
}

#[tokio::test]
async fn client_role_the_peer_gets_its_own_code_back_after_the_close_timeout() {
    let (timed, echo) = tokio::sync::oneshot::channel();
    let server = RawServer::start(|mut tcp| async move {
        accept(&mut tcp).await;
        let sent = Instant::now();
        tcp.write_all(&frame(0x88, &close_payload(4001, b"over to you"), None))
            .await
            .unwrap();
        let answer = close_code(&mut tcp).await;
        let _ = timed.send((answer, sent.elapsed()));
        None
    })
    .await;
    let config = Config {
        limits: limits(),
        ..allow(server.port)
    };
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let guest = tokio::spawn(async move {
        probe_with(
            config,
            &url,
            &["recv", "sleep:5000", "send-text:late", "query"],
        )
        .await
    });

    let (answer, elapsed) = within("the host's echo of the peer's close", echo)
        .await
        .expect("the raw server reported the answer");
    assert_eq!(answer, Some(Some(4001)), "the peer's own code, echoed");
    assert_echo_time(elapsed);

    let out = within("the close-probe run", guest).await.unwrap();
    assert_eq!(out.result("recv"), r#"ok(close 4001 "over to you")"#);
    assert_eq!(out.result("send-text:late"), "err(closed)");
    assert_eq!(out.result("query"), r#"ok(4001 "over to you")"#);
    assert_eq!(server.answer().await, None);
}

#[tokio::test]
async fn server_role_the_client_gets_its_own_code_back_after_the_close_timeout() {
    let mut served = serve(
        "faulty",
        ServeConfig {
            websocket: Config {
                limits: limits(),
                ..Config::default()
            },
            ..ServeConfig::default()
        },
    )
    .await;
    let mut ws = connect(&served.url("/late-answer")).await;
    let sent = Instant::now();
    within(
        "sending the client's close",
        ws.send(tungstenite::Message::Close(Some(CloseFrame {
            code: CloseCode::from(4001),
            reason: "over to you".into(),
        }))),
    )
    .await
    .unwrap();
    let answer = within("the host's echo of the client's close", ws.next()).await;
    let elapsed = sent.elapsed();
    match answer {
        Some(Ok(tungstenite::Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 4001, "the client's own code, echoed");
        }
        other => panic!("expected a close frame with 4001, got {other:?}"),
    }
    assert_echo_time(elapsed);

    assert_eq!(
        served.log_line("late-answer: close").await,
        r#"late-answer: close 4001 "over to you" received"#
    );
    assert_eq!(
        served.log_line("late-answer: send").await,
        "late-answer: send -> err(closed)"
    );
    served.shutdown().await;
}
