#!/usr/bin/env bash
# Run the Autobahn|Testsuite client conformance cases (wstest fuzzingserver mode)
# against the wsbox sample guest `autobahn-client.wasm`.
#
#   tests/autobahn/run-client.sh WSBOX_BIN GUEST_WASM
#
# The guest is run as
#   WSBOX_BIN run --allow ws://127.0.0.1:PORT GUEST_WASM ws://127.0.0.1:PORT wsbox
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
#
# Reports: <repo>/target/autobahn/reports/clients (index.json + per-case files).
# Prints summarize.py's per-section table; exit status: non-zero if any case
# FAILED (summarize.py's status), or the client's status if it failed or timed out.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
AUTOBAHN_DIR="${AUTOBAHN_DIR:-$REPO/../shared/autobahn}"
CLIENT_TIMEOUT="${CLIENT_TIMEOUT:-900}"
ABVENV="$REPO/target/abvenv"
WORK="$REPO/target/autobahn"
OUTDIR="$WORK/reports/clients"

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
[ -d "$AUTOBAHN_DIR" ] || { echo "autobahn dir not found: $AUTOBAHN_DIR (set AUTOBAHN_DIR)" >&2; exit 2; }
AUTOBAHN_DIR="$(cd "$AUTOBAHN_DIR" && pwd)"

if [ ! -x "$ABVENV/bin/wstest" ]; then
    echo "== installing wstest into $ABVENV"
    bash "$AUTOBAHN_DIR/install.sh" "$ABVENV"
fi
PY="$ABVENV/bin/python"

PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="ws://127.0.0.1:$PORT"

mkdir -p "$WORK"
rm -rf "$OUTDIR"
SPEC="$WORK/fuzzingserver.json"
"$PY" - "$AUTOBAHN_DIR/fuzzingserver.json" "$SPEC" "$URL" "$OUTDIR" <<'EOF'
import json, sys
sample, spec, url, outdir = sys.argv[1:]
with open(sample) as f:
    cfg = json.load(f)  # cases 1.* .. 10.* except 8.*, as in the sample
cfg["url"] = url
cfg["outdir"] = outdir
with open(spec, "w") as f:
    json.dump(cfg, f, indent=2)
EOF

WSTEST_PID=
cleanup() {
    if [ -n "$WSTEST_PID" ] && kill -0 "$WSTEST_PID" 2>/dev/null; then
        kill "$WSTEST_PID" 2>/dev/null || true
        wait "$WSTEST_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== starting wstest fuzzingserver on $URL (log: $WORK/wstest.log)"
# -u 0: no extra static web server. Run from $WORK so stray files land there.
(cd "$WORK" && exec "$ABVENV/bin/wstest" -m fuzzingserver -s "$SPEC" -u 0) > "$WORK/wstest.log" 2>&1 < /dev/null &
WSTEST_PID=$!

ready=
for _ in $(seq 1 600); do  # up to ~60 s (first start compiles .pyc files)
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        ready=1
        break
    fi
    if ! kill -0 "$WSTEST_PID" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [ -z "$ready" ]; then
    echo "wstest did not start listening on port $PORT; log:" >&2
    cat "$WORK/wstest.log" >&2
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
    echo "\$ $WSBOX_BIN run --allow $URL $GUEST_WASM $URL wsbox"
    timeout "$CLIENT_TIMEOUT" "$WSBOX_BIN" run --allow "$URL" "$GUEST_WASM" "$URL" wsbox < /dev/null || client_status=$?
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

echo "== results ($OUTDIR)"
summary_status=0
"$PY" "$AUTOBAHN_DIR/summarize.py" "$OUTDIR" -v || summary_status=$?

if [ "$summary_status" -ne 0 ]; then
    echo "Autobahn: FAILED (summarize.py status $summary_status)" >&2
    exit "$summary_status"
fi
if [ "$client_status" -ne 0 ]; then
    echo "Autobahn: client exited with status $client_status" >&2
    exit "$client_status"
fi
echo "Autobahn: OK"
