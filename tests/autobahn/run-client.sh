#!/usr/bin/env bash
# Run the Autobahn|Testsuite client conformance cases (wstest fuzzingserver mode)
# against the wsbox sample guest `autobahn-client.wasm`.
#
#   tests/autobahn/run-client.sh WSBOX_BIN GUEST_WASM
#
# The guest is run as
#   WSBOX_BIN run --allow ws://127.0.0.1:PORT [WSBOX_ARGS...] GUEST_WASM ws://127.0.0.1:PORT wsbox
# (it asks /getCaseCount, runs every /runCase, then /updateReports).
#
# Environment:
#   AUTOBAHN_DIR  Python 3 port of Autobahn|Testsuite (default: <repo>/../shared/autobahn);
#                 wstest is installed from it into <repo>/target/abvenv on first use.
#   CLIENT_CMD    replaces the wsbox command (to validate this script with another
#                 client); "{port}" is replaced by the port, it runs via `bash -c`
#                 in <repo>/target, e.g.
#                 CLIENT_CMD='abvenv/bin/python ../../shared/autobahn/echo_client.py
#                             --base ws://127.0.0.1:{port} --agent pyws'
#   CLIENT_TIMEOUT  seconds for the client run (default 900).
#   WSBOX_ARGS    extra options for `wsbox run`, split on spaces (e.g. "--deflate").
#   AB_CASES      the cases to run, as a JSON list of patterns or ids (default:
#                 the sample spec's 1.* .. 10.* except 8.*); an id without "*"
#                 selects that case only, but a pattern with "*" matches by
#                 prefix, so "12.*.1" also selects 12.1.10 .. 12.1.18.
#   EXPECT_CASES  the number of cases the report must hold (summarize.py
#                 --expect-cases); unset: any number.
#   AB_TAG        names this run: reports go to reports/clients-TAG and the log
#                 is wstest-TAG.log.
#
# Reports: <repo>/target/autobahn/reports/clients (index.json + per-case files).
# Prints summarize.py's per-section table; exit status: non-zero if any case
# FAILED or closed other than OK or INFORMATIONAL (summarize.py's, then
# check_close.py's status), or the client's status if it failed or timed out.
set -euo pipefail

# REPO, AUTOBAHN_DIR, ABVENV, WORK, ab_* helpers (shared with run-server.sh)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
CLIENT_TIMEOUT="${CLIENT_TIMEOUT:-900}"
TAG="${AB_TAG:+-$AB_TAG}"
OUTDIR="$WORK/reports/clients$TAG"
WSTEST_LOG="$WORK/wstest$TAG.log"
read -r -a WSBOX_EXTRA <<< "${WSBOX_ARGS:-}"

if [ -z "${CLIENT_CMD:-}" ]; then
    if [ $# -ne 2 ]; then
        echo "usage: $0 WSBOX_BIN GUEST_WASM   (or set CLIENT_CMD)" >&2
        exit 2
    fi
    WSBOX_BIN="$(realpath "$1")"
    GUEST_WASM="$(realpath "$2")"
    [ -x "$WSBOX_BIN" ] || { echo "not an executable: $WSBOX_BIN" >&2; exit 2; }
    [ -f "$GUEST_WASM" ] || { echo "no such guest: $GUEST_WASM" >&2; exit 2; }
fi
ab_init

PORT="$(ab_free_port)"
URL="ws://127.0.0.1:$PORT"

rm -rf "$OUTDIR"
SPEC="$WORK/fuzzingserver$TAG.json"
ab_spec "$AUTOBAHN_DIR/fuzzingserver.json" "$SPEC" "$URL" "$OUTDIR" wsbox

WSTEST_PID=
cleanup() {
    if [ -n "$WSTEST_PID" ] && kill -0 "$WSTEST_PID" 2>/dev/null; then
        ab_stop "$WSTEST_PID" 10
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== starting wstest fuzzingserver on $URL (log: $WSTEST_LOG)"
# -u 0: no extra static web server. Run from $WORK so stray files land there.
(cd "$WORK" && exec "$ABVENV/bin/wstest" -m fuzzingserver -s "$SPEC" -u 0) > "$WSTEST_LOG" 2>&1 < /dev/null &
WSTEST_PID=$!

if ! ab_wait_port "$PORT" "$WSTEST_PID" 60; then  # first start compiles .pyc files
    echo "wstest did not start listening on port $PORT; log:" >&2
    cat "$WSTEST_LOG" >&2
    exit 1
fi

echo "== running the client under test"
start=$SECONDS
client_status=0
if [ -n "${CLIENT_CMD:-}" ]; then
    cmd="${CLIENT_CMD//\{port\}/$PORT}"
    echo "\$ (cd $REPO/target && $cmd)"
    (cd "$REPO/target" && timeout "$CLIENT_TIMEOUT" bash -c "$cmd") || client_status=$?
else
    echo "\$ $WSBOX_BIN run --allow $URL ${WSBOX_EXTRA[*]} $GUEST_WASM $URL wsbox"
    timeout "$CLIENT_TIMEOUT" "$WSBOX_BIN" run --allow "$URL" "${WSBOX_EXTRA[@]}" "$GUEST_WASM" "$URL" wsbox < /dev/null || client_status=$?
fi
echo "== client finished in $((SECONDS - start)) s with status $client_status"
if [ "$client_status" -eq 124 ]; then
    echo "client timed out after $CLIENT_TIMEOUT s" >&2
fi

# updateReports writes index.json; give it a moment if the client did not wait.
if [ "$client_status" -eq 0 ]; then
    for _ in $(seq 1 100); do
        [ -f "$OUTDIR/index.json" ] && break
        sleep 0.1
    done
fi

summary_status=0
ab_summarize "$OUTDIR" || summary_status=$?

if [ "$summary_status" -ne 0 ]; then
    echo "Autobahn: FAILED (summarize.py or check_close.py status $summary_status)" >&2
    exit "$summary_status"
fi
if [ "$client_status" -ne 0 ]; then
    echo "Autobahn: client exited with status $client_status" >&2
    exit "$client_status"
fi
echo "Autobahn: OK"
