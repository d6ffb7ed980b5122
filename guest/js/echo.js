// `echo` in JavaScript: the handler of guest/echo, built with jco componentize
// (componentize-js) for the `wsbox:websocket/server` world.
//
// Accepts every upgrade, sends every message back with its kind (text stays
// text, binary stays binary) and answers the client's close with the
// client's own code and an empty reason, as the Rust SDK's `answer_close`
// does: no code (1005) is answered with an empty close frame, a code that may
// not be sent with 1000. Run it with `wsbox serve echo.wasm`.

/** The close codes a websocket may send (RFC 6455 section 7.4). */
function sendable(code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1013) || (code >= 3000 && code <= 4999);
}

export const handler = {
  // Accept everything, no subprotocol, no extra headers.
  upgrade(_request) {
    return { tag: 'accept', val: { protocol: undefined, headers: [] } };
  },

  handle(conn) {
    try {
      // A WIT `result` error arrives as an exception; the connection is then
      // over or broken: just return, and the host closes whatever is left.
      for (;;) {
        const incoming = conn.receive();
        if (incoming.tag === 'close') break;
        conn.send(incoming.val);
      }
      // The loop ended at the client's close: answer it.
      const status = conn.queryCloseStatus();
      const code = status.code === 1005 ? undefined : sendable(status.code) ? status.code : 1000;
      conn.close(code, '');
    } catch (_e) {
      // Nothing to answer.
    } finally {
      conn[Symbol.dispose]();
    }
  },
};
