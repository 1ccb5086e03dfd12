#!/usr/bin/env python3
"""bench/report.py: the raw samples of bench/suite.sh -> JSON + Markdown + PNG.

  report.py --meta META.json --samples SAMPLES.jsonl --out PREFIX [--readme README.md]
      writes PREFIX.json (meta, every raw sample, the summary), PREFIX.md
      (the table), PREFIX.png (gnuplot; skipped with a warning without
      gnuplot); --readme replaces the block between the bench-table markers.
  report.py --saturated TOL SAMPLES.jsonl
      prints the switch-loop cases (flows:64, normal:1518, ...) whose medians
      agree within TOL (fraction) across the switches measured (for the cpu
      figure).
  report.py --md PREFIX.json
      prints the Markdown of an existing result again.

Medians are over successful runs only (a failed run is reported as such, not
as 0); ratios are ours/anchor per run (same run index, both successful), and
the table gives their median. Python 3 standard library only.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

OURS = "vnet"
IMPL_NAMES = {"vnet": "vnet", "dpdk": "DPDK 22.11 testpmd", "ovs": "OVS-DPDK 3.1"}
README_BEGIN = "<!-- bench-table:begin -->"
README_END = "<!-- bench-table:end -->"

# fig -> (title, unit, better: "high" | "low", anchors)
FIGS = {
    "dequeue": ("Dequeue: guest TX → handler", "Mpps", "high", ["dpdk"]),
    "enqueue": ("Enqueue: handler → guest RX", "Mpps", "high", ["dpdk"]),
    "switch": ("Switch loop (PVP, no wire)", "Mpps", "high", ["ovs", "dpdk"]),
    "latency": ("Latency: RTT through the switch, mean", "µs", "low", ["ovs", "dpdk"]),
    "cpu": ("CPU per forwarded packet at a fixed rate, perf", "ns", "low", ["ovs", "dpdk"]),
    "memory": ("Memory: peak RSS (VmHWM)", "MB", "low", ["ovs"]),
    "scaling": ("Scaling: vnet-switchd, ports in pairs, 64 B", "Mpps", "high", []),
    "ring": ("bench_ring: split virtqueue round trip", "ns/chain", "low", []),
}
FIG_ORDER = ["dequeue", "enqueue", "switch", "latency", "cpu", "memory", "scaling", "ring"]
# bench_c2c round trip (ns) below which the two CPUs share an L3 ("near"):
# measured here ~60-75 ns near, ~200-350 ns far, nothing in between.
C2C_NEAR_NS = 130


def placement(s):
    """'near' / 'far' from the sample's c2c_ns, None when not probed."""
    c = s.get("c2c_ns")
    if not isinstance(c, (int, float)):
        return None
    return "near" if c < C2C_NEAR_NS else "far"


def load_samples(path):
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError as e:
                print(f"report: {path}:{n}: bad sample ignored ({e})", file=sys.stderr)
    return out


def case_key(case):
    """Sort cases: flows before normal, sizes and port counts numerically."""
    m = re.match(r"(?:(\w+):)?(\d+)", case)
    mode = {"flows": 0, "normal": 1}.get(m.group(1), 0) if m and m.group(1) else 0
    return (mode, int(m.group(2)) if m else 0, case)


def median(vals):
    return statistics.median(vals) if vals else None


def percentile(vals, p):
    """Nearest-rank percentile (as vnet-pktgen computes its p50/p99)."""
    if not vals:
        return None
    v = sorted(vals)
    k = max(1, -(-len(v) * p // 100))  # ceil
    return v[int(k) - 1]


def summarize(samples):
    """fig -> case -> {impls: {impl: stats}, ratios: {anchor: stats}}."""
    figs = {}
    for s in samples:
        figs.setdefault(s["fig"], {}).setdefault(s["case"], []).append(s)
    summary = {}
    for fig, cases in figs.items():
        anchors = FIGS.get(fig, ("", "", "high", []))[3]
        summary[fig] = {}
        for case, ss in cases.items():
            impls = {}
            by_run = {}
            place = {}  # run -> impl -> near/far
            for s in ss:
                st = impls.setdefault(s["impl"], {"values": [], "failed": 0, "runs": 0, "errors": [],
                                                  "placements": []})
                st["runs"] += 1
                if s.get("ok") and s.get("value") is not None:
                    st["values"].append(s["value"])
                    st["placements"].append(placement(s))
                    by_run.setdefault(s["run"], {})[s["impl"]] = s["value"]
                    place.setdefault(s["run"], {})[s["impl"]] = placement(s)
                else:
                    st["failed"] += 1
                    if s.get("error"):
                        st["errors"].append(s["error"])
            for st in impls.values():
                st["median"] = median(st["values"])
                near = [v for v, p in zip(st["values"], st["placements"]) if p == "near"]
                st["near_median"] = median(near)
                st["near_runs"] = len(near)
            ratios = {}
            for a in anchors:
                rv = [r[OURS] / r[a] for _, r in sorted(by_run.items())
                      if OURS in r and a in r and r[a]]
                if rv:
                    ratios[a] = {"values": [round(x, 4) for x in rv], "median": median(rv)}
                    # pairs whose two runs had the same vCPU placement: the
                    # drift the alternation is meant to cancel, cancelled
                    same = [r[OURS] / r[a] for run, r in sorted(by_run.items())
                            if OURS in r and a in r and r[a]
                            and place.get(run, {}).get(OURS) is not None
                            and place[run].get(OURS) == place[run].get(a)]
                    ratios[a]["matched"] = [round(x, 4) for x in same]
                    ratios[a]["matched_median"] = median(same)
            entry = {"impls": impls, "ratios": ratios}
            if fig == "latency":  # pooled sub-window samples: p50 / p99
                for impl, st in impls.items():
                    pool = [x for s in ss if s["impl"] == impl and s.get("ok")
                            for x in s.get("samples_us", [])]
                    st["p50"] = percentile(pool, 50)
                    st["p99"] = percentile(pool, 99)
                    st["n_samples"] = len(pool)
            if fig in ("switch", "cpu", "dequeue", "enqueue"):
                for impl, st in impls.items():
                    for k in ("cpu_per_pkt", "cycles_per_pkt", "driver_cycles_per_pkt"):
                        vals = [s[k] for s in ss if s["impl"] == impl and s.get("ok")
                                and isinstance(s.get(k), (int, float))]
                        st[k + "_median"] = median(vals)
                    # Share of its core a program was busy: cycles per packet
                    # x packets per second / clock (the window's mean).
                    for k, out in (("cycles_per_pkt", "busy_share"),
                                   ("driver_cycles_per_pkt", "driver_busy_share")):
                        vals = [s[k] * s["value"] / s["tsc_mhz"] for s in ss
                                if s["impl"] == impl and s.get("ok")
                                and all(isinstance(s.get(x), (int, float)) and s.get(x)
                                        for x in (k, "value", "tsc_mhz"))]
                        st[out + "_median"] = median(vals)
                drv = [s for s in ss if s.get("ok")
                       and isinstance(s.get("driver_cycles_per_pkt"), (int, float))
                       and isinstance(s.get("tsc_mhz"), (int, float))]
                if drv:
                    best = min(drv, key=lambda s: s["driver_cycles_per_pkt"])
                    entry["driver_cheapest"] = {"cycles_per_pkt": best["driver_cycles_per_pkt"],
                                                "impl": best["impl"], "run": best["run"],
                                                "mpps_at_that_cost": best["tsc_mhz"] /
                                                best["driver_cycles_per_pkt"]}
            if fig == "memory":
                for impl, st in impls.items():
                    ok = [s for s in ss if s["impl"] == impl and s.get("ok")]
                    for k in ("rss_anon_kb", "hugepages_mb", "switch_hwm_kb", "ovsdb_hwm_kb",
                              "switch_shmem_kb"):
                        vals = [s[k] for s in ok if isinstance(s.get(k), (int, float))]
                        st[k + "_median"] = median(vals)
            summary[fig][case] = entry
    return summary


def pct(v):
    return f"{100 * v:.0f} %" if isinstance(v, (int, float)) else "–"


def fmt(v, unit=""):
    if v is None:
        return "–"
    if unit == "MB":
        return f"{v:.1f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}" if unit != "Mpps" else f"{v:.3f}"


def cell(st, unit, scale=1.0):
    if not st:
        return "–"
    if st["median"] is None:
        return f"failed ({st['failed']}/{st['runs']})"
    s = fmt(st["median"] * scale, unit)
    if st["failed"]:
        s += f" ({st['runs'] - st['failed']}/{st['runs']} ok)"
    return s


def ratio_cell(entry, a):
    r = entry["ratios"].get(a)
    return f"{r['median']:.2f}" if r else "–"


def case_label(fig, case):
    if fig in ("dequeue", "enqueue"):
        return f"{case} B"
    if fig in ("switch", "cpu"):
        mode, size = case.split(":")
        return f"{size} B, {'flows 1↔2' if mode == 'flows' else 'learning bridge (NORMAL)'}"
    if fig == "latency":
        return "64 B, flows 1↔2, 1 frame per direction"
    return case


def markdown(meta, summary, main_only=False):
    m = meta
    lines = []
    lines.append(f"Machine: {m.get('cpu_model', '?')}, {m.get('cpus', '?')} CPUs, "
                 f"kernel {m.get('kernel', '?')}, {m.get('os', '?')}. "
                 f"vnet {m.get('vnet', '?')}, DPDK {m.get('dpdk', '?')}, "
                 f"{m.get('ovs', 'OVS ?')}.")
    lines.append(f"Method: {m.get('runs', '?')} alternating runs per figure (vnet, anchor, vnet, …), "
                 f"{m.get('warmup_s', '?')} s warm-up + {m.get('window_s', '?')} s window; "
                 f"system under test on CPU {m.get('sut_cpu', '?')}, testpmd on CPU {m.get('tp_cpu', '?')}; "
                 f"median of the runs and median of the per-run ratios vnet/anchor. "
                 f"Load average {m.get('load_before', '?')} before, {m.get('load_after', '?')} after; "
                 f"{m.get('wall_s', '?')} s. Date {m.get('date', '?')}.")
    lines.append("")
    lines.append("| Figure | Case | vnet | DPDK 22.11 testpmd | OVS-DPDK 3.1 | vnet/DPDK | vnet/OVS |")
    lines.append("|---|---|---:|---:|---:|---:|---:|")
    for fig in FIG_ORDER:
        if fig not in summary:
            continue
        title, unit, better, _ = FIGS[fig]
        if fig == "cpu":
            title += f" ({meta.get('cpu_rate_pps', '?')} pps offered)"
            if meta.get("perf_event") == "cycles":
                unit = "cycles"
        scale = 1 / 1024 if fig == "memory" else 1.0
        for case in sorted(summary[fig], key=case_key):
            e = summary[fig][case]
            im = e["impls"]
            row = [f"{title}, {unit} ({'higher' if better == 'high' else 'lower'} is better)",
                   case_label(fig, case),
                   cell(im.get("vnet"), unit, scale), cell(im.get("dpdk"), unit, scale),
                   cell(im.get("ovs"), unit, scale), ratio_cell(e, "dpdk"), ratio_cell(e, "ovs")]
            lines.append("| " + " | ".join(row) + " |")
            if fig == "latency":
                for p in ("p50", "p99"):
                    vals = {i: im[i].get(p) for i in im}
                    r = [f"Latency: RTT {p} of {meta.get('lat_sample_ms', 100):.0f} ms samples, µs",
                         "", *(fmt(vals.get(i)) for i in ("vnet", "dpdk", "ovs"))]
                    rd = [fmt(vals["vnet"] / vals[a]) if vals.get("vnet") and vals.get(a) else "–"
                          for a in ("dpdk", "ovs")]
                    lines.append("| " + " | ".join(r + rd) + " |")
            if fig == "cpu":
                cy = {i: im[i].get("cycles_per_pkt_median") for i in im}
                r = ["CPU per forwarded packet at a fixed rate: busy TSC cycles (the switch's own counters)",
                     case_label(fig, case), *(fmt(cy.get(i)) for i in ("vnet", "dpdk", "ovs"))]
                rd = [fmt(cy["vnet"] / cy[a]) if cy.get("vnet") and cy.get(a) else "–"
                      for a in ("dpdk", "ovs")]
                lines.append("| " + " | ".join(r + rd) + " |")
            if fig == "memory":
                an = {i: im[i].get("rss_anon_kb_median") for i in im}
                r = ["Memory: RssAnon, MB (lower is better)", case,
                     *(fmt(an[i] / 1024, "MB") if an.get(i) is not None else "–"
                       for i in ("vnet", "dpdk", "ovs"))]
                rd = ["–", fmt(an["vnet"] / an["ovs"]) if an.get("vnet") and an.get("ovs") else "–"]
                lines.append("| " + " | ".join(r + rd) + " |")
                hp = im.get("ovs", {}).get("hugepages_mb_median")
                if hp is not None:
                    lines.append(f"| Memory: OVS hugepages taken, MB | {case} | – | – | {hp:.0f} | – | – |")
    lines.append("")
    if main_only:
        return "\n".join(lines)
    # scaling detail
    sc = summary.get("scaling")
    if sc:
        lines.append("Scaling (vnet-switchd, one PMD, 64 B, flows pairing the ports; one testpmd io-forwarding all ports):")
        lines.append("")
        lines.append("| Ports | Aggregate Mpps | ns per packet (one core) | vs 2 ports |")
        lines.append("|---:|---:|---:|---:|")
        base = None
        for case in sorted(sc, key=case_key):
            st = sc[case]["impls"].get("vnet")
            v = st["median"] if st else None
            if base is None and v:
                base = v
            ns = f"{1e3 / v:.1f}" if v else "–"
            rel = f"{v / base:.2f}" if v and base else "–"
            lines.append(f"| {case.split()[0]} | {cell(st, 'Mpps')} | {ns} | {rel} |")
        lines.append("")
    hc = [(fig, case) for fig in ("dequeue", "enqueue") for case in sorted(summary.get(fig, {}), key=case_key)]
    if hc:
        lines.append("CPU per packet in the handler (dequeue/enqueue): busy TSC cycles per packet from each "
                     "handler's own count (vnet-pktgen: rounds that moved frames; testpmd "
                     "`--record-core-cycles`: iterations that moved frames). When both handlers reach "
                     "the rate the testpmd on the other side can offer or take, this is the figure "
                     "that tells them apart. Busy share: how much of its core the handler was busy "
                     "(cycles per packet × rate / clock, median of the runs); a handler well below "
                     "100 % did not set the rate — testpmd on the other side did:")
        lines.append("")
        lines.append("| Figure | Case | vnet cycles | DPDK cycles | vnet/DPDK (lower is better) "
                     "| vnet busy share | DPDK busy share |")
        lines.append("|---|---|---:|---:|---:|---:|---:|")
        for fig, case in hc:
            im = summary[fig][case]["impls"]
            v = im.get("vnet", {}).get("cycles_per_pkt_median")
            d = im.get("dpdk", {}).get("cycles_per_pkt_median")
            r = f"{v / d:.2f}" if v and d else "–"
            lines.append(f"| {fig.capitalize()} | {case_label(fig, case)} | {fmt(v)} | {fmt(d)} | {r} "
                         f"| {pct(im.get('vnet', {}).get('busy_share_median'))} "
                         f"| {pct(im.get('dpdk', {}).get('busy_share_median'))} |")
        lines.append("")
    pl = placement_table(summary)
    if pl:
        lines += pl
    sw = summary.get("switch")
    if sw:
        ev = meta.get("perf_event", "task-clock")
        unit = "cycles" if ev == "cycles" else "ns of CPU"
        lines.append("CPU per forwarded packet in the saturated switch loop: busy TSC cycles per packet "
                     "from each switch's own counters (vnet `vnetctl pmd-stats`, OVS "
                     "`dpif-netdev/pmd-stats-show` processing cycles, testpmd `--record-core-cycles`), "
                     f"and `perf stat -e {ev}` on the whole switch process ({unit} per packet; a "
                     "busy-polling PMD burns its core, so at saturation this is about 1e9 / rate). "
                     "The driver (testpmd io-fwd over two virtio-user ports, `--record-core-cycles`) "
                     "counts its own busy cycles the same way: its busy share (median over all runs "
                     "of all switches) says whether it had room to send more, and its cheapest run "
                     "the most it could carry at that cost:")
        lines.append("")
        lines.append("| Case | vnet cycles | DPDK cycles | OVS cycles | vnet " + unit + " | DPDK " + unit
                     + " | OVS " + unit + " | driver busy share | driver cycles, cheapest run "
                     "| Mpps at that cost |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for case in sorted(sw, key=case_key):
            im = sw[case]["impls"]
            cy = [fmt(im[i].get("cycles_per_pkt_median")) if i in im else "–" for i in ("vnet", "dpdk", "ovs")]
            cp = [fmt(im[i].get("cpu_per_pkt_median")) if i in im else "–" for i in ("vnet", "dpdk", "ovs")]
            shares = [st.get("driver_busy_share_median") for st in im.values()
                      if isinstance(st.get("driver_busy_share_median"), (int, float))]
            ch = sw[case].get("driver_cheapest") or {}
            cheap = (f"{fmt(ch['cycles_per_pkt'])} ({ch['impl']} run {ch['run']})" if ch else "–")
            lines.append(f"| {case_label('switch', case)} | " + " | ".join(cy + cp) +
                         f" | {pct(median(shares))} | {cheap} | {fmt(ch.get('mpps_at_that_cost'))} |")
        lines.append("")
    notes = [
        "Traffic source and sink: DPDK 22.11 `dpdk-testpmd` (`--no-huge -m 256 --single-file-segments "
        "--no-pci`, net_virtio_user ports, 1024-entry rings); Mpps as testpmd counts it over the window "
        "(dequeue: Tx-pps of txonly; enqueue, switch, scaling: Rx-pps, both directions summed).",
        "Dequeue/enqueue: vnet = `vnet-pktgen --role backend --mode rx|tx` (libvnet's vhost-user "
        "handler), DPDK = testpmd `net_vhost` rxonly|txonly.",
        "Since 2026-11-24 the testpmd on the other side (source, sink, driver) runs with "
        "`--record-core-cycles` too (two TSC reads per forwarding iteration), so its rates are "
        "not strictly comparable with earlier result files.",
        "Switch loop: driver testpmd io-fwd (for the learning bridge: mac-fwd with each port's peer "
        "address set to the other port's MAC, so frames are unicast and MACs stay on their ports), "
        "`start tx_first 64`; DPDK = testpmd io-fwd between two `net_vhost` ports; "
        "OVS-DPDK: two dpdkvhostuser ports, `pmd-cpu-mask` on the SUT CPU, `datapath_type=netdev`.",
        "Latency: testpmd-only ping-pong (DPDK 22.11 testpmd has no RTT measurement: latencystats "
        "only times RX→TX inside testpmd, icmpecho only answers): `set burst 1`, `start tx_first 1` "
        "puts one frame per direction in the loop; mean RTT = 2 × frames in flight / loop rate "
        "(Little's law). p50/p99 are over the rates of short sub-windows, not per-packet.",
    ]
    if "cpu" in summary:
        notes.append(f"CPU per packet at a fixed rate: `vnet-pktgen --role frontend --mode tx --rate "
                     f"{meta.get('cpu_rate_pps', '?')}` on port 1 (the one non-DPDK generator; testpmd "
                     "cannot pace) and testpmd rxonly on port 2, both on the testpmd CPU; "
                     f"`perf stat -e {meta.get('perf_event', '?')}` on the whole switch process.")
    if meta.get("perf_event") == "task-clock":
        notes.append("`perf stat -e cycles` is not supported here (virtual machine): CPU figures use "
                     "task-clock (ns of CPU time) instead of cycles.")
    lines += ["Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def placement_table(summary):
    """Ratios again, from the pairs whose two runs had the same placement."""
    rows = []
    for fig in FIG_ORDER:
        for case in sorted(summary.get(fig, {}), key=case_key):
            e = summary[fig][case]
            for a, r in e["ratios"].items():
                if "matched" not in r or not any(st.get("placements") and any(st["placements"])
                                                for st in e["impls"].values()):
                    continue
                im = e["impls"]
                near = lambda i: (f"{fmt(im[i]['near_median'])} ({im[i]['near_runs']}/{len(im[i]['values'])})"
                                  if im.get(i, {}).get("near_median") is not None else "–")
                m = r.get("matched_median")
                rows.append(f"| {FIGS[fig][0]} | {case_label(fig, case)} | {IMPL_NAMES.get(a, a)} | "
                            f"{r['median']:.2f} ({len(r['values'])}) | "
                            f"{f'{m:.2f}' if m is not None else '–'} ({len(r['matched'])}) | "
                            f"{near(OURS)} | {near(a)} |")
    if not rows:
        return []
    return ["Placement: the host moves this VM's two vCPUs every few seconds between an SMT pair "
            "(a cache-line round trip of ~27 ns), two cores that share an L3 (~65 ns) and two that "
            "do not (~340 ns); every figure here is a ring shared across the two CPUs, and a far "
            "placement about halves it. `bench_c2c` takes the round trip as each sample is recorded, "
            "once its peers stopped (dequeue/enqueue: right after the sample; switch and latency: "
            "after the switch's run, which holds all their cases, up to ~25 s later) "
            f"(near: < {C2C_NEAR_NS} ns, far otherwise; ᶠ in the per-run values). As placement can "
            "change inside a window, a sample's class is a hint, not a proof. Ratios from all pairs, "
            "from the pairs whose two samples were classed alike, and each side's median over its "
            "near samples:",
            "",
            "| Figure | Case | Anchor | vnet/anchor, all pairs (n) | pairs classed alike (n) | "
            "vnet, near samples (n/all) | anchor, near samples (n/all) |",
            "|---|---|---|---:|---:|---:|---:|"] + rows + [""]


def runs_detail(summary):
    lines = ["", "<details><summary>Per-run values</summary>", "",
             "| Figure | Case | Impl | Runs (failed: –; ᶠ: far placement) | Ratios vnet/impl |", "|---|---|---|---|---|"]
    for fig in FIG_ORDER:
        for case in sorted(summary.get(fig, {}), key=case_key):
            e = summary[fig][case]
            for impl, st in e["impls"].items():
                pls = st.get("placements") or [None] * len(st["values"])
                vals = " ".join(fmt(v) + ("ᶠ" if p == "far" else "")
                                for v, p in zip(st["values"], pls)) + (" –" * st["failed"])
                r = e["ratios"].get(impl)
                rs = " ".join(f"{x:.2f}" for x in r["values"]) if r else ""
                lines.append(f"| {fig} | {case} | {impl} | {vals} | {rs} |")
    lines += ["", "</details>", ""]
    fails = []
    for fig in FIG_ORDER:
        for case in sorted(summary.get(fig, {}), key=case_key):
            for impl, st in summary[fig][case]["impls"].items():
                if st["failed"]:
                    why = "; ".join(sorted(set(st["errors"]))) or "no rate measured (see the logs)"
                    fails.append(f"- {fig} {case} {impl}: {st['failed']}/{st['runs']} runs failed: {why}")
    if fails:
        lines += ["Failed runs (logs in bench/results/raw/):", ""] + fails + [""]
    return "\n".join(lines)


def bars_data(summary, fig, cases, impls, value=lambda st: st["median"]):
    rows = []
    for c in cases:
        e = summary.get(fig, {}).get(c)
        vals = []
        for i in impls:
            st = e["impls"].get(i) if e else None
            v = value(st) if st else None
            vals.append("NaN" if v is None else f"{v:.6g}")
        rows.append((c, vals))
    return rows


def gnuplot_png(summary, meta, png):
    gp = shutil.which("gnuplot")
    if not gp:
        print("report: gnuplot not found, no PNG (apt-get install gnuplot-nox)", file=sys.stderr)
        return False
    tmp = tempfile.mkdtemp(prefix="vnet-bench-plot.")
    panels = []

    def panel(name, title, ylabel, fig, cases, impls, labels, value=lambda st: st["median"]):
        rows = bars_data(summary, fig, cases, impls, value)
        if not rows or all(all(v == "NaN" for v in r[1]) for r in rows):
            return
        path = os.path.join(tmp, name + ".dat")
        with open(path, "w") as f:
            for c, vals in rows:
                f.write('"%s" %s\n' % (labels(c), " ".join(vals)))
        panels.append((title, ylabel, path, impls, len(rows)))

    sizes = lambda fig: sorted(summary.get(fig, {}), key=case_key)
    panel("dq", "Dequeue (guest TX -> handler)", "Mpps", "dequeue", sizes("dequeue"), ["vnet", "dpdk"],
          lambda c: f"{c} B")
    panel("eq", "Enqueue (handler -> guest RX)", "Mpps", "enqueue", sizes("enqueue"), ["vnet", "dpdk"],
          lambda c: f"{c} B")
    panel("sw", "Switch loop (PVP, no wire)", "Mpps", "switch", sizes("switch"), ["vnet", "ovs", "dpdk"],
          lambda c: c.replace("flows:", "flows ").replace("normal:", "NORMAL "))
    panel("lat", "RTT through the switch (64 B)", "us", "latency", sizes("latency"),
          ["vnet", "ovs", "dpdk"], lambda c: "mean")
    if "latency" in summary:
        # add p50/p99 rows to the latency panel
        path = panels[-1][2] if panels and panels[-1][0].startswith("RTT") else None  # noqa
        if path:
            e = summary["latency"][sizes("latency")[0]]["impls"]
            with open(path, "a") as f:
                for p in ("p50", "p99"):
                    f.write('"%s" %s\n' % (p, " ".join(
                        "NaN" if e.get(i, {}).get(p) is None else f"{e[i][p]:.6g}"
                        for i in ("vnet", "ovs", "dpdk"))))
    panel("mem", "Switch's own memory (RssAnon; + ovsdb-server)", "MB", "memory", sizes("memory"),
          ["vnet", "ovs"], lambda c: c,
          value=lambda st: st["rss_anon_kb_median"] / 1024 if st.get("rss_anon_kb_median") is not None else None)
    panel("sc", "vnet-switchd scaling (64 B)", "Mpps aggregate", "scaling", sizes("scaling"), ["vnet"],
          lambda c: c)
    if not panels:
        return False
    cols = 3 if len(panels) > 4 else 2
    nrows = -(-len(panels) // cols)
    colors = {"vnet": "#1f77b4", "dpdk": "#2ca02c", "ovs": "#ff7f0e"}
    script = [
        f"set terminal pngcairo size {cols * 520},{nrows * 380} font 'sans,10'",
        f"set output '{png}'",
        "set datafile missing 'NaN'",
        "set style data histograms",
        "set style histogram clustered gap 1",
        "set style fill solid 0.85 border -1",
        "set boxwidth 0.9",
        "set grid ytics",
        "set key inside top center horizontal samplen 2",
        "set offsets 0, 0, graph 0.22, 0",
        "set yrange [0:*]",
        "set xtics nomirror",
        f"set multiplot layout {nrows},{cols} title "
        f"\"vnet vs DPDK 22.11 vs OVS-DPDK 3.1 - {meta.get('cpu_model', '')}, kernel {meta.get('kernel', '')}, "
        f"{meta.get('stamp', '')} (median of {meta.get('runs', '?')} runs)\"",
    ]
    for title, ylabel, path, impls, nrows_data in panels:
        if title.startswith("RTT"):
            nrows_data += 2  # p50, p99 rows appended
        script.append(f"set xrange [-0.6:{nrows_data - 0.4}]")
        script.append(f"set title \"{title}\"")
        script.append(f"set ylabel '{ylabel}'")
        plots = []
        for k, i in enumerate(impls):
            using = f"{k + 2}:xtic(1)" if k == 0 else f"{k + 2}"
            plots.append(f"'{path}' using {using} title '{IMPL_NAMES[i]}' lc rgb '{colors[i]}'")
        script.append("plot " + ", ".join(plots))
    script.append("unset multiplot")
    gpfile = os.path.join(tmp, "plot.gp")
    with open(gpfile, "w") as f:
        f.write("\n".join(script) + "\n")
    r = subprocess.run([gp, gpfile], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"report: gnuplot failed:\n{r.stderr}", file=sys.stderr)
        print(f"report: script kept in {gpfile}", file=sys.stderr)
        return False
    shutil.rmtree(tmp, ignore_errors=True)
    return True


def update_readme(readme, md_table, stamp):
    with open(readme) as f:
        text = f.read()
    if README_BEGIN not in text or README_END not in text:
        print(f"report: no {README_BEGIN} ... {README_END} block in {readme}", file=sys.stderr)
        return False
    a = text.index(README_BEGIN) + len(README_BEGIN)
    b = text.index(README_END)
    block = (f"\n<!-- from bench/results/{stamp}.md (details, per-run values, chart there) -->\n"
             f"{md_table}")
    with open(readme, "w") as f:
        f.write(text[:a] + block + text[b:])
    return True


def saturated(path, tol):
    summary = summarize(load_samples(path))
    out = []
    for case, e in summary.get("switch", {}).items():
        meds = [st["median"] for st in e["impls"].values() if st["median"]]
        if len(meds) >= 2 and len(meds) == len(e["impls"]) and max(meds) / min(meds) - 1 <= tol:
            out.append(case)
    print(" ".join(sorted(out, key=case_key)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--meta")
    ap.add_argument("--samples")
    ap.add_argument("--out", help="output prefix: PREFIX.json, PREFIX.md, PREFIX.png")
    ap.add_argument("--readme", help="README.md whose bench-table block gets the table")
    ap.add_argument("--saturated", nargs=2, metavar=("TOL", "SAMPLES"))
    ap.add_argument("--md", metavar="RESULT_JSON")
    a = ap.parse_args()
    if a.saturated:
        saturated(a.saturated[1], float(a.saturated[0]))
        return 0
    if a.md:
        with open(a.md) as f:
            res = json.load(f)
        sys.stdout.write(markdown(res["meta"], res["summary"]))
        return 0
    if not (a.meta and a.samples and a.out):
        ap.error("--meta, --samples and --out are needed")
    with open(a.meta) as f:
        meta = json.load(f)
    samples = load_samples(a.samples)
    summary = summarize(samples)
    stamp = meta.get("stamp", os.path.basename(a.out))
    table = markdown(meta, summary)
    png = a.out + ".png"
    have_png = gnuplot_png(summary, meta, png)
    with open(a.out + ".json", "w") as f:
        json.dump({"meta": meta, "summary": summary, "samples": samples}, f, indent=1)
        f.write("\n")
    with open(a.out + ".md", "w") as f:
        f.write(f"# vnet benchmark {stamp}\n\n")
        f.write("`make bench` (bench/suite.sh): vnet against DPDK 22.11 and OVS-DPDK 3.1 in the same run.\n\n")
        f.write(table)
        if have_png:
            f.write(f"\n![chart]({os.path.basename(png)})\n")
        f.write(runs_detail(summary))
    if a.readme:
        update_readme(a.readme, markdown(meta, summary, main_only=True), stamp)
    print(f"report: {a.out}.json, {a.out}.md" + (f", {png}" if have_png else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
