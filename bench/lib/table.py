#!/usr/bin/env python3
"""Markdown table from a results TSV (label metric value unit round): the median over rounds per
target and metric, (min–max) with --range, and the ratio fipsproxy / best peer (best = highest for
rates, lowest for latency, memory and start times, marked ↓).
Rounds named sK are the slices of the interleaved fixed-rate latency (lib/latency.sh): their cells
are the median over slices, and `*_paired_ratio` rows are already ref / best peer per slice cycle
(the ratio column repeats their median). The CPU steal rows give, per target, the highest steal %
(hypervisor, /proc/stat) of any step or slice on the proxy and the client core(s).
  table.py results.tsv [--range] [--ref fipsproxy]"""
import os, statistics, sys
from collections import defaultdict

ROWS = [  # (header, metric, format, lower_is_better)
    ("keep-alive 1 KiB req/s", "ka1k_rps", "{:.0f}", False),
    ("keep-alive 1 KiB req/s per proxy core", "ka1k_rps_per_core", "{:.0f}", False),
    ("keep-alive 1 KiB req/s mTLS", "kamtls1k_rps", "{:.0f}", False),
    ("keep-alive 1 KiB req/s mTLS (per proxy core)", "kamtls1k_rps_per_core", "{:.0f}", False),
    ("keep-alive 1 KiB req/s http1/L7", "kahttp1k_rps", "{:.0f}", False),
    ("keep-alive 1 KiB req/s http1/L7 (per proxy core)", "kahttp1k_rps_per_core", "{:.0f}", False),
    ("keep-alive p50 ms (50 conns, saturated)", "ka1k_p50_ms", "{:.2f}", True),
    ("keep-alive p99 ms (50 conns, saturated)", "ka1k_p99_ms", "{:.2f}", True),
    ("fixed-rate p50 ms (10 conns x 10 ms think)", "lat1k_p50_ms", "{:.3f}", True),
    ("fixed-rate p99 ms", "lat1k_p99_ms", "{:.3f}", True),
    ("fixed-rate achieved req/s", "lat1k_rps", "{:.0f}", None),
    ("fixed-rate p50, paired: fipsproxy / best peer in the same cycle", "lat1k_p50_paired_ratio", "{:.2f}", "paired"),
    ("fixed-rate p99, paired: fipsproxy / best peer in the same cycle", "lat1k_p99_paired_ratio", "{:.2f}", "paired"),
    ("bulk 1 MiB MiB/s", "bulk1m_mib_s", "{:.0f}", False),
    ("bulk 1 MiB MiB/s per proxy core", "bulk1m_mib_s_per_core", "{:.0f}", False),
    ("CPU core-s per GiB forwarded (bulk)", "bulk1m_cpu_s_per_gib", "{:.2f}", True),
    ("TLS1.3 full hs/s", "hs13_per_s", "{:.0f}", False),
    ("TLS1.3 hs per core-s", "hs13_per_core_s", "{:.0f}", False),
    ("TLS1.2 hs per core-s", "hs12_per_core_s", "{:.0f}", False),
    ("mTLS1.3 hs per core-s", "hsmtls13_per_core_s", "{:.0f}", False),
    ("conn + 1 req per core-s", "cps13_per_core_s", "{:.0f}", False),
    ("RSS base MiB", "rss_base_kib", "kib", True),
    ("RSS with 2000 idle TLS conns MiB", "rss_idle_kib", "kib", True),
    ("bytes per idle TLS conn", "idle_bytes_per_conn", "{:.0f}", True),
    ("RSS peak MiB", "rss_peak_kib", "kib", True),
    ("origination 1 KiB req/s (plain in, mTLS out)", "orig_ka1k_rps", "{:.0f}", False),
    ("origination 1 KiB req/s per proxy core", "orig_ka1k_rps_per_core", "{:.0f}", False),
    ("origination bulk 1 MiB MiB/s", "orig_bulk1m_mib_s", "{:.0f}", False),
    ("origination bulk MiB/s per proxy core", "orig_bulk1m_mib_s_per_core", "{:.0f}", False),
    ("cold start: exec -> listening ms", "cold_listen_ms", "{:.1f}", True),
    ("cold start: exec -> first TLS handshake ms", "cold_tls_ms", "{:.1f}", True),
    ("cold start: exec -> /ready 200 ms", "cold_ready_ms", "{:.1f}", True),
    ("errors (sum of all steps)", "errors_total", "{:.0f}", True),
    ("bulk per core, % of its library's AES-128-GCM 16 KiB limit on the core", "bulk_share_pct", "{:.0f}", None),
    ("TLS1.3 hs per core-s, % of its library's P-256 sign/s on the core", "hs13_share_pct", "{:.0f}", None),
    ("calib P-256 sign/wall-s on core 0 (quiet ~50k)", "calib_sign_start", "{:.0f}", None),
    ("CPU steal on the proxy core, max over steps (%)", "steal_proxy_max", "{:.1f}", None),
    ("CPU steal on the client core, max over steps (%)", "steal_client_max", "{:.1f}", None),
]
STEAL_WARN_PCT = float(os.environ.get("STEAL_WARN_PCT", "5"))

def main(path):
    ref = sys.argv[sys.argv.index("--ref") + 1] if "--ref" in sys.argv else "fipsproxy"
    data = defaultdict(lambda: defaultdict(list))
    errs = defaultdict(lambda: defaultdict(float))
    steal = defaultdict(lambda: defaultdict(list))  # label -> core -> [% per step]
    steal_hi = defaultdict(set)                      # label -> {(round, step)} above STEAL_WARN_PCT
    order = []
    raw = defaultdict(dict)  # "boringcrypto" / "openssl" -> metric -> value (bench/run.sh raw limits)
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) < 5:
            continue
        label, metric, value, _, rnd = f[:5]
        if label.startswith("raw"):
            try:
                raw[label[4:]][metric] = float(value)
            except ValueError:
                pass
            continue
        if label not in order:
            order.append(label)
        try:
            v = float(value)
        except ValueError:
            continue
        data[label][metric].append(v)
        if metric.endswith("_errors"):
            errs[label][rnd] += v
        for core in ("proxy", "client"):
            if metric.endswith(f"_steal_{core}_pct"):
                steal[label][core].append(v)
                if v > STEAL_WARN_PCT:
                    steal_hi[label].add((rnd, metric[: -len(f"_steal_{core}_pct")]))
    for l in order:
        # errors of the rounds, plus those of the interleaved latency slices (rounds sK, shared by the run)
        extra = sum(v for r, v in errs[l].items() if not r.isdigit())
        per_round = [v + extra for r, v in errs[l].items() if r.isdigit()]
        data[l]["errors_total"] += per_round or ([extra] if errs[l] else [])
        for core in ("proxy", "client"):
            if steal[l][core]:
                data[l][f"steal_{core}_max"] = [max(steal[l][core])]
        # Shares of the physical limit: fipsproxy runs BoringCrypto, HAProxy and nginx OpenSSL.
        lib = raw.get("boringcrypto" if l == ref else "openssl", {})
        for share, m, lim in (("bulk_share_pct", "bulk1m_mib_s_per_core", "aes_128_gcm_16k_mib_s"),
                              ("hs13_share_pct", "hs13_per_core_s", "p256_sign_per_s")):
            if data[l].get(m) and lib.get(lim):
                data[l][share] = [100.0 * statistics.median(data[l][m]) / lib[lim]]
    cols = ([ref] if ref in order else []) + [l for l in order if l != ref]
    print("| metric | " + " | ".join(cols) + f" | {ref} / best peer |")
    print("|---|" + "---|" * (len(cols) + 1))
    for head, m, fmt, lower in ROWS:
        if not any(data[l].get(m) for l in cols):
            continue
        f = (lambda y: f"{y/1024:.1f}") if fmt == "kib" else fmt.format
        cells, med = [], {}
        for l in cols:
            v = data[l].get(m)
            if not v:
                cells.append("–"); continue
            med[l] = statistics.median(v)
            cell = f(med[l])
            if len(v) > 1 and "--range" in sys.argv:
                cell += f" ({f(min(v))}–{f(max(v))})"
            cells.append(cell)
        peers = [med[l] for l in cols if l != ref and l in med]
        ratio = "–"
        if lower == "paired":
            ratio = f(med[ref]) + " ↓" if ref in med else "–"
        elif lower is not None and ref in med and peers:
            best = min(peers) if lower else max(peers)
            if best > 0:
                ratio = f"{med[ref] / best:.2f}" + (" ↓" if lower else "")
            elif med[ref] == 0:
                ratio = "= (0)"
        print(f"| {head} | " + " | ".join(cells) + f" | {ratio} |")
    rounds = {l: len(data[l].get("calib_sign_start", [])) for l in cols}
    print("\nmedian over rounds; rounds per target: " + (", ".join(f"{l}={n}" for l, n in rounds.items())
          if any(rounds.values()) else "none (no per-target step)") + ". Ratio: rates >1 = fipsproxy ahead; rows marked ↓ (latency, memory, time): <1 = fipsproxy ahead.")
    slices = {l: sum(1 for r, v in errs[l].items() if r.startswith("s")) for l in cols}
    if any(slices.values()):
        print("fixed-rate rows: all targets running at once, measured in interleaved slices (round-robin),"
              " median over slices; slices per target: " + ", ".join(f"{l}={n}" for l, n in slices.items())
              + ". The paired rows: median over cycles of fipsproxy's slice / the best peer's slice of the same cycle.")
    if raw:
        print("raw limits on the proxy core, 2 s each before any load: " + "; ".join(
            f"{lib} AES-128-GCM 16 KiB {v.get('aes_128_gcm_16k_mib_s', 0):.0f} MiB/s, P-256 sign {v.get('p256_sign_per_s', 0):.0f}/s"
            for lib, v in sorted(raw.items())) + " (fipsproxy speed for BoringCrypto, openssl speed for the peers' OpenSSL).")
    if any(steal_hi[l] for l in cols):
        print(f"CPU steal above {STEAL_WARN_PCT:g} % (either core) in: "
              + ", ".join(f"{l} {len(steal_hi[l])} of {len(steal[l]['proxy'])} steps/slices" for l in cols)
              + ": the hypervisor took CPU from this VM there; latency tails of those steps show the host.")

if __name__ == "__main__":
    main(sys.argv[1])
