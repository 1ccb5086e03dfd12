#!/usr/bin/env python3
"""Summarise `meson test` results of one or more build directories.

usage: test-summary.py BUILDDIR [BUILDDIR...]

Reads BUILDDIR/meson-logs/testlog.json (and the test protocols from
BUILDDIR/meson-info/intro-tests.json), prints one line per configuration and,
as the very last line, "N passed, M failed" summed over all of them.
Under each failing test it prints why, in a few lines (its "not ok" lines
with the first diagnostic after each, or the end of its output when it had
none): CI often keeps only the end of the output.
Exits 1 when anything failed (or a log is missing), else 0.

Counting:
  * protocol 'tap': every "ok N" / "not ok N" line in the test's stdout is one
    test ("ok ... # SKIP" counts as skipped). A TAP test that meson judged bad
    adds one more failure when it crashed (killed by a signal, timed out, or
    stopped before its plan was complete, e.g. a sanitizer abort) or when
    meson judged it bad without any failing subtest (parse error, bad exit).
    One that printed no subtests counts as one failure, unless it announced
    "1..0 # SKIP" (then it is skipped).
  * any other protocol: one test, judged by meson's result.
"""
import json
import os
import re
import sys

GOOD = {"OK", "EXPECTEDFAIL"}
SKIP = {"SKIP"}

TAP_LINE = re.compile(r"^(not ok|ok)\b(?:\s*\d+)?([^#]*)(?:#\s*(\w+))?")
TAP_PLAN = re.compile(r"^1\.\.(\d+)")
TAP_SKIP_PLAN = re.compile(r"^1\.\.0\s*#\s*skip", re.IGNORECASE)


def protocols(builddir):
    path = os.path.join(builddir, "meson-info", "intro-tests.json")
    try:
        with open(path) as f:
            tests = json.load(f)
    except (OSError, ValueError):
        return {}
    # testlog.json names look like "project:suite / name"; key by bare name.
    protos = {}
    for t in tests:
        if t.get("protocol", "exitcode") == "tap" or t["name"] not in protos:
            protos[t["name"]] = t.get("protocol", "exitcode")
    return protos


def protocol_of(protos, fullname):
    return protos.get(fullname.rsplit(" / ", 1)[-1])


def count_tap(t):
    result = t.get("result", "ERROR")
    passed = failed = skipped = 0
    plan = 0
    skip_plan = False
    for line in (t.get("stdout") or "").splitlines():
        line = line.strip()
        if TAP_SKIP_PLAN.match(line):
            skip_plan = True
            continue
        m = TAP_PLAN.match(line)
        if m:
            plan += int(m.group(1))
            continue
        m = TAP_LINE.match(line)
        if not m:
            continue
        directive = (m.group(3) or "").upper()
        if m.group(1) == "ok":
            if directive.startswith("SKIP"):
                skipped += 1
            else:
                passed += 1
        elif directive == "TODO":
            passed += 1  # expected failure
        else:
            failed += 1  # includes cmocka's "not ok N # SKIP" (meson: FAIL)
    reported = passed + failed + skipped
    if reported == 0:
        if skip_plan and result in SKIP:
            return 0, 0, 1
        return 0, 1, 0
    crashed = (t.get("returncode", 0) < 0 or result == "TIMEOUT" or
               (plan and reported < plan))
    if crashed or (result not in GOOD | SKIP and failed == 0):
        failed += 1
    return passed, failed, skipped


def why_failed(t, limit=6):
    """A few lines telling why test t failed, from its own output."""
    out = (t.get("stdout") or "").splitlines()
    why = []
    for i, line in enumerate(out):
        if line.startswith("not ok"):
            why.append(line.strip()[:200])
            for nxt in out[i + 1:i + 3]:
                if nxt.startswith("#"):
                    why.append("  " + nxt.strip()[:200])
                    break
    if not why:
        tail = [l for l in out + (t.get("stderr") or "").splitlines() if l.strip()]
        why = [l.strip()[:200] for l in tail[-3:]]
    return why[:limit]


def summarise(builddir):
    """Returns (passed, failed, skipped, names of failing tests)."""
    log = os.path.join(builddir, "meson-logs", "testlog.json")
    protos = protocols(builddir)
    passed = failed = skipped = 0
    bad = []
    try:
        with open(log) as f:
            lines = f.readlines()
    except OSError:
        return 0, 1, 0, [(f"(no {log})", [])]
    for line in lines:
        line = line.strip()
        if not line:
            continue
        t = json.loads(line)
        name, result = t.get("name", "?"), t.get("result", "ERROR")
        if protocol_of(protos, name) == "tap":
            p, fl, s = count_tap(t)
        elif result in GOOD:
            p, fl, s = 1, 0, 0
        elif result in SKIP:
            p, fl, s = 0, 0, 1
        else:
            p, fl, s = 0, 1, 0
        passed += p
        failed += fl
        skipped += s
        if fl:
            bad.append((f"{name} ({result})", why_failed(t)))
    return passed, failed, skipped, bad


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    total_p = total_f = 0
    for builddir in argv[1:]:
        p, fl, s, bad = summarise(builddir)
        total_p += p
        total_f += fl
        line = f"{builddir}: {p} passed, {fl} failed"
        if s:
            line += f", {s} skipped"
        print(line)
        for b, why in bad:
            print(f"  FAILED: {b}")
            for w in why:
                print(f"    {w}")
    print(f"{total_p} passed, {total_f} failed")
    return 1 if total_f else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
