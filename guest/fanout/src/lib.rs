//! `fanout`: one publisher, many receivers, the benchmark's fan-out handler
//! (`tests/bench`). Run it with `wsbox serve fanout.wasm` (add
//! `--cluster nats://HOST:PORT` on several nodes to share the feed).
//!
//! - `/sub` joins the topic `feed` and then only waits: the host writes
//!   every message published to `feed` to it. When the client closes, the
//!   close is answered with the client's code.
//! - `/pub` publishes every message it receives to `feed`; the publisher is
//!   not a member, so it gets nothing back.
//! - Any other path gets 404.

use std::sync::OnceLock;

use wsbox_guest::{publish, CloseCode, Handler, UpgradeRequest, UpgradeResponse, WebSocket};

/// The one topic.
const FEED: &str = "feed";

/// Whether this connection is the publisher, from `upgrade` to `handle`:
/// every connection has an instance of its own.
static PUBLISHER: OnceLock<bool> = OnceLock::new();

struct Fanout;

impl Handler for Fanout {
    fn upgrade(request: UpgradeRequest) -> UpgradeResponse {
        let publisher = match request.route() {
            "/pub" => true,
            "/sub" => false,
            _ => return UpgradeResponse::reject(404),
        };
        let _ = PUBLISHER.set(publisher);
        UpgradeResponse::accept()
    }

    fn handle(ws: WebSocket) {
        if PUBLISHER.get() == Some(&true) {
            for message in ws.messages() {
                let Ok(message) = message else { return };
                if let Err(e) = publish(FEED, &message) {
                    eprintln!("fanout: publish: {e}");
                    let _ = ws.close(CloseCode::Error, "publish failed");
                    return;
                }
            }
        } else {
            if let Err(e) = ws.join(FEED) {
                eprintln!("fanout: join: {e}");
                let _ = ws.close(CloseCode::Again, "cannot join the feed");
                return;
            }
            // A receiver sends nothing: this only waits for the close.
            for message in ws.messages() {
                if message.is_err() {
                    return;
                }
            }
        }
        // The messages ended at the client's close: answer it.
        if let Ok(status) = ws.close_status() {
            let _ = ws.answer_close(&status);
        }
    }
}

wsbox_guest::export_handler!(Fanout);
