#!/usr/bin/env python3
"""Writes BENCHMARKS.md from one run's raw reports, and checks a quick run.

bench/run.sh keeps every run's JSON in bench/results/<date>-<commit>/: one
`switchboard bench --json` report per measurement (LABEL.json, rounds
numbered LABEL-1.json, LABEL-2.json...), run.json (the machine, the commit,
rounds, seconds) and order.txt (the labels in the order they ran). Every
figure in the report is computed here from those files and nothing else;
the only text pasted in is bench/METHOD.md, which says how the figures are
made and quotes none. Narrative with hand measurements (bench/NOTES.md) is
linked, not pasted, so it can never read as this run's result.

    bench/report.py bench/results/2026-11-27-1e0ad68 > BENCHMARKS.md
    bench/report.py bench/results/2026-11-27-1e0ad68 --out BENCHMARKS.md
    bench/report.py --check target/bench-quick [--baseline DIR_OR_MD]

--check (what `bench/run.sh --quick` runs) compares the headline figures of
a quick run with a baseline: by default the newest directory in
bench/results, else the Targets table of BENCHMARKS.md. It prints each
figure and exits 1 if any fell more than 10 % below the baseline.
"""
import argparse
import glob
import json
import os
import re
import math
import statistics
import sys
import report_resume  # bench/report_resume.py: the resumable-upload section

import report_toxics

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FALL = 0.10  # --check: a headline figure this much worse than the baseline fails


class RunError(Exception):
    pass


def get(report, *keys):
    """report[k1][k2]..., or None where a key or a level is missing."""
    v = report
    for k in keys:
        if not isinstance(v, dict):
            return None
        v = v.get(k)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


class Spread:
    """Median, min and max of one figure over the rounds of a run."""

    def __init__(self, values):
        self.values = list(values)
        self.median = statistics.median(self.values)
        self.min = min(self.values)
        self.max = max(self.values)


def spread(values):
    values = [v for v in values if v is not None]
    return Spread(values) if values else None


class Run:
    """One results directory."""

    def __init__(self, path):
        self.path = path
        meta_path = os.path.join(path, "run.json")
        try:
            with open(meta_path) as f:
                self.meta = json.load(f)
        except OSError as e:
            raise RunError(f"{meta_path}: {e.strerror} (not a bench/run.sh results directory?)")
        except ValueError as e:
            raise RunError(f"{meta_path}: not JSON: {e}")
        try:
            with open(os.path.join(path, "order.txt")) as f:
                self.order = [line.strip() for line in f if line.strip()]
        except OSError:
            self.order = []
        self._cache = {}

    def one(self, label):
        """The report LABEL.json, or None."""
        if label not in self._cache:
            try:
                with open(os.path.join(self.path, label + ".json")) as f:
                    self._cache[label] = json.load(f)
            except OSError:
                self._cache[label] = None
            except ValueError:
                print(f"report.py: {self.path}/{label}.json is not a report; left out", file=sys.stderr)
                self._cache[label] = None
        return self._cache[label]

    def loads(self):
        """The load averages the runs recorded as they started (newer runs)."""
        out = []
        for f in sorted(glob.glob(os.path.join(self.path, "*.json"))):
            r = self.one(os.path.basename(f)[:-len(".json")])
            if isinstance(r, dict) and isinstance(r.get("loadavg_1m"), (int, float)):
                out.append(r["loadavg_1m"])
        return out

    def rounds(self, prefix):
        """{round number: report} for every round of one measurement."""
        out = {}
        for f in glob.glob(os.path.join(self.path, glob.escape(prefix) + "-*.json")):
            tail = os.path.basename(f)[len(prefix) + 1:-len(".json")]
            if tail.isdigit():
                r = self.one(f"{prefix}-{tail}")
                if r is not None:
                    out[int(tail)] = r
        return dict(sorted(out.items()))

    def stat(self, prefix, *keys, scale=1):
        return spread(None if v is None else v * scale
                      for v in (get(r, *keys) for r in self.rounds(prefix).values()))

    def median(self, prefix, *keys):
        s = self.stat(prefix, *keys)
        return None if s is None else s.median

    def errors(self, prefix, key="errors"):
        rs = self.rounds(prefix)
        return sum(get(r, key) or 0 for r in rs.values()) if rs else None

    def pairs(self, a, b, f, *keys):
        """f(a's figure, b's figure) for each round both have."""
        ra, rb = self.rounds(a), self.rounds(b)
        out = {}
        for n in ra.keys() & rb.keys():
            va, vb = get(ra[n], *keys), get(rb[n], *keys)
            if va is not None and vb not in (None, 0):
                out[n] = f(va, vb)
        return dict(sorted(out.items()))

    def meta_json(self, label):
        """LABEL.json as a plain object (not a bench report), or None."""
        r = self.one(label)
        return r if isinstance(r, dict) else None

    def ran_before(self, a, b):
        """True if label a ran before label b (order.txt), None if unknown."""
        if a in self.order and b in self.order:
            return self.order.index(a) < self.order.index(b)
        return None


# ------------------------------------------------------------------ formatting
def n(v, digits=0):
    return "–" if v is None else f"{v:,.{digits}f}"


def ns(s, digits=0):
    """A median with its spread: `140,396 (128,000–150,000)`; one value alone."""
    if s is None:
        return "–"
    if len(s.values) == 1:
        return n(s.median, digits)
    return f"{n(s.median, digits)} ({n(s.min, digits)}–{n(s.max, digits)})"


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


def x(v):
    return "–" if v is None else f"{v:.2f}x"


def xs(med, per_round):
    """A ratio of medians, with the range of the per-round ratios."""
    if med is None:
        return "–"
    vals = list(per_round.values())
    if len(vals) < 2:
        return x(med)
    return f"{x(med)} ({min(vals):.2f}–{max(vals):.2f})"


def pct(v):
    return "–" if v is None else f"{v:+.1f} %"


def met(v, goal, higher):
    return v >= goal if higher else v <= goal


def verdict(v, goal, higher=True, per_round=None):
    """met/short from the median; says how many rounds disagree, if any."""
    if v is None:
        return "not measured"
    ok = met(v, goal, higher)
    word = "met" if ok else "**short**"
    rounds = list((per_round or {}).values())
    odd = sum(1 for r in rounds if met(r, goal, higher) != ok)
    if odd:
        word += f" ({odd} of {len(rounds)} rounds {'short' if ok else 'met'})"
    return word


# ------------------------------------------------------------------ headline
def rss_per_conn(run, who="sb"):
    return get(run.one("idle-" + who) or {}, "server", "rss_per_connection_bytes")


def headline(run):
    """The figures `bench/run.sh --quick` reruns: {target label: (value, higher is better)}.

    The labels are the Targets table's, so an older BENCHMARKS.md can be the baseline.
    """
    def vs(a, b, *keys):
        return ratio(run.median(a, *keys), run.median(b, *keys))

    return {
        "echo, 50 connections, vs bare tokio": (vs("echo-sb-50", "echo-bare-50", "requests_per_s"), True),
        "echo, 500 connections, vs bare tokio": (vs("echo-sb-500", "echo-bare-500", "requests_per_s"), True),
        "UDP echo, 50 sockets, vs bare tokio": (vs("udp-sb-50", "udp-bare-50", "requests_per_s"), True),
        "RSS per idle connection (10,000 held)": (rss_per_conn(run), False),
    }


def baseline_from_md(path):
    """The headline figures read back from the Targets table of a BENCHMARKS.md."""
    out = {}
    in_targets = False
    with open(path) as f:
        for line in f:
            # Only the Targets table: other tables reuse its labels for other runs.
            if line.startswith("## "):
                in_targets = line.strip() == "## Targets"
            if not in_targets:
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 2:
                m = re.match(r"-?[\d,]+(\.\d+)?", cells[1])
                if m:
                    out[cells[0]] = float(m.group(0).replace(",", ""))
    return out


def newest_results(exclude=None):
    dirs = []
    for d in glob.glob(os.path.join(HERE, "results", "*", "run.json")):
        d = os.path.dirname(d)
        if exclude and os.path.abspath(d) == os.path.abspath(exclude):
            continue
        with open(os.path.join(d, "run.json")) as f:
            meta = json.load(f)
        if meta.get("finished") and meta.get("mode", "full") == "full":
            dirs.append((meta.get("started", ""), d))
    return max(dirs)[1] if dirs else None


# What each ratio figure is made of, for telling a regression from noise:
# (switchboard's rounds, the reference's rounds).
HEADLINE_PAIRS = {
    "echo, 50 connections, vs bare tokio": ("echo-sb-50", "echo-bare-50"),
    "echo, 500 connections, vs bare tokio": ("echo-sb-500", "echo-bare-500"),
    "UDP echo, 50 sockets, vs bare tokio": ("udp-sb-50", "udp-bare-50"),
}


def round_ratios(run, label):
    """The per-round ratios behind a headline ratio, as (lowest, highest), or None."""
    pair = HEADLINE_PAIRS.get(label)
    if pair is None:
        return None
    r = run.pairs(pair[0], pair[1], lambda a, b: a / b, "requests_per_s")
    return (min(r.values()), max(r.values())) if r else None


def cpu_ratio(run, label):
    """Server CPU per round trip, switchboard's over the reference's (medians), or None.

    A slower machine (load, a busy neighbour) slows both; code that got slower costs
    switchboard more CPU per round trip than before, relative to the reference.
    """
    pair = HEADLINE_PAIRS.get(label)
    if pair is None:
        return None
    return ratio(run.median(pair[0], "server", "cpu_us_per_op"),
                 run.median(pair[1], "server", "cpu_us_per_op"))


def load_note(run):
    """`load 3.1 on 2 cores` from run.json, or None when the run did not record it."""
    load, cores = run.meta.get("loadavg"), run.meta.get("cores")
    if not load or not cores:
        return None
    return f"load {load[0]:.1f} on {cores} cores", load[0] / cores


def judge(label, quick, base_run):
    """Why a fallen ratio is noise, or None when it is a regression.

    Noise when the quick run's best round comes within FALL of the baseline's worst
    round (the rounds overlap), or when the server's CPU per round trip, relative to
    the reference's, did not grow by FALL (the machine was slower, not the code).
    """
    now = round_ratios(quick, label)
    before = round_ratios(base_run, label) if base_run else None
    if now and before and now[1] >= before[0] * (1 - FALL):
        return (f"rounds overlap (now {now[0]:.2f}–{now[1]:.2f}x, "
                f"before {before[0]:.2f}–{before[1]:.2f}x)")
    cpu_now = cpu_ratio(quick, label)
    cpu_before = cpu_ratio(base_run, label) if base_run else None
    if cpu_now and cpu_before and cpu_now <= cpu_before * (1 + FALL):
        return (f"CPU per round trip vs the reference unchanged "
                f"({cpu_now:.2f}x now, {cpu_before:.2f}x before)")
    return None


def check(quick_dir, baseline):
    """Prints the quick run's headline beside the baseline's, each fall judged a
    regression or noise (see judge); 1 if any regressed."""
    run = Run(quick_dir)
    if baseline is None:
        baseline = newest_results(exclude=quick_dir) or os.path.join(ROOT, "BENCHMARKS.md")
    base_run = Run(baseline) if os.path.isdir(baseline) else None
    if base_run:
        base = {k: v for k, (v, _) in headline(base_run).items()}
    else:
        base = baseline_from_md(baseline)
    print(f"quick run ({quick_dir}) against {os.path.relpath(os.path.abspath(baseline), ROOT)}"
          " (fell: a ratio lower, or memory per connection higher):")
    fell = noise = 0
    for label, (now, higher) in headline(run).items():
        was = base.get(label)
        if was in (None, 0):
            print(f"  {label}: {n(now, 2)} now, no baseline: not compared")
            continue
        if now is None:
            # The baseline has it and this run does not: that is no pass.
            print(f"  {label}: not measured now, {was:,.2f} before: FELL (missing)")
            fell += 1
            continue
        # "Fell" means got worse: a ratio lower, a memory figure higher.
        change = (now - was) / was
        worse = -change if higher else change
        mark = "ok"
        if worse > FALL:
            why = judge(label, run, base_run)
            if why:
                mark = f"fell more than 10 %, but noise: {why}"
                noise += 1
            else:
                mark = "FELL more than 10 %: a regression (the rounds do not overlap" + (
                    ", and CPU per round trip grew)" if cpu_ratio(run, label) else ")")
                fell += 1
        print(f"  {label}: {now:,.2f} now, {was:,.2f} before ({change * 100:+.1f} %): {mark}")
    load = load_note(run)
    if load:
        busy = load[1] > 0.5
        print(f"  machine: {load[0]}" + (": busy, figures noisier than usual" if busy else ""))
    if fell:
        print(f"{fell} headline figure(s) fell more than {FALL * 100:.0f} % from the baseline: a regression")
        return 1
    print("no regression" + (f" ({noise} fall(s) above judged noise)" if noise else ""))
    return 0


# ------------------------------------------------------------------ proxy
ECHO_CONNS = (1, 50, 500, 5000, 10000)
# The echo rate exec's goal is measured against (commands/s at 10
# connections when the goal was set), and the goal's factor.
EXEC_BEFORE, EXEC_FACTOR = 2043, 1.5


def round_two(run, w, vs, pr):
    """The performance round 2 goals: echo at every concurrency, the
    dashboard at scale, 100,000 idle connections, uploads, exec, start-up."""
    def conns(c):
        return "1 connection" if c == 1 else f"{c:,} connections"

    rows = []
    for c in ECHO_CONNS:
        r, rv = vs(f"echo-sb-{c}", f"echo-bare-{c}", "requests_per_s")
        if r is not None:
            rows.append((f"echo, {conns(c)}, vs bare tokio", x(r), pr(rv), "≥ 1.00x",
                         verdict(r, 1.0, True, rv)))
        cpu, cpuv = vs(f"echo-sb-{c}", f"echo-bare-{c}", "server", "cpu_us_per_op")
        if cpu is not None:
            rows.append((f"server CPU per round trip, {conns(c)}, vs bare tokio", x(cpu), pr(cpuv),
                         "≤ 1.05x", verdict(cpu, 1.05, False, cpuv)))

    # The live stream with 10,000 connections open: the server CPU it adds,
    # as a share of one core, from the CPU per round trip on and off.
    shares = {}
    for rnd, on in run.rounds("scale-live-on").items():
        off = run.rounds("scale-live-off").get(rnd)
        c_on, rate = get(on, "server", "cpu_us_per_op"), get(on, "requests_per_s")
        c_off = get(off, "server", "cpu_us_per_op") if off else None
        if None not in (c_on, c_off, rate):
            shares[rnd] = (c_on - c_off) * rate / 1e6 * 100
    med = spread(shares.values())
    rows.append(("the live stream with 10,000 open, share of one core",
                 "–" if med is None else f"{med.median:.1f} %",
                 "–" if len(shares) < 2 else f"{min(shares.values()):+.1f} to {max(shares.values()):+.1f} %",
                 "≤ 5 %", verdict(None if med is None else med.median, 5.0, False)))
    api = run.one("scale-api-connections")
    p99 = get(api, "latency", "p99_us") if api else None
    rows.append(("`/api/v1/connections` listing 10,000, p99",
                 "–" if p99 is None else f"{p99 / 1000:.1f} ms", "one run", "≤ 50 ms",
                 verdict(None if p99 is None else p99 / 1000, 50, False)))

    big = run.one("idle-big-sb")
    skipped = run.one("idle-big-skipped")
    big_rss = get(big, "server", "rss_per_connection_bytes") if big else None
    big_note = "not measured" + (f": {skipped['skipped']}" if skipped else "")
    rows.append(("RSS per idle connection, 100,000 held",
                 "–" if big_rss is None else f"{big_rss:,.0f} B", "one run", "≤ 2,560 B",
                 verdict(big_rss, 2560, False) if big_rss is not None else big_note))
    for label, key in (("a new echo client while they are held, p99", "idle-big-sb-echo"),
                       ("`/metrics` while they are held, p99", "idle-big-sb-metrics")):
        r = run.one(key)
        v = get(r, "latency", "p99_us") if r else None
        rows.append((label, "–" if v is None else f"{v / 1000:.2f} ms", "one run", "reported",
                     "reported" if v is not None else big_note))

    cap, capv = vs("capture-on", "capture-off", "requests_per_s")
    rows.append(("echo, 50 connections, capture on vs off (wire inspector)", x(cap), pr(capv), "≥ 0.85x",
                 verdict(cap, 0.85, True, capv)))
    many = run.one("capture-many")
    before, after = (get(many, "server", "rss_before_kib"), get(many, "server", "rss_after_kib")) if many else (None, None)
    grew = None if None in (before, after) else (after - before) / 1024
    held = get(many, "connections") if many else None
    rows.append((f"RSS growth, {held or 10000:,} captured connections (1 KiB round trips; budget 64 MiB)",
                 "–" if grew is None else f"{grew:,.0f} MiB", "one run", "≤ 64 MiB + connections",
                 "reported" if grew is not None else "not measured"))
    paths = run.meta_json("paths")
    gap = (paths or {}).get("console_date", {}).get("bs_minus_cs_median_us")
    rows.append(("Console `date`: B/S − C/S, median of 20", "–" if gap is None else f"{gap / 1000:.2f} ms",
                 "one run", "≤ 3 ms", verdict(None if gap is None else gap / 1000, 3, False)))
    rel, relv = vs("relay-web", "relay-direct", "mib_per_s")
    rows.append(("upload 512 MiB through the dashboard vs straight to files", x(rel), pr(relv), "≥ 0.80x",
                 verdict(rel, 0.8, True, relv)))
    shm, shmv = vs("shm-classic", "shm-socat", "mib_per_s")
    rows.append(("files-classic 1 GiB to tmpfs (SHA-256) vs socat copy", x(shm), pr(shmv), "≥ 1.00x",
                 verdict(shm, 1.0, True, shmv)))
    ex = run.median("exec-sb-10", "requests_per_s")
    goal = math.ceil(EXEC_BEFORE * EXEC_FACTOR)
    rows.append((f"exec `echo hi`, 10 connections, commands/s", ns(run.stat("exec-sb-10", "requests_per_s")),
                 "–", f"≥ {goal:,.0f}", verdict(ex, goal, True)))
    st = run.one("startup")
    starts = [v for v in (st or {}).get("runs_ms") or [] if isinstance(v, (int, float))]
    each = spread(starts)
    rows.append(("start-up, exec to every port bound", "–" if each is None else ns(each, 1) + " ms",
                 "–" if not starts else f"{len(starts)} starts", "≤ 50 ms",
                 verdict(None if each is None else each.median, 50, False)))
    if st and get(st, "first_ms") is not None:
        rows.append(("first start (creates the admin account: argon2)", f"{get(st, 'first_ms'):.1f} ms",
                     "one run", "reported", "reported"))
        rows.append(("binary size, stripped (unstripped)",
                     f"{get(st, 'stripped_bytes') / 1048576:.1f} MiB ({get(st, 'binary_bytes') / 1048576:.1f} MiB)",
                     "–", "reported", "reported"))
    w("## Performance round 2")
    w("")
    w("The second round's goals, from the same run. The live stream's share of a core is")
    w("(CPU per round trip with a `/api/v1/live` stream open − without) × round trips per")
    w("second, at 50 echo connections while a separate bench holds 10,000 idle, stream on and")
    w("off alternated over 10 pairs of 2 s runs.")
    w("")
    w("| what | measured | per round | goal | |")
    w("|---|---|---|---|---|")
    for t in rows:
        w("| " + " | ".join(t) + " |")
    w("")


PROXY_WHO = (("sb", "switchboard tcp-proxy"), ("haproxy", "haproxy"), ("socat", "socat"),
             ("direct", "direct (no forwarder)"))


class ProxyFigures:
    """The tcp-proxy section's two goals, from proxy-bulk-* and proxy-rtt-*."""

    def __init__(self, run):
        self.run = run
        sizes = {get(r, "mib_each_way") for r in run.rounds("proxy-bulk-sb").values()} - {None}
        self.mib = max(sizes) if sizes else None
        # The throughput goal is stated for 1 GiB; a shorter run is shown, not judged.
        self.gib = sizes == {1024}
        self.bulk_note = "not measured" if not sizes else f"not judged ({n(self.mib)} MiB run)"
        self.bulk = ratio(run.median("proxy-bulk-sb", "mib_per_s"), run.median("proxy-bulk-haproxy", "mib_per_s"))
        self.bulk_r = run.pairs("proxy-bulk-sb", "proxy-bulk-haproxy", lambda a, b: a / b, "mib_per_s")
        direct = run.median("proxy-rtt-direct", "latency", "p99_us")
        sb, hp = run.median("proxy-rtt-sb", "latency", "p99_us"), run.median("proxy-rtt-haproxy", "latency", "p99_us")
        self.sb_added = None if sb is None or direct is None else sb - direct
        self.hp_added = None if hp is None or direct is None else hp - direct
        both = self.sb_added is not None and self.hp_added is not None
        # The direct p99 cancels out: the difference of the two added p99s.
        self.added_diff = self.sb_added - self.hp_added if both else None
        self.added_text = "–" if not both else f"{n(self.sb_added)} vs {n(self.hp_added)} µs"
        self.added_r = run.pairs("proxy-rtt-sb", "proxy-rtt-haproxy", lambda a, b: a - b, "latency", "p99_us")
        vals = list(self.added_r.values())
        self.added_r_text = "–" if len(vals) < 2 else f"{min(vals):+,.0f} to {max(vals):+,.0f} µs"

    def added_of(self, who):
        """{round: who's p99 less direct's} for the rounds with both."""
        return self.run.pairs(f"proxy-rtt-{who}", "proxy-rtt-direct", lambda a, b: a - b, "latency", "p99_us")


# ------------------------------------------------------------------ report
def render(run):
    m = run.meta
    rel = os.path.relpath(os.path.abspath(run.path), ROOT)
    if rel.startswith(".."):
        rel = run.path  # outside the repository: as given
    out = []
    w = out.append
    commit = m.get("commit", "?") + (" with uncommitted changes" if m.get("changes") else "")
    w("# Benchmarks")
    w("")
    w(f"Measured by `bench/run.sh` on {m.get('date', '?')} at commit `{commit}`; generated by")
    w(f"`bench/report.py {rel}` from that run's raw reports, so every figure below can be")
    w("recomputed from them. Every timed figure is the median of "
      f"{m.get('rounds', '?')} runs of {m.get('secs', '?')} s (uploads: of one transfer each),")
    w("with the lowest and highest run in brackets: `median (min–max)`.")
    if not m.get("finished"):
        w("")
        w("**This run did not finish**: figures it did not reach read `–` and `not measured`.")
    w("")
    w(f"- Machine: {m.get('cores', '?')} cores, {m.get('cpu', '?')}, {m.get('mem', '?')} RAM, "
      f"Linux {m.get('kernel', '?')}")
    w(f"- {m.get('python', '?')}; {m.get('socat', '?')}")
    loads = run.loads()
    if loads:
        w(f"- Load average (1 min) as each run started: {min(loads):.1f}–{max(loads):.1f} "
          f"(median {statistics.median(loads):.1f}) on the {m.get('cores', '?')} cores, shared with")
        w("  other work: absolute figures are a loaded machine's; compare ratios within the run.")
    w("")
    w("How the figures are made: [Method](#method), below. Not generated from this run, so")
    w("linked rather than included: what measuring changed and figures checked by hand")
    w("([bench/NOTES.md](bench/NOTES.md)), the soak test ([bench/SOAK.md](bench/SOAK.md), from")
    w("`bench/soak.sh`) and fuzzing ([bench/FUZZ.md](bench/FUZZ.md), from `scripts/fuzz.sh`),")
    w("each naming its own run.")
    w("")

    # -------------------------------------------------------------- targets
    def vs(a, b, *keys):
        return (ratio(run.median(a, *keys), run.median(b, *keys)),
                run.pairs(a, b, lambda p, q: p / q, *keys))

    e50, e50r = vs("echo-sb-50", "echo-bare-50", "requests_per_s")
    e500, e500r = vs("echo-sb-500", "echo-bare-500", "requests_per_s")
    c50, c50r = vs("echo-sb-50", "echo-bare-50", "server", "cpu_us_per_op")
    c500, c500r = vs("echo-sb-500", "echo-bare-500", "server", "cpu_us_per_op")
    u50, u50r = vs("udp-sb-50", "udp-bare-50", "requests_per_s")
    socat1, socat8 = run.median("put-socat-1g", "mib_per_s"), run.median("put-socat-8", "mib_per_s")
    f1, f1r = vs("put-files-1g", "put-socat-1g", "mib_per_s")
    f8, f8r = vs("put-files-8", "put-socat-8", "mib_per_s")
    k1, k1r = vs("put-classic-1g", "put-socat-1g", "mib_per_s")
    k8, k8r = vs("put-classic-8", "put-socat-8", "mib_per_s")
    x1, x1r = vs("exec-sb-1", "exec-py-1", "requests_per_s")
    x10, x10r = vs("exec-sb-10", "exec-py-10", "requests_per_s")
    live_off = run.median("live-off", "requests_per_s")
    live_on = run.median("live-on", "requests_per_s")
    live_cost = None if not live_off or live_on is None else (live_off - live_on) / live_off * 100
    live_r = run.pairs("live-off", "live-on", lambda off, on: (off - on) / off * 100, "requests_per_s")
    idle_sb = rss_per_conn(run)
    px = ProxyFigures(run)

    def pr(vals):
        vals = list(vals.values())
        return "–" if len(vals) < 2 else f"{min(vals):.2f}–{max(vals):.2f}x"

    targets = [
        ("echo, 50 connections, vs bare tokio", x(e50), pr(e50r), "≥ 0.90x", verdict(e50, 0.9, True, e50r)),
        ("echo, 500 connections, vs bare tokio", x(e500), pr(e500r), "≥ 0.90x", verdict(e500, 0.9, True, e500r)),
        ("server CPU per round trip, 50 connections, vs bare tokio", x(c50), pr(c50r), "≤ 1.15x",
         verdict(c50, 1.15, False, c50r)),
        ("server CPU per round trip, 500 connections, vs bare tokio", x(c500), pr(c500r), "≤ 1.15x",
         verdict(c500, 1.15, False, c500r)),
        ("UDP echo, 50 sockets, vs bare tokio", x(u50), pr(u50r), "≥ 0.90x", verdict(u50, 0.9, True, u50r)),
        ("files upload 1 GiB (SHA-256 + fsync) vs socat copy", x(f1), pr(f1r), "≥ 1.00x", verdict(f1, 1.0, True, f1r)),
        ("files uploads 8 x 128 MiB vs socat copies", x(f8), pr(f8r), "≥ 1.00x", verdict(f8, 1.0, True, f8r)),
        ("files-classic upload 1 GiB vs socat copy", x(k1), pr(k1r), "≥ 1.00x", verdict(k1, 1.0, True, k1r)),
        ("files-classic uploads 8 x 128 MiB vs socat copies", x(k8), pr(k8r), "≥ 1.00x", verdict(k8, 1.0, True, k8r)),
        ("exec `echo hi`, 1 connection, vs Python", x(x1), pr(x1r), "> 1x", verdict(x1, 1.0001, True, x1r)),
        ("exec `echo hi`, 10 connections, vs Python", x(x10), pr(x10r), "> 1x", verdict(x10, 1.0001, True, x10r)),
        ("RSS per idle connection (10,000 held)", "–" if idle_sb is None else f"{idle_sb:,.0f} B", "one run",
         "≤ 4,096 B", verdict(idle_sb, 4096, False)),
        ("echo throughput lost with the live stream open", "–" if live_cost is None else f"{live_cost:.1f} %",
         "–" if len(live_r) < 2 else f"{min(live_r.values()):+.1f} to {max(live_r.values()):+.1f} %",
         "≤ 5 %", verdict(live_cost, 5.0, False, live_r)),
        ("tcp-proxy throughput, 1 GiB each way, vs haproxy", x(px.bulk), pr(px.bulk_r), "≥ 1.00x",
         verdict(px.bulk, 1.0, True, px.bulk_r) if px.gib else px.bulk_note),
        ("tcp-proxy added p99, 64 B round trips, vs haproxy's", px.added_text, px.added_r_text,
         "≤ haproxy's", verdict(px.added_diff, 0.0, False, px.added_r)),
    ]
    w("## Targets")
    w("")
    w("`measured` is the ratio of the medians; `per round` the range of the ratios of the runs")
    w("made side by side in each round. A verdict comes from the median alone; when some rounds")
    w("alone would read otherwise, it says how many.")
    w("")
    w("| target | measured | per round | goal | |")
    w("|---|---|---|---|---|")
    for t in targets:
        w("| " + " | ".join(t) + " |")
    w("")

    round_two(run, w, vs, pr)

    # -------------------------------------------------------------- echo
    who_names = (("sb", "switchboard"), ("bare", "bare tokio"), ("py", "Python"))
    w("## TCP echo: 64-byte round trips")
    w("")
    w("Each connection writes 64 lower-case bytes and reads the 64 upper-cased bytes back,")
    w("one round trip at a time (`switchboard bench echo -c N -s 64`): requests per second,")
    w("the server's CPU time per round trip (`/proc/PID/stat`, user + system), the latency")
    w("the client saw and errors summed over the rounds.")
    w("")
    w("| conns | server | req/s | vs bare tokio | CPU µs/rt | p50 / p99 µs | errors |")
    w("|---|---|---|---|---|---|---|")
    for c in ECHO_CONNS:
        bare = f"echo-bare-{c}"
        for who, name in who_names:
            k = f"echo-{who}-{c}"
            if not run.rounds(k):
                continue
            r, rv = vs(k, bare, "requests_per_s")
            rel_bare = "–" if who == "bare" else xs(r, rv)
            lat = f"{ns(run.stat(k, 'latency', 'p50_us'))} / {ns(run.stat(k, 'latency', 'p99_us'))}"
            w(f"| {c} | {name} | {ns(run.stat(k, 'requests_per_s'))} | {rel_bare} | "
              f"{ns(run.stat(k, 'server', 'cpu_us_per_op'), 1)} | {lat} | {n(run.errors(k))} |")
    w("")

    # -------------------------------------------------------------- live
    w("## The dashboard's live stream")
    w("")
    w("The same 50-connection echo load on switchboard, without and with a signed-in")
    w("`/api/v1/live` stream open (what an open dashboard tab costs). Rounds alternate which")
    w("of the two runs first.")
    w("")
    w("| | req/s | CPU µs/rt |")
    w("|---|---|---|")
    w(f"| no dashboard | {ns(run.stat('live-off', 'requests_per_s'))} | "
      f"{ns(run.stat('live-off', 'server', 'cpu_us_per_op'), 2)} |")
    w(f"| live stream open | {ns(run.stat('live-on', 'requests_per_s'))} | "
      f"{ns(run.stat('live-on', 'server', 'cpu_us_per_op'), 2)} |")
    w("")
    if live_r:
        parts = []
        for r, cost in live_r.items():
            first = run.ran_before(f"live-off-{r}", f"live-on-{r}")
            order = "" if first is None else (" off first" if first else " on first")
            parts.append(f"round {r}{order}: {pct(cost)}")
        w("Throughput lost per round: " + "; ".join(parts) + ".")
        cpu_r = run.pairs("live-on", "live-off", lambda on, off: (on - off) / off * 100, "server", "cpu_us_per_op")
        if cpu_r:
            w("Server CPU per round trip, stream open vs not: "
              + "; ".join(f"round {r}: {pct(v)}" for r, v in cpu_r.items()) + ".")
        w("")
    same = run.stat("echo-sb-50", "requests_per_s")
    off = run.stat("live-off", "requests_per_s")
    if same and off:
        w(f"For scale: \"no dashboard\" is the load of the echo table's 50-connection switchboard row,")
        w(f"measured again in the same run with nothing changed: {n(same.median)} there, "
          f"{n(off.median)} here, {abs(off.median - same.median) / max(off.median, same.median) * 100:.1f} % apart.")
        w("")
    if m.get("live_bytes") is not None:
        w(f"The stream carried {m['live_bytes']:,} bytes over the runs.")
        w("")

    # -------------------------------------------------------------- udp
    w("## UDP echo: 64-byte datagrams in lockstep")
    w("")
    w("Each socket sends a datagram and waits for its reply (1 s timeout, counted as lost).")
    w("")
    w("| sockets | server | req/s | vs bare tokio | CPU µs/datagram | p50 / p99 µs | lost |")
    w("|---|---|---|---|---|---|---|")
    for c in (1, 50):
        bare = f"udp-bare-{c}"
        for who, name in who_names:
            k = f"udp-{who}-{c}"
            if not run.rounds(k):
                continue
            r, rv = vs(k, bare, "requests_per_s")
            lat = f"{ns(run.stat(k, 'latency', 'p50_us'))} / {ns(run.stat(k, 'latency', 'p99_us'))}"
            w(f"| {c} | {name} | {ns(run.stat(k, 'requests_per_s'))} | {'–' if who == 'bare' else xs(r, rv)} | "
              f"{ns(run.stat(k, 'server', 'cpu_us_per_op'), 1)} | {lat} | {n(run.errors(k, 'timeouts'))} |")
    t = run.one("time-sb-1")
    if t:
        w("")
        w(f"The time service (10 sockets, format `%Y-%m-%d %H:%M:%S`): {n(get(t, 'requests_per_s'))} req/s, "
          f"{n(get(t, 'server', 'cpu_us_per_op'), 1)} µs server CPU per datagram, "
          f"p50 {n(get(t, 'latency', 'p50_us'))} µs, {n(get(t, 'timeouts'))} lost (one run).")
    w("")

    # -------------------------------------------------------------- exec
    w("## Remote commands: `echo hi`")
    w("")
    w("switchboard: HMAC-authenticated connection, `{\"op\":\"run\",\"argv\":[\"echo\",\"hi\"]}`, output")
    w("streamed back as messages, process group reaped. Python: the seeds/001 server (`方式二`),")
    w("the command line through `/bin/sh`, a 4-byte length and the output.")
    w("")
    w("| conns | server | cmds/s | vs Python | CPU µs/command | p50 / p99 ms | errors |")
    w("|---|---|---|---|---|---|---|")
    for c in (1, 10):
        for who, name in (("sb", "switchboard"), ("py", "Python")):
            k = f"exec-{who}-{c}"
            if not run.rounds(k):
                continue
            r, rv = vs(k, f"exec-py-{c}", "requests_per_s")
            lat = f"{ns(run.stat(k, 'latency', 'p50_us', scale=1e-3), 2)} / {ns(run.stat(k, 'latency', 'p99_us', scale=1e-3), 2)}"
            w(f"| {c} | {name} | {ns(run.stat(k, 'requests_per_s'))} | {'–' if who == 'py' else xs(r, rv)} | "
              f"{ns(run.stat(k, 'server', 'cpu_us_per_op'))} | {lat} | {n(run.errors(k))} |")
    w("")

    # -------------------------------------------------------------- uploads
    w("## Uploads")
    w("")
    w("MiB/s from the first byte sent to the file stored (for the protocols without a reply:")
    w("until the server, done, closes), and the server's CPU seconds per GiB received where")
    w("the bench could read it (not for socat, timed by bench/run.sh itself).")
    w("")
    w("| | 1 x 1 GiB MiB/s | vs socat | CPU s/GiB | 8 x 128 MiB MiB/s | vs socat | CPU s/GiB | errors |")
    w("|---|---|---|---|---|---|---|---|")

    def cpu_per_gib(k):
        vals = []
        for r in run.rounds(k).values():
            cpu, size = get(r, "server", "cpu_s"), get(r, "bytes")
            if cpu is not None and size:
                vals.append(cpu / (size / 2**30))
        return ns(spread(vals), 2)

    for name, k in (
        ("switchboard files", "put-files"),
        ("switchboard files-classic", "put-classic"),
        ("Python (seeds/003)", "put-py"),
        ("bare tokio receiver", "put-bare"),
        ("socat copy", "put-socat"),
        ("socat copy + fsync", "put-socatsync"),
    ):
        a, b = run.stat(k + "-1g", "mib_per_s"), run.stat(k + "-8", "mib_per_s")
        if a is None and b is None:
            continue
        ra, rav = vs(k + "-1g", "put-socat-1g", "mib_per_s")
        rb, rbv = vs(k + "-8", "put-socat-8", "mib_per_s")
        err = (run.errors(k + "-1g") or 0) + (run.errors(k + "-8") or 0)
        w(f"| {name} | {ns(a)} | {xs(ra, rav)} | {cpu_per_gib(k + '-1g')} | {ns(b)} | {xs(rb, rbv)} | "
          f"{cpu_per_gib(k + '-8')} | {n(err)} |")
    w("")

    # -------------------------------------------------------------- idle
    w("## Idle connections")
    w("")
    w(f"`switchboard bench idle -c {n(m.get('idle_connections'))} --hold 3s`: connections opened and held without a byte;")
    w("then each is checked still open; the server's RSS before and while holding (one run each).")
    w("")
    w("| server | opened | stayed open | RSS before → held KiB | per connection |")
    w("|---|---|---|---|---|")
    for name, who in (("switchboard echo", "sb"), ("bare tokio echo", "bare"), ("Python ThreadingTCPServer", "py")):
        r = run.one("idle-" + who)
        if not r:
            continue
        w(f"| {name} | {n(get(r, 'opened'))} | {n(get(r, 'stayed_open'))} | "
          f"{n(get(r, 'server', 'rss_before_kib'))} → {n(get(r, 'server', 'rss_held_kib'))} | "
          f"{n(get(r, 'server', 'rss_per_connection_bytes'))} B |")
    w("")

    # -------------------------------------------------------------- proxy
    if any(run.rounds(f"proxy-{kind}-{who}") for kind in ("bulk", "rtt") for who, _ in PROXY_WHO):
        w("## tcp-proxy vs haproxy and socat")
        w("")
        w(f"Each forwarder in front of the bare tokio echo (`direct`: no forwarder, the floor). Bulk:")
        w(f"{n(px.mib)} MiB sent through it and echoed back, timed to the last byte back, so twice that")
        w("crosses the forwarder; MiB/s counts one way. Round trips: `switchboard bench echo`, 64 B")
        w("at 50 connections; `added p99` is the forwarder's p99 less direct's in the same round. CPU")
        w("is the forwarder's own, children included (socat forks a process per connection).")
        w("")
        w("| forwarder | MiB/s | vs haproxy | CPU ns/byte | p50 / p99 µs | added p99 µs | req/s | CPU µs/req |")
        w("|---|---|---|---|---|---|---|---|")
        for who, name in PROXY_WHO:
            b, rt = f"proxy-bulk-{who}", f"proxy-rtt-{who}"
            if not run.rounds(b) and not run.rounds(rt):
                continue
            r, rv = vs(b, "proxy-bulk-haproxy", "mib_per_s")
            lat = f"{ns(run.stat(rt, 'latency', 'p50_us'))} / {ns(run.stat(rt, 'latency', 'p99_us'))}"
            added = "–" if who == "direct" else ns(spread(px.added_of(who).values()))
            w(f"| {name} | {ns(run.stat(b, 'mib_per_s'))} | {'–' if who == 'haproxy' else xs(r, rv)} | "
              f"{ns(run.stat(b, 'cpu_ns_per_byte'), 2)} | {lat} | {added} | "
              f"{ns(run.stat(rt, 'requests_per_s'))} | {ns(run.stat(rt, 'forwarder_cpu_us_per_op'), 1)} |")
        w("")

    report_toxics.render(run, w)

    # -------------------------------------------------------------- paths
    paths = run.meta_json("paths")
    send = (paths or {}).get("send_echo")
    if isinstance(send, dict):
        w("## B/S against C/S: the Send page's three paths")
        w("")
        w(f"`bench/paths.mjs`: the same {n(paths.get('n'))} echo messages over an HTTP request each")
        w("(`POST /api/v1/services/echo/send`), over one open WebSocket")
        w("(`/api/v1/services/echo/ws`), and the server's own client (C/S, the `rtt_us` the send")
        w("API reports), timed around each message as the page times them.")
        w("")
        w("| path | median µs | p95 µs | vs C/S |")
        w("|---|---|---|---|")
        for key, name in (("http", "HTTP request per message"), ("websocket", "one WebSocket"),
                          ("cs", "C/S (the server's client)")):
            p = send.get(key) or {}
            w(f"| {name} | {n(p.get('median_us'))} | {n(p.get('p95_us'))} | "
              f"{'–' if p.get('ratio') is None else str(p.get('ratio')) + 'x'} |")
        con = paths.get("console_date") or {}
        if con:
            w("")
            w(f"The Console's `date` ({n(con.get('runs'))} runs): B/S median {n((con.get('bs') or {}).get('median_us'))} µs, "
              f"C/S median {n((con.get('cs') or {}).get('median_us'))} µs, B/S − C/S median "
              f"{n(con.get('bs_minus_cs_median_us'))} µs.")
        w("")

    # -------------------------------------------------------------- http
    h = run.one("http-services")
    if h:
        w("## Dashboard API")
        w("")
        w(f"`GET /api/v1/services` signed in, 10 keep-alive connections (one run): "
          f"{n(get(h, 'requests_per_s'))} req/s, {n(get(h, 'server', 'cpu_us_per_op'), 1)} µs server CPU "
          f"per request, p50 {n(get(h, 'latency', 'p50_us'))} µs, p99 {n(get(h, 'latency', 'p99_us'))} µs, "
          f"{n(get(h, 'errors'))} errors.")
        w("")

    out.extend(report_resume.lines(run))
    import report_perf  # issue #33's section (bench/sections/perf.sh); nothing without its reports
    report_perf.render(run, w)

    # -------------------------------------------------------------- order
    w("## Order of the runs")
    w("")
    pairs = [("echo", f"echo-sb-{c}", f"echo-bare-{c}") for c in ECHO_CONNS]
    pairs += [("UDP", f"udp-sb-{c}", f"udp-bare-{c}") for c in (1, 50)]
    first = total = 0
    for _, a, b in pairs:
        for r in run.rounds(a).keys() & run.rounds(b).keys():
            before = run.ran_before(f"{a}-{r}", f"{b}-{r}")
            if before is not None:
                total += 1
                first += before
    if total:
        w("Within a round the servers run one after another, in the reverse order every other")
        w(f"round: switchboard ran before bare tokio in {first} of the {total} echo and UDP pairs.")
        w(f"The order is in `{rel}/order.txt`.")
    else:
        w("This run did not record the order of its runs (no order.txt).")
    w("")
    method = os.path.join(HERE, "METHOD.md")
    if os.path.exists(method):
        w(open(method).read().rstrip())
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser(description="Writes BENCHMARKS.md from a bench/results directory.")
    p.add_argument("dir", help="a results directory written by bench/run.sh")
    p.add_argument("--out", help="write here instead of to stdout")
    p.add_argument("--check", action="store_true",
                   help="compare the headline figures of DIR (a quick run) with --baseline; exit 1 if any fell > 10 %%")
    p.add_argument("--baseline", help="a results directory or a BENCHMARKS.md (default: the newest full run "
                   "in bench/results, else BENCHMARKS.md)")
    args = p.parse_args()
    try:
        if args.check:
            return check(args.dir, args.baseline)
        text = render(Run(args.dir))
    except RunError as e:
        print(f"report.py: {e}", file=sys.stderr)
        return 2
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
