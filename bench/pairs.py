#!/usr/bin/env python3
"""Summarises a bench/pairs.sh directory: per connection count and server,
the median (min-max) req/s and server CPU per round trip over the rounds,
each against a reference (`bare` unless named: bare tokio, or the bare
spawner for KIND=exec) as the ratio of the medians and the range of the
per-round ratios, with the load average the runs started at.

    python3 bench/pairs.py OUT [REFERENCE]
"""
import collections
import glob
import json
import statistics
import sys


def main(out, base="bare"):
    runs = collections.defaultdict(dict)  # (conns, name) -> round -> report
    for path in sorted(glob.glob(f"{out}/*.json")):
        r = json.load(open(path))
        if "server_name" not in r:
            continue
        runs[(r["connections"], r["server_name"])][r["round"]] = r
    conns = sorted({c for c, _ in runs})
    names = sorted({n for _, n in runs}, key=lambda n: (n != base, n))
    print(f"| conns | server | req/s | CPU µs/rt | req/s vs {base} | CPU vs {base} | load 1m |")
    print("|---|---|---|---|---|---|---|")
    for c in conns:
        bare = runs.get((c, base), {})
        for n in names:
            mine = runs.get((c, n))
            if not mine:
                continue
            rps = [r["requests_per_s"] for r in mine.values()]
            cpu = [r["server"]["cpu_us_per_op"] for r in mine.values()]
            load = [r.get("loadavg_1m", 0) for r in mine.values()]
            row = [str(c), n, span(rps, "{:,.0f}"), span(cpu, "{:.2f}")]
            if n == base or not bare:
                row += ["", ""]
            else:
                both = [k for k in mine if k in bare]
                med = lambda xs: statistics.median(xs)
                r_rps = [mine[k]["requests_per_s"] / bare[k]["requests_per_s"] for k in both]
                r_cpu = [mine[k]["server"]["cpu_us_per_op"] / bare[k]["server"]["cpu_us_per_op"] for k in both]
                bare_rps = med([bare[k]["requests_per_s"] for k in both])
                bare_cpu = med([bare[k]["server"]["cpu_us_per_op"] for k in both])
                row += [
                    f"{med(rps) / bare_rps:.2f}x ({min(r_rps):.2f}–{max(r_rps):.2f})",
                    f"{med(cpu) / bare_cpu:.2f}x ({min(r_cpu):.2f}–{max(r_cpu):.2f})",
                ]
            row.append(f"{min(load):.1f}–{max(load):.1f}")
            print("| " + " | ".join(row) + " |")


def span(xs, fmt):
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"


if __name__ == "__main__":
    main(*sys.argv[1:3])
