"""The load, the sampler and the verdict of bench/soak.sh (standard library only).

    soak.py run    --pid PID --sb BIN --base PORT --data-dir DIR --minutes M --out DIR
    soak.py report --out DIR --stderr FILE --exit-code N --shutdown-s S --md bench/SOAK.md

`run` drives a mixed load at one running switchboard (loopback only, every
part bounded in time and count), samples the server from /proc every 10 s
into OUT/samples.csv, then stops the load, waits (bounded) for the server to
go quiet, samples once more and writes OUT/run.json. soak.sh then stops the
server with SIGTERM and calls `report`, which looks for orphans and panics,
compares the figures with the goals, prints the table, writes the Markdown
and exits 1 if a goal is missed.

The key and the admin password come from SWITCHBOARD_KEY and
SWITCHBOARD_ADMIN_PASSWORD, as the server's own.
"""
import argparse
import collections
import csv
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

SAMPLE_EVERY = 10.0          # seconds between samples
QUIET_WAIT = 90.0            # longest wait for the server to settle after the load
# The marker every command meant to be killed carries; a process whose command
# line holds it after the load is one the server failed to kill (an orphan).
MARKER = "sleep 777"
MARKER_RE = re.compile(r"(^|\s)sleep 777(\s|$)")
TICKS = os.sysconf("SC_CLK_TCK")


# The parts of the load, as named in the counts, and what each does.
MIX = {
    "echo": "`bench echo -c 8`, 64 B round trips",
    "udp-echo": "`bench udp -c 4`, 64 B datagrams",
    "time": "`bench time -c 2`",
    "exec (bench)": "`bench exec -c 2 -- echo hi`",
    "exec (Python client)": "commands that end (output checked); `sleep 777 & sleep 30` and "
                            "`sleep 777 & yes` with `timeout_ms` 300, killed; `sleep 777 & yes` "
                            "left mid-output (FIN, reset) or unread, `sleep 777 & sleep 30` left",
    "uploads": "`bench put` 4 x 1 MiB, files and files-classic in turn; uploads cut off "
               "(files-classic: in the header or body; files: after 100 KiB of 1 MiB)",
    "dashboard": "sign in, `GET /api/v1/services` and `/api/v1/connections`, `/api/v1/live` "
                 "held 3 s, sign out; a wrong password from 127.0.0.2 (401, 429 once limited)",
    "dashboard (bench http)": "`bench http -c 2 --path /api/v1/connections`",
}


# ---------------------------------------------------------------- /proc

def proc_stat_fields(pid):
    """Fields of /proc/PID/stat after the command name (index 0 = state)."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    return text[text.rindex(")") + 2:].split()


def cpu_ticks(pid):
    try:
        f = proc_stat_fields(pid)
    except OSError:
        raise ServerGone(f"the server (pid {pid}) has exited") from None
    return int(f[11]) + int(f[12])


def own_cpu_ticks():
    """This driver and every load-generator process it has waited for."""
    t = os.times()
    return (t.user + t.system + t.children_user + t.children_system) * TICKS


def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]  # total, idle + iowait


def children_of(pid):
    """Processes whose parent is pid, with their state (Z = not reaped)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            f = proc_stat_fields(d)
        except (OSError, ValueError):
            continue
        if f[1] == str(pid):
            out.append((int(d), f[0]))
    return out


def marker_processes():
    """Every process on the machine whose command line holds MARKER."""
    found = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                args = f.read().rstrip(b"\0").split(b"\0")
        except OSError:
            continue
        line = " ".join(a.decode(errors="replace") for a in args)
        if MARKER_RE.search(line):
            found.append((int(d), line))
    return found


class ServerGone(Exception):
    pass


def sample(pid):
    status = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                status[k] = v.strip()
    except OSError:
        status = {}
    if "VmRSS" not in status:  # gone, or a zombie: exited, not yet waited for
        raise ServerGone(f"the server (pid {pid}) has exited")
    return {
        "rss_kib": int(status["VmRSS"].split()[0]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(status["Threads"]),
        "children": len(children_of(pid)),
        "sleep777": len(marker_processes()),
    }


# ---------------------------------------------------------------- plumbing

class Soak:
    """Shared state of one run: the deadline, counters, running subprocesses."""

    def __init__(self, args):
        self.args = args
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = collections.defaultdict(collections.Counter)
        # What should not happen: errors, refusals, replies other than meant.
        self.problems = collections.defaultdict(collections.Counter)
        self.procs = set()
        self.key = os.environ["SWITCHBOARD_KEY"].encode()
        self.password = os.environ["SWITCHBOARD_ADMIN_PASSWORD"]
        b = args.base
        self.addr = {
            "echo": ("127.0.0.1", b), "udp-echo": ("127.0.0.1", b + 1),
            "time": ("127.0.0.1", b + 2), "exec": ("127.0.0.1", b + 3),
            "files": ("127.0.0.1", b + 4), "files-classic": ("127.0.0.1", b + 5),
            "web": ("127.0.0.1", b + 80),
        }
        self.files_dir = os.path.join(args.data_dir, "files")

    def count(self, part, what, n=1):
        with self.lock:
            self.counts[part][what] += n

    def problem(self, part, what, n=1):
        with self.lock:
            self.problems[part][what] += n

    def pause(self, seconds):
        """Sleeps, or returns at once when the load is to stop."""
        return not self.stop.wait(seconds)

    def bench(self, part, kind, target, *extra, seconds=None):
        """One bounded `switchboard bench` run; its figures are added to part."""
        cmd = [self.args.sb, "bench", kind, "--json", "--allow-errors"]
        cmd += [f"{target[0]}:{target[1]}", *extra]
        if seconds is not None:
            cmd += ["-d", f"{seconds}s"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with self.lock:
            self.procs.add(p)
        try:
            out, err = p.communicate(timeout=(seconds or 0) + 60)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            self.problem(part, "bench run killed (over time)")
            return None
        finally:
            with self.lock:
                self.procs.discard(p)
        try:
            r = json.loads(out)
        except ValueError:
            note = err.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
            self.problem(part, f"bench failed: {note[0][:100]}")
            return None
        self.count(part, "bench runs")
        self.count(part, "requests", r.get("requests", 0))
        for k in ("errors", "connect_failures", "timeouts"):
            if not r.get(k):
                continue
            if k == "timeouts" and kind in ("udp", "time"):
                # A datagram or its reply lost on a busy machine: UDP's deal.
                self.count(part, "datagrams lost", r[k])
            else:
                self.problem(part, k, r[k])
        return r

    def kill_all(self):
        with self.lock:
            for p in list(self.procs):
                try:
                    p.kill()
                except OSError:
                    pass


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def reset_close(sock):
    """Closes with SO_LINGER 0: the peer sees a reset, not a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# ---------------------------------------------------------------- exec and files: the message protocol

class MessageClient:
    """exec/files client: HMAC handshake, then [u32 BE length][JSON header][body]."""

    def __init__(self, soak, service, timeout=10.0):
        self.sock = socket.create_connection(soak.addr[service], timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        challenge = recv_exact(self.sock, 32)
        self.sock.sendall(hmac.new(soak.key, challenge, hashlib.sha256).digest())
        header, _ = self.read()
        if not header.get("ok"):
            raise ConnectionError(f"handshake refused: {header}")

    def send(self, header, body=b""):
        data = json.dumps(header).encode()
        self.sock.sendall(struct.pack(">I", len(data)) + data + body)

    def read(self, keep_body=True):
        (n,) = struct.unpack(">I", recv_exact(self.sock, 4))
        header = json.loads(recv_exact(self.sock, n))
        size = header.get("size", 0)
        if keep_body:
            return header, recv_exact(self.sock, size)
        left = size
        while left:
            left -= len(recv_exact(self.sock, min(left, 65536)))
        return header, b""

    def until_final(self, keep_body=True):
        """Reads messages to the final one; returns it and the stdout bytes."""
        out = bytearray()
        while True:
            header, body = self.read(keep_body)
            if header.get("type") == "stdout":
                out += body
            elif header.get("type") in ("exit", "error"):
                return header, bytes(out)

    def close(self):
        self.sock.close()


def outcome(final):
    if final.get("type") == "exit":
        return f"exit {final.get('code', 'signal ' + str(final.get('signal')))}"
    why = final.get("error", "?")
    if "timed out" in why:
        return "killed: timed out"
    if "output cap" in why:
        return "killed: output cap"
    return f"error: {why[:80]}"


def exec_normal(soak):
    """Three ordinary commands on one connection; each checked."""
    c = MessageClient(soak, "exec")
    try:
        for req, want in (
            ({"op": "run", "argv": ["echo", "soak"]}, b"soak\n"),
            ({"op": "run", "argv": ["uname", "-s"]}, None),
            ({"op": "shell", "line": "echo abc | wc -c"}, b"4\n"),
        ):
            c.send(req)
            final, out = c.until_final()
            got = outcome(final)
            if got != "exit 0" or (want is not None and out != want):
                soak.problem("exec (Python client)", f"ordinary: {got} {out[:40]!r}")
            else:
                soak.count("exec (Python client)", "ordinary (exit 0, output checked)")
    finally:
        c.close()


def exec_killed(soak, line, timeout_ms, label):
    """A command the server must kill (its timeout or output cap); read to the end."""
    c = MessageClient(soak, "exec")
    try:
        c.send({"op": "shell", "line": line, "timeout_ms": timeout_ms})
        final, _ = c.until_final(keep_body=False)
        got = outcome(final)
        if got.startswith("killed"):
            soak.count("exec (Python client)", f"{got} ({label})")
        else:
            soak.problem("exec (Python client)", f"{got} ({label})")
    finally:
        c.close()


def exec_gone(soak, how):
    """The client goes away while the command runs: mid-output (FIN or reset),
    while it writes nothing, or after it stopped reading."""
    c = MessageClient(soak, "exec")
    try:
        if how == "silent":
            c.send({"op": "shell", "line": f"{MARKER} & sleep 30", "timeout_ms": 8000})
            time.sleep(0.2)
        elif how == "stalled":
            # Stops reading: the server's writes block until its deadline passes.
            c.send({"op": "shell", "line": f"{MARKER} & yes", "timeout_ms": 400})
            time.sleep(1.0)
        else:
            c.send({"op": "shell", "line": f"{MARKER} & yes", "timeout_ms": 8000})
            got = 0
            while got < 64 * 1024:
                header, body = c.read()
                if header.get("type") in ("exit", "error"):
                    soak.problem("exec (Python client)",
                                 f"ended before the client left ({how}): {outcome(header)}")
                    return
                got += len(body)
        if how in ("reset", "stalled"):
            reset_close(c.sock)
    finally:
        c.close()
    soak.count("exec (Python client)", {
        "fin": "left mid-output (FIN)", "reset": "left mid-output (reset)",
        "silent": "left while it was silent", "stalled": "stopped reading, then left",
    }[how])


def exec_worker(soak):
    steps = [
        lambda: exec_normal(soak),
        lambda: exec_killed(soak, f"{MARKER} & sleep 30", 300, "`sleep`, 300 ms"),
        lambda: exec_killed(soak, f"{MARKER} & yes", 300, "`yes`, 300 ms"),
        lambda: exec_gone(soak, "fin"),
        lambda: exec_normal(soak),
        lambda: exec_gone(soak, "reset"),
        lambda: exec_gone(soak, "silent"),
        lambda: exec_gone(soak, "stalled"),
    ]
    i = 0
    while soak.pause(0.5):
        try:
            steps[i % len(steps)]()
        except (OSError, ValueError) as e:
            soak.problem("exec (Python client)", f"{type(e).__name__}: {str(e)[:60]}")
        i += 1


# ---------------------------------------------------------------- uploads

def classic_abort(soak, i):
    """files-classic: a 136-byte header announcing more than is sent, then close."""
    size = 1 << 20
    name = f"soak-abort-{i}.bin".encode()
    s = socket.create_connection(soak.addr["files-classic"], timeout=10)
    try:
        mode = i % 3
        header = struct.pack("128sq", name, size)
        if mode == 0:
            s.sendall(header[:60])  # not even the whole header
        else:
            s.sendall(header + os.urandom(64 * 1024))
    finally:
        if i % 2:
            reset_close(s)
        else:
            s.close()
    soak.count("uploads", "cut off (files-classic)")


def files_abort(soak, i):
    """files: an authenticated put announcing 1 MiB, cut off after 100 KiB."""
    c = MessageClient(soak, "files")
    try:
        c.send({"op": "put", "name": f"soak-abort-{i}.bin", "size": 1 << 20}, os.urandom(100 * 1024))
    finally:
        if i % 2:
            reset_close(c.sock)
        else:
            c.close()
    soak.count("uploads", "cut off (files)")


def upload_worker(soak):
    i = 0
    while soak.pause(2.0):
        try:
            if i % 2 == 0:
                soak.bench("uploads", "put", soak.addr["files"], "-s", "1MiB", "-P", "2", "-n", "4")
                # bench put leaves its files in place; these are the only bench-* names.
                for name in os.listdir(soak.files_dir):
                    if name.startswith("bench-"):
                        os.remove(os.path.join(soak.files_dir, name))
            else:
                soak.bench("uploads", "put", soak.addr["files-classic"], "--classic", "-s", "1MiB",
                           "-P", "2", "-n", "4", "--verify-dir", soak.files_dir)
            classic_abort(soak, i)
            files_abort(soak, i)
        except (OSError, ValueError) as e:
            soak.problem("uploads", f"{type(e).__name__}: {str(e)[:60]}")
        i += 1


# ---------------------------------------------------------------- dashboard

def web_request(soak, method, path, body=None, cookie=None, csrf=None, source="127.0.0.1"):
    c = http.client.HTTPConnection(*soak.addr["web"], timeout=15, source_address=(source, 0))
    try:
        headers = {}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        if cookie:
            headers["Cookie"] = cookie
        if csrf:
            headers["X-CSRF-Token"] = csrf
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, r.getheader("Set-Cookie"), r.read()
    finally:
        c.close()


def live_stream(soak, cookie, seconds, reset):
    """GET /api/v1/live held open for a few seconds, then closed."""
    s = socket.create_connection(soak.addr["web"], timeout=5)
    host = "%s:%d" % soak.addr["web"]
    s.sendall(f"GET /api/v1/live HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n"
              f"Accept: text/event-stream\r\n\r\n".encode())
    got = 0
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            s.settimeout(max(0.05, end - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            got += len(chunk)
    finally:
        reset_close(s) if reset else s.close()
    if got > 0:
        soak.count("dashboard", "live streams")
        soak.count("dashboard", "live bytes", got)
    else:
        soak.problem("dashboard", "live stream with no bytes")


def web_worker(soak):
    i = 0
    while soak.pause(1.0):
        try:
            status, cookie, body = web_request(soak, "POST", "/api/v1/session",
                                        {"username": "admin", "password": soak.password})
            if status != 200 or not cookie:
                soak.problem("dashboard", f"sign-in refused: {status}")
                continue
            soak.count("dashboard", "sign-ins")
            cookie = cookie.split(";", 1)[0]
            csrf = json.loads(body)["csrf_token"]
            for path in ("/api/v1/services", "/api/v1/connections"):
                status, _, body = web_request(soak, "GET", path, cookie=cookie)
                if status == 200 and isinstance(json.loads(body), list):
                    soak.count("dashboard", "API GETs")
                else:
                    soak.problem("dashboard", f"GET {path}: {status}")
            live_stream(soak, cookie, 3.0, reset=i % 2 == 1)
            status, _, _ = web_request(soak, "DELETE", "/api/v1/session", cookie=cookie, csrf=csrf)
            if status == 200:
                soak.count("dashboard", "sign-outs")
            else:
                soak.problem("dashboard", f"sign-out: {status}")
            # Wrong passwords, from another loopback address so that the
            # failure limit (per address) does not lock the admin out above.
            status, _, _ = web_request(soak, "POST", "/api/v1/session",
                                {"username": "admin", "password": "not-the-password"},
                                source="127.0.0.2")
            if status in (401, 429):
                soak.count("dashboard", f"wrong passwords ({status})")
            else:
                soak.problem("dashboard", f"wrong password answered {status}")
        except (OSError, ValueError, KeyError, http.client.HTTPException) as e:
            soak.problem("dashboard", f"{type(e).__name__}: {str(e)[:60]}")
        i += 1


# ---------------------------------------------------------------- the load generator's cycle

def bench_worker(soak, password_file):
    """One flat-out `switchboard bench` run at a time, with pauses between, so the
    machine is busy but not saturated (see --pause)."""
    a = soak.args
    runs = [
        ("echo", lambda: soak.bench("echo", "echo", soak.addr["echo"], "-c", "8", seconds=a.burst)),
        ("udp-echo", lambda: soak.bench("udp-echo", "udp", soak.addr["udp-echo"], "-c", "4",
                                        "--timeout", "1s", seconds=a.burst)),
        ("time", lambda: soak.bench("time", "time", soak.addr["time"], "-c", "2",
                                    "--timeout", "1s", seconds=a.burst)),
        ("exec (bench)", lambda: soak.bench("exec (bench)", "exec", soak.addr["exec"], "-c", "2",
                                            seconds=a.burst)),
        ("dashboard (bench http)", lambda: soak.bench(
            "dashboard (bench http)", "http", soak.addr["web"], "--path", "/api/v1/connections",
            "--password-file", password_file, "-c", "2", seconds=a.burst)),
    ]
    i = 0
    while soak.pause(a.pause):
        runs[i % len(runs)][1]()
        i += 1


# ---------------------------------------------------------------- run

def run(args):
    soak = Soak(args)
    os.makedirs(args.out, exist_ok=True)
    password_file = os.path.join(args.work, "password")
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, (soak.password + "\n").encode())
    os.close(fd)

    def on_term(*_):
        soak.stop.set()
        soak.kill_all()
        sys.exit(143)
    signal.signal(signal.SIGTERM, on_term)

    pid = args.pid
    baseline = sample(pid)
    print(f"baseline: {baseline}", file=sys.stderr)
    duration = args.minutes * 60
    warmup = min(duration * 0.2, 300.0)
    t0 = time.monotonic()
    samples = []
    csv_path = os.path.join(args.out, "samples.csv")
    fields = ["t_s", "phase", "rss_kib", "fds", "threads", "children", "sleep777",
              "server_cpu_pct", "soak_cpu_pct", "machine_cpu_pct"]
    csv_file = open(csv_path, "w", newline="")
    writer = csv.DictWriter(csv_file, fieldnames=fields)
    writer.writeheader()
    last = {"server": cpu_ticks(pid), "own": own_cpu_ticks(), "machine": machine_ticks(),
            "t": time.monotonic()}

    def take(phase):
        s = sample(pid)
        now = time.monotonic()
        server, own, machine = cpu_ticks(pid), own_cpu_ticks(), machine_ticks()
        wall = max(now - last["t"], 1e-6) * TICKS
        total, idle = machine[0] - last["machine"][0], machine[1] - last["machine"][1]
        s.update({
            "t_s": round(now - t0, 1), "phase": phase,
            "server_cpu_pct": round((server - last["server"]) / wall * 100, 1),
            "soak_cpu_pct": round((server - last["server"] + own - last["own"]) / wall * 100, 1),
            "machine_cpu_pct": round((total - idle) / max(total, 1) * 100 * os.cpu_count(), 1),
        })
        last.update(server=server, own=own, machine=machine, t=now)
        samples.append(s)
        writer.writerow(s)
        csv_file.flush()
        print("  ".join(f"{k}={s[k]}" for k in fields), file=sys.stderr)
        return s

    workers = [
        threading.Thread(target=bench_worker, args=(soak, password_file), daemon=True),
        threading.Thread(target=exec_worker, args=(soak,), daemon=True),
        threading.Thread(target=upload_worker, args=(soak,), daemon=True),
        threading.Thread(target=web_worker, args=(soak,), daemon=True),
    ]
    for w in workers:
        w.start()
    deadline = t0 + duration
    next_sample = t0 + SAMPLE_EVERY
    while time.monotonic() < deadline:
        time.sleep(max(0.0, min(next_sample, deadline) - time.monotonic()))
        if time.monotonic() >= next_sample:
            take("warm-up" if time.monotonic() - t0 < warmup else "load")
            next_sample += SAMPLE_EVERY
    load_s = time.monotonic() - t0

    print("load stopped; waiting for the workers and for the server to go quiet", file=sys.stderr)
    soak.stop.set()
    for w in workers:
        w.join(timeout=90)
    stuck = [w.name for w in workers if w.is_alive()]
    soak.kill_all()
    # Quiet: no children, no marker processes, fds and threads back at the
    # baseline, and the server using no CPU; tokio's idle blocking threads
    # take up to 10 s to end. Bounded by QUIET_WAIT either way.
    t_stop = time.monotonic()
    quiet = False
    while time.monotonic() - t_stop < QUIET_WAIT:
        a = cpu_ticks(pid)
        time.sleep(1.0)
        s = sample(pid)
        if (cpu_ticks(pid) - a <= 2 and s["children"] == 0 and s["sleep777"] == 0
                and s["fds"] <= baseline["fds"] and s["threads"] <= baseline["threads"]):
            quiet = True
            break
    quiet_s = time.monotonic() - t_stop
    final = take("after the load")
    final_children = children_of(pid)
    # Cut-off uploads must leave nothing: no temporary, no partial file.
    files_left = sorted(n for n in os.listdir(soak.files_dir)
                        if n.startswith(".upload-") or "soak-abort" in n)
    csv_file.close()

    result = {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "minutes": args.minutes, "load_s": round(load_s, 1), "warmup_s": round(warmup, 1),
        "baseline": baseline, "samples": samples, "final": final,
        "final_children": final_children, "quiet": quiet, "quiet_s": round(quiet_s, 1),
        "stuck_workers": stuck,
        "counts": {part: dict(c) for part, c in sorted(soak.counts.items())},
        "problems": {part: dict(c) for part, c in sorted(soak.problems.items())},
        "files_left": files_left,
        "base_port": args.base,
    }
    with open(os.path.join(args.out, "run.json"), "w") as f:
        json.dump(result, f, indent=1)
    return 0


# ---------------------------------------------------------------- report

def median_or_none(values):
    return statistics.median(values) if values else None


def rss_drift(r):
    """Last-quarter median vs first-quarter median of the samples after warm-up."""
    after = [s["rss_kib"] for s in r["samples"] if s["phase"] == "load"]
    if len(after) < 4:
        return None, None, None
    q = max(1, len(after) // 4)
    first, last = median_or_none(after[:q]), median_or_none(after[-q:])
    return first, last, (last - first) / first * 100


def report(args):
    with open(os.path.join(args.out, "run.json")) as f:
        r = json.load(f)
    with open(args.stderr, errors="replace") as f:
        panics = f.read().count("panicked")
    orphans = marker_processes()
    base, final = r["baseline"], r["final"]
    load = [s for s in r["samples"] if s["phase"] in ("warm-up", "load")]
    peak = {k: max([s[k] for s in load] or [0]) for k in ("rss_kib", "fds", "threads", "children", "sleep777")}
    first, last, drift = rss_drift(r)
    counts, problems = r["counts"], r["problems"]
    idle_parts = [p for p in MIX if not counts.get(p)]
    n_problems = sum(sum(c.values()) for c in problems.values())

    def goal(ok):
        return "met" if ok else "**short**"

    goals = [
        ("`sleep 777` processes anywhere after exit (orphans)", str(len(orphans)), "0", goal(not orphans)),
        ("`panicked` in the server's stderr", str(panics), "0", goal(panics == 0)),
        ("open fds after the load / baseline", f"{final['fds']} / {base['fds']}", "equal",
         goal(final["fds"] <= base["fds"])),
        ("threads after the load / baseline", f"{final['threads']} / {base['threads']}", "equal",
         goal(final["threads"] <= base["threads"])),
        ("child processes after the load", str(final["children"]), "0", goal(final["children"] == 0)),
        ("RSS drift after warm-up (medians: last / first quarter)",
         "too few samples" if drift is None else f"{drift:+.1f} % ({last:,.0f} / {first:,.0f} KiB)",
         "≤ +5 %", "not measured" if drift is None else goal(drift <= 5.0)),
        ("cut-off uploads' leftovers in files/", str(len(r["files_left"])), "0", goal(not r["files_left"])),
        ("exit on SIGTERM: status, seconds", f"{args.exit_code}, {args.shutdown_s:.1f}", "0, ≤ 10",
         goal(args.exit_code == 0 and args.shutdown_s <= 10)),
        ("the load ran as meant: every part, nothing unexpected",
         ("idle: " + ", ".join(idle_parts) + "; " if idle_parts else "") + f"{n_problems} unexpected",
         "0 unexpected", goal(not idle_parts and n_problems == 0)),
    ]
    short = [g for g in goals if g[3] != "met"]

    cpu = {k: median_or_none([s[k] for s in load]) or 0
           for k in ("server_cpu_pct", "soak_cpu_pct", "machine_cpu_pct")}
    commit = os.environ.get("SOAK_COMMIT", "?")
    minutes = f"{r['minutes']:g}"

    md = []
    w = md.append
    w("# Soak")
    w("")
    w(f"`bench/soak.sh {minutes}` on {r['started'][:10]} at commit `{commit}`: one release switchboard")
    w(f"under the mixed loopback load below for {r['load_s'] / 60:.1f} minutes, sampled every "
      f"{SAMPLE_EVERY:.0f} s from `/proc`.")
    w(f"Warm-up: the first {r['warmup_s']:.0f} s (20 % of the run, at most 5 minutes). After the load the")
    w(f"server went quiet {'in' if r['quiet'] else '**not** within'} {r['quiet_s']:.0f} s, was sampled "
      f"once more and stopped with SIGTERM.")
    w(f"CPU under load (medians, % of one core): server {cpu['server_cpu_pct']:.0f}, server and load")
    w(f"generator {cpu['soak_cpu_pct']:.0f}, the whole shared machine ({os.cpu_count()} cores) "
      f"{cpu['machine_cpu_pct']:.0f}.")
    w("")
    w("| goal | measured | target | |")
    w("|---|---|---|---|")
    for g in goals:
        w("| " + " | ".join(g) + " |")
    w("")
    w("| server | after start-up | peak under load | after the load |")
    w("|---|---|---|---|")
    w(f"| RSS | {base['rss_kib']:,} KiB | {peak['rss_kib']:,} KiB | {final['rss_kib']:,} KiB |")
    for k, name in (("fds", "open fds"), ("threads", "threads"), ("children", "child processes"),
                    ("sleep777", "`sleep 777` processes")):
        w(f"| {name} | {base[k]} | {peak[k]} | {final[k]} |")
    w("")
    w("The load: each part in a loop until the time is up, every `switchboard bench` run")
    w("bounded by `-d`, every Python client by socket timeouts.")
    w("")
    w("| part | what | done | unexpected |")
    w("|---|---|---|---|")
    for part in list(MIX) + sorted((set(counts) | set(problems)) - set(MIX)):
        shown = "; ".join(f"{v:,} {k}" for k, v in sorted(counts.get(part, {}).items())) or "none"
        bad = "; ".join(f"{v:,} {k}" for k, v in sorted(problems.get(part, {}).items())) or "0"
        w(f"| {part} | {MIX.get(part, '')} | {shown} | {bad} |")
    w("")
    with open(args.md, "w") as f:
        f.write("\n".join(md))

    print("")
    width = max(len(g[0]) for g in goals) - 2
    for g in goals:
        print(f"{g[0].replace('`', ''):<{width}}  {g[1]:<44} {g[3].replace('*', '')}")
    for p, line in orphans:
        print(f"orphan: {p} {line}")
    if r.get("final_children"):
        print("children left:", r["final_children"])
    for part, c in problems.items():
        for k, v in c.items():
            print(f"unexpected: {part}: {k} x{v}")
    if r["files_left"]:
        print("left in files/:", ", ".join(r["files_left"][:10]))
    print(f"\nwritten: {args.md}, {os.path.join(args.out, 'samples.csv')}")
    return 1 if short else 0


def main():
    try:
        return dispatch()
    except ServerGone as e:
        print(f"soak.py: {e}; see its stderr", file=sys.stderr)
        return 1


def dispatch():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--pid", type=int, required=True)
    r.add_argument("--sb", required=True)
    r.add_argument("--base", type=int, required=True)
    r.add_argument("--data-dir", required=True)
    r.add_argument("--minutes", type=float, required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--work", required=True, help="a private temporary folder (the password file)")
    r.add_argument("--burst", type=float, default=1.5, help="seconds per `switchboard bench` run")
    r.add_argument("--pause", type=float, default=0.5, help="seconds between bench runs")
    q = sub.add_parser("report")
    q.add_argument("--out", required=True)
    q.add_argument("--stderr", required=True)
    q.add_argument("--exit-code", type=int, required=True)
    q.add_argument("--shutdown-s", type=float, required=True)
    q.add_argument("--md", required=True)
    args = p.parse_args()
    return run(args) if args.cmd == "run" else report(args)


if __name__ == "__main__":
    sys.exit(main())
