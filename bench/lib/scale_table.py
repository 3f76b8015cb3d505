#!/usr/bin/env python3
"""Markdown tables from bench/scale.sh's TSV (label metric value unit workers shared cores):
one table per test, one row per worker count, per target the rate, the proxy's CPU use in cores
and the scaling efficiency rate(N) / (N x rate(1)) (needs a workers=1 row for that target).
  scale_table.py scale.tsv"""
import sys
from collections import defaultdict

TESTS = [  # (title, rate metric, cpu metric, errors metric, format)
    ("keep-alive 1 KiB req/s", "ka1k_rps", "ka1k_proxy_cpu", "ka1k_errors"),
    ("TLS 1.3 full handshakes/s", "hs13_per_s", "hs13_proxy_cpu", "hs13_errors"),
]


def main(path):
    val = defaultdict(dict)  # (label, workers) -> metric -> value
    labels, workers, shared, cores = [], set(), {}, {}
    steal = defaultdict(list)  # (label, core) -> steal % of every step (lib/measure.sh STEP_steal_*_pct)
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) < 5:
            continue
        label, metric, value, _unit, n = f[:5]
        try:
            n = int(n)
            v = float(value)
        except ValueError:
            continue
        if label not in labels:
            labels.append(label)
        workers.add(n)
        val[(label, n)][metric] = v
        for core in ("proxy", "client"):
            if metric.endswith(f"_steal_{core}_pct"):
                steal[(label, core)].append(v)
        shared[n] = len(f) > 5 and f[5] == "1"
        if len(f) > 6:
            cores[n] = f[6]
    if not labels:
        print("(no results)")
        return
    notes = set()
    for title, rate, cpu, errm in TESTS:
        if not any(rate in val[(l, n)] for l in labels for n in workers):
            continue
        print(f"\n### {title}\n")
        print("| workers | cores proxy/load | " + " | ".join(f"{l} | {l} cores used | {l} efficiency" for l in labels) + " |")
        print("|---|---|" + "---|---|---|" * len(labels))
        for n in sorted(workers):
            cells = []
            for l in labels:
                d = val[(l, n)]
                if rate not in d:
                    cells += ["–", "–", "–"]
                    continue
                r = d[rate]
                cell = f"{r:.0f}"
                if d.get(errm, 0) > 0:
                    cell += f" ({d[errm]:.0f} errors)"
                    notes.add("errors")
                c = d.get(cpu)
                ccell = f"{c:.2f}" if c is not None else "–"
                if c is not None and not shared[n] and c < 0.85 * n:
                    ccell += " *"
                    notes.add("low")
                base = val[(l, 1)].get(rate)
                eff = f"{r / (n * base):.2f}" if base else "–"
                cells += [cell, ccell, eff]
            mark = " (shared)" if shared[n] else ""
            print(f"| {n}{mark} | {cores.get(n, '')} | " + " | ".join(cells) + " |")
    print("\nefficiency = rate(N) / (N x rate(1)); cores used = the proxy's CPU seconds per wall second.")
    if "low" in notes:
        print("`*`: the proxy used under 85 % of its N cores: the load side (wrk/hsload + backend) or the"
              " proxy's own serialisation was the limit, not its cores.")
    if steal:
        print("CPU steal (hypervisor, /proc/stat), max over steps, proxy / client cores: "
              + ", ".join(f"{l} {max(steal[(l, 'proxy')], default=0):.1f} / {max(steal[(l, 'client')], default=0):.1f} %"
                          for l in labels) + " (a few % or more: the host was contended, rates are noisy).")
    if any(shared.values()):
        print("(shared): no core was left for load and backend; they ran on the proxy's cores.")


if __name__ == "__main__":
    main(sys.argv[1])
