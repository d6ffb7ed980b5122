"""`chat` in Python: the chat rooms of guest/chat (the topics sample), built
with componentize-py. It behaves exactly as the Rust handler:

- `/room/NAME?name=WHO` joins the room NAME (the topic `room/NAME`) as WHO
  (percent-decoded; `anonymous` when missing); any other path gets 404.
- On joining, the room gets `* WHO joined`, then the client gets
  `* you joined NAME as WHO`.
- Each text message is published to the room, except to its sender, as
  `WHO: TEXT`; the host writes it to every member. Binary messages are
  ignored. If the cluster could not take a message, the sender gets
  `* only this node got it: ERROR`.
- When the client closes, the room gets `* WHO left` and the client's close
  is answered with its own code.
- If the room cannot be joined, the client gets 1013 and the reason.

Run it with `wsbox serve chat.wasm`.
"""

import re

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import topics, types

# The longest reason a close frame can carry (RFC 6455 section 5.5).
MAX_REASON = 123

# Who is joining which room, from `upgrade` to `handle`: every connection
# has an instance of its own.
SEAT = None


def percent_decode(text: str):
    """`%XX` escapes and `+` as a space; None when the bytes are not UTF-8 or
    an escape is broken."""
    out = bytearray()
    data = text.encode()
    i = 0
    while i < len(data):
        b = data[i]
        if b == ord("%"):
            digits = data[i + 1 : i + 3]
            if len(digits) != 2 or not all(chr(d) in "0123456789abcdefABCDEF" for d in digits):
                return None
            out.append(int(digits, 16))
            i += 3
            continue
        out.append(ord(" ") if b == ord("+") else b)
        i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return None


def describe(error) -> str:
    """An error-code as the Rust SDK shows it: `limit-exceeded: DETAIL`."""
    name = type(error).__name__.removeprefix("ErrorCode_")
    kebab = re.sub(r"(?<!^)([A-Z])", r"-\1", name).lower()
    value = getattr(error, "value", None)
    return kebab if value is None else f"{kebab}: {value}"


def cut(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes of UTF-8, on a character boundary."""
    data = text.encode()[:limit]
    return data.decode("utf-8", errors="ignore")


def sendable(code: int) -> bool:
    """The close codes a websocket may send (RFC 6455 section 7.4)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1013 or 3000 <= code <= 4999


def say(conn: types.Websocket, topic: str, text: str) -> None:
    """Publishes `text` to the room, except to `conn`, and tells `conn` when
    the cluster did not take it."""
    try:
        topics.publish(topic, types.Message_Text(text), conn)
    except Err as e:
        try:
            conn.send(types.Message_Text(f"* only this node got it: {describe(e.value)}"))
        except Err:
            pass


class Handler(exports.Handler):
    def upgrade(self, request: types.UpgradeRequest) -> types.UpgradeResponse:
        global SEAT
        path, _, query = request.path.partition("?")
        if not path.startswith("/room/"):
            return types.UpgradeResponse_Reject(404)
        room = percent_decode(path[len("/room/") :])
        if room is None:
            return types.UpgradeResponse_Reject(400)
        if room == "":
            return types.UpgradeResponse_Reject(404)
        name = None
        for pair in query.split("&"):
            if pair.startswith("name="):
                name = percent_decode(pair[len("name=") :])
                if name is not None:
                    break
        SEAT = (room, name or "anonymous")
        return types.UpgradeResponse_Accept(types.AcceptOptions(protocol=None, headers=[]))

    def handle(self, conn: types.Websocket) -> None:
        with conn:
            if SEAT is None:
                return
            room, name = SEAT
            topic = f"room/{room}"
            try:
                topics.join(conn, topic)
            except Err as e:
                try:
                    conn.close(1013, cut(f"cannot join {room}: {describe(e.value)}", MAX_REASON))
                except Err:
                    pass
                return
            say(conn, topic, f"* {name} joined")
            try:
                conn.send(types.Message_Text(f"* you joined {room} as {name}"))
                while True:
                    incoming = conn.receive()
                    if isinstance(incoming, types.Incoming_Close):
                        break
                    if isinstance(incoming.value, types.Message_Text):
                        say(conn, topic, f"{name}: {incoming.value.value}")
            except Err:
                # The connection is over or broken.
                pass
            try:
                topics.leave(conn, topic)
            except Err:
                pass
            say(conn, topic, f"* {name} left")
            try:
                status = conn.query_close_status()
            except Err:
                return
            code = None if status.code == 1005 else status.code if sendable(status.code) else 1000
            try:
                conn.close(code, "")
            except Err:
                pass
