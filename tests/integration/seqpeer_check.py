#!/usr/bin/env python3
"""seqpeer_check.py - reads the status files seqpeer rewrites every 200 ms.

  seqpeer_check.py wait [--min N] [--timeout S] FILE:SENDER_IP ...
      Waits until every receiver FILE has counted at least N more frames
      (default 1000) from SENDER_IP than when called: traffic flows in each
      of those directions. Prints one line per direction; exit 1 when one
      did not grow within S seconds (default 15).

  seqpeer_check.py rx FILE SENDER_IP
      Frames FILE has received from SENDER_IP so far (0 if none).

  seqpeer_check.py field FILE NAME
      A top-level counter of FILE (tx, rx, dup, corrupt, ...).

  seqpeer_check.py verdict [--max-lost-pct P] FILE ...
      One line per receiver (received, valid, corrupt, foreign, duplicates,
      lost, late, per sender); exit 1 when any receiver counted a corrupt,
      foreign or duplicate frame, or holes in more than P % of the sequence
      numbers it should have seen (default: no limit).

Single-threaded, stateless: every call reads the files afresh.
"""
import json
import sys
import time


def load(path):
    # The file is replaced by rename(2): a read sees the old or the new one.
    for _ in range(50):
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            time.sleep(0.02)
    raise SystemExit(f"seqpeer_check: cannot read {path}")


def rx_from(doc, ip):
    return next((s["rx"] - s["dup"] for s in doc["senders"] if s["ip"] == ip), 0)


def cmd_wait(args):
    want, timeout, pairs = 1000, 15.0, []
    it = iter(args)
    for a in it:
        if a == "--min":
            want = int(next(it))
        elif a == "--timeout":
            timeout = float(next(it))
        else:
            path, ip = a.rsplit(":", 1)
            pairs.append((path, ip))
    start = time.monotonic()
    base = {p: rx_from(load(p[0]), p[1]) for p in pairs}
    done = {}
    while len(done) < len(pairs) and time.monotonic() - start < timeout:
        for p in pairs:
            if p not in done and rx_from(load(p[0]), p[1]) - base[p] >= want:
                done[p] = time.monotonic() - start
        time.sleep(0.05)
    ok = True
    for p in pairs:
        name = p[0].rsplit("/", 1)[-1]
        if p in done:
            print(f"{name} <- {p[1]}: +{want} frames after {done[p]:.1f} s")
        else:
            got = rx_from(load(p[0]), p[1]) - base[p]
            print(f"{name} <- {p[1]}: only +{got} frames in {timeout:.0f} s (want {want})")
            ok = False
    return 0 if ok else 1


def cmd_verdict(args):
    max_pct, files = None, []
    it = iter(args)
    for a in it:
        if a == "--max-lost-pct":
            max_pct = float(next(it))
        else:
            files.append(a)
    ok = True
    for path in files:
        d = load(path)
        name = path.rsplit("/", 1)[-1]
        per = ", ".join(f"{s['ip']}: {s['rx'] - s['dup']} (lost {s['lost']})" for s in d["senders"])
        print(f"{name}: rx {d['rx']} valid {d['valid']} corrupt {d['corrupt']} "
              f"foreign {d['foreign']} dup {d['dup']} lost {d['lost']} late {d['late']} "
              f"ring_errors {d['ring_errors']} connects {d['connects']} [{per}]")
        bad = [k for k in ("corrupt", "foreign", "dup", "ring_errors") if d[k]]
        expected = d["valid"] + d["lost"]
        if max_pct is not None and d["lost"] * 100 > max_pct * expected:
            bad.append(f"lost {d['lost']} of {expected} (more than {max_pct:g} %)")
        if bad:
            print(f"{name}: FAILED: {', '.join(bad)}")
            ok = False
    return 0 if ok else 1


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "wait":
        return cmd_wait(args)
    if cmd == "rx" and len(args) == 2:
        print(rx_from(load(args[0]), args[1]))
        return 0
    if cmd == "field" and len(args) == 2:
        print(load(args[0])[args[1]])
        return 0
    if cmd == "verdict":
        return cmd_verdict(args)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
