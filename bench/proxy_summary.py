#!/usr/bin/env python3
"""The medians of bench/run.sh's proxy section (proxy-*.json in a results
directory) as a Markdown table: throughput and CPU per byte of a large
transfer, p99 and CPU per request of 64 B round trips, per forwarder.

    python3 bench/proxy_summary.py RESULTS_DIR MIB SECS
"""

import glob
import json
import os
import statistics
import sys

NAMES = {
    "sb": "switchboard tcp-proxy",
    "haproxy": "haproxy",
    "socat": "socat",
    "direct": "direct (no forwarder)",
}


def median(res, kind, who, key):
    vals = []
    for path in glob.glob(os.path.join(res, f"proxy-{kind}-{who}-*.json")):
        with open(path) as f:
            v = json.load(f)
        for k in key.split("."):
            v = v[k]
        vals.append(v)
    return statistics.median(vals) if vals else float("nan")


def main():
    res, mib, secs = sys.argv[1:4]
    print(
        f"| forwarder | MiB/s ({mib} MiB each way) | CPU ns/byte "
        "| 64 B p99 µs (50 conns) | req/s | CPU µs/req |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for who, name in NAMES.items():
        m = lambda kind, key: median(res, kind, who, key)  # noqa: E731
        print(
            f"| {name} | {m('bulk', 'mib_per_s'):.0f} | {m('bulk', 'cpu_ns_per_byte'):.2f} "
            f"| {m('rtt', 'latency.p99_us'):.0f} | {m('rtt', 'requests_per_s'):.0f} "
            f"| {m('rtt', 'forwarder_cpu_us_per_op'):.1f} |"
        )
    print(
        f"\nMedians of the rounds; {secs} s per round-trip run. CPU is the "
        "forwarder's, children included; for `direct` it is bare-echo's."
    )


if __name__ == "__main__":
    main()
