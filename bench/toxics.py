#!/usr/bin/env python3
"""Measures what the toxics do, from outside: a running switchboard (release
build, started by bench/sections/toxics.sh) with three tcp-proxy instances,
driven through its HTTP API (signed in as admin) and measured over loopback
sockets by this process, which times nothing switchboard reports about
itself except the wire inspector's segments (checked against tshark).

    bench/toxics.py --web http://127.0.0.1:PORT --password-file F --out DIR \\
        --echo tx-echo=PORT --source tx-src=PORT,UPSTREAM_PORT \\
        --sink tx-sink=PORT,UPSTREAM_PORT [--secs 10]

- `--echo`: a proxy in front of an echo server (latency, slicer).
- `--source`: a proxy whose upstream this script serves on UPSTREAM_PORT,
  sending zeros as fast as it can (bandwidth, limit_data downstream).
- `--sink`: a proxy whose upstream this script serves on UPSTREAM_PORT,
  counting what arrives until EOF (bandwidth and limit_data upstream).

Each measurement is one JSON file in DIR (`toxics-<what>.json`) holding its
raw samples, the toxic as sent, and the load average (1 min) it started at;
bench/report_toxics.py computes every figure and verdict from them. Not part
of the test command (tests/toxics.rs checks the behaviour; this checks the
timing).
"""
import argparse
import http.cookiejar
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HOST = "127.0.0.1"


class Api:
    """The dashboard's API, signed in as admin (a session and its CSRF token)."""

    def __init__(self, base, password):
        self.base = base.rstrip("/")
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.csrf = None
        r = self.call("POST", "/api/v1/session", {"username": "admin", "password": password})
        self.csrf = r["csrf_token"]

    def call(self, method, path, body=None, ok=(200, 201, 204)):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Origin", self.base)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.csrf:
            req.add_header("X-CSRF-Token", self.csrf)
        try:
            with self.opener.open(req, timeout=30) as resp:
                status, text = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        if status not in ok:
            raise SystemExit(f"toxics.py: {method} {path}: {status} {text[:300]!r}")
        return json.loads(text) if text else None

    def add_toxic(self, proxy, name, type_, stream, attributes):
        body = {"name": name, "type": type_, "stream": stream, "attributes": attributes}
        self.call("POST", f"/api/v1/services/{proxy}/toxics", body)
        return body

    def remove_toxic(self, proxy, name):
        self.call("DELETE", f"/api/v1/services/{proxy}/toxics/{name}")


def loadavg():
    return os.getloadavg()[0]


def connect(port):
    s = socket.create_connection((HOST, port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def save(out, name, report):
    report["nice"] = os.nice(0)
    with open(os.path.join(out, f"toxics-{name}.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(f"  toxics-{name}", file=sys.stderr)


# ------------------------------------------------------------ upstreams
def serve(port, handler):
    """Listens on HOST:port (bound before returning) and runs handler(conn)
    in a thread per connection."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((HOST, port))
    ls.listen(64)

    def loop():
        while True:
            c, _ = ls.accept()
            threading.Thread(target=handler, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def source(c):
    """Sends zeros until the peer goes."""
    block = bytes(64 * 1024)
    try:
        while True:
            c.sendall(block)
    except OSError:
        pass
    finally:
        c.close()


SINK = queue.Queue()


def sink(c):
    """Counts bytes until EOF (or a reset) and reports the count with when
    each read returned. The proxy's health probe connects and sends nothing:
    a connection that brought no byte is not reported."""
    n, reads = 0, []
    try:
        while True:
            b = c.recv(256 * 1024)
            if not b:
                break
            n += len(b)
            reads.append((time.perf_counter(), len(b)))
    except OSError:
        pass
    finally:
        c.close()
        if n:
            SINK.put((n, reads))


# ------------------------------------------------------------ latency
def round_trips(port, conns, each, size=64):
    """`each` timed echo round trips of `size` bytes on each of `conns`
    connections at once (one untimed first: the proxy connects upstream
    before it relays); the round-trip times in ms."""
    times, errors = [], []
    lock = threading.Lock()

    def one():
        try:
            s = connect(port)
            msg = b"t" * size
            s.sendall(msg)
            recv_exact(s, size)
            mine = []
            for _ in range(each):
                t0 = time.perf_counter()
                s.sendall(msg)
                recv_exact(s, size)
                mine.append((time.perf_counter() - t0) * 1e3)
            s.close()
            with lock:
                times.extend(mine)
        except OSError as e:
            with lock:
                errors.append(str(e))

    threads = [threading.Thread(target=one) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"toxics.py: round trips failed: {errors[0]}")
    return times


def latency(api, proxy, port, out, conns, each):
    load = loadavg()
    base = round_trips(port, conns, each)
    cases = [("latency-j0", "downstream", 100, 0), ("latency-j20", "downstream", 100, 20),
             ("latency-up", "upstream", 100, 0)]
    for label, stream, lat, jit in cases:
        load = loadavg()
        toxic = api.add_toxic(proxy, "bench-latency", "latency", stream, {"latency": lat, "jitter": jit})
        try:
            rtt = round_trips(port, conns, each)
        finally:
            api.remove_toxic(proxy, "bench-latency")
        save(out, label, {
            "bench": "toxics-latency", "toxic": toxic, "connections": conns, "size": 64,
            "base_rtt_ms": base, "rtt_ms": rtt, "loadavg_1m": load,
        })


# ------------------------------------------------------------ bandwidth
def read_for(s, secs):
    """Reads from s for secs after its first byte: (bytes, elapsed s, bytes per whole second)."""
    recv_exact(s, 1)
    t0 = time.perf_counter()
    got, per_s, now = 0, [0] * int(secs), t0
    while now - t0 < secs:
        b = s.recv(256 * 1024)
        if not b:
            raise SystemExit("toxics.py: the bandwidth source closed early")
        now = time.perf_counter()
        got += len(b)
        k = int(now - t0)
        if k < len(per_s):
            per_s[k] += len(b)
    return got, now - t0, per_s


def bandwidth(api, src, sink_proxy, out, secs):
    for rate in (100, 1000, 10000):
        load = loadavg()
        toxic = api.add_toxic(src[0], "bench-bw", "bandwidth", "downstream", {"rate": rate})
        try:
            s = connect(src[1])
            got, elapsed, per_s = read_for(s, secs)
            s.close()
        finally:
            api.remove_toxic(src[0], "bench-bw")
        save(out, f"bandwidth-{rate}", {
            "bench": "toxics-bandwidth", "toxic": toxic, "bytes": got, "elapsed_s": elapsed,
            "bytes_per_second": per_s, "loadavg_1m": load,
        })
    # Upstream: this process sends as fast as the proxy takes, for a second
    # longer than measured; the sink times what arrives as read_for does,
    # from its first byte (what the socket buffers held is not counted as
    # if it had crossed in time).
    rate = 1000
    load = loadavg()
    toxic = api.add_toxic(sink_proxy[0], "bench-bw", "bandwidth", "upstream", {"rate": rate})
    try:
        s = connect(sink_proxy[1])
        block = bytes(16 * 1024)
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < secs + 1:
            s.send(block)
        s.close()
        _, reads = SINK.get(timeout=60)
    finally:
        api.remove_toxic(sink_proxy[0], "bench-bw")
    first = reads[0][0]
    per_s = [0] * int(secs)
    got, last = 0, first
    for t, n in reads[1:]:
        if t - first >= secs:
            break
        got, last = got + n, t
        per_s[int(t - first)] += n
    save(out, f"bandwidth-up-{rate}", {
        "bench": "toxics-bandwidth", "toxic": toxic, "bytes": got, "elapsed_s": last - first,
        "bytes_per_second": per_s, "loadavg_1m": load,
    })


# ------------------------------------------------------------ slicer
class Tshark:
    """tshark capturing one port's sent segments on lo into a pcap."""

    def __init__(self, port, path):
        self.port, self.path = port, path
        self.p = subprocess.Popen(
            ["tshark", "-i", "lo", "-f", f"tcp src port {port}", "-w", path, "-q"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # It says "Capturing on" before it sees packets: wait (bounded) for
        # that line, then connect to the port until the pcap holds our SYN's
        # answer, so the measured exchange is captured from its first byte.
        deadline = time.monotonic() + 60
        lines = []
        while time.monotonic() < deadline:
            line = self.p.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "Capturing on" in line:
                break
        while time.monotonic() < deadline:
            socket.create_connection((HOST, port), timeout=30).close()
            if self.packets():
                return
            time.sleep(0.2)
        self.p.kill()
        raise SystemExit("toxics.py: tshark did not start capturing: " + "".join(lines)[-500:])

    def packets(self):
        r = subprocess.run(["tshark", "-r", self.path, "-T", "fields", "-e", "frame.number"],
                           capture_output=True, text=True)
        return len(r.stdout.split())

    def segments(self):
        """[(payload length, seconds since the first)] of the port's segments."""
        r = subprocess.run(
            ["tshark", "-r", self.path, "-Y", f"tcp.srcport == {self.port} && tcp.len > 0",
             "-T", "fields", "-e", "tcp.len", "-e", "frame.time_epoch"], capture_output=True, text=True)
        rows = [line.split() for line in r.stdout.splitlines() if line.strip()]
        rows = [(int(n), float(t)) for n, t in rows]
        return [(n, t - rows[0][1]) for n, t in rows]

    def stop_when(self, total):
        """Stops once the pcap holds `total` payload bytes (at most 20 s)."""
        deadline = time.monotonic() + 20
        while sum(n for n, _ in self.segments()) < total and time.monotonic() < deadline:
            time.sleep(0.2)
        self.p.send_signal(signal.SIGINT)
        self.p.wait(timeout=30)
        return self.segments()


def inspector_writes(api, proxy, port):
    """The lengths of the writes to our client, from the wire inspector."""
    conns = api.call("GET", "/api/v1/connections?limit=1000")
    ids = [c["id"] for c in conns if c.get("service") == proxy and str(c.get("peer", "")).endswith(f":{port}")]
    if not ids:
        raise SystemExit(f"toxics.py: no connection of {proxy} from port {port}")
    lens, times, since, gaps = [], [], 0, 0
    while True:
        v = api.call("GET", f"/api/v1/connections/{ids[0]}/capture?since={since}")
        for seg in v["segments"]:
            if seg["dir"] == "out":
                lens.append(seg["len"])
                times.append(seg["t_us"])
                gaps += seg.get("gap_before") or 0
        if not v.get("more") or v["next"] == since:
            return lens, times, gaps
        since = v["next"]


def slicer(api, proxy, port, out, work):
    api.call("PUT", f"/api/v1/services/{proxy}/capture", {"capture": True})
    # Message sizes keep each capture within the inspector's 64 KiB per
    # direction, a segment costing its bytes and 32 more.
    # (average_size, size_variation, delay µs, message bytes); the last two:
    # a variation past the average, and a delay under a millisecond.
    cases = [(1, 0, 0, 1000), (10, 5, 0, 4000), (100, 50, 0, 40000), (4, 6, 0, 2000), (10, 5, 200, 2000)]
    try:
        for avg, var, delay, size in cases:
            load = loadavg()
            label = f"slicer-{avg}-{var}" + (f"-d{delay}" if delay else "")
            toxic = api.add_toxic(proxy, "bench-slicer", "slicer", "downstream",
                                  {"average_size": avg, "size_variation": var, "delay": delay})
            pcap = os.path.join(work, label + ".pcap")
            tshark = Tshark(port, pcap)
            try:
                s = connect(port)
                client_port = s.getsockname()[1]
                msg = bytes(range(256)) * (size // 256) + bytes(size % 256)
                s.sendall(msg)
                got = recv_exact(s, size)
                # The echo upper-cases, as the tutorials' echo does.
                if got != msg.upper():
                    raise SystemExit(f"toxics.py: {label}: the echo came back changed")
                writes, times, gaps = inspector_writes(api, proxy, client_port)
                wire = tshark.stop_when(size)
                s.close()
            finally:
                if tshark.p.poll() is None:
                    tshark.p.kill()
                api.remove_toxic(proxy, "bench-slicer")
            save(out, label, {
                "bench": "toxics-slicer", "toxic": toxic, "message_bytes": size,
                "inspector_writes": writes, "inspector_t_us": times, "inspector_gap_bytes": gaps,
                "wire_segments": [n for n, _ in wire], "wire_t_us": [round(t * 1e6) for _, t in wire],
                "loadavg_1m": load,
            })
    finally:
        api.call("PUT", f"/api/v1/services/{proxy}/capture", {"capture": False})


# ------------------------------------------------------------ limit_data
def read_to_end(s, bound):
    n = 0
    try:
        while n <= bound:
            b = s.recv(256 * 1024)
            if not b:
                break
            n += len(b)
    except ConnectionResetError:
        return n, "reset"
    return n, "eof" if n <= bound else "still open"


def limit_data(api, src, sink_proxy, out, repeats=3):
    sizes = (1, 1000, 65537, 1048577)
    load = loadavg()
    down = []
    for n in sizes:
        api.add_toxic(src[0], "bench-limit", "limit_data", "downstream", {"bytes": n})
        try:
            for _ in range(repeats):
                s = connect(src[1])
                got, end = read_to_end(s, n + (4 << 20))
                s.close()
                down.append({"limit": n, "received": got, "end": end})
        finally:
            api.remove_toxic(src[0], "bench-limit")
    save(out, "limit-down", {"bench": "toxics-limit", "stream": "downstream", "runs": down, "loadavg_1m": load})
    load = loadavg()
    up = []
    for n in sizes:
        api.add_toxic(sink_proxy[0], "bench-limit", "limit_data", "upstream", {"bytes": n})
        try:
            for _ in range(repeats):
                s = connect(sink_proxy[1])
                sent, block = 0, bytes(16 * 1024)
                end = "still open"
                try:
                    # Until the proxy, past the limit, closes on us.
                    while sent < n + (64 << 20):
                        sent += s.send(block)
                except (BrokenPipeError, ConnectionResetError):
                    end = "closed"
                except TimeoutError:
                    end = "timeout"
                s.close()
                try:
                    received = SINK.get(timeout=60)[0]
                except queue.Empty:
                    received = 0
                up.append({"limit": n, "received": received, "sent": sent, "end": end})
        finally:
            api.remove_toxic(sink_proxy[0], "bench-limit")
    save(out, "limit-up", {"bench": "toxics-limit", "stream": "upstream", "runs": up, "loadavg_1m": load})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--web", required=True)
    p.add_argument("--password-file", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--echo", required=True, help="NAME=PORT")
    p.add_argument("--source", required=True, help="NAME=PORT,UPSTREAM_PORT")
    p.add_argument("--sink", required=True, help="NAME=PORT,UPSTREAM_PORT")
    p.add_argument("--secs", type=float, default=10, help="seconds per bandwidth run")
    p.add_argument("--conns", type=int, default=10, help="connections of the latency runs")
    p.add_argument("--each", type=int, default=50, help="round trips per connection")
    a = p.parse_args()
    if not shutil.which("tshark"):
        raise SystemExit("toxics.py needs tshark")

    def proxy(spec):
        name, ports = spec.split("=")
        return (name, *[int(x) for x in ports.split(",")])

    echo, src, snk = proxy(a.echo), proxy(a.source), proxy(a.sink)
    serve(src[2], source)
    serve(snk[2], sink)
    with open(a.password_file) as f:
        api = Api(a.web, f.read().strip())
    os.makedirs(a.out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="switchboard-toxics.") as work:
        print("toxics: latency", file=sys.stderr)
        latency(api, echo[0], echo[1], a.out, a.conns, a.each)
        print("toxics: bandwidth", file=sys.stderr)
        bandwidth(api, src, snk, a.out, a.secs)
        print("toxics: slicer (wire inspector and tshark)", file=sys.stderr)
        slicer(api, echo[0], echo[1], a.out, work)
        print("toxics: limit_data", file=sys.stderr)
        limit_data(api, src, snk, a.out)


if __name__ == "__main__":
    main()
