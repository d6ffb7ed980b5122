#!/usr/bin/env bash
# Run the Autobahn|Testsuite server conformance cases (wstest fuzzingclient mode)
# against `wsbox serve` with an echo handler component.
#
#   tests/autobahn/run-server.sh WSBOX_BIN HANDLER_WASM
#
# The server is run as
#   WSBOX_BIN serve --listen 127.0.0.1:0 [WSBOX_ARGS...] HANDLER_WASM
# and must print a line containing "listening on ws://127.0.0.1:PORT" (stdout
# or stderr) at start-up. wstest then runs cases 1.* .. 10.* except 8.* (as in
# the sample fuzzingclient.json) against ws://127.0.0.1:PORT with agent name
# "wsbox"; afterwards the server gets SIGTERM and must exit with status 0
# within SHUTDOWN_TIMEOUT seconds.
#
# Environment:
#   AUTOBAHN_DIR  Python 3 port of Autobahn|Testsuite (default: <repo>/../shared/autobahn);
#                 wstest is installed from it into <repo>/target/abvenv on first use.
#   SERVER_CMD    replaces the wsbox command (to validate this script with another
#                 server); the script picks a free port and replaces "{port}" by it,
#                 the command runs via `bash -c` in <repo>/target, in its own
#                 process group (SIGTERM goes to the group), e.g.
#                 SERVER_CMD='abvenv/bin/python ../../shared/autobahn/echo_server.py --port {port}'
#                 Its exit status after SIGTERM may be 0 or 143 (killed by SIGTERM).
#   WSBOX_ARGS    extra options for `wsbox serve`, split on spaces (e.g. "--deflate").
#   AB_CASES      the cases to run, as a JSON list of patterns or ids (default:
#                 the sample spec's 1.* .. 10.* except 8.*); an id without "*"
#                 selects that case only, but a pattern with "*" matches by
#                 prefix, so "12.*.1" also selects 12.1.10 .. 12.1.18.
#   EXPECT_CASES  the number of cases the report must hold (summarize.py
#                 --expect-cases); unset: any number.
#   AB_TAG        names this run: reports go to reports/servers-TAG and the logs
#                 are server-TAG.log and wstest-fuzzingclient-TAG.log.
#   WSTEST_TIMEOUT    seconds for the wstest run (default 900).
#   STARTUP_TIMEOUT   seconds for the server to start listening (default 120).
#   SHUTDOWN_TIMEOUT  seconds for the server to exit after SIGTERM (default 20).
#
# Logs: <repo>/target/autobahn/server.log (the server's stdout + stderr),
# <repo>/target/autobahn/wstest-fuzzingclient.log.
# Reports: <repo>/target/autobahn/reports/servers (index.json + per-case files).
# Prints summarize.py's per-section table; exit status: summarize.py's or
# check_close.py's status if non-zero (a case FAILED or closed other than OK
# or INFORMATIONAL), else non-zero if wstest failed or timed out, the
# server died during the run or did not exit cleanly on SIGTERM.
set -euo pipefail

# REPO, AUTOBAHN_DIR, ABVENV, WORK, ab_* helpers (shared with run-client.sh)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
WSTEST_TIMEOUT="${WSTEST_TIMEOUT:-900}"
STARTUP_TIMEOUT="${STARTUP_TIMEOUT:-120}"
SHUTDOWN_TIMEOUT="${SHUTDOWN_TIMEOUT:-20}"
TAG="${AB_TAG:+-$AB_TAG}"
OUTDIR="$WORK/reports/servers$TAG"
SERVER_LOG="$WORK/server$TAG.log"
WSTEST_LOG="$WORK/wstest-fuzzingclient$TAG.log"
read -r -a WSBOX_EXTRA <<< "${WSBOX_ARGS:-}"

if [ -z "${SERVER_CMD:-}" ]; then
    if [ $# -ne 2 ]; then
        echo "usage: $0 WSBOX_BIN HANDLER_WASM   (or set SERVER_CMD)" >&2
        exit 2
    fi
    WSBOX_BIN="$(realpath "$1")"
    HANDLER_WASM="$(realpath "$2")"
    [ -x "$WSBOX_BIN" ] || { echo "not an executable: $WSBOX_BIN" >&2; exit 2; }
    [ -f "$HANDLER_WASM" ] || { echo "no such handler component: $HANDLER_WASM" >&2; exit 2; }
fi
ab_init
rm -rf "$OUTDIR"

SERVER_PID=
SERVER_SIGNAL_TARGET=
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        ab_stop "$SERVER_PID" 5 "$SERVER_SIGNAL_TARGET"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

server_failed() {
    local why="$1" status=0
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID" 2>/dev/null || status=$?
        why="$why (the server exited with status $status)"
    fi
    echo "$why; server log ($SERVER_LOG):" >&2
    tail -n 50 "$SERVER_LOG" >&2 || true
    exit 1
}

echo "== starting the server under test (log: $SERVER_LOG)"
# Truncated here, appended to by the server: the port is parsed from this file,
# so it must not contain the previous run's lines when the loop reads it.
: > "$SERVER_LOG"
if [ -n "${SERVER_CMD:-}" ]; then
    PORT="$(ab_free_port)"
    cmd="${SERVER_CMD//\{port\}/$PORT}"
    echo "\$ (cd $REPO/target && $cmd)"
    # setsid: its own process group, so that SIGTERM reaches whatever `bash -c`
    # started. (A background job of a non-interactive shell is no group
    # leader, so setsid does not fork: $! is the server's pid.)
    (cd "$REPO/target" && exec setsid bash -c "$cmd") >> "$SERVER_LOG" 2>&1 < /dev/null &
    SERVER_PID=$!
    SERVER_SIGNAL_TARGET="-$SERVER_PID"
    ab_wait_port "$PORT" "$SERVER_PID" "$STARTUP_TIMEOUT" ||
        server_failed "the server did not listen on port $PORT within $STARTUP_TIMEOUT s"
else
    echo "\$ $WSBOX_BIN serve --listen 127.0.0.1:0 ${WSBOX_EXTRA[*]} $HANDLER_WASM"
    "$WSBOX_BIN" serve --listen 127.0.0.1:0 "${WSBOX_EXTRA[@]}" "$HANDLER_WASM" >> "$SERVER_LOG" 2>&1 < /dev/null &
    SERVER_PID=$!
    SERVER_SIGNAL_TARGET="$SERVER_PID"
    PORT=
    for ((i = 0; i < STARTUP_TIMEOUT * 10; i++)); do
        PORT="$(grep -o -m 1 'listening on ws://127\.0\.0\.1:[0-9]\+' "$SERVER_LOG" | sed 's/.*://' || true)"
        [ -n "$PORT" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$PORT" ] ||
        server_failed "the server printed no 'listening on ws://127.0.0.1:PORT' line within $STARTUP_TIMEOUT s"
    ab_wait_port "$PORT" "$SERVER_PID" 10 ||
        server_failed "the server said it listens on port $PORT, but connecting fails"
fi
URL="ws://127.0.0.1:$PORT"
echo "== server pid $SERVER_PID listening on $URL"

SPEC="$WORK/fuzzingclient$TAG.json"
ab_spec "$AUTOBAHN_DIR/fuzzingclient.json" "$SPEC" "$URL" "$OUTDIR" wsbox

echo "== running wstest -m fuzzingclient (log: $WSTEST_LOG)"
start=$SECONDS
wstest_status=0
# Run from $WORK so stray files land there.
(cd "$WORK" && exec timeout "$WSTEST_TIMEOUT" "$ABVENV/bin/wstest" -m fuzzingclient -s "$SPEC") \
    > "$WSTEST_LOG" 2>&1 < /dev/null || wstest_status=$?
echo "== wstest finished in $((SECONDS - start)) s with status $wstest_status"
if [ "$wstest_status" -ne 0 ]; then
    [ "$wstest_status" -eq 124 ] && echo "wstest timed out after $WSTEST_TIMEOUT s" >&2
    echo "wstest log (end):" >&2
    tail -n 30 "$WSTEST_LOG" >&2 || true
fi

server_status=0 # 0: the server shut down as it should
server_problem=
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    wait "$SERVER_PID" 2>/dev/null || server_status=$?
    server_problem="the server exited during the run (status $server_status)"
    server_status=1
else
    echo "== stopping the server (SIGTERM, up to $SHUTDOWN_TIMEOUT s)"
    ab_stop "$SERVER_PID" "$SHUTDOWN_TIMEOUT" "$SERVER_SIGNAL_TARGET"
    echo "== server exited with status $STOP_STATUS"
    if [ "$STOP_TIMED_OUT" -eq 1 ]; then
        server_problem="the server did not exit within $SHUTDOWN_TIMEOUT s of SIGTERM (killed)"
        server_status=1
    elif [ "$STOP_STATUS" -ne 0 ] && ! { [ -n "${SERVER_CMD:-}" ] && [ "$STOP_STATUS" -eq 143 ]; }; then
        # (SERVER_CMD servers may just die of SIGTERM: 143)
        server_problem="the server exited with status $STOP_STATUS after SIGTERM"
        server_status=1
    fi
fi
SERVER_PID=
if [ -n "$server_problem" ]; then
    echo "$server_problem; server log (end):" >&2
    tail -n 30 "$SERVER_LOG" >&2 || true
fi

summary_status=0
ab_summarize "$OUTDIR" || summary_status=$?

if [ "$summary_status" -ne 0 ]; then
    echo "Autobahn: FAILED (summarize.py or check_close.py status $summary_status)" >&2
    exit "$summary_status"
fi
if [ "$wstest_status" -ne 0 ]; then
    echo "Autobahn: wstest exited with status $wstest_status" >&2
    exit "$wstest_status"
fi
if [ "$server_status" -ne 0 ]; then
    echo "Autobahn: $server_problem" >&2
    exit 1
fi
echo "Autobahn: OK"
