#!/usr/bin/env python3
"""Self-test for peer.py: runs every scenario against a websockets client.

    <venv>/bin/python tests/peers/selftest.py [SCENARIO ...]

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


TESTS = {name[2:].replace("_", "-"): fn for name, fn in globals().items() if name.startswith("t_")}


async def main(names):
    failed = 0
    for name in names or TESTS:
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(TESTS[name](), 60)
            print("ok    %-16s %.1fs" % (name, time.monotonic() - t0))
        except Exception as exc:
            failed += 1
            print("FAIL  %-16s %r" % (name, exc))
            import traceback
            traceback.print_exc()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
