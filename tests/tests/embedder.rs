//! An embedder serves WebSockets through the embedding API beside wasi:http: the example `host/examples/http_and_websockets.rs` answers an upgrade with hyper, hands the connection to a fresh `http-bridge` instance (wasi:cli, wasi:http and wsbox:websocket in one store and one Linker), whose HTTP GETs reach a real local server where the embedder allows them, and the guest answers the client's close; a client that offers permessage-deflate gets it through the public path (`accept_deflate`, `handshake::accept_headers`, `new_websocket_with`): its compressed message arrives inflated and long answers go out compressed.

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../../host/examples/http_and_websockets.rs"]
mod example;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;
use wsbox_tests::raw;
use wsbox_tests::{connect, guest, http_get, next_message, read_until_close, send, within};

/// A local HTTP server: `/bytes/N` answers 200 with N bytes, anything else
/// 404 with `not found\n`. It counts the requests it gets.
struct Origin {
    authority: String,
    requests: Arc<AtomicUsize>,
}

async fn origin() -> Origin {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority = listener.local_addr().unwrap().to_string();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let counted = counted.clone();
            let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
                counted.fetch_add(1, Ordering::SeqCst);
                let size = request
                    .uri()
                    .path()
                    .strip_prefix("/bytes/")
                    .and_then(|n| n.parse::<usize>().ok());
                let response = match size {
                    Some(n) => hyper::Response::new(Full::new(Bytes::from(vec![b'x'; n]))),
                    None => {
                        let mut missing =
                            hyper::Response::new(Full::new(Bytes::from_static(b"not found\n")));
                        *missing.status_mut() = hyper::StatusCode::NOT_FOUND;
                        missing
                    }
                };
                async move { Ok::<_, Infallible>(response) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service),
            );
        }
    });
    Origin {
        authority,
        requests,
    }
}

/// The example serving `http-bridge` on 127.0.0.1, its outbound HTTP
/// allowed to `allowed` only: its port.
async fn embedder(allowed: &[&Origin]) -> u16 {
    let allowed: Vec<String> = allowed.iter().map(|o| o.authority.clone()).collect();
    let embedder = example::Embedder::new(&guest("http-bridge"), &allowed)
        .expect("the example loads http-bridge");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(Arc::new(embedder).serve(listener));
    port
}

#[tokio::test]
async fn the_guest_fetches_over_wasi_http_and_answers_the_close() {
    let origin = origin().await;
    let port = embedder(&[&origin]).await;
    let mut request = format!("ws://127.0.0.1:{port}/")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "chat.v2, bridge.v1".parse().unwrap(),
    );
    let (mut ws, upgraded) = within("the upgrade", tokio_tungstenite::connect_async(request))
        .await
        .expect("the embedder answers 101");
    assert_eq!(
        upgraded.headers().get("Sec-WebSocket-Protocol").unwrap(),
        "bridge.v1",
        "the subprotocol the guest's upgrade chose"
    );
    let url = format!("http://{}/bytes/12345", origin.authority);
    send(&mut ws, Message::text(url)).await;
    assert_eq!(next_message(&mut ws).await, Message::text("200 12345"));
    let missing = format!("http://{}/missing", origin.authority);
    send(&mut ws, Message::text(missing)).await;
    assert_eq!(next_message(&mut ws).await, Message::text("404 10"));
    assert_eq!(origin.requests.load(Ordering::SeqCst), 2);

    send(
        &mut ws,
        Message::Close(Some(CloseFrame {
            code: CloseCode::from(4001),
            reason: "done".into(),
        })),
    )
    .await;
    let (unread, answer) = read_until_close(&mut ws).await;
    assert!(unread.is_empty(), "{unread:?}");
    assert_eq!(answer.map(|(code, _)| code), Some(4001));
}

#[tokio::test]
async fn a_bad_url_and_a_host_the_embedder_denies_get_a_clear_answer() {
    let allowed = origin().await;
    let denied = origin().await;
    let port = embedder(&[&allowed]).await;
    let mut ws = connect(&format!("ws://127.0.0.1:{port}/")).await;

    send(&mut ws, Message::text("not a url")).await;
    assert_eq!(
        next_message(&mut ws).await,
        Message::text(
            "error: \"not a url\" is not a URL this bridge fetches: \
             send one that starts with http:// or https://"
        )
    );
    send(
        &mut ws,
        Message::text(format!("http://{}/bytes/5", denied.authority)),
    )
    .await;
    assert_eq!(
        next_message(&mut ws).await,
        Message::text("error: the host denied the request (http-request-denied)")
    );
    assert_eq!(denied.requests.load(Ordering::SeqCst), 0);

    // The connection still works after both.
    send(
        &mut ws,
        Message::text(format!("http://{}/bytes/7", allowed.authority)),
    )
    .await;
    assert_eq!(next_message(&mut ws).await, Message::text("200 7"));
}

#[tokio::test]
async fn the_guests_upgrade_refuses_other_paths() {
    let origin = origin().await;
    let port = embedder(&[&origin]).await;
    let refused = within(
        "the refusal",
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/elsewhere")),
    )
    .await;
    match refused {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("expected the guest's 404, got {other:?}"),
    }
}

#[tokio::test]
async fn a_request_without_upgrade_gets_426() {
    let origin = origin().await;
    let port = embedder(&[&origin]).await;
    let (status, answer) = http_get(
        port,
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 426, "{answer}");
    assert!(
        answer.ends_with("send a GET with Upgrade: websocket.\n"),
        "{answer}"
    );
    let (status, answer) = http_get(
        port,
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.ends_with("Only Sec-WebSocket-Version: 13 is supported.\n"),
        "{answer}"
    );
    assert_eq!(origin.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_client_that_offers_permessage_deflate_gets_it() {
    let origin = origin().await;
    let port = embedder(&[&origin]).await;
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    let (mut tcp, head) = raw::connect_with(port, "/", offer).await;
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("sec-websocket-extensions: permessage-deflate\r\n"),
        "{head}"
    );
    // Past the 1 KiB threshold both ways: the guest's answer quotes it.
    let text = "x".repeat(2000);
    let frame = raw::frame(0xc1, &raw::compress(text.as_bytes()), Some([1, 2, 3, 4]));
    within("sending a compressed frame", tcp.write_all(&frame))
        .await
        .unwrap();
    let mut buf = Vec::new();
    let answer = raw::read_frame(&mut tcp, &mut buf)
        .await
        .expect("an answer");
    assert_eq!(answer.opcode(), 1);
    assert!(answer.rsv1(), "a 2 KB answer goes out compressed");
    let answer = String::from_utf8(raw::inflate(&answer.payload)).unwrap();
    assert_eq!(
        answer,
        format!(
            "error: {text:?} is not a URL this bridge fetches: \
             send one that starts with http:// or https://"
        )
    );
}
