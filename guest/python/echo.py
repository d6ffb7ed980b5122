"""`echo` in Python: the handler of guest/echo, built with componentize-py.

Accepts every upgrade, sends every message back with its kind (text stays
text, binary stays binary) and answers the client's close with the client's
own code and an empty reason, as the Rust SDK's `answer_close` does: no code
(1005) is answered with an empty close frame, a code that may not be sent
with 1000. Run it with `wsbox serve echo.wasm`.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types


def sendable(code: int) -> bool:
    """The close codes a websocket may send (RFC 6455 section 7.4)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1013 or 3000 <= code <= 4999


class Handler(exports.Handler):
    def upgrade(self, request: types.UpgradeRequest) -> types.UpgradeResponse:
        # Accept everything, no subprotocol, no extra headers.
        return types.UpgradeResponse_Accept(types.AcceptOptions(protocol=None, headers=[]))

    def handle(self, conn: types.Websocket) -> None:
        with conn:
            try:
                while True:
                    incoming = conn.receive()
                    if isinstance(incoming, types.Incoming_Close):
                        break
                    conn.send(incoming.value)
            except Err:
                # The connection is over or broken: just return, and the host
                # closes whatever is left.
                return
            # The loop ended at the client's close: answer it.
            try:
                status = conn.query_close_status()
            except Err:
                return
            if status.code == 1005:
                code = None
            elif sendable(status.code):
                code = status.code
            else:
                code = 1000
            try:
                conn.close(code, "")
            except Err:
                pass
