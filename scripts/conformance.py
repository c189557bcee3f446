#!/usr/bin/env python3
"""Compare an Autobahn report with the expected verdicts kept in conformance/.

usage:
  conformance.py check  EXPECTED.json REPORT_DIR [--cases PATTERNS]
  conformance.py update EXPECTED.json REPORT_DIR

check: exit 1 when any case's verdict (behavior or behaviorClose) differs
from EXPECTED, or a case is missing on either side; PATTERNS (e.g.
'1.*,2.*') limits the comparison to those cases (the quick run).
update: write EXPECTED from the report, refusing verdicts other than OK,
NON-STRICT and INFORMATIONAL.

Cases in which the suite writes a frame one octet at a time race the peer's
echo (see ../shared/autobahn/README.md): OK and NON-STRICT count as the same
verdict there, and only there.
"""
import fnmatch
import json
import sys
from pathlib import Path

ACCEPTABLE = {"OK", "NON-STRICT", "INFORMATIONAL"}
# The suite's octet-wise cases (chopsize=1 in its source).
RACY = {"2.6", "2.11", "3.4", "4.1.5", "4.2.5", "5.5", "5.8", "5.11", "5.14"}


def load_report(report_dir):
    index = json.loads((Path(report_dir) / "index.json").read_text())
    if len(index) != 1:
        sys.exit(f"conformance: expected one agent in {report_dir}, found {list(index)}")
    (cases,) = index.values()
    return {case: {"behavior": v["behavior"], "behaviorClose": v["behaviorClose"]}
            for case, v in cases.items()}


def case_key(case):
    return [int(part) for part in case.split(".")]


def same(case, expected, actual):
    if expected == actual:
        return True
    if case in RACY:
        fold = lambda v: "OK" if v == "NON-STRICT" else v
        return all(fold(expected[k]) == fold(actual[k]) for k in expected)
    return False


def check(expected_path, report_dir, patterns):
    expected = json.loads(Path(expected_path).read_text())
    actual = load_report(report_dir)
    wanted = lambda case: not patterns or any(fnmatch.fnmatch(case, p) for p in patterns)
    expected = {c: v for c, v in expected.items() if wanted(c)}
    actual = {c: v for c, v in actual.items() if wanted(c)}
    problems = []
    for case in sorted(set(expected) | set(actual), key=case_key):
        if case not in actual:
            problems.append(f"{case}: missing from the report")
        elif case not in expected:
            problems.append(f"{case}: not in {expected_path} (got {actual[case]})")
        elif not same(case, expected[case], actual[case]):
            problems.append(f"{case}: expected {expected[case]}, got {actual[case]}")
    counts = {}
    for verdict in actual.values():
        counts[verdict["behavior"]] = counts.get(verdict["behavior"], 0) + 1
    summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    for problem in problems:
        print(f"conformance: {problem}")
    print(f"conformance: {Path(expected_path).name}: {len(actual)} cases ({summary}), "
          f"{len(problems)} differ from the expected verdicts")
    return 1 if problems else 0


def update(expected_path, report_dir):
    actual = load_report(report_dir)
    bad = {c: v for c, v in actual.items() if v["behavior"] not in ACCEPTABLE}
    if bad:
        for case in sorted(bad, key=case_key):
            print(f"conformance: {case}: {bad[case]} cannot be expected")
        return 1
    ordered = {c: actual[c] for c in sorted(actual, key=case_key)}
    Path(expected_path).write_text(json.dumps(ordered, indent=1) + "\n")
    print(f"conformance: wrote {len(ordered)} cases to {expected_path}")
    return 0


def main(argv):
    if len(argv) < 3 or argv[0] not in ("check", "update"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "update":
        return update(argv[1], argv[2])
    patterns = []
    if len(argv) == 5 and argv[3] == "--cases":
        patterns = [p for p in argv[4].split(",") if p]
    return check(argv[1], argv[2], patterns)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
