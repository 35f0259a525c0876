#!/usr/bin/env python3
"""/healthz latency while a ring of udp-proxies spans two switchboard processes.

Not a test (it asserts nothing; the test suite's proxy_loops.rs checks the
socket bound): it measures what issue 27 asks — one datagram into a ring of
two udp-proxies of two processes opens at most 256 upstream sockets a side,
and each dashboard's /healthz stays answering meanwhile.

How: process B starts with its udp-proxy `ring-b` pointed at the discard
port, A starts with `ring-a` pointed at ring-b, then B's config is rewritten
(ring-b on the same port, pointed at ring-a) and `switchboard reload` closes
the ring. One datagram goes into ring-a. For --seconds, both dashboards'
/healthz are asked in turn on a new connection each time (as a probe does),
and both processes' open descriptors are counted. A baseline of the same
probe without the ring is measured first.

    python3 bench/ring_healthz.py [--bin target/debug/switchboard] [--seconds 20]

Prints one JSON object: p50/p99/max latency (ms) and the probes that failed,
for the baseline and during the ring, and the descriptors each side opened.
"""

import argparse
import http.client
import json
import os
import socket
import subprocess
import tempfile
import time

BUILT_IN = ["echo", "udp-echo", "time", "exec", "files", "files-classic", "login"]


def config(name, listen, upstream):
    text = '[web]\nlisten = "127.0.0.1:0"\n'
    for b in BUILT_IN:
        text += f"[services.{b}]\nenabled = false\n"
    text += (
        f'[services.{name}]\nkind = "udp-proxy"\nlisten = "{listen}"\n'
        f'upstream = "{upstream}"\n'
    )
    return text


def start(binary, folder, name, listen, upstream):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "switchboard.toml")
    with open(path, "w") as f:
        f.write(config(name, listen, upstream))
    ready = os.path.join(folder, "ready.json")
    proc = subprocess.Popen(
        [binary, "serve", "--config", path, "--data-dir", os.path.join(folder, "data"),
         "--ready-file", ready],
        env={**os.environ, "SWITCHBOARD_ADMIN_PASSWORD": "ring-bench-password"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while not os.path.exists(ready):
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"{name}: the server did not start")
        time.sleep(0.05)
    time.sleep(0.1)  # the ready file is written whole before the banner
    with open(ready) as f:
        info = json.load(f)
    web = info["web"].removeprefix("http://").rstrip("/")
    return proc, path, info["services"][name]["addr"], web


def healthz(web):
    host, port = web.rsplit(":", 1)
    started = time.perf_counter()
    try:
        c = http.client.HTTPConnection(host, int(port), timeout=5)
        c.request("GET", "/healthz", headers={"Host": web})
        ok = c.getresponse().status == 200
        c.close()
    except OSError:
        ok = False
    return (time.perf_counter() - started) * 1000, ok


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def probe(webs, pids, seconds):
    took, failed, peak = [], 0, {p: 0 for p in pids}
    until = time.time() + seconds
    while time.time() < until:
        for web in webs:
            ms, ok = healthz(web)
            took.append(ms)
            failed += 0 if ok else 1
        for p in pids:
            peak[p] = max(peak[p], fds(p))
        time.sleep(0.02)
    took.sort()
    pick = lambda q: round(took[min(len(took) - 1, int(q * len(took)))], 2)
    return {"probes": len(took), "failed": failed, "p50_ms": pick(0.5),
            "p99_ms": pick(0.99), "max_ms": round(took[-1], 2)}, peak


def main():
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(target, "debug", "switchboard"))
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        b, b_conf, b_addr, b_web = start(args.bin, os.path.join(tmp, "b"), "ring-b",
                                         "127.0.0.1:0", "127.0.0.1:9")
        a, _, a_addr, a_web = start(args.bin, os.path.join(tmp, "a"), "ring-a",
                                    "127.0.0.1:0", b_addr)
        try:
            pids = [a.pid, b.pid]
            base_fds = {p: fds(p) for p in pids}
            baseline, _ = probe([a_web, b_web], pids, min(5.0, args.seconds))
            with open(b_conf, "w") as f:
                f.write(config("ring-b", b_addr, a_addr))
            r = subprocess.run([args.bin, "reload", "--config", b_conf, "--data-dir",
                            os.path.join(tmp, "b", "data")],
                               stdout=subprocess.PIPE, text=True)
            if r.returncode != 0:
                raise SystemExit(f"closing the ring failed: {r.stdout}")
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b"one datagram", tuple(a_addr.rsplit(":", 1)[0:1]) + (int(a_addr.rsplit(":", 1)[1]),))
            ring, peak = probe([a_web, b_web], pids, args.seconds)
            with open("/proc/loadavg") as f:
                load = f.read().split()[:3]
            print(json.dumps({
                "binary": args.bin,
                "load_average": load,
                "baseline": baseline,
                "during_ring": ring,
                "fds_opened": {"a": peak[a.pid] - base_fds[a.pid],
                               "b": peak[b.pid] - base_fds[b.pid]},
            }, indent=2))
        finally:
            for p in (a, b):
                p.terminate()
            for p in (a, b):
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    main()
