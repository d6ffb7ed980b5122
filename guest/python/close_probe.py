"""`close-probe` in Python: the step interpreter of guest/close-probe (the
Rust reference guest), built with componentize-py for the
`wsbox:websocket/client-command` world.

    close-probe URL [--protocol P]... [--header NAME=VALUE]... [STEP]...

Each step prints one line, `<step> -> <result>`, formatted exactly as the
Rust guest does (strings quoted as Rust's `{:?}` quotes them); the first line
is the connect. Without steps the default tour runs. Steps: `send-text:STR`,
`send-binary:N` (byte i = i % 251), `ping[:STR]`, `recv`,
`recv-until-close`, `close`, `close:CODE[:REASON]`, `close-reason-only:R`,
the same three for `shutdown`, `abort`, `query`, `protocol`, `drop`,
`sleep:MS`. Fragments and the hostile steps are only in the Rust guest.
"""

import sys
import time

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

DEFAULT_TOUR = ["query", "send-text:hello", "recv", "close:1000:bye", "query", "query"]
USAGE = "usage: close-probe URL [--protocol P]... [--header NAME=VALUE]... [STEP]..."


class UsageError(Exception):
    pass


def rust_debug(text: str) -> str:
    """A string quoted as Rust's `{:?}` quotes it (for the printable and
    control characters a test sends)."""
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\0":
            out.append("\\0")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\u{%x}" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def kebab(name: str) -> str:
    """`InvalidUrl` -> `invalid-url`."""
    return "".join("-" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


def describe_error(error) -> str:
    """`invalid-parameter: DETAIL`, `handshake-rejected: 403`, `closed`."""
    name = kebab(type(error).__name__.split("_", 1)[1])
    if hasattr(error, "value"):
        return "%s: %s" % (name, error.value)
    return name


def describe_status(status: types.CloseStatus) -> str:
    return "%d %s" % (status.code, rust_debug(status.reason))


def err(error) -> str:
    return "err(%s)" % describe_error(error)


def pattern(length: int) -> bytes:
    block = bytes(range(251))
    return (block * (length // 251 + 1))[:length]


def verdict(intact: bool) -> str:
    return "ok" if intact else "corrupt"


def incoming(ws: types.Websocket):
    """Receives once; returns (result text, whether it was a message)."""
    try:
        got = ws.receive()
    except Err as e:
        return err(e.value), False
    if isinstance(got, types.Incoming_Close):
        return "ok(close %s)" % describe_status(got.value), False
    message = got.value
    if isinstance(message, types.Message_Text):
        return "ok(text %s)" % rust_debug(message.value), True
    data = message.value
    return "ok(binary %d bytes %s)" % (len(data), verdict(data == pattern(len(data)))), True


def done(call, *args) -> str:
    try:
        call(*args)
    except Err as e:
        return err(e.value)
    return "ok"


def say(step: str, result: str) -> None:
    sys.stdout.write("%s -> %s\n" % (step, result))
    sys.stdout.flush()


def closing(ws, name: str, arg):
    """`close`, `close:CODE`, `close:CODE:REASON`, `close-reason-only:R`;
    the same for shutdown. None if malformed."""
    call = ws.shutdown if name.startswith("shutdown") else ws.close
    if name.endswith("-reason-only"):
        return lambda: done(call, None, arg)
    if arg is None:
        return lambda: done(call, None, "")
    code, _, reason = arg.partition(":")
    if not code.isdigit() or int(code) > 0xFFFF:
        return None
    return lambda: done(call, int(code), reason)


def step_action(ws, text: str):
    """The step's action, a function returning its result; None if the step
    is unknown or malformed."""
    name, sep, arg = text.partition(":")
    arg = arg if sep else None
    if name == "send-text" and arg is not None:
        return lambda: done(ws.send, types.Message_Text(arg))
    if name == "send-binary" and arg is not None and arg.isdigit():
        return lambda: done(ws.send, types.Message_Binary(pattern(int(arg))))
    if name == "ping":
        return lambda: done(ws.ping, (arg or "").encode())
    if name == "recv" and arg is None:
        return lambda: incoming(ws)[0]
    if name in ("close", "shutdown") or (
        name in ("close-reason-only", "shutdown-reason-only") and arg is not None
    ):
        return closing(ws, name, arg)
    if name == "abort" and arg is None:
        return lambda: (ws.abort(), "ok")[1]
    if name == "query" and arg is None:
        def query():
            try:
                return "ok(%s)" % describe_status(ws.query_close_status())
            except Err as e:
                return "err(%s)" % kebab(type(e.value).__name__.split("_", 1)[1])
        return query
    if name == "protocol" and arg is None:
        def protocol():
            p = ws.protocol()
            return "none" if p is None else "some(%s)" % p
        return protocol
    return None


class _Anything:
    """Stands in for the websocket when a step is only checked."""

    def __getattr__(self, name):
        return None


def known(text: str) -> bool:
    """Whether `text` is a step this guest knows, well formed."""
    if text in ("drop", "recv-until-close"):
        return True
    return step_action(_Anything(), text) is not None


def main(args) -> int:
    if not args:
        raise UsageError("missing URL")
    url, rest = args[0], args[1:]
    protocols, headers = [], []
    while len(rest) >= 2 and rest[0] in ("--protocol", "--header"):
        flag, value = rest[0], rest[1]
        if flag == "--protocol":
            protocols.append(value)
        else:
            name, sep, val = value.partition("=")
            if not sep:
                raise UsageError("--header takes NAME=VALUE")
            headers.append((name, val))
        rest = rest[2:]
    if len(rest) == 1 and rest[0] in ("--protocol", "--header"):
        raise UsageError("%s needs a value" % rest[0])
    steps = rest or DEFAULT_TOUR

    try:
        ws = types.Websocket.connect(url, types.ConnectOptions(protocols=protocols, headers=headers))
    except Err as e:
        say("connect", err(e.value))
        return 0
    protocol = ws.protocol()
    say("connect", "ok protocol=%s" % ("none" if protocol is None else protocol))

    for text in steps:
        name, sep, arg = text.partition(":")
        if name == "sleep" and sep and arg.isdigit():
            time.sleep(int(arg) / 1000)
            say(text, "ok")
            continue
        # Unknown steps end the run even after `drop`, as in the Rust guest.
        if not known(text):
            say(text, "err(unknown step)")
            return 2
        if ws is None:
            say(text, "skipped (dropped)")
            continue
        if name == "drop" and not sep:
            ws.__exit__(None, None, None)
            ws = None
            say(text, "ok")
            continue
        if name == "recv-until-close" and not sep:
            while True:
                result, more = incoming(ws)
                say(text, result)
                if not more:
                    break
            continue
        say(text, step_action(ws, text)())
    return 0


class Run(exports.Run):
    def run(self) -> None:
        try:
            status = main(sys.argv[1:])
        except UsageError as e:
            sys.stderr.write("close-probe: %s\n%s\n" % (e, USAGE))
            status = 2
        if status != 0:
            # WASI 0.2 carries only success or failure.
            raise Err(None)
