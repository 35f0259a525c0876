"""BENCHMARKS.md's section for issue #33's comparisons (bench/sections/perf.sh):
exec against a bare spawner, echo against an epoll server without a runtime,
uploads to tmpfs with SHA-256 against socat, the dashboard's upload relay
against a straight put. Called by bench/report.py's
render(); writes nothing when the run has none of these reports (runs from
before the section, the fixtures), so older reports render as they did.
"""
import statistics

import report as r


def render(run, w):
    if not any(run.rounds(p) for p in ("perf-exec-sb-1", "perf-echo-sb-50", "perf-shm-files", "perf-relay-web")):
        return
    loads = [x for x in (rep.get("loadavg_1m") for p in _prefixes(run) for rep in run.rounds(p).values())
             if isinstance(x, (int, float))]
    w("## Against the bare floor (issue #33)")
    w("")
    w("From `bench/sections/perf.sh`: each pair or triple below ran in alternated order within")
    w("each round, in the same minutes; ratios are of the medians, with the per-round ratios'")
    w("range in brackets.")
    if loads:
        w(f"Load average (1 min) as these runs started: {min(loads):.1f}–{max(loads):.1f} "
          f"(median {statistics.median(loads):.1f}).")
    w("")
    _exec(run, w)
    _echo(run, w)
    _uploads(run, w)
    _relay(run, w)


RELAY = {"web": "through the dashboard: `curl -T`, PUT /api/v1/files/NAME",
         "cli": "`switchboard put FILE`",
         "bench": "`switchboard bench put` (from memory)"}


def _prefixes(run):
    out = [f"perf-exec-{who}-{c}" for who in ("sb", "bare") for c in (1, 10)]
    out += [f"perf-echo-{who}-{c}" for who in ("sb", "bare", "epoll") for c in (50, 5000)]
    out += [f"perf-shm-{what}" for what in ("files", "classic", "socat", "socat128k")]
    out += [f"perf-relay-{what}" for what in RELAY]
    return out


def _vs(run, a, b, *keys):
    return (r.ratio(run.median(a, *keys), run.median(b, *keys)),
            run.pairs(a, b, lambda p, q: p / q, *keys))


def _ns_per_byte(run, prefix):
    """The server's CPU per byte moved, each round's."""
    reps = run.rounds(prefix).values()
    return r.spread(None if c is None or not z else c * 1e9 / z
                    for c, z in ((r.get(rep, "server", "cpu_s"), r.get(rep, "bytes")) for rep in reps))


def _exec(run, w):
    if not run.rounds("perf-exec-sb-1"):
        return
    w("### exec against a bare spawner")
    w("")
    w("`echo hi` per request. The bare spawner (`bench/reference/bare_exec.rs`) reads a command")
    w("line, spawns it with the same environment and answers with a length prefix: no")
    w("authentication, process group, timeout, output cap or audit line. CPU is the server's")
    w("own (the children's is not counted for either).")
    w("")
    w("| connections | switchboard cmd/s | bare spawner cmd/s | ratio | goal ≥ 0.90x | CPU µs/cmd switchboard | bare |")
    w("|---|---|---|---|---|---|---|")
    for c in (1, 10):
        sb, bare = f"perf-exec-sb-{c}", f"perf-exec-bare-{c}"
        v, per = _vs(run, sb, bare, "requests_per_s")
        w(f"| {c} | {r.ns(run.stat(sb, 'requests_per_s'))} | {r.ns(run.stat(bare, 'requests_per_s'))} | "
          f"{r.xs(v, per)} | {r.verdict(v, 0.9, True, per)} | "
          f"{r.ns(run.stat(sb, 'server', 'cpu_us_per_op'), 1)} | {r.ns(run.stat(bare, 'server', 'cpu_us_per_op'), 1)} |")
    w("")


def _echo(run, w):
    if not run.rounds("perf-echo-sb-50"):
        return
    w("### echo against the metal")
    w("")
    w("64 B round trips. `bench/reference/bare_epoll.rs`: epoll through `mio`, one event loop")
    w("per core, no runtime; bare tokio is `bench/reference/bare_echo.rs`.")
    w("")
    w("| connections | server | req/s | CPU µs/rt | req/s vs epoll | CPU vs epoll |")
    w("|---|---|---|---|---|---|")
    for c in (50, 5000):
        for who, name in (("epoll", "epoll (no runtime)"), ("bare", "bare tokio"), ("sb", "switchboard")):
            p = f"perf-echo-{who}-{c}"
            row = [str(c), name, r.ns(run.stat(p, "requests_per_s")), r.ns(run.stat(p, "server", "cpu_us_per_op"), 2)]
            if who == "epoll":
                row += ["", ""]
            else:
                row.append(r.xs(*_vs(run, p, f"perf-echo-epoll-{c}", "requests_per_s")))
                row.append(r.xs(*_vs(run, p, f"perf-echo-epoll-{c}", "server", "cpu_us_per_op")))
            w("| " + " | ".join(row) + " |")
    w("")


def _uploads(run, w):
    if not run.rounds("perf-shm-files"):
        return
    w("### Uploads to tmpfs with SHA-256")
    w("")
    w("1 GiB, one connection, every folder on /dev/shm: switchboard stores the file and its")
    w("SHA-256 (files answers with it); socat copies it and computes nothing, with its default")
    w("8 KiB buffer and with 128 KiB. On a busy machine the server's CPU per byte is the")
    w("steadier figure.")
    w("")
    w("| upload | MiB/s | vs socat 8 KiB | vs socat 128 KiB | goal ≥ 1.0x socat | server CPU ns/B |")
    w("|---|---|---|---|---|---|")
    for what, name in (("files", "files (SHA-256)"), ("classic", "files-classic (SHA-256)"),
                       ("socat", "socat, 8 KiB"), ("socat128k", "socat, 128 KiB")):
        p = f"perf-shm-{what}"
        row = [name, r.ns(run.stat(p, "mib_per_s"))]
        if what.startswith("socat"):
            row += ["", "", "", ""]
        else:
            v8, per8 = _vs(run, p, "perf-shm-socat", "mib_per_s")
            v128, per128 = _vs(run, p, "perf-shm-socat128k", "mib_per_s")
            worst = min((v for v in (v8, v128) if v is not None), default=None)
            per = per128 if worst is not None and worst == v128 else per8
            row += [r.xs(v8, per8), r.xs(v128, per128), r.verdict(worst, 1.0, True, per)]
            row.append(r.ns(_ns_per_byte(run, p), 2))
        w("| " + " | ".join(row) + " |")
    w("")


def _relay(run, w):
    if not run.rounds("perf-relay-web"):
        return
    w("### The dashboard's upload relay against a straight put")
    w("")
    w("512 MiB from a file on /dev/shm to a files service whose folder is on /dev/shm (the")
    w("switchboard of its own that the uploads to tmpfs use). The dashboard relays the body")
    w("into that service's socket as a C/S client would; `switchboard put` reads the file,")
    w("hashes what it sends and checks the server's hash, as a user runs it; `bench put` sends")
    w("from memory, its hash computed before the clock starts. The goal compares the relay")
    w("with `switchboard put`.")
    w("")
    w("| upload | MiB/s | the relay vs this | goal ≥ 0.95x | server CPU ns/B | client CPU s |")
    w("|---|---|---|---|---|---|")
    for what, name in RELAY.items():
        p = f"perf-relay-{what}"
        row = [name, r.ns(run.stat(p, "mib_per_s"))]
        if what == "web":
            row += ["", ""]
        else:
            v, per = _vs(run, "perf-relay-web", p, "mib_per_s")
            row += [r.xs(v, per), r.verdict(v, 0.95, True, per) if what == "cli" else "reported"]
        row.append(r.ns(_ns_per_byte(run, p), 2))
        row.append(r.ns(run.stat(p, "client_cpu_s"), 2))
        w("| " + " | ".join(row) + " |")
    w("")
