// `chat` in JavaScript: the chat rooms of guest/chat (the topics sample),
// built with componentize-js for the `wsbox:websocket/server` world. It
// behaves exactly as the Rust handler:
//
// - `/room/NAME?name=WHO` joins the room NAME (the topic `room/NAME`) as WHO
//   (percent-decoded; `anonymous` when missing); any other path gets 404.
// - On joining, the room gets `* WHO joined`, then the client gets
//   `* you joined NAME as WHO`.
// - Each text message is published to the room, except to its sender, as
//   `WHO: TEXT`; the host writes it to every member. Binary messages are
//   ignored. If the cluster could not take a message, the sender gets
//   `* only this node got it: ERROR`.
// - When the client closes, the room gets `* WHO left` and the client's
//   close is answered with its own code.
// - If the room cannot be joined, the client gets 1013 and the reason.
//
// Run it with `wsbox serve chat.wasm`.

import { join, leave, publish } from 'wsbox:websocket/topics@0.1.0';

/** The longest reason a close frame can carry (RFC 6455 section 5.5). */
const MAX_REASON = 123;

/** Who is joining which room, from `upgrade` to `handle`: every connection
 * has an instance of its own. */
let seat = null;

/** `%XX` escapes and `+` as a space; null when the bytes are not UTF-8 or an
 * escape is broken. */
function percentDecode(text) {
  const bytes = [];
  const data = new TextEncoder().encode(text);
  for (let i = 0; i < data.length; i++) {
    const b = data[i];
    if (b === 0x25) {
      const digits = String.fromCharCode(data[i + 1] ?? 0, data[i + 2] ?? 0);
      if (!/^[0-9a-fA-F]{2}$/.test(digits)) return null;
      bytes.push(parseInt(digits, 16));
      i += 2;
    } else {
      bytes.push(b === 0x2b ? 0x20 : b);
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(bytes));
  } catch (_e) {
    return null;
  }
}

/** The payload of a WIT `result` error, which the bindings throw. */
function payload(e) {
  return e !== null && typeof e === 'object' && 'payload' in e ? e.payload : e;
}

/** An error-code as the Rust SDK shows it: `limit-exceeded: DETAIL`. */
function describe(error) {
  return error.val === undefined ? error.tag : `${error.tag}: ${error.val}`;
}

/** `text` cut to at most `limit` bytes of UTF-8, on a character boundary. */
function cut(text, limit) {
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const n = new TextEncoder().encode(ch).length;
    if (bytes + n > limit) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/** The close codes a websocket may send (RFC 6455 section 7.4). */
function sendable(code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1013) || (code >= 3000 && code <= 4999);
}

/** Publishes `text` to the room, except to `conn`, and tells `conn` when the
 * cluster did not take it. */
function say(conn, topic, text) {
  try {
    publish(topic, { tag: 'text', val: text }, conn);
  } catch (e) {
    try {
      conn.send({ tag: 'text', val: `* only this node got it: ${describe(payload(e))}` });
    } catch (_e) {
      // The connection is over.
    }
  }
}

export const handler = {
  upgrade(request) {
    const at = request.path.indexOf('?');
    const path = at < 0 ? request.path : request.path.slice(0, at);
    const query = at < 0 ? '' : request.path.slice(at + 1);
    if (!path.startsWith('/room/')) return { tag: 'reject', val: 404 };
    const room = percentDecode(path.slice('/room/'.length));
    if (room === null) return { tag: 'reject', val: 400 };
    if (room === '') return { tag: 'reject', val: 404 };
    let name = null;
    for (const pair of query.split('&')) {
      if (pair.startsWith('name=')) {
        name = percentDecode(pair.slice('name='.length));
        if (name !== null) break;
      }
    }
    seat = { room, name: name || 'anonymous' };
    return { tag: 'accept', val: { protocol: undefined, headers: [] } };
  },

  handle(conn) {
    try {
      if (seat === null) return;
      const { room, name } = seat;
      const topic = `room/${room}`;
      try {
        join(conn, topic);
      } catch (e) {
        try {
          conn.close(1013, cut(`cannot join ${room}: ${describe(payload(e))}`, MAX_REASON));
        } catch (_e) {
          // The connection is over.
        }
        return;
      }
      say(conn, topic, `* ${name} joined`);
      try {
        conn.send({ tag: 'text', val: `* you joined ${room} as ${name}` });
        for (;;) {
          const incoming = conn.receive();
          if (incoming.tag === 'close') break;
          if (incoming.val.tag === 'text') say(conn, topic, `${name}: ${incoming.val.val}`);
        }
      } catch (_e) {
        // The connection is over or broken.
      }
      try {
        leave(conn, topic);
      } catch (_e) {
        // Nothing to leave.
      }
      say(conn, topic, `* ${name} left`);
      let status;
      try {
        status = conn.queryCloseStatus();
      } catch (_e) {
        return;
      }
      const code = status.code === 1005 ? undefined : sendable(status.code) ? status.code : 1000;
      try {
        conn.close(code, '');
      } catch (_e) {
        // Nothing to answer.
      }
    } finally {
      conn[Symbol.dispose]();
    }
  },
};
