# Shared parts of run-client.sh and run-server.sh (sourced, not run).
#
# Sets REPO, AUTOBAHN_DIR (absolute), ABVENV, WORK (<repo>/target/autobahn)
# and PY (the wstest venv's python) and defines the ab_* helpers below.
# Environment: AUTOBAHN_DIR, the Python 3 port of Autobahn|Testsuite (default:
# <repo>/../shared/autobahn); wstest is installed from it into
# <repo>/target/abvenv on first use.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
AUTOBAHN_DIR="${AUTOBAHN_DIR:-$REPO/../shared/autobahn}"
ABVENV="$REPO/target/abvenv"
WORK="$REPO/target/autobahn"

# ab_init: checks AUTOBAHN_DIR, installs wstest if needed, sets PY.
ab_init() {
    [ -d "$AUTOBAHN_DIR" ] || { echo "autobahn dir not found: $AUTOBAHN_DIR (set AUTOBAHN_DIR)" >&2; exit 2; }
    AUTOBAHN_DIR="$(cd "$AUTOBAHN_DIR" && pwd)"
    if [ ! -x "$ABVENV/bin/wstest" ]; then
        echo "== installing wstest into $ABVENV"
        bash "$AUTOBAHN_DIR/install.sh" "$ABVENV"
    fi
    PY="$ABVENV/bin/python"
    mkdir -p "$WORK"
}

# ab_free_port: prints a free TCP port on 127.0.0.1.
ab_free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ab_wait_port PORT PID SECONDS: waits until 127.0.0.1:PORT accepts TCP
# connections; fails (status 1) when process PID exits first or after SECONDS.
ab_wait_port() {
    local port="$1" pid="$2" i
    for ((i = 0; i < $3 * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# ab_spec SAMPLE SPEC URL OUTDIR AGENT: writes wstest spec SPEC from the
# sample spec SAMPLE (its cases: 1.* .. 10.* except 8.*, unless AB_CASES
# lists others, as a JSON list of case patterns or ids) with "outdir"
# OUTDIR and, for a fuzzingclient sample (it has "servers"), the one server
# {"agent": AGENT, "url": URL}; otherwise (fuzzingserver) "url" URL.
#
# It also sets wstest's closeHandshakeTimeout to 2 s. wstest arms that
# timeout on txaio's batched timer, which truncates "now + delay" to a whole
# second (txaio 26.6.1, _BatchedTimer.call_later: int(now + delay) * 1000), so
# the default 1 s fires anywhere from 0 to 1 s after wstest sends its close:
# a close sent at x.999 s times out 1 ms later, whoever answers it. With 2 s
# the peer under test always has at least 1 s to answer, which is what the
# default means to give it.
ab_spec() {
    AB_CASES="${AB_CASES:-}" "$PY" - "$@" <<'EOF'
import json, os, sys
sample, spec, url, outdir, agent = sys.argv[1:]
with open(sample) as f:
    cfg = json.load(f)
if os.environ["AB_CASES"]:
    cfg["cases"] = json.loads(os.environ["AB_CASES"])
cfg["outdir"] = outdir
cfg.setdefault("options", {}).setdefault("closeHandshakeTimeout", 2)
if "servers" in cfg:
    cfg["servers"] = [{"agent": agent, "url": url}]
else:
    cfg["url"] = url
with open(spec, "w") as f:
    json.dump(cfg, f, indent=2)
EOF
}

# ab_stop PID SECONDS [SIGNAL_TARGET]: sends SIGTERM to SIGNAL_TARGET
# (default PID; "-PGID" for a process group), waits up to SECONDS for PID to
# exit, then SIGKILLs it. Sets STOP_STATUS to PID's exit status (137 after
# SIGKILL) and STOP_TIMED_OUT to 1 if it had to be killed. PID must be a child.
ab_stop() {
    local pid="$1" target="${3:-$1}" i
    STOP_STATUS=0
    STOP_TIMED_OUT=0
    kill -TERM -- "$target" 2>/dev/null || true
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        STOP_TIMED_OUT=1
        kill -KILL -- "$target" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || STOP_STATUS=$?
}

# ab_summarize OUTDIR: prints summarize.py's per-section table (and the
# non-OK cases), then runs check_close.py on the same report; returns
# summarize.py's status if non-zero (1 if any case FAILED or closed wrongly:
# WRONG CODE, UNCLEAN, FAILED, or if EXPECT_CASES is set and the report holds
# another number of cases; 2 without results), else check_close.py's (1 if
# any case's close behavior is other than OK or INFORMATIONAL, including the
# FAILED BY CLIENT that summarize.py lets pass).
ab_summarize() {
    echo "== results ($1)"
    local status=0 close_status=0 expect=()
    if [ -n "${EXPECT_CASES:-}" ]; then
        expect=(--expect-cases "$EXPECT_CASES")
    fi
    "$PY" "$AUTOBAHN_DIR/summarize.py" "$1" -v "${expect[@]}" || status=$?
    "$PY" "$REPO/tests/autobahn/check_close.py" "$1" || close_status=$?
    [ "$status" -ne 0 ] || status="$close_status"
    return "$status"
}
