//! `echo`: the simplest handler. Accepts every upgrade, sends every message
//! back with its kind, and answers the client's close with the client's own
//! code. Run it with `wsbox serve echo.wasm`.

use wsbox_guest_server::{
    accept, answer_close, echo_until_close, Guest, UpgradeRequest, UpgradeResponse, Websocket,
};

struct Echo;

impl Guest for Echo {
    fn upgrade(_request: UpgradeRequest) -> UpgradeResponse {
        accept()
    }

    fn handle(conn: Websocket) {
        // On an error the connection is over or broken: just return, and the
        // host closes whatever is left.
        let Ok(status) = echo_until_close(&conn, |message| message) else {
            return;
        };
        let _ = answer_close(&conn, &status);
    }
}

wsbox_guest_server::export!(Echo);
