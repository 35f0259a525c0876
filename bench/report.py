"""Turns the JSON reports of bench/run.sh into BENCHMARKS.md.

Each timed figure is the median over the rounds of the same run; rounds were
interleaved (switchboard, bare tokio, Python, then again), so a slow moment
of the machine does not land on one server only.

    python3 bench/report.py JSON_DIR BENCHMARKS.md --cores 2 --cpu ... (see run.sh)
"""
import argparse
import datetime
import glob
import json
import os
import statistics
import sys

p = argparse.ArgumentParser()
p.add_argument("json_dir")
p.add_argument("out")
for flag in ("cores", "cpu", "kernel", "rounds", "secs", "live_bytes", "python", "socat"):
    p.add_argument("--" + flag.replace("_", "-"), dest=flag, default="?")
args = p.parse_args()


def load(label):
    path = os.path.join(args.json_dir, label + ".json")
    with open(path) as f:
        return json.load(f)


def rounds(prefix):
    """Every round of one run, as parsed reports."""
    files = sorted(glob.glob(os.path.join(args.json_dir, prefix + "-[0-9]*.json")))
    out = []
    for f in files:
        try:
            out.append(json.load(open(f)))
        except ValueError:
            print(f"report.py: {f} is not a report; left out", file=sys.stderr)
    return out


def median(prefix, key, sub=None):
    values = []
    for r in rounds(prefix):
        v = r[key] if sub is None else (r.get(key) or {}).get(sub)
        if v is not None:
            values.append(v)
    return statistics.median(values) if values else None


def errors(prefix):
    return sum(r.get("errors", 0) for r in rounds(prefix))


def n(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    if a is None or b in (None, 0):
        return None
    return a / b


def x(v):
    return "–" if v is None else f"{v:.2f}x"


def verdict(v, goal, higher=True):
    if v is None:
        return "not measured"
    ok = v >= goal if higher else v <= goal
    return "met" if ok else "**short**"


commit = os.environ.get("BENCH_COMMIT", "?")
mem_gib = "?"
try:
    with open("/proc/meminfo") as f:
        mem_gib = f"{int(f.readline().split()[1]) / 1048576:.0f} GiB"
except OSError:
    pass

out = []
w = out.append
w("# Benchmarks")
w("")
w(f"Measured by `bench/run.sh` on {datetime.date.today()} at commit `{commit}`: a release")
w("switchboard, the tutorials' servers in Python (`bench/reference/*.py`), bare tokio")
w("servers (`bench/reference/bare_*.rs`) and socat, one after another on loopback, loaded")
w("by `switchboard bench` from the same machine. Every timed figure is the median of")
w(f"{args.rounds} interleaved runs of {args.secs} s (uploads: of one transfer each).")
w("")
w(f"- Machine: {args.cores} cores, {args.cpu}, {mem_gib} RAM, Linux {args.kernel}")
w(f"- {args.python}; {args.socat}")
w("- The load generator shares the machine: on 2 cores the server gets about one.")
w("  Ratios compare servers under the same load generator, in the same run.")
w("- Limits raised for the run (defaults are for people, not load tests): echo")
w("  `max_connections` and `max_connections_per_peer` 20,000 (defaults 1,024 and 64),")
w("  `peer_rate` of udp-echo and time 10,000,000/s (default 5,000/s per peer, which")
w("  would drop most of a load test's datagrams), exec `max_commands` 32 (default 8).")
w("")

# ---------------------------------------------------------------- targets
targets = []
e50 = ratio(median("echo-sb-50", "requests_per_s"), median("echo-bare-50", "requests_per_s"))
e500 = ratio(median("echo-sb-500", "requests_per_s"), median("echo-bare-500", "requests_per_s"))
c50 = ratio(median("echo-sb-50", "server", "cpu_us_per_op"), median("echo-bare-50", "server", "cpu_us_per_op"))
c500 = ratio(median("echo-sb-500", "server", "cpu_us_per_op"), median("echo-bare-500", "server", "cpu_us_per_op"))
u50 = ratio(median("udp-sb-50", "requests_per_s"), median("udp-bare-50", "requests_per_s"))
socat1 = median("put-socat-1g", "mib_per_s")
socat8 = median("put-socat-8", "mib_per_s")
f1 = ratio(median("put-files-1g", "mib_per_s"), socat1)
f8 = ratio(median("put-files-8", "mib_per_s"), socat8)
k1 = ratio(median("put-classic-1g", "mib_per_s"), socat1)
k8 = ratio(median("put-classic-8", "mib_per_s"), socat8)
x1 = ratio(median("exec-sb-1", "requests_per_s"), median("exec-py-1", "requests_per_s"))
x10 = ratio(median("exec-sb-10", "requests_per_s"), median("exec-py-10", "requests_per_s"))
idle = {}
for who in ("sb", "bare", "py"):
    try:
        idle[who] = load("idle-" + who)
    except OSError:
        idle[who] = None


def per_conn(who):
    r = idle.get(who)
    return r and r.get("server") and r["server"]["rss_per_connection_bytes"]


live_off = median("live-off", "requests_per_s")
live_on = median("live-on", "requests_per_s")
live_cost = None if not live_off or live_on is None else (live_off - live_on) / live_off * 100

targets = [
    ("echo, 50 connections, vs bare tokio", x(e50), "≥ 0.90x", verdict(e50, 0.9)),
    ("echo, 500 connections, vs bare tokio", x(e500), "≥ 0.90x", verdict(e500, 0.9)),
    ("server CPU per round trip, 50 connections, vs bare tokio", x(c50), "≤ 1.15x", verdict(c50, 1.15, False)),
    ("server CPU per round trip, 500 connections, vs bare tokio", x(c500), "≤ 1.15x", verdict(c500, 1.15, False)),
    ("UDP echo, 50 sockets, vs bare tokio", x(u50), "≥ 0.90x", verdict(u50, 0.9)),
    ("files upload 1 GiB (SHA-256 + fsync) vs socat copy", x(f1), "≥ 1.00x", verdict(f1, 1.0)),
    ("files uploads 8 x 128 MiB vs socat copies", x(f8), "≥ 1.00x", verdict(f8, 1.0)),
    ("files-classic upload 1 GiB vs socat copy", x(k1), "≥ 1.00x", verdict(k1, 1.0)),
    ("files-classic uploads 8 x 128 MiB vs socat copies", x(k8), "≥ 1.00x", verdict(k8, 1.0)),
    ("exec `echo hi`, 1 connection, vs Python", x(x1), "> 1x", verdict(x1, 1.0001)),
    ("exec `echo hi`, 10 connections, vs Python", x(x10), "> 1x", verdict(x10, 1.0001)),
    ("RSS per idle connection (10,000 held)", "–" if per_conn("sb") is None else f"{per_conn('sb'):,.0f} B",
     "≤ 4,096 B", verdict(per_conn("sb"), 4096, False)),
    ("echo throughput lost with the live stream open", "–" if live_cost is None else f"{live_cost:.1f} %",
     "≤ 5 %", verdict(live_cost, 5.0, False)),
]
w("## Targets")
w("")
w("| target | measured | goal | |")
w("|---|---|---|---|")
for t in targets:
    w("| " + " | ".join(t) + " |")
w("")

# ---------------------------------------------------------------- echo
w("## TCP echo: 64-byte round trips")
w("")
w("Each connection writes 64 lower-case bytes and reads the 64 upper-cased bytes back,")
w("one round trip at a time (`switchboard bench echo -c N -s 64`). Requests per second,")
w("the latency the client saw, and the server's CPU time per round trip (from")
w("`/proc/PID/stat`, user + system).")
w("")
w("| conns | switchboard req/s | bare tokio | Python | vs bare | vs Python | p50 / p99 (switchboard) | p50 / p99 (bare) | p50 / p99 (Python) | CPU µs/rt: switchboard / bare / Python | errors, all rounds: switchboard / bare / Python |")
w("|---|---|---|---|---|---|---|---|---|---|---|")
for c in (1, 50, 500, 5000):
    s, b, py = (f"echo-{who}-{c}" for who in ("sb", "bare", "py"))
    rs, rb, rp = (median(k, "requests_per_s") for k in (s, b, py))

    def lat(k):
        p50, p99 = median(k, "latency", "p50_us"), median(k, "latency", "p99_us")
        return "–" if p50 is None else f"{p50:,.0f} / {p99:,.0f} µs"

    cpu = " / ".join(n(median(k, "server", "cpu_us_per_op"), 1) for k in (s, b, py))
    err = " / ".join(n(errors(k)) for k in (s, b, py))
    w(f"| {c} | {n(rs)} | {n(rb)} | {n(rp)} | {x(ratio(rs, rb))} | {x(ratio(rs, rp))} | {lat(s)} | {lat(b)} | {lat(py)} | {cpu} | {err} |")
w("")

w("## The dashboard's live stream")
w("")
w("The same 50-connection echo load, without and with a signed-in `/api/v1/live` stream")
w("open (what an open dashboard tab costs: a snapshot a second, events as they come).")
w("")
w("| | req/s | CPU µs/rt |")
w("|---|---|---|")
w(f"| no dashboard | {n(live_off)} | {n(median('live-off', 'server', 'cpu_us_per_op'), 2)} |")
w(f"| live stream open | {n(live_on)} | {n(median('live-on', 'server', 'cpu_us_per_op'), 2)} |")
w("")
same = median("echo-sb-50", "requests_per_s")
if same and live_off:
    w(f"For scale: \"no dashboard\" is the very load of the echo table's 50-connection row, "
      f"measured again in the same run: {n(same)} there, {n(live_off)} here, "
      f"{abs(live_off - same) / max(live_off, same) * 100:.1f} % apart with nothing changed.")
    w("")
w(f"The stream carried {int(args.live_bytes) if args.live_bytes.isdigit() else '?':,} bytes over the runs. "
  + ("" if live_cost is None else f"Throughput lost: {live_cost:.1f} %"
     + (" (negative: the runs with the stream open were faster; its cost is below the noise)." if live_cost < 0 else ".")))
w("")

# ---------------------------------------------------------------- udp
w("## UDP echo: 64-byte datagrams in lockstep")
w("")
w("Each socket sends a datagram and waits for its reply (1 s timeout, counted as lost).")
w("")
w("| sockets | switchboard req/s | bare tokio | Python | vs bare | vs Python | lost (switchboard / bare / Python) | CPU µs/datagram: switchboard / bare / Python |")
w("|---|---|---|---|---|---|---|---|")
for c in (1, 50):
    s, b, py = (f"udp-{who}-{c}" for who in ("sb", "bare", "py"))
    rs, rb, rp = (median(k, "requests_per_s") for k in (s, b, py))
    lost = " / ".join(str(sum(r.get("timeouts", 0) for r in rounds(k))) for k in (s, b, py))
    cpu = " / ".join(n(median(k, "server", "cpu_us_per_op"), 1) for k in (s, b, py))
    w(f"| {c} | {n(rs)} | {n(rb)} | {n(rp)} | {x(ratio(rs, rb))} | {x(ratio(rs, rp))} | {lost} | {cpu} |")
try:
    t = load("time-sb-1")
    w("")
    w(f"The time service (10 sockets, format `%Y-%m-%d %H:%M:%S`): {n(t['requests_per_s'])} req/s, "
      f"p50 {n(t['latency']['p50_us'])} µs, {t['timeouts']} lost.")
except OSError:
    pass
w("")

# ---------------------------------------------------------------- exec
w("## Remote commands: `echo hi`")
w("")
w("switchboard: HMAC-authenticated connection, `{\"op\":\"run\",\"argv\":[\"echo\",\"hi\"]}`, output")
w("streamed back as messages, process group reaped. Python: the seeds/001 server (`方式二`),")
w("the command line through `/bin/sh`, a 4-byte length and the output.")
w("")
w("| conns | switchboard cmds/s | Python | vs Python | p50 / p99 (switchboard) | p50 / p99 (Python) | errors: switchboard / Python |")
w("|---|---|---|---|---|---|---|")
for c in (1, 10):
    s, py = f"exec-sb-{c}", f"exec-py-{c}"
    rs, rp = median(s, "requests_per_s"), median(py, "requests_per_s")

    def lat(k):
        p50, p99 = median(k, "latency", "p50_us"), median(k, "latency", "p99_us")
        return "–" if p50 is None else f"{p50 / 1000:,.2f} / {p99 / 1000:,.2f} ms"

    w(f"| {c} | {n(rs)} | {n(rp)} | {x(ratio(rs, rp))} | {lat(s)} | {lat(py)} | {n(errors(s))} / {n(errors(py))} |")
w("")

# ---------------------------------------------------------------- uploads
w("## Uploads")
w("")
w("MiB/s from the first byte sent to the file stored (for the protocols without a reply:")
w("until the server, done, closes). `files` hashes on both sides and checks, then fsyncs")
w("and links the file into place; `files-classic` hashes and fsyncs too (the bench hashes")
w("the stored files afterwards with `--verify-dir`). The Python server and the bare")
w("tokio receiver only write. socat is `socat -u OPEN:src TCP:...` into")
w("`socat -u TCP-LISTEN:... OPEN:dst`, with and without an fsync of the result.")
w("")
w("| | 1 x 1 GiB MiB/s | vs socat | 8 x 128 MiB MiB/s | vs socat | errors |")
w("|---|---|---|---|---|---|")
rows = [
    ("switchboard files", "put-files"),
    ("switchboard files-classic", "put-classic"),
    ("Python (seeds/003)", "put-py"),
    ("bare tokio receiver", "put-bare"),
    ("socat copy", "put-socat"),
    ("socat copy + fsync", "put-socatsync"),
]
for name, k in rows:
    a, b = median(k + "-1g", "mib_per_s"), median(k + "-8", "mib_per_s")
    err = errors(k + "-1g") + errors(k + "-8")
    w(f"| {name} | {n(a)} | {x(ratio(a, socat1))} | {n(b)} | {x(ratio(b, socat8))} | {n(err)} |")
w("")

# ---------------------------------------------------------------- idle
w("## 10,000 idle connections")
w("")
w("`switchboard bench idle -c 10000 --hold 3s`: connections opened and held without a")
w("byte; then each is checked still open; the server's RSS before and while holding.")
w("")
w("| server | opened | stayed open | RSS before → held | per connection |")
w("|---|---|---|---|---|")
for name, who in (("switchboard echo", "sb"), ("bare tokio echo", "bare"), ("Python ThreadingTCPServer", "py")):
    r = idle.get(who)
    if not r:
        w(f"| {name} | – | – | – | – |")
        continue
    s = r.get("server") or {}
    w(f"| {name} | {r['opened']:,} | {r['stayed_open']:,} | {s.get('rss_before_kib', 0):,} → {s.get('rss_held_kib', 0):,} KiB | {n(s.get('rss_per_connection_bytes'))} B |")
w("")
w("Python's server also runs a thread per connection (10,000 threads, each with its own stack")
w("reserved); switchboard runs a task each on 2 threads.")
w("")

# ---------------------------------------------------------------- http
try:
    h = load("http-services")
    w("## Dashboard API")
    w("")
    w(f"`GET /api/v1/services` signed in, 10 keep-alive connections: {n(h['requests_per_s'])} req/s, "
      f"p50 {n(h['latency']['p50_us'])} µs, p99 {n(h['latency']['p99_us'])} µs, "
      f"{n((h.get('server') or {}).get('cpu_us_per_op'), 1)} µs server CPU per request, {h['errors']} errors.")
    w("")
except OSError:
    pass

notes = os.path.join(os.path.dirname(__file__), "NOTES.md")
if os.path.exists(notes):
    w(open(notes).read().rstrip())
    w("")

# bench/soak.sh's and scripts/fuzz.sh's last results, each as its own
# section: their headings one level down.
for name in ("SOAK.md", "FUZZ.md"):
    path = os.path.join(os.path.dirname(__file__), name)
    if os.path.exists(path):
        for line in open(path).read().rstrip().splitlines():
            w("#" + line if line.startswith("#") else line)
        w("")

with open(args.out, "w") as f:
    f.write("\n".join(out))
