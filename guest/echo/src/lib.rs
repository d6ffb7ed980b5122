//! `echo`: the simplest handler. Accepts every upgrade, sends every message
//! back with its kind, and answers the client's close with the client's own
//! code. Run it with `wsbox serve echo.wasm`.

use wsbox_guest::{Handler, WebSocket};

struct Echo;

impl Handler for Echo {
    // `upgrade` keeps its default: accept everything, no subprotocol.

    fn handle(ws: WebSocket) {
        for message in ws.messages() {
            // On an error the connection is over or broken: just return, and
            // the host closes whatever is left.
            let Ok(message) = message else { return };
            if ws.send(&message).is_err() {
                return;
            }
        }
        // The iterator ended at the client's close: answer it.
        if let Ok(status) = ws.close_status() {
            let _ = ws.answer_close(&status);
        }
    }
}

wsbox_guest::export_handler!(Echo);
