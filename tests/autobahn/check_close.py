#!/usr/bin/env python3
"""Fail on any Autobahn|Testsuite case whose close behavior is not OK or INFORMATIONAL.

    python3 tests/autobahn/check_close.py REPORT_DIR

REPORT_DIR is e.g. target/autobahn/reports/servers (it must contain
index.json: agent -> case id -> {"behaviorClose": ...}). The shared
summarize.py also passes "FAILED BY CLIENT" (the testing peer dropped TCP
before wsbox did, where RFC 6455 section 7.1.1 wants the server to close TCP
first); wsbox's gate does not, so this check runs after it.

Exit status: 0 if every case's behaviorClose is OK or INFORMATIONAL, 1 if
not (each such case is listed with what its own report says about the
close: Autobahn's reason, its timeouts, who dropped TCP, the last frames),
2 on usage or input errors.
"""

import json
import os
import sys

PASSING_CLOSE = {"OK", "INFORMATIONAL"}


def case_key(case_id):
    return tuple(int(x) for x in case_id.split("."))


# The fields of a case's report that say how its closing handshake went.
CLOSE_FIELDS = ("duration", "resultClose", "wasClean", "wasNotCleanReason",
                "wasCloseHandshakeTimeout", "wasServerConnectionDropTimeout",
                "droppedByMe", "failedByMe", "localCloseCode", "remoteCloseCode")


def describe(report_path):
    """Prints what a case's own report says about its close."""
    try:
        with open(report_path) as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        print("      (no report: %s)" % e)
        return
    for field in CLOSE_FIELDS:
        print("      %s: %s" % (field, report.get(field)))
    # The wire log holds the close only: the cases turn it on at the end.
    for entry in (report.get("wirelog") or [])[-6:]:
        print("      wire: %s" % str(entry)[:160])


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = argv[1]
    if os.path.isdir(path):
        path = os.path.join(path, "index.json")
    try:
        with open(path) as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        print("cannot read %s: %s" % (path, e), file=sys.stderr)
        return 2
    if not isinstance(index, dict) or not index:
        print("no results in %s" % path, file=sys.stderr)
        return 2
    bad = []
    total = 0
    for agent in sorted(index):
        cases = index[agent]
        for cid in sorted(cases, key=case_key):
            total += 1
            close = cases[cid].get("behaviorClose")
            if close not in PASSING_CLOSE:
                bad.append((agent, cid, close, cases[cid].get("reportfile")))
    if bad:
        print("close behavior other than OK or INFORMATIONAL in %d of %d cases (%s):"
              % (len(bad), total, path))
        for agent, cid, close, report in bad:
            print("  %s %-10s close=%s" % (agent, cid, close))
            if report:
                describe(os.path.join(os.path.dirname(path), report))
        return 1
    print("close behavior OK or INFORMATIONAL in all %d cases" % total)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
