#!/usr/bin/env python3
"""Can silent sockets lock people out of the dashboard?

Starts a release switchboard (dashboard only, every service disabled, on a
free loopback port), measures /healthz with no load, then opens SOCKETS
silent connections from 127.0.0.1..127.0.0.ADDRESSES (each client socket
bound to its source address before connecting), renews every one the
server closes (shed to make room, or past the first-byte deadline), and
measures /healthz again while that goes on. Each probe is a fresh
connection from PROBE_FROM (its own address by default): connect, request,
whole response, as a health checker sees it.

    cargo build --release
    python3 bench/lockout.py                    # 2000 sockets, 32 addresses, 20 s
    python3 bench/lockout.py --probe-from 127.0.0.1   # probe from a loaded address

Prints the latencies (p50/p90/p99/max) without and with the attack, failed
probes, and the server's own counts (connections open, shed, refused) from
/metrics. Exits 1 when the p99 under attack is over --target-p99-ms (100)
or a probe failed.

Bounded: loopback targets only, raises its own descriptor limit (the server
inherits it), and the whole run stops after about baseline + ramp + seconds
(+ a few seconds to stop), killing the server if it has to. Not part of the
test command.
"""

import argparse
import asyncio
import ipaddress
import multiprocessing
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SERVICES = ["echo", "udp-echo", "time", "exec", "files", "files-classic", "login"]
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
METRICS = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, need)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < need:
        sys.exit(f"lockout: needs {need} file descriptors; the hard limit is {hard}")
    return soft


def loopback_only(ip):
    if not ipaddress.ip_address(ip).is_loopback:
        sys.exit(f"lockout: {ip} is not a loopback address; this only targets 127.0.0.0/8")
    return ip


def request(src, port, payload, timeout):
    """One request on a fresh blocking connection from `src`; (seconds, reply)."""
    started = time.perf_counter()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(payload)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return time.perf_counter() - started, b"".join(chunks)


def probe_loop(src, port, seconds, every, timeout, out):
    """Runs in its own process, so the attack's event loop cannot delay the
    clock: /healthz every `every` s for `seconds` s; sends (latencies, failures)."""
    latencies, failures = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        began = time.monotonic()
        try:
            took, reply = request(src, port, HEALTHZ, timeout)
            if reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"ok\n"):
                latencies.append(took)
            else:
                failures.append(reply[:60].decode("latin-1"))
                latencies.append(took)
        except OSError as e:
            failures.append(repr(e))
            latencies.append(timeout)
        pause = every - (time.monotonic() - began)
        if pause > 0:
            time.sleep(pause)
    out.send((latencies, failures))
    out.close()


def probe(src, port, seconds, every, timeout):
    # Spawned, not forked: the parent has threads and an event loop running.
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=probe_loop, args=(src, port, seconds, every, timeout, child))
    p.start()
    child.close()
    return p, parent


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[i]


def summary(latencies):
    v = sorted(latencies)
    ms = lambda x: x * 1000
    return {
        "probes": len(v),
        "p50": ms(percentile(v, 0.50)),
        "p90": ms(percentile(v, 0.90)),
        "p99": ms(percentile(v, 0.99)),
        "max": ms(v[-1]) if v else float("nan"),
    }


def metrics(port, src):
    try:
        _, reply = request(src, port, METRICS, 5)
    except OSError as e:
        return {"error": repr(e)}
    out = {}
    for line in reply.decode("utf-8", "replace").splitlines():
        if line.startswith("switchboard_web_connections"):
            name, value = line.rsplit(" ", 1)
            out[name] = int(float(value))
    return out


class Attack:
    """SOCKETS silent connections, each renewed as soon as the server closes it."""

    def __init__(self, port, sources, count, until):
        self.port, self.sources, self.count, self.until = port, sources, count, until
        self.open = 0
        self.connects = 0
        self.connect_errors = 0

    async def one(self, src):
        loop = asyncio.get_running_loop()
        while loop.time() < self.until:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port, local_addr=(src, 0)), 5
                )
            except (OSError, asyncio.TimeoutError):
                self.connect_errors += 1
                await asyncio.sleep(0.05)
                continue
            self.connects += 1
            self.open += 1
            try:
                # Silent: wait for the server to close it, or the end.
                await asyncio.wait_for(reader.read(65536), max(0.0, self.until - loop.time()))
            except (OSError, asyncio.TimeoutError):
                pass
            finally:
                self.open -= 1
                writer.close()

    async def run(self):
        await asyncio.gather(*(self.one(self.sources[i % len(self.sources)]) for i in range(self.count)))


def start_server(binary, data_dir):
    env = dict(os.environ, SWITCHBOARD_ADMIN_PASSWORD="lockout-" + secrets.token_hex(8))
    env.pop("SWITCHBOARD_CONFIG", None)
    cmd = [binary, "serve", "--data-dir", data_dir, "--set", "web.listen=127.0.0.1:0"]
    for name in SERVICES:
        cmd += ["--set", f"services.{name}.enabled=false"]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = None
    deadline = time.monotonic() + 30
    for line in server.stdout:
        if line.startswith("open: http://"):
            port = int(line.strip().rstrip("/").rsplit(":", 1)[1])
            break
        if time.monotonic() > deadline:
            break
    if port is None:
        server.kill()
        sys.exit("lockout: the server did not print its `open:` line")
    # Keep draining stdout so the server never blocks on it.
    threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
    return server, port


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", default="target/release/switchboard")
    ap.add_argument("--sockets", type=int, default=2000)
    ap.add_argument("--addresses", type=int, default=32, help="attack from 127.0.0.1..127.0.0.N")
    ap.add_argument("--probe-from", default="127.0.0.200")
    ap.add_argument("--seconds", type=float, default=20, help="measured under attack")
    ap.add_argument("--baseline", type=float, default=3, help="measured before the attack")
    ap.add_argument("--ramp", type=float, default=10, help="at most this long to open the sockets")
    ap.add_argument("--every-ms", type=float, default=20, help="one probe per this many ms")
    ap.add_argument("--probe-timeout", type=float, default=5)
    ap.add_argument("--target-p99-ms", type=float, default=100)
    args = ap.parse_args()
    if not 1 <= args.addresses <= 254 or args.sockets < 1:
        sys.exit("lockout: --addresses 1..254, --sockets at least 1")
    probe_from = loopback_only(args.probe_from)
    sources = [loopback_only(f"127.0.0.{i}") for i in range(1, args.addresses + 1)]
    if not os.access(args.binary, os.X_OK):
        sys.exit(f"lockout: no {args.binary}; build it first: cargo build --release")
    limit = raise_fd_limit(args.sockets + 1100)

    # A hard stop for the whole run, whatever happens below.
    budget = args.baseline + args.ramp + args.seconds + 30
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("lockout: over its time budget"))
    signal.alarm(int(budget))

    with tempfile.TemporaryDirectory(prefix="switchboard-lockout.") as data_dir:
        server, port = start_server(args.binary, data_dir)
        try:
            run(args, port, sources, probe_from, limit)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def run(args, port, sources, probe_from, limit):
    every = args.every_ms / 1000
    print(f"dashboard on 127.0.0.1:{port}; fd limit {limit}; probing /healthz from {probe_from} every {args.every_ms:g} ms")

    p, results = probe(probe_from, port, args.baseline, every, args.probe_timeout)
    idle_lat, idle_fail = results.recv()
    p.join()
    idle = summary(idle_lat)

    async def attack_and_probe():
        loop = asyncio.get_running_loop()
        attack = Attack(port, sources, args.sockets, loop.time() + args.ramp + args.seconds + 1)
        task = asyncio.ensure_future(attack.run())
        ramp_end = loop.time() + args.ramp
        # Nearly all open: the rest are being renewed as fast as they are shed.
        while attack.open < args.sockets * 0.95 and loop.time() < ramp_end:
            await asyncio.sleep(0.1)
        ramped = attack.open
        connects_before = attack.connects
        p, results = probe(probe_from, port, args.seconds, every, args.probe_timeout)
        got = await loop.run_in_executor(None, results.recv)
        await loop.run_in_executor(None, p.join)
        during = await loop.run_in_executor(None, metrics, port, probe_from)
        renewed = attack.connects - connects_before
        open_now = attack.open
        attack.until = loop.time()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        return got, ramped, renewed, open_now, attack.connect_errors, during

    (lat, fail), ramped, renewed, open_now, connect_errors, server = asyncio.run(attack_and_probe())
    hot = summary(lat)

    def row(name, s, failures):
        return (f"{name:<16}{s['probes']:>7}{s['p50']:>9.2f}{s['p90']:>9.2f}{s['p99']:>9.2f}"
                f"{s['max']:>9.2f}{len(failures):>9}")

    print()
    print(f"{'/healthz':<16}{'probes':>7}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'failed':>9}")
    print(row("no attack", idle, idle_fail))
    print(row("under attack", hot, fail))
    print()
    print(f"attack: {args.sockets} silent sockets from {len(sources)} addresses "
          f"({ramped} open after the ramp, {open_now} at the end), "
          f"{renewed} renewed while measuring, {connect_errors} connect errors")
    print("server: " + ", ".join(f"{k} {v}" for k, v in sorted(server.items())))
    for f in (idle_fail + fail)[:5]:
        print(f"  failed probe: {f}")
    ok = hot["p99"] <= args.target_p99_ms and not fail
    print(f"\np99 under attack {hot['p99']:.2f} ms (target <= {args.target_p99_ms:g} ms): "
          f"{'met' if ok else 'NOT met'}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
