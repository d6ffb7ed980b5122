//! `wsbox serve --log-format json` logs one JSON object per line on stderr: the guest's output lines (escaped, with the client's address and the route as fields), the host's own events and its notices.

mod support;

use futures_util::{SinkExt, StreamExt};
use std::ffi::OsStr;
use support::{serve, wait_within, within};
use tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_is_a_json_object_with_client_and_route() {
    let faulty = wsbox_testbed::guest("faulty");
    let mut serving = serve(&[
        OsStr::new("serve"),
        OsStr::new("--log-format"),
        OsStr::new("json"),
        OsStr::new("--listen"),
        OsStr::new("127.0.0.1:0"),
        faulty.as_os_str(),
    ]);
    let url = format!("{}/forge", serving.url);
    let (mut ws, _) = within("the connection", tokio_tungstenite::connect_async(url))
        .await
        .unwrap();
    let client = match ws.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap().to_string(),
        _ => unreachable!("plain ws"),
    };
    for text in ["one", "two"] {
        within("the send", ws.send(Message::text(text)))
            .await
            .unwrap();
        let echo = within("the echo", ws.next()).await.unwrap().unwrap();
        assert_eq!(echo, Message::text(text));
    }
    // The forged lines, then a trap in `upgrade` (an error of the host's).
    let trap = tokio_tungstenite::connect_async(format!("{}/trap-upgrade", serving.url));
    assert!(within("the refused upgrade", trap).await.is_err());
    let json = |needle: &str| -> serde_json::Value {
        let line = tokio::task::block_in_place(|| serving.stderr_line(needle));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };
    let forged = json("forged");
    assert_eq!(forged["target"], "wsbox::guest", "{forged}");
    assert_eq!(forged["level"], "INFO", "{forged}");
    assert_eq!(forged["client"], client.as_str(), "{forged}");
    assert_eq!(forged["route"], "/", "{forged}");
    assert_eq!(
        forged["message"],
        r"\r\x1b[2K[1.2.3.4:5] wsbox: forged\x7f\x00 \\ \t\u{9b}\u{202e} \xff end",
        "{forged}"
    );
    let red = json("red");
    assert_eq!(red["message"], r"\x1b]0;title\x07\x1b[1A\x1b[31mred\x08");
    let trapped = json("trapped in upgrade");
    assert_eq!(trapped["level"], "ERROR", "{trapped}");
    assert_eq!(trapped["route"], "/", "{trapped}");
    assert!(trapped["remote"].as_str().is_some(), "{trapped}");

    within("our close", ws.close(None)).await.unwrap();
    while let Some(Ok(_)) = within("the end of the connection", ws.next()).await {}
    serving.signal("-TERM");
    let done = json("shut down");
    assert_eq!(done["target"], "wsbox::cli", "{done}");
    let status = tokio::task::block_in_place(|| wait_within(&mut serving.child, "wsbox serve"));
    assert_eq!(status.code(), Some(0));
    // Every line it wrote is JSON.
    for line in serving.stderr.try_iter() {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(&line);
        assert!(
            parsed.is_ok_and(|v| v.is_object()),
            "not a JSON object: {line}"
        );
    }
}
