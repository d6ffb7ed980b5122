#!/usr/bin/env python3
"""Third-party WebSocket test peer for the wsbox end-to-end tests.

The peer is built on the Python ``websockets`` library (pinned in
requirements.txt; modern ``websockets.asyncio`` API) so that wsbox is tested
against an implementation it shares no code with.

Usage::

    python peer.py server SCENARIO [ARGS...]
    python peer.py client [--protocol P]... [--timeout S] [--ca PEM] [--origin O] URL SCENARIO [ARGS...]

Server mode
-----------

The peer listens on 127.0.0.1, port 0 (the OS picks a free port), serves any
number of connections until it gets SIGTERM or SIGINT (then it exits with
status 0), and reports what happens on stdout, one JSON object per line,
flushed after each line. Diagnostics go to stderr.

Line protocol (every object has an "event" field; all per-connection events
also carry "conn": a connection number 1, 2, ... to tell connections apart):

``{"event": "listening", "port": N}``
    Always the first line.
``{"event": "connect", "conn": K, "path": "/p?q", "headers": {...}, "subprotocol": "x" | null, "extensions": [...]}``
    The opening handshake succeeded. "path" is the request target (with the
    query string), "headers" maps lower-cased request header names to values
    (repeated headers joined with ", "), "subprotocol" is the one the peer
    selected (null if none), "extensions" the extensions in use (see
    Compression below).
``{"event": "rejected", "conn": K, "status": S, "path": ..., "headers": {...}}``
    ``reject`` scenario: the upgrade was answered with HTTP status S.
``{"event": "message", "conn": K, "type": "text", "data": "...", "len": B, "text_pattern_ok": bool}``
    A complete text message was received; "len" is its size in UTF-8 bytes;
    "text_pattern_ok" is true when it is the text pattern (below) of its
    length. "data" is left out of messages over 4096 bytes.
``{"event": "message", "conn": K, "type": "binary", "len": N, "pattern_ok": bool}``
    A complete binary message was received; "pattern_ok" is true when byte i
    of the message equals i % 251 for every i.
``{"event": "closed", "conn": K, "rcvd": {"code": C, "reason": "R"} | null, "sent": {...} | null, "clean": bool, "error": "..." | null}``
    The TCP connection has ended. "rcvd" is the close frame received from the
    client (code 1005 if it had an empty payload), "sent" the close frame the
    peer sent (null if none), "clean" is true when both close frames were
    exchanged before TCP closed. "error" describes an abnormal end (timeout,
    reset, protocol error detected by the peer) or is null.
    Note: when the peer itself fails the connection (1009 message too big,
    1007 invalid UTF-8, 1002 protocol error), websockets half-closes TCP right
    after its close frame and ignores the client's answer: "rcvd" is then
    null and "clean" false even if the client answered correctly.

The peer sends no keepalive pings (it answers pings), negotiates no
permessage-deflate (see Compression below), and accepts messages up to 64 MiB
in any number of fragments. On SIGTERM/SIGINT open
connections get a 1001 close frame and 1 s to answer before TCP is aborted
(their "closed" events may still be printed), then the peer exits with 0.

Scenarios (the peer echoes = sends every received message back with the same
type; messages received are always reported):

``echo``
    Echo. A close from the client is answered by websockets (echoing its code).
``close CODE [REASON]``
    Right after the handshake send a close frame with CODE and REASON, then
    wait up to 10 s for the client's close frame and TCP close. CODE ``none``
    sends a close frame with an empty payload (REASON must then be empty).
    Codes websockets refuses to send (e.g. 1005, 999) are written raw.
``close-after N CODE [REASON]``
    Echo the first N messages, then close as above.
``send-then-close N CODE [REASON]``
    Send text messages "msg 0" .. "msg N-1", then close as above.
``drop-after N``
    Echo N messages, wait 100 ms (so the last echo reaches the client), then
    drop TCP without a close frame (RST via SO_LINGER 0). N = 0: right after
    the handshake.
``never-answer``
    Raw server (handshake done with websockets' sans-I/O protocol): echo
    messages, but never answer the client's close frame and never close TCP;
    keep reading and discarding until the client drops TCP. Pings are still
    answered. "closed" then has "sent": null and "clean": false; "subprotocol"
    is always null.
``send-fragments text|binary N``
    Send one message as N fragments (text: "frag0", "frag1", ...; binary: 1000
    bytes per fragment, byte i of the message = i % 251), then echo.
``send-big text|binary BYTES``
    Send one message of BYTES bytes (text: "a" * BYTES; binary: i % 251), then
    echo.
``subprotocol P``
    Select subprotocol P if the client offered it, then echo.
``reject STATUS``
    Answer the upgrade request with HTTP STATUS (a registered status code)
    and the text/plain body "rejected by peer.py\n"; no "connect" event.
``limit BYTES``
    Echo, with a maximum incoming message size of BYTES (default: 64 MiB).

Compression
-----------

Without settings the peer negotiates no extension. PEER_COMPRESSION=deflate
enables websockets' permessage-deflate with its defaults. PEER_DEFLATE, a JSON
object, enables it with the given parameters, passed to websockets'
ClientPerMessageDeflateFactory (client mode) or ServerPerMessageDeflateFactory
(server mode): "server_no_context_takeover" and "client_no_context_takeover"
(booleans), "server_max_window_bits" (8-15 as a client, 9-15 as a server, or
null), "client_max_window_bits" (9-15 or true, as a client: true offers the
parameter without a value; 8-15 or null as a server). E.g.
PEER_DEFLATE='{"server_max_window_bits": 10}'.

The "connect" event's "extensions" lists what was negotiated:
``[{"name": "permessage-deflate", "server_no_context_takeover": bool,
"client_no_context_takeover": bool, "server_max_window_bits": N,
"client_max_window_bits": N}]`` (window bits 15 when not limited), or ``[]``.
Client mode adds "extensions_header", the server's Sec-WebSocket-Extensions
(null without one).

The text pattern: ``TEXT_RECORD`` repeated and cut to the length, JSON-like
and compressible; the tests and the close-probe guest make the same.

Client mode
-----------

The peer connects to URL (``ws://``, or ``wss://`` trusting only the CA of
``--ca``; no proxy, whatever the environment says) with the websockets client, runs one scenario, reports what happens on
stdout (JSON lines as above, without "conn": there is one connection) and
exits with status 0 whatever the server did (the events say what happened);
status 2 on usage errors. Same settings as the server mode: no keepalive
pings, no permessage-deflate unless asked (see Compression), messages up to
64 MiB, 10 s close timeout.

Options (before URL): ``--protocol P`` offers subprotocol P (repeatable, in
order); ``--timeout S`` bounds the whole scenario (default 60 s): when it
expires the peer drops TCP and "closed" has an "error" that says "timeout";
``--ca PEM`` trusts the CA certificates in PEM (and no other) for
``wss://``; ``--origin O`` sends the header ``Origin: O``.

Events, in order:

``{"event": "connect", "subprotocol": "x" | null, "headers": {...}}``
    The opening handshake succeeded; "headers" are the server's response
    headers (lower-cased names, repeated headers joined with ", ").
``{"event": "rejected", "status": S, "headers": {...}, "body": "..."}``
    The server answered the upgrade with HTTP status S (not 101). Last event.
``{"event": "error", "error": "..."}``
    The connection or the opening handshake failed otherwise (refused,
    invalid handshake response, 10 s open timeout). Last event.
``{"event": "message", "type": ..., ...}``
    A message was received (same fields as in server mode, without "conn").
``{"event": "closed", "rcvd": ..., "sent": ..., "clean": bool, "error": ...}``
    After "connect", always the last event: the TCP connection has ended.
    Same fields as in server mode ("rcvd" = the close frame from the server).

Scenarios:

``echo-check N``
    Send text "msg 0" .. "msg N-1", each followed by receiving one message
    (reported), then close with 1000 "py done" and wait for the end.
``send-binary BYTES``
    Send one binary message of BYTES bytes (byte i = i % 251), receive one
    message, then close with 1000 "py done".
``close CODE [REASON]``
    Send nothing; close with CODE and REASON right away (CODE ``none``: empty
    close payload; codes websockets refuses to send are written raw) and wait
    up to 10 s for the server's close frame and the end of TCP.
``say-then-wait TEXT``
    Send text TEXT, then report messages until the server closes (websockets
    answers the server's close frame).
``drop-after-send TEXT``
    Send text TEXT, receive one message, then drop TCP with RST (SO_LINGER 0)
    without a close frame. "closed" then has "rcvd"/"sent" null.
``exchange ITEM...``
    For each ITEM send one message and receive one (reported), then close
    with 1000 "py done". ITEM: ``text:N`` (the text pattern of N bytes),
    ``binary:N`` (N bytes, byte i = i % 251), ``frag-text:N:K`` and
    ``frag-binary:N:K`` (the same in K fragments of about equal size).

In every scenario, messages that arrive while the client closes are reported
too; when the server ends the connection early the scenario stops there.
"""

import asyncio
import http
import json
import os
import signal
import socket
import ssl
import struct
import sys

# websockets >= 15 caps fragmented messages at 4096 frames by default; the
# constant is read when websockets is imported, so set it first.
os.environ.setdefault("WEBSOCKETS_MAX_FRAGMENTS", "10000000")

from websockets.asyncio.client import connect  # noqa: E402
from websockets.asyncio.server import serve  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.frames import Close, Frame, Opcode  # noqa: E402
from websockets.http11 import Request  # noqa: E402
from websockets.protocol import State  # noqa: E402
from websockets.server import ServerProtocol  # noqa: E402

MAX_SIZE = 64 * 1024 * 1024
# One JSON-like record, 64 bytes; the text pattern repeats it.
TEXT_RECORD = '{"id":12345,"user":"wsbox","tags":["a","b"],"ok":true,"n":0.25}\n'
assert len(TEXT_RECORD) == 64
CLOSE_TIMEOUT = 10.0
FRAGMENT_SIZE = 1000

_next_conn = 0
LIVE = set()  # connections whose handler is running (websockets scenarios)


def emit(obj):
    """Write one JSON event line to stdout and flush it."""
    try:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass  # the test harness went away; keep serving quietly


def new_conn_id():
    global _next_conn
    _next_conn += 1
    return _next_conn


def pattern(n):
    """n bytes where byte i is i % 251."""
    block = bytes(range(251))
    return (block * (n // 251 + 1))[:n]


def text_pattern(n):
    """The text pattern of n bytes (ASCII): TEXT_RECORD repeated."""
    return (TEXT_RECORD * (n // len(TEXT_RECORD) + 1))[:n]


def deflate_kwargs(server):
    """The websockets keyword arguments for the compression settings (see
    Compression in the module's docs)."""
    settings = os.environ.get("PEER_DEFLATE")
    if settings:
        from websockets.extensions.permessage_deflate import (
            ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory)
        params = json.loads(settings)
        factory = ServerPerMessageDeflateFactory if server else ClientPerMessageDeflateFactory
        return dict(compression=None, extensions=[factory(**params)])
    return dict(compression=os.environ.get("PEER_COMPRESSION") or None)


def extensions_list(ws, server):
    """The negotiated extensions, with permessage-deflate's parameters named
    as in RFC 7692 (not websockets' local/remote)."""
    out = []
    for ext in ws.protocol.extensions:
        entry = {"name": ext.name}
        if ext.name == "permessage-deflate":
            local = ("server" if server else "client")
            remote = ("client" if server else "server")
            entry[local + "_no_context_takeover"] = ext.local_no_context_takeover
            entry[remote + "_no_context_takeover"] = ext.remote_no_context_takeover
            entry[local + "_max_window_bits"] = ext.local_max_window_bits
            entry[remote + "_max_window_bits"] = ext.remote_max_window_bits
        out.append(entry)
    return out


def headers_dict(headers):
    out = {}
    for name, value in headers.raw_items():
        name = name.lower()
        out[name] = out[name] + ", " + value if name in out else value
    return out


def close_dict(close):
    return None if close is None else {"code": close.code, "reason": close.reason}


def conn_event(event, conn, **fields):
    """An event dict; "conn" is left out in client mode (conn None)."""
    obj = {"event": event}
    if conn is not None:
        obj["conn"] = conn
    obj.update(fields)
    return obj


def report_message(conn, msg):
    if isinstance(msg, str):
        fields = dict(len=len(msg.encode()), text_pattern_ok=msg == text_pattern(len(msg)))
        if len(msg) <= 4096:
            fields["data"] = msg
        emit(conn_event("message", conn, type="text", **fields))
    else:
        msg = bytes(msg)
        emit(conn_event("message", conn, type="binary", len=len(msg),
                        pattern_ok=msg == pattern(len(msg))))


def closed_event(ws, conn):
    """The "closed" event of a websockets connection that has ended."""
    proto = ws.protocol
    exc = ws.connection_exc or proto.parser_exc
    if exc is None and proto.state is State.CLOSED and proto.close_rcvd is None and proto.close_sent is None:
        exc = "connection dropped without close frame"
    return conn_event("closed", conn,
                      rcvd=close_dict(proto.close_rcvd), sent=close_dict(proto.close_sent),
                      clean=proto.close_rcvd is not None and proto.close_sent is not None,
                      error=None if exc is None else (str(exc) or type(exc).__name__))


def abort_tcp(ws, why):
    """Drop TCP with RST (SO_LINGER 0), without a close frame."""
    sock = ws.transport.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (AttributeError, OSError):
        pass
    ws.transport.abort()
    ws.connection_exc = ws.connection_exc or ConnectionAbortedError(why)


def parse_code(text):
    return None if text.lower() == "none" else int(text)


# --- websockets-based scenarios -------------------------------------------------


async def recv(ws):
    """Next message, or None once the connection is closed.

    recv() only returns after TCP closes; if the client completes the closing
    handshake but never closes TCP, enforce the close timeout via close().
    """
    while True:
        try:
            return await asyncio.wait_for(ws.recv(), 1.0)
        except asyncio.TimeoutError:
            if ws.protocol.state is not State.OPEN:
                await ws.close()  # waits until the close deadline, then aborts
        except ConnectionClosed:
            return None


async def pump(ws, conn, echo, count=None):
    """Report (and echo) messages; stop after `count` or when the connection ends.

    Returns True if `count` messages were handled.
    """
    n = 0
    while count is None or n < count:
        msg = await recv(ws)
        if msg is None:
            return False
        report_message(conn, msg)
        if echo:
            try:
                await ws.send(msg)
            except ConnectionClosed:
                return False
        n += 1
    return True


async def send_close(ws, conn, code, reason):
    """Send a close frame (code None: empty payload), report messages that
    still arrive, and wait up to CLOSE_TIMEOUT for the client's answer and
    the end of TCP."""
    drain = asyncio.create_task(pump(ws, conn, echo=False))
    try:
        async with ws.send_context():
            proto = ws.protocol
            if code is None:
                proto.send_close()  # empty payload; websockets records it as 1005
            else:
                close = Close(code, reason)
                try:
                    close.check()
                    proto.send_close(code, reason)
                except Exception:
                    # websockets refuses codes that must not appear on the wire
                    # (1005, 1006, 999, ...): write the frame ourselves, mirroring
                    # what Protocol.send_close() does.
                    data = struct.pack("!H", code) + reason.encode()
                    proto.send_frame(Frame(Opcode.CLOSE, data))
                    proto.close_sent = close
                    proto.state = State.CLOSING
        # send_context() waits for TCP to close (or aborts after the timeout)
    except ConnectionClosed:
        pass
    await drain


async def send_messages(ws, scenario, args):
    kind, n = args[0], int(args[1])
    if scenario == "send-fragments":
        # Not ws.send(iterable): websockets then adds an empty final
        # continuation frame (N + 1 frames on the wire). Drive the protocol
        # object so that exactly N frames are sent, the last one with FIN.
        if kind == "text":
            chunks = [("frag%d" % i).encode() for i in range(n)]
        else:
            data = pattern(n * FRAGMENT_SIZE)
            chunks = [data[i:i + FRAGMENT_SIZE] for i in range(0, len(data), FRAGMENT_SIZE)]
        first = ws.protocol.send_text if kind == "text" else ws.protocol.send_binary
        for i, chunk in enumerate(chunks):
            async with ws.send_context():
                send = first if i == 0 else ws.protocol.send_continuation
                send(chunk, fin=i == n - 1)
    else:  # send-big
        await ws.send("a" * n if kind == "text" else pattern(n))


def make_handler(scenario, args):
    async def handler(ws):
        conn = ws.conn_id
        LIVE.add(ws)
        emit({"event": "connect", "conn": conn, "path": ws.request.path,
              "headers": headers_dict(ws.request.headers), "subprotocol": ws.subprotocol,
              "extensions": extensions_list(ws, server=True)})
        try:
            if scenario in ("echo", "subprotocol", "limit"):
                await pump(ws, conn, echo=True)
            elif scenario == "close":
                await send_close(ws, conn, parse_code(args[0]), args[1] if len(args) > 1 else "")
            elif scenario == "close-after":
                if await pump(ws, conn, echo=True, count=int(args[0])):
                    await send_close(ws, conn, parse_code(args[1]), args[2] if len(args) > 2 else "")
            elif scenario == "send-then-close":
                for i in range(int(args[0])):
                    await ws.send("msg %d" % i)
                await send_close(ws, conn, parse_code(args[1]), args[2] if len(args) > 2 else "")
            elif scenario == "drop-after":
                if await pump(ws, conn, echo=True, count=int(args[0])):
                    # let the last echo reach the client before resetting
                    await asyncio.sleep(0.1)
                    if ws.protocol.state is State.OPEN:
                        abort_tcp(ws, "peer aborted TCP (drop-after)")
                    await ws.wait_closed()
            elif scenario in ("send-fragments", "send-big"):
                await send_messages(ws, scenario, args)
                await pump(ws, conn, echo=True)
            else:
                raise AssertionError(scenario)
        except ConnectionClosed:
            pass
        finally:
            await ws.close()  # no-op / bounded wait unless the connection is still open
            await ws.wait_closed()
            emit(closed_event(ws, conn))
            LIVE.discard(ws)

    return handler


async def run_websockets_server(scenario, args, stop):
    # No keepalive pings and no permessage-deflate (unless PEER_COMPRESSION=deflate):
    # what the client sees on the wire is exactly what the scenario says.
    kwargs = dict(max_size=MAX_SIZE, ping_interval=None, close_timeout=CLOSE_TIMEOUT,
                  **deflate_kwargs(server=True))
    if scenario == "limit":
        kwargs["max_size"] = int(args[0])
    if scenario == "subprotocol":
        wanted = args[0]
        kwargs["select_subprotocol"] = lambda ws, offered: wanted if wanted in offered else None

    def process_request(ws, request):
        ws.conn_id = new_conn_id()
        if scenario == "reject":
            status = int(args[0])
            emit({"event": "rejected", "conn": ws.conn_id, "status": status, "path": request.path,
                  "headers": headers_dict(request.headers)})
            return ws.respond(status, "rejected by peer.py\n")
        return None

    server = await serve(make_handler(scenario, args), "127.0.0.1", 0,
                         process_request=process_request, **kwargs)
    emit({"event": "listening", "port": server.sockets[0].getsockname()[1]})
    await stop.wait()
    # Shutdown: close open connections with 1001 (websockets' default), give
    # clients 1 s to answer, then abort whatever is left.
    server.close()
    done, _ = await asyncio.wait([asyncio.ensure_future(server.wait_closed())], timeout=1)
    if not done:
        for ws in list(LIVE):
            ws.transport.abort()
        await asyncio.wait([asyncio.ensure_future(server.wait_closed())], timeout=2)


# --- never-answer: raw asyncio server ------------------------------------------


async def never_answer_conn(reader, writer):
    """Handshake with websockets' sans-I/O protocol, then write frames ourselves
    so the protocol's automatic close reply never reaches the wire."""
    conn = new_conn_id()
    proto = ServerProtocol(max_size=MAX_SIZE)
    opened = False
    parts, kind = [], None
    error = None
    try:
        while True:
            try:
                data = await reader.read(65536)
            except (ConnectionError, OSError) as exc:
                error = "%s: %s" % (type(exc).__name__, exc)
                break
            if not data:
                break
            proto.receive_data(data)
            for event in proto.events_received():
                if isinstance(event, Request):
                    response = proto.accept(event)
                    proto.send_response(response)
                    for out in proto.data_to_send():
                        if out:
                            writer.write(out)
                    if response.status_code != 101:
                        await writer.drain()
                        return
                    opened = True
                    emit({"event": "connect", "conn": conn, "path": event.path,
                          "headers": headers_dict(event.headers), "subprotocol": None})
                elif event.opcode is Opcode.PING:
                    writer.write(Frame(Opcode.PONG, event.data).serialize(mask=False))
                elif event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                    if event.opcode is not Opcode.CONT:
                        kind, parts = event.opcode, []
                    parts.append(bytes(event.data))
                    if event.fin:
                        payload = b"".join(parts)
                        if kind is Opcode.TEXT:
                            report_message(conn, payload.decode(errors="replace"))
                        else:
                            report_message(conn, payload)
                        writer.write(Frame(kind, payload).serialize(mask=False))
            if opened:
                proto.data_to_send()  # discard websockets' own pongs, close reply, EOF
            await writer.drain()
    except Exception as exc:  # protocol error etc.: keep the event stream sane
        error = "%s: %s" % (type(exc).__name__, exc)
    finally:
        writer.close()
        if opened:
            emit({"event": "closed", "conn": conn, "rcvd": close_dict(proto.close_rcvd),
                  "sent": None, "clean": False, "error": error})


async def run_never_answer_server(stop):
    conns = {}  # task -> writer

    async def on_connect(reader, writer):
        task = asyncio.current_task()
        conns[task] = writer
        try:
            await never_answer_conn(reader, writer)
        finally:
            del conns[task]

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    emit({"event": "listening", "port": server.sockets[0].getsockname()[1]})
    await stop.wait()
    server.close()
    tasks = list(conns)
    for writer in conns.values():
        writer.transport.abort()  # the handlers see the end of TCP and report it
    if tasks:
        await asyncio.wait(tasks, timeout=3)


# --- client mode ----------------------------------------------------------------


async def client_scenario(ws, scenario, args):
    """Run one client scenario; returns when it is done or the connection ended."""
    if scenario == "echo-check":
        for i in range(int(args[0])):
            await ws.send("msg %d" % i)
            msg = await recv(ws)
            if msg is None:
                return
            report_message(None, msg)
        await send_close(ws, None, 1000, "py done")
    elif scenario == "send-binary":
        await ws.send(pattern(int(args[0])))
        msg = await recv(ws)
        if msg is None:
            return
        report_message(None, msg)
        await send_close(ws, None, 1000, "py done")
    elif scenario == "close":
        await send_close(ws, None, parse_code(args[0]), args[1] if len(args) > 1 else "")
    elif scenario == "say-then-wait":
        await ws.send(args[0])
        await pump(ws, None, echo=False)
    elif scenario == "exchange":
        for item in args:
            await ws.send(exchange_message(item))
            msg = await recv(ws)
            if msg is None:
                return
            report_message(None, msg)
        await send_close(ws, None, 1000, "py done")
    elif scenario == "drop-after-send":
        await ws.send(args[0])
        msg = await recv(ws)
        if msg is None:
            return
        report_message(None, msg)
        if ws.protocol.state is State.OPEN:
            abort_tcp(ws, "peer aborted TCP (drop-after-send)")
        await ws.wait_closed()
    else:
        raise AssertionError(scenario)


def exchange_message(item):
    """The message an ``exchange`` ITEM names: a str, bytes, or a list of
    fragments (str or bytes)."""
    kind, _, rest = item.partition(":")
    n, _, k = rest.partition(":")
    n = int(n)
    if kind in ("text", "frag-text"):
        data = text_pattern(n)
    elif kind in ("binary", "frag-binary"):
        data = pattern(n)
    else:
        raise ValueError("unknown exchange item %s" % item)
    if not kind.startswith("frag-"):
        return data
    k = int(k)
    if k < 1:
        raise ValueError("a fragmented message needs at least one fragment")
    step = -(-n // k) if n else 1
    pieces = [data[i:i + step] for i in range(0, n, step)] or [data]
    return pieces


async def run_client(url, protocols, timeout, scenario, args, ca=None, origin=None):
    extra = {}
    if ca is not None:
        extra["ssl"] = ssl.create_default_context(cafile=ca)
    if origin is not None:
        extra["origin"] = origin
    try:
        ws = await connect(url, subprotocols=protocols or None, proxy=None, open_timeout=10,
                           max_size=MAX_SIZE, ping_interval=None, close_timeout=CLOSE_TIMEOUT,
                           **deflate_kwargs(server=False), **extra)
    except InvalidStatus as exc:
        response = exc.response
        emit({"event": "rejected", "status": response.status_code,
              "headers": headers_dict(response.headers),
              "body": (response.body or b"").decode(errors="replace")})
        return
    except Exception as exc:  # refused, invalid handshake, open timeout, ...
        emit({"event": "error", "error": "%s: %s" % (type(exc).__name__, exc)})
        return
    emit({"event": "connect", "subprotocol": ws.subprotocol,
          "headers": headers_dict(ws.response.headers),
          "extensions": extensions_list(ws, server=False),
          "extensions_header": ws.response.headers.get("Sec-WebSocket-Extensions")})
    failure = None
    try:
        await asyncio.wait_for(client_scenario(ws, scenario, args), timeout)
    except ConnectionClosed:
        pass
    except TimeoutError:
        if ws.protocol.state is not State.CLOSED:
            abort_tcp(ws, "timeout: the scenario took more than %g s" % timeout)
            await ws.wait_closed()  # connection_lost runs soon; close() must not send then
        failure = "timeout after %g s" % timeout
    except Exception as exc:  # keep the event stream complete
        failure = "%s: %s" % (type(exc).__name__, exc)
    finally:
        await ws.close()  # no-op / bounded wait unless the connection is still open
        await ws.wait_closed()
        event = closed_event(ws, None)
        if failure is not None and event["error"] is None:
            event["error"] = failure
        emit(event)


# --- main -----------------------------------------------------------------------

ARGC = {  # scenario -> (min, max) number of arguments
    "echo": (0, 0), "close": (1, 2), "close-after": (2, 3), "send-then-close": (2, 3),
    "drop-after": (1, 1), "never-answer": (0, 0), "send-fragments": (2, 2),
    "send-big": (2, 2), "subprotocol": (1, 1), "reject": (1, 1), "limit": (1, 1),
}


def check_args(scenario, args):
    """Raise ValueError for arguments the scenario cannot use."""
    if scenario in ("send-fragments", "send-big"):
        if args[0] not in ("text", "binary"):
            raise ValueError("KIND must be text or binary")
        if int(args[1]) < (1 if scenario == "send-fragments" else 0):
            raise ValueError("bad count")
    elif scenario in ("close", "close-after", "send-then-close"):
        if scenario != "close" and int(args[0]) < 0:
            raise ValueError("bad count")
        rest = args if scenario == "close" else args[1:]
        code, reason = parse_code(rest[0]), rest[1] if len(rest) > 1 else ""
        if code is None and reason:
            raise ValueError("a close frame without code cannot carry a reason")
        if code is not None and not 0 <= code <= 0xFFFF:
            raise ValueError("close code out of range")
        if len(reason.encode()) > 123:
            raise ValueError("close reason longer than 123 bytes")
    elif scenario in ("drop-after", "limit"):
        if int(args[0]) < 0:
            raise ValueError("bad number")
    elif scenario == "reject":
        http.HTTPStatus(int(args[0]))  # websockets only sends known statuses


CLIENT_ARGC = {
    "echo-check": (1, 1), "send-binary": (1, 1), "close": (1, 2),
    "say-then-wait": (1, 1), "drop-after-send": (1, 1), "exchange": (1, 1000),
}


def check_client_args(scenario, args):
    """Raise ValueError for arguments the client scenario cannot use."""
    if scenario in ("echo-check", "send-binary"):
        if int(args[0]) < 0:
            raise ValueError("bad number")
    elif scenario == "close":
        check_args("close", args)
    elif scenario == "exchange":
        for item in args:
            exchange_message(item)


def parse_client_argv(argv):
    """[--protocol P]... [--timeout S] [--ca PEM] [--origin O] URL SCENARIO
    ARGS... (options anywhere before SCENARIO) -> (url, protocols, timeout,
    scenario, args, ca, origin)."""
    protocols, timeout, positional, ca, origin = [], 60.0, [], None, None
    i = 0
    while i < len(argv) and len(positional) < 2:
        arg = argv[i]
        if arg in ("--protocol", "--timeout", "--ca", "--origin"):
            if i + 1 >= len(argv):
                raise ValueError("%s needs a value" % arg)
            if arg == "--protocol":
                protocols.append(argv[i + 1])
            elif arg == "--ca":
                ca = argv[i + 1]
            elif arg == "--origin":
                origin = argv[i + 1]
            else:
                timeout = float(argv[i + 1])
                if not timeout > 0:
                    raise ValueError("bad timeout")
            i += 2
        elif arg.startswith("--"):
            raise ValueError("unknown option %s" % arg)
        else:
            positional.append(arg)
            i += 1
    if len(positional) < 2:
        raise ValueError("URL and SCENARIO are required")
    url, scenario = positional
    if scenario not in CLIENT_ARGC:
        raise ValueError("unknown client scenario %s" % scenario)
    args = argv[i:]
    lo, hi = CLIENT_ARGC[scenario]
    if not lo <= len(args) <= hi:
        raise ValueError("scenario %s takes %d..%d arguments" % (scenario, lo, hi))
    check_client_args(scenario, args)
    return url, protocols, timeout, scenario, args, ca, origin


async def main(argv):
    if argv[:1] == ["client"]:
        try:
            client_argv = parse_client_argv(argv[1:])
        except ValueError as exc:
            print("peer.py client: %s\n" % exc, file=sys.stderr)
            print(__doc__, file=sys.stderr)
            return 2
        await run_client(*client_argv)
        return 0
    if len(argv) < 2 or argv[0] != "server" or argv[1] not in ARGC:
        print(__doc__, file=sys.stderr)
        return 2
    scenario, args = argv[1], argv[2:]
    lo, hi = ARGC[scenario]
    if not lo <= len(args) <= hi:
        print("scenario %s takes %d..%d arguments" % (scenario, lo, hi), file=sys.stderr)
        return 2
    try:
        check_args(scenario, args)
    except ValueError as exc:
        print("bad arguments for %s: %s" % (scenario, exc), file=sys.stderr)
        return 2

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if scenario == "never-answer":
        await run_never_answer_server(stop)
    else:
        await run_websockets_server(scenario, args, stop)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
