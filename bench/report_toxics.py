#!/usr/bin/env python3
"""BENCHMARKS.md's toxics sections, from the toxics-*.json reports that
bench/sections/toxics.sh and bench/toxics.py write: the toxics' accuracy
against the issue's figures, and a tcp-proxy with no toxic against a build
from before the toxics engine. bench/report.py calls render(); alone,

    bench/report_toxics.py DIR

prints the sections for one results directory.

Every figure is computed here from the raw samples. When the run being
rendered has no toxics reports (a full run made before they existed), the
newest finished run beside it that has them is used and named, with its own
date, commit and load: it is a separate run and the text says so.
"""
import glob
import json
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The goals (the figures).
LATENCY_P50_MS = 2.0   # added p50 within this of the latency asked for
LATENCY_P99_MS = 10.0  # added p99 within this of the distribution's p99
RATE_PCT = 5.0         # bandwidth within this of the rate, over the run
SLICE_PCT = 5.0        # mean segment within this of average_size
NOISE_PCT = 5.0        # no-cost: a ratio this close to 1 is noise


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def has_toxics(path):
    return bool(glob.glob(os.path.join(path, "toxics-*.json")))


def niced(path):
    return any((load(p) or {}).get("nice") for p in glob.glob(os.path.join(path, "toxics-*.json")))


def source(path):
    """(the directory holding the toxics reports, its run.json, separate?) or None."""
    if has_toxics(path):
        return path, load(os.path.join(path, "run.json")) or {}, False
    runs = []
    for d in glob.glob(os.path.join(os.path.dirname(os.path.abspath(path)), "*", "")):
        d = d.rstrip("/")
        meta = load(os.path.join(d, "run.json"))
        # A run at another niceness (TOXICS_NICE) is a check for the notes,
        # not the figures a reader should expect.
        if isinstance(meta, dict) and meta.get("finished") and has_toxics(d) and not niced(d):
            runs.append((meta.get("started", ""), d, meta))
    if not runs:
        return None
    _, d, meta = max(runs)
    return d, meta, True


def pct(values, p):
    """The p-th percentile (0-100) of values, linearly interpolated."""
    v = sorted(values)
    k = (len(v) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def verdict(ok):
    return "met" if ok else "**short**"


def loads_of(reports):
    vals = [r["loadavg_1m"] for r in reports if isinstance(r.get("loadavg_1m"), (int, float))]
    return f"{min(vals):.1f}–{max(vals):.1f}" if vals else "?"


def latency_rows(d):
    rows = []
    for label in ("latency-j0", "latency-j20", "latency-up"):
        r = load(os.path.join(d, f"toxics-{label}.json"))
        if not r or not r.get("rtt_ms") or not r.get("base_rtt_ms"):
            continue
        a = r["toxic"]["attributes"]
        lat, jit = a.get("latency", 0), a.get("jitter", 0)
        base = statistics.median(r["base_rtt_ms"])
        added = [t - base for t in r["rtt_ms"]]
        p50, p99 = pct(added, 50), pct(added, 99)
        # Uniform on latency ± jitter: its median and 99th percentile.
        want50, want99 = lat, lat + 0.98 * jit
        ok = abs(p50 - want50) <= LATENCY_P50_MS and abs(p99 - want99) <= LATENCY_P99_MS
        rows.append((
            f"{lat} ms ± {jit}, {r['toxic']['stream']}",
            f"{len(added)} ({r['connections']} conns)",
            f"{base:.2f} / {pct(r['base_rtt_ms'], 99):.2f}",
            f"{p50:.2f} / {p99:.2f}", f"{min(added):.1f}–{max(added):.1f}",
            f"{want50:.0f} ± {LATENCY_P50_MS:.0f} / {want99:.1f} ± {LATENCY_P99_MS:.0f}",
            verdict(ok), f"{r['loadavg_1m']:.1f}",
        ))
    return rows


def bandwidth_rows(d):
    rows = []
    paths = sorted(glob.glob(os.path.join(d, "toxics-bandwidth-*.json")),
                   key=lambda p: ("-up-" in p, load(p)["toxic"]["attributes"]["rate"]))
    for p in paths:
        r = load(p)
        rate = r["toxic"]["attributes"]["rate"]
        got = r["bytes"] / r["elapsed_s"] / 1000
        off = (got - rate) / rate * 100
        per = [b / 1000 for b in r.get("bytes_per_second", [])]
        rows.append((
            r["toxic"]["stream"], f"{rate:,}", f"{got:,.1f} over {r['elapsed_s']:.1f} s", f"{off:+.2f} %",
            f"{min(per):,.0f}–{max(per):,.0f}" if per else "–",
            f"± {RATE_PCT:.0f} %", verdict(abs(off) <= RATE_PCT), f"{r['loadavg_1m']:.1f}",
        ))
    return rows


def sizes(values):
    if not values:
        return "–"
    return f"{len(values):,}, {statistics.mean(values):.2f} ({min(values)}–{max(values)})"


def gap(times):
    """The mean time between consecutive segments, µs."""
    if not times or len(times) < 2:
        return "–"
    return f"{(times[-1] - times[0]) / (len(times) - 1):,.0f}"


def slicer_rows(d):
    rows = []
    paths = sorted(glob.glob(os.path.join(d, "toxics-slicer-*.json")),
                   key=lambda p: (load(p)["toxic"]["attributes"]["delay"],
                                  load(p)["toxic"]["attributes"]["average_size"]))
    for p in paths:
        r = load(p)
        a = r["toxic"]["attributes"]
        avg, var, delay = a["average_size"], a["size_variation"], a["delay"]
        writes, wire = r["inspector_writes"], r["wire_segments"]
        size = r["message_bytes"]
        complete = sum(writes) == size and sum(wire) == size and not r.get("inspector_gap_bytes")

        def ok(values):
            return bool(values) and abs(statistics.mean(values) - avg) / avg * 100 <= SLICE_PCT

        rows.append((
            f"{avg} ± {var} B, delay {delay} µs", f"{size:,}", sizes(writes), sizes(wire),
            f"{gap(r.get('inspector_t_us'))} / {gap(r.get('wire_t_us'))}",
            f"{avg} ± {SLICE_PCT:.0f} %",
            verdict(complete and ok(writes) and ok(wire)) + ("" if complete else " (a capture missed bytes)"),
            f"{r['loadavg_1m']:.1f}",
        ))
    return rows


def limit_rows(d):
    rows = []
    for stream in ("down", "up"):
        r = load(os.path.join(d, f"toxics-limit-{stream}.json"))
        if not r:
            continue
        by = {}
        for run in r["runs"]:
            by.setdefault(run["limit"], []).append(run)
        for limit, runs in sorted(by.items()):
            got = sorted({x["received"] for x in runs})
            exact = all(x["received"] == limit for x in runs)
            rows.append((
                r["stream"], f"{limit:,}", str(len(runs)), ", ".join(f"{g:,}" for g in got),
                verdict(exact) if exact else "**short** (not exact)", f"{r['loadavg_1m']:.1f}",
            ))
    return rows


def rounds(d, prefix):
    out = {}
    for p in glob.glob(os.path.join(d, f"{prefix}-*.json")):
        tail = os.path.basename(p)[len(prefix) + 1:-len(".json")]
        r = load(p)
        if tail.isdigit() and r:
            out[int(tail)] = r
    return out


def get(r, *keys):
    for k in keys:
        r = r.get(k) if isinstance(r, dict) else None
    return r


def spread(values, fmt):
    if not values:
        return "–"
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def nocost(d, w):
    meta = load(os.path.join(d, "toxics-nocost.json"))
    if not meta:
        return
    w("### No toxic, no cost")
    w("")
    if meta.get("skipped"):
        w(f"Not measured in this run: {meta['skipped']}.")
        w("")
        return
    w(f"tcp-proxy with no toxic, this build (`after`: {meta.get('after_version', '?')}) against a build of")
    w(f"`{meta.get('before', '?')}`, the last commit before the toxics engine (`before`), each in a")
    w("process of its own in front of bare tokio's echo, measured as the proxy section measures")
    w(f"(bulk: {meta.get('mib_each_way', '?'):,} MiB through and back; 64 B round trips at 50 connections for")
    w(f"{meta.get('secs', '?')} s), the two alternated, the order reversed every other round.")
    w("`after / before` is the ratio of the medians with the range of the per-round ratios.")
    w("")
    w("| build | MiB/s | CPU ns/byte | req/s | p50 / p99 µs | CPU µs/req | load 1m |")
    w("|---|---|---|---|---|---|---|")
    figs = {}
    for who in ("before", "after"):
        b, t = rounds(d, f"toxics-nocost-bulk-{who}"), rounds(d, f"toxics-nocost-rtt-{who}")
        figs[who] = (b, t)
        reps = list(b.values()) + list(t.values())
        w(f"| {who} | {spread([x['mib_per_s'] for x in b.values()], '{:,.0f}')} | "
          f"{spread([x['cpu_ns_per_byte'] for x in b.values()], '{:.2f}')} | "
          f"{spread([x['requests_per_s'] for x in t.values()], '{:,.0f}')} | "
          f"{spread([get(x, 'latency', 'p50_us') for x in t.values()], '{:,.0f}')} / "
          f"{spread([get(x, 'latency', 'p99_us') for x in t.values()], '{:,.0f}')} | "
          f"{spread([x['forwarder_cpu_us_per_op'] for x in t.values()], '{:.1f}')} | {loads_of(reps)} |")
    w("")
    w("| figure | after / before | per round | |")
    w("|---|---|---|---|")
    (bb, tb), (ba, ta) = figs["before"], figs["after"]
    for name, a, b, keys in (
        ("bulk MiB/s", ba, bb, ("mib_per_s",)),
        ("round trips req/s", ta, tb, ("requests_per_s",)),
        ("round-trip p99", ta, tb, ("latency", "p99_us")),
        ("proxy CPU per byte (bulk)", ba, bb, ("cpu_ns_per_byte",)),
        ("proxy CPU per round trip", ta, tb, ("forwarder_cpu_us_per_op",)),
    ):
        both = sorted(a.keys() & b.keys())
        if not both:
            continue
        ratio = statistics.median([get(a[k], *keys) for k in both]) / statistics.median(
            [get(b[k], *keys) for k in both])
        per = [get(a[k], *keys) / get(b[k], *keys) for k in both]
        noise = min(per) <= 1 <= max(per) or abs(ratio - 1) * 100 <= NOISE_PCT
        w(f"| {name} | {ratio:.3f}x | {min(per):.3f}–{max(per):.3f}x ({len(per)} rounds) | "
          f"{'within noise' if noise else ('after higher' if ratio > 1 else 'after lower')} |")
    w("")


def table(w, head, rows):
    w("| " + " | ".join(head) + " |")
    w("|" + "---|" * len(head))
    for r in rows:
        w("| " + " | ".join(r) + " |")
    w("")


def render(run, w):
    """Appends the toxics sections (from run.path, or the newest run beside it
    that has them) through w, one line per call; nothing when none exists."""
    found = source(run.path)
    if not found:
        return
    d, meta, separate = found
    w("## Toxics: accuracy")
    w("")
    if separate:
        rel = os.path.relpath(os.path.abspath(d), ROOT)
        commit = meta.get("commit", "?") + (" with uncommitted changes" if meta.get("changes") else "")
        w(f"From a separate run, not the one above: `bench/run.sh --toxics` on {meta.get('date', '?')} at")
        w(f"commit `{commit}` ({meta.get('cores', '?')} cores), raw reports in `{rel}`.")
    reports = [load(p) for p in sorted(glob.glob(os.path.join(d, "toxics-*.json")))]
    reports = [r for r in reports if isinstance(r, dict)]
    w(f"Load average (1 min) as each measurement started: {loads_of(reports)} on the "
      f"{meta.get('cores', '?')} cores (a shared machine: other builds ran meanwhile).")
    nice = sorted({r.get("nice", 0) for r in reports if "nice" in r})
    if any(nice):
        w(f"The proxy and the measuring script ran at niceness {', '.join(map(str, nice))} "
          "(`TOXICS_NICE`), ahead of the machine's other work.")
    w("")
    w("`bench/toxics.py` drives a release switchboard through its API and measures from a")
    w("process of its own, over loopback, each tcp-proxy with one toxic at a time.")
    w("")
    rows = latency_rows(d)
    if rows:
        w("**latency**: 64 B echo round trips through the proxy with the toxic, less the median")
        w("round trip without it (`base`); the goal is the issue's (p50 within ± 2 ms, p99 within")
        w("± 10 ms) of the uniform latency ± jitter's own p50 and p99.")
        w("")
        table(w, ("toxic", "samples", "base p50 / p99 ms", "added p50 / p99 ms", "added min–max ms",
                  "goal p50 / p99 ms", "", "load"), rows)
    rows = bandwidth_rows(d)
    if rows:
        w("**bandwidth**: bytes read by the receiver from its first byte for the run (downstream:")
        w("this process reading from the proxy; upstream: its upstream server reading), over the")
        w("time; KB = 1000 bytes. `per second`: the lowest and highest whole second.")
        w("")
        table(w, ("stream", "rate KB/s", "measured KB/s", "off by", "per second KB/s", "goal", "", "load"),
              rows)
    rows = slicer_rows(d)
    if rows:
        w("**slicer**: one message echoed back through a proxy slicing downstream; the sizes of")
        w("the proxy's writes to the client as the wire inspector recorded them, and of the TCP")
        w("segments on `lo` as tshark read them from a capture (`count, mean (min–max)` bytes), and")
        w("the mean time between consecutive ones (the toxic's `delay`; not one of the issue's goals).")
        w("")
        table(w, ("toxic", "message B", "inspector writes", "tshark segments",
                  "mean gap µs (inspector / tshark)", "goal (mean)", "", "load"),
              rows)
    rows = limit_rows(d)
    if rows:
        w("**limit_data**: bytes that arrived before the close (downstream: read by this process")
        w("from a source that never stops; upstream: counted by the upstream while this process")
        w("sends without end).")
        w("")
        table(w, ("stream", "limit B", "runs", "received B", "", "load"), rows)
    nocost(d, w)


def main(path):
    out = []

    class Run:
        pass

    run = Run()
    run.path = path
    render(run, out.append)
    if not out:
        print(f"report_toxics.py: no toxics reports in or beside {path}", file=sys.stderr)
        return 1
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: bench/report_toxics.py DIR", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
