#!/usr/bin/env python3
"""Print an Autobahn|Testsuite report as a Markdown table (for the README).

    python3 tests/autobahn/summary-markdown.py REPORT_DIR [--agent NAME] [-v]

REPORT_DIR is e.g. target/autobahn/reports/clients (it must contain
index.json). Prints, per agent, one row per top-level section with the number
of cases per behavior: section | OK | NON-STRICT | INFORMATIONAL | FAILED |
total (an UNIMPLEMENTED column, or a column for any other behavior, is added
only when such cases exist). With -v, lists the non-OK cases below the table.
Counting follows the shared autobahn/summarize.py (which reads the same
index.json: agent -> case id -> {"behavior": ...}).

Exit status: 0 if no case FAILED (or had a behavior outside OK / NON-STRICT /
INFORMATIONAL / UNIMPLEMENTED), 1 otherwise, 2 on usage / input errors.
"""

import json
import os
import sys
from collections import Counter, defaultdict

PASSING = {"OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED"}
COLUMNS = ["OK", "NON-STRICT", "INFORMATIONAL", "FAILED"]


def case_key(case_id):
    return tuple(int(x) for x in case_id.split("."))


def table(cases, verbose):
    per_section = defaultdict(Counter)
    total = Counter()
    for cid, res in cases.items():
        beh = res.get("behavior")
        per_section[int(cid.split(".")[0])][beh] += 1
        total[beh] += 1
    extra = sorted(set(total) - set(COLUMNS), key=str)
    cols = COLUMNS[:3] + extra + COLUMNS[3:]  # FAILED stays next to total
    lines = [
        "| section | " + " | ".join(str(c) for c in cols) + " | total |",
        "|---" * (len(cols) + 2) + "|",
    ]
    for sec in sorted(per_section):
        row = per_section[sec]
        lines.append("| %d | %s | %d |" % (sec, " | ".join(str(row[c]) for c in cols), sum(row.values())))
    lines.append("| **total** | %s | **%d** |" % (" | ".join(str(total[c]) for c in cols), sum(total.values())))
    if verbose:
        bad = [(cid, cases[cid]) for cid in sorted(cases, key=case_key) if cases[cid].get("behavior") != "OK"]
        if bad:
            lines.append("")
            lines.append("Non-OK cases: " + ", ".join(
                "%s (%s, close %s)" % (cid, r.get("behavior"), r.get("behaviorClose")) for cid, r in bad))
    failed = any(res.get("behavior") not in PASSING for res in cases.values())
    return "\n".join(lines), failed


def main(argv):
    args = argv[1:]
    verbose = "-v" in args
    agent = None
    if "--agent" in args:
        i = args.index("--agent")
        if i + 1 >= len(args):
            print(__doc__, file=sys.stderr)
            return 2
        agent = args[i + 1]
        del args[i:i + 2]
    args = [a for a in args if a != "-v"]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    path = args[0]
    if os.path.isdir(path):
        path = os.path.join(path, "index.json")
    try:
        with open(path) as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        print("cannot read %s: %s" % (path, e), file=sys.stderr)
        return 2
    agents = [a for a in sorted(index) if agent is None or a == agent]
    if not agents or not any(index[a] for a in agents):
        print("no results in %s" % path, file=sys.stderr)
        return 2

    any_failed = False
    for n, name in enumerate(agents):
        text, failed = table(index[name], verbose)
        any_failed |= failed
        if len(agents) > 1:
            print("%s**%s** (%d cases)\n" % ("\n" if n else "", name, len(index[name])))
        print(text)
    return 1 if any_failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
