#!/usr/bin/env python3
"""Self-test for peer.py: runs every server scenario against a websockets
client, and the client mode (``client-*`` tests) against the server mode.

    <venv>/bin/python tests/peers/selftest.py [TEST ...]

Not used by the Rust tests; run it after changing peer.py. Exit status 0 when
all checks pass.
"""

import asyncio
import json
import os
import socket
import struct
import sys
import time

os.environ.setdefault("WEBSOCKETS_MAX_FRAGMENTS", "10000000")

from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402

PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer.py")


def pattern(n):
    return (bytes(range(251)) * (n // 251 + 1))[:n]


class Peer:
    def __init__(self, *args):
        self.args = args

    async def __aenter__(self):
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, PEER, "server", *self.args,
            stdout=asyncio.subprocess.PIPE, limit=2**26)
        ev = await self.event()
        assert ev["event"] == "listening", ev
        self.url = "ws://127.0.0.1:%d" % ev["port"]
        return self

    async def event(self, timeout=15):
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        assert line, "peer exited"
        return json.loads(line)

    async def __aexit__(self, *exc):
        self.proc.terminate()
        rest = await asyncio.wait_for(self.proc.stdout.read(), 10)
        rc = await asyncio.wait_for(self.proc.wait(), 10)
        assert rc == 0, "peer exit status %s" % rc
        self.tail = rest


def expect(ev, **fields):
    for k, v in fields.items():
        assert ev.get(k) == v, "expected %s=%r in %r" % (k, v, ev)
    return ev


async def t_echo():
    async with Peer("echo") as p:
        async with connect(p.url + "/path?x=1", additional_headers={"X-Test": "yes"},
                           max_size=None) as ws:
            ev = expect(await p.event(), event="connect", path="/path?x=1", subprotocol=None)
            assert ev["headers"]["x-test"] == "yes", ev
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            expect(await p.event(), event="message", type="text", data="héllo", len=6)
            await ws.send(pattern(100000))
            assert await ws.recv() == pattern(100000)
            expect(await p.event(), event="message", type="binary", len=100000, pattern_ok=True)
            await ws.send(b"\x01\x02")
            await ws.recv()
            expect(await p.event(), type="binary", len=2, pattern_ok=False)
            await ws.send(["a", "b", "c"])  # fragmented
            assert await ws.recv() == "abc"
            expect(await p.event(), data="abc")
            await ws.close(4001, "bye")
        expect(await p.event(), event="closed", rcvd={"code": 4001, "reason": "bye"},
               sent={"code": 4001, "reason": "bye"}, clean=True, error=None)


async def close_check(args, code, reason, wire_code=None):
    async with Peer("close", *args) as p:
        async with connect(p.url) as ws:
            await p.event()
            try:
                await ws.recv()
                raise AssertionError("expected close")
            except ConnectionClosed:
                pass
            rcvd = ws.protocol.close_rcvd
            assert (rcvd.code, rcvd.reason) == (code, reason), rcvd
        expect(await p.event(), event="closed", sent={"code": code, "reason": reason},
               rcvd={"code": code, "reason": reason}, clean=True)


async def t_close():
    await close_check(["1000", "normal"], 1000, "normal")
    await close_check(["4000", "é" * 61 + "x"], 4000, "é" * 61 + "x")  # 123 bytes
    await close_check(["none"], 1005, "")  # empty payload: websockets reports 1005
    await close_check(["1001"], 1001, "")
    # 1005 on the wire is invalid: websockets' client fails with 1002
    async with Peer("close", "1005", "bad") as p:
        async with connect(p.url) as ws:
            await p.event()
            try:
                await ws.recv()
            except ConnectionClosed:
                pass
        ev = expect(await p.event(), event="closed", sent={"code": 1005, "reason": "bad"})
        assert ev["rcvd"] in (None, {"code": 1002, "reason": "invalid status code"}), ev


async def t_close_after():
    async with Peer("close-after", "2", "1000", "done") as p:
        async with connect(p.url) as ws:
            await p.event()
            for i in range(2):
                await ws.send("m%d" % i)
                assert await ws.recv() == "m%d" % i
                expect(await p.event(), data="m%d" % i)
            try:
                await ws.recv()
                raise AssertionError("expected close")
            except ConnectionClosed:
                assert ws.protocol.close_rcvd.code == 1000
        expect(await p.event(), event="closed", clean=True, sent={"code": 1000, "reason": "done"})


async def t_send_then_close():
    async with Peer("send-then-close", "3", "4002", "after three") as p:
        async with connect(p.url) as ws:
            await p.event()
            got = []
            try:
                while True:
                    got.append(await ws.recv())
            except ConnectionClosed:  # ConnectionClosedError: 4002 is not 1000/1001
                pass
            assert got == ["msg 0", "msg 1", "msg 2"], got
            assert ws.protocol.close_rcvd.code == 4002
        expect(await p.event(), event="closed", clean=True,
               rcvd={"code": 4002, "reason": "after three"})


async def t_drop_after():
    async with Peer("drop-after", "1") as p:
        async with connect(p.url) as ws:
            await p.event()
            await ws.send("x")
            assert await ws.recv() == "x"
            expect(await p.event(), data="x")
            try:
                await ws.recv()
                raise AssertionError("expected drop")
            except ConnectionClosed as exc:
                assert exc.rcvd is None and isinstance(exc.__cause__, ConnectionResetError), repr(exc.__cause__)
        expect(await p.event(), event="closed", rcvd=None, sent=None, clean=False)


async def t_never_answer():
    async with Peer("never-answer") as p:
        async with connect(p.url + "/na", close_timeout=1.5, subprotocols=["a"]) as ws:
            expect(await p.event(), event="connect", path="/na", subprotocol=None)
            await ws.send("x")
            assert await ws.recv() == "x"
            await ws.send(b"\x00\x01")
            assert await ws.recv() == b"\x00\x01"
            expect(await p.event(), data="x")
            expect(await p.event(), type="binary", pattern_ok=True)
            t0 = time.monotonic()
            await ws.close(1000, "please")
            took = time.monotonic() - t0
            assert ws.protocol.close_rcvd is None
            assert 1.4 < took < 5, took  # client timed out and dropped TCP
        expect(await p.event(), event="closed", rcvd={"code": 1000, "reason": "please"},
               sent=None, clean=False)
    # raw client: no TCP close from the peer even after ~2 s
    async with Peer("never-answer") as p:
        host, port = p.url[5:].split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert b" 101 " in head and b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head, head
        await p.event()
        writer.write(b"\x88\x82" + b"\0\0\0\0" + struct.pack("!H", 1000))  # masked close
        try:
            data = await asyncio.wait_for(reader.read(10), 2)
            raise AssertionError("peer answered: %r" % data)
        except TimeoutError:
            pass
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        expect(await p.event(), event="closed", rcvd={"code": 1000, "reason": ""}, sent=None)


async def t_send_fragments():
    async with Peer("send-fragments", "text", "5000") as p:
        async with connect(p.url) as ws:
            await p.event()
            msg = await ws.recv()
            assert msg == "".join("frag%d" % i for i in range(5000))
            await ws.send("ok")
            assert await ws.recv() == "ok"
    async with Peer("send-fragments", "binary", "10") as p:
        async with connect(p.url) as ws:
            await p.event()
            frames = []
            async for frag in ws.recv_streaming():
                frames.append(frag)
            assert len(frames) == 10 and b"".join(frames) == pattern(10000)
            await ws.send(pattern(5))
            assert await ws.recv() == pattern(5)
            expect(await p.event(), type="binary", len=5, pattern_ok=True)


async def t_send_big():
    async with Peer("send-big", "binary", str(20 * 2**20)) as p:
        async with connect(p.url, max_size=None) as ws:
            await p.event()
            assert await ws.recv() == pattern(20 * 2**20)
            await ws.send(pattern(20 * 2**20))
            await ws.recv()
            expect(await p.event(), type="binary", len=20 * 2**20, pattern_ok=True)
    async with Peer("send-big", "text", "100") as p:
        async with connect(p.url) as ws:
            await p.event()
            assert await ws.recv() == "a" * 100


async def t_subprotocol():
    async with Peer("subprotocol", "chat.v2") as p:
        async with connect(p.url, subprotocols=["chat.v1", "chat.v2"]) as ws:
            ev = expect(await p.event(), subprotocol="chat.v2")
            assert ev["headers"]["sec-websocket-protocol"] == "chat.v1, chat.v2", ev
            assert ws.subprotocol == "chat.v2"
        async with connect(p.url, subprotocols=["other"]) as ws:
            await p.event()  # closed of the first connection
            expect(await p.event(), event="connect", subprotocol=None)
            assert ws.subprotocol is None


async def t_reject():
    async with Peer("reject", "403") as p:
        try:
            async with connect(p.url + "/nope", additional_headers={"Authorization": "Bearer t"}):
                raise AssertionError("expected rejection")
        except InvalidStatus as exc:
            assert exc.response.status_code == 403
            assert exc.response.body == b"rejected by peer.py\n"
        ev = expect(await p.event(), event="rejected", status=403, path="/nope")
        assert ev["headers"]["authorization"] == "Bearer t"


async def t_limit():
    async with Peer("limit", "1000") as p:
        async with connect(p.url) as ws:
            await p.event()
            await ws.send("a" * 1000)
            assert await ws.recv() == "a" * 1000
            await ws.send("a" * 1001)
            try:
                await ws.recv()
                raise AssertionError("expected close")
            except ConnectionClosed:
                assert ws.protocol.close_rcvd.code == 1009
        await p.event()
        # websockets fails the connection: it half-closes TCP right after its
        # close frame and discards the client's answer, so rcvd is null.
        ev = expect(await p.event(), event="closed", rcvd=None, clean=False)
        assert ev["sent"]["code"] == 1009 and "limit of 1000 bytes" in ev["sent"]["reason"], ev
        assert "1000 bytes" in ev["error"], ev


# --- client mode -------------------------------------------------------------


async def client(*argv, timeout=30):
    """Run `peer.py client ARGV...` to completion: (exit status, events, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, PEER, "client", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, limit=2**26)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    events = [json.loads(line) for line in out.decode().splitlines()]
    for ev in events:
        assert "conn" not in ev, ev
    return proc.returncode, events, err.decode()


async def run_client(*argv):
    """Like client(), checking the exit status 0; returns the events."""
    rc, events, err = await client(*argv)
    assert rc == 0, (rc, err)
    return events


async def t_client_echo():
    async with Peer("echo") as p:
        evs = await run_client(p.url + "/c?q=1", "echo-check", "3")
        ev = expect(evs[0], event="connect", subprotocol=None)
        assert ev["headers"]["upgrade"].lower() == "websocket", ev
        assert "sec-websocket-accept" in ev["headers"], ev
        for i in range(3):
            expect(evs[1 + i], event="message", type="text", data="msg %d" % i, len=5)
        expect(evs[4], event="closed", rcvd={"code": 1000, "reason": "py done"},
               sent={"code": 1000, "reason": "py done"}, clean=True, error=None)
        assert len(evs) == 5, evs
        expect(await p.event(), event="connect", path="/c?q=1")
        for i in range(3):
            expect(await p.event(), event="message", data="msg %d" % i)
        expect(await p.event(), event="closed", rcvd={"code": 1000, "reason": "py done"}, clean=True)
        # N = 0: just the close
        evs = await run_client(p.url, "echo-check", "0")
        assert [e["event"] for e in evs] == ["connect", "closed"], evs
        expect(evs[1], clean=True, rcvd={"code": 1000, "reason": "py done"})


async def t_client_binary():
    async with Peer("echo") as p:
        evs = await run_client(p.url, "send-binary", "100000")
        expect(evs[1], event="message", type="binary", len=100000, pattern_ok=True)
        expect(evs[2], event="closed", clean=True, rcvd={"code": 1000, "reason": "py done"})
        await p.event()
        expect(await p.event(), type="binary", len=100000, pattern_ok=True)


async def t_client_close():
    async with Peer("echo") as p:
        evs = await run_client(p.url, "close", "4001", "bye")
        assert [e["event"] for e in evs] == ["connect", "closed"], evs
        expect(evs[1], rcvd={"code": 4001, "reason": "bye"}, sent={"code": 4001, "reason": "bye"},
               clean=True, error=None)
        await p.event()
        expect(await p.event(), event="closed", rcvd={"code": 4001, "reason": "bye"}, clean=True)
        evs = await run_client(p.url, "close", "none")
        expect(evs[1], rcvd={"code": 1005, "reason": ""}, sent={"code": 1005, "reason": ""}, clean=True)
        await p.event()
        expect(await p.event(), event="closed", rcvd={"code": 1005, "reason": ""})
        # 1005 on the wire is invalid: the websockets server fails with 1002
        evs = await run_client(p.url, "close", "1005", "raw")
        expect(evs[1], sent={"code": 1005, "reason": "raw"},
               rcvd={"code": 1002, "reason": "invalid status code"})
        await p.event()
        expect(await p.event(), event="closed", sent={"code": 1002, "reason": "invalid status code"})


async def t_client_subprotocol():
    async with Peer("subprotocol", "chat.v2") as p:
        evs = await run_client("--protocol", "chat.v1", "--protocol", "chat.v2", p.url, "echo-check", "1")
        expect(evs[0], event="connect", subprotocol="chat.v2")
        assert evs[0]["headers"]["sec-websocket-protocol"] == "chat.v2", evs[0]
        ev = expect(await p.event(), event="connect", subprotocol="chat.v2")
        assert ev["headers"]["sec-websocket-protocol"] == "chat.v1, chat.v2", ev
        await p.event()
        await p.event()
        # options between URL and SCENARIO work too
        evs = await run_client(p.url, "--protocol", "x", "echo-check", "0")
        expect(evs[0], event="connect", subprotocol=None)
        assert "sec-websocket-protocol" not in evs[0]["headers"], evs[0]
        ev = expect(await p.event(), event="connect", subprotocol=None)
        assert ev["headers"]["sec-websocket-protocol"] == "x", ev


async def t_client_say_then_wait():
    async with Peer("close-after", "1", "4000", "server bye") as p:
        evs = await run_client(p.url, "say-then-wait", "hi there")
        expect(evs[1], event="message", type="text", data="hi there")
        expect(evs[2], event="closed", rcvd={"code": 4000, "reason": "server bye"},
               sent={"code": 4000, "reason": "server bye"}, clean=True, error=None)
        await p.event()
        await p.event()
        expect(await p.event(), event="closed", clean=True, sent={"code": 4000, "reason": "server bye"})
    async with Peer("send-then-close", "2", "1001") as p:
        evs = await run_client(p.url, "say-then-wait", "x")
        datas = [e.get("data") for e in evs if e["event"] == "message"]
        assert datas == ["msg 0", "msg 1"], evs
        expect(evs[-1], event="closed", rcvd={"code": 1001, "reason": ""}, clean=True)


async def t_client_drop():
    async with Peer("echo") as p:
        evs = await run_client(p.url, "drop-after-send", "bye-bye")
        expect(evs[1], event="message", data="bye-bye")
        ev = expect(evs[2], event="closed", rcvd=None, sent=None, clean=False)
        assert "drop-after-send" in ev["error"], ev
        await p.event()
        await p.event()
        ev = expect(await p.event(), event="closed", rcvd=None, sent=None, clean=False)
        assert "reset" in ev["error"].lower(), ev


async def t_client_server_misbehaves():
    # the server drops TCP after one echo: the scenario stops, status still 0
    async with Peer("drop-after", "1") as p:
        evs = await run_client(p.url, "echo-check", "3")
        assert [e["event"] for e in evs] == ["connect", "message", "closed"], evs
        ev = expect(evs[2], rcvd=None, sent=None, clean=False)
        assert ev["error"], ev
    # the server never closes: --timeout ends the scenario
    async with Peer("echo") as p:
        t0 = time.monotonic()
        evs = await run_client("--timeout", "1", p.url, "say-then-wait", "x")
        assert time.monotonic() - t0 < 8
        ev = expect(evs[-1], event="closed", rcvd=None, sent=None, clean=False)
        assert "timeout" in ev["error"], ev


async def t_client_rejected():
    async with Peer("reject", "403") as p:
        evs = await run_client(p.url + "/nope", "echo-check", "1")
        assert len(evs) == 1, evs
        ev = expect(evs[0], event="rejected", status=403, body="rejected by peer.py\n")
        assert ev["headers"]["content-type"].startswith("text/plain"), ev
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    evs = await run_client("ws://127.0.0.1:%d/" % port, "close", "1000")
    assert len(evs) == 1, evs
    assert evs[0]["event"] == "error" and "Refused" in evs[0]["error"], evs


async def t_client_usage():
    for args in (["ws://x"], ["ws://x", "nope"], ["ws://x", "echo-check"], ["ws://x", "echo-check", "-1"],
                 ["ws://x", "close", "70000"], ["ws://x", "close", "none", "why"],
                 ["--timeout"], ["--bogus", "ws://x", "close", "1000"]):
        rc, evs, err = await client(*args)
        assert rc == 2 and evs == [] and "peer.py client" in err, (args, rc, evs, err)


TESTS = {name[2:].replace("_", "-"): fn for name, fn in globals().items() if name.startswith("t_")}


async def main(names):
    failed = 0
    for name in names or TESTS:
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(TESTS[name](), 60)
            print("ok    %-26s %.1fs" % (name, time.monotonic() - t0))
        except Exception as exc:
            failed += 1
            print("FAIL  %-26s %r" % (name, exc))
            import traceback
            traceback.print_exc()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
