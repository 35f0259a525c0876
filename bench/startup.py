#!/usr/bin/env python3
"""Start-up time: from exec of `switchboard serve` to its ready file, which
it writes once every service and the dashboard are bound.

The first start of a data directory creates the admin account (an argon2
hash, deliberately slow) and is reported apart; the rest start on the same
directory. Prints one JSON object: first_ms, each run's ms, the binary's
size and its stripped size.

    bench/startup.py target/release/switchboard [RUNS] [PORT_BASE]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

binary = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
port_base = sys.argv[3] if len(sys.argv) > 3 else "31000"
work = tempfile.mkdtemp(prefix="switchboard-startup.")
env = dict(os.environ, SWITCHBOARD_ADMIN_PASSWORD="startup-bench-password", RUST_LOG="warn")


def once():
    ready = os.path.join(work, "ready.json")
    if os.path.exists(ready):
        os.unlink(ready)
    t0 = time.monotonic()
    p = subprocess.Popen(
        [binary, "serve", "--data-dir", os.path.join(work, "data"),
         "--port-base", port_base, "--ready-file", ready],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Polled every 0.2 ms: the figure is milliseconds, the poll a rounding.
    while not os.path.exists(ready):
        if p.poll() is not None:
            sys.exit(f"serve exited early: {p.stderr.read().decode(errors='replace')}")
        if time.monotonic() - t0 > 30:
            p.kill()
            sys.exit("no ready file within 30 s")
        time.sleep(0.0002)
    elapsed = (time.monotonic() - t0) * 1000
    p.terminate()
    p.wait(timeout=30)
    return round(elapsed, 3)


try:
    first = once()
    each = [once() for _ in range(runs)]
    stripped = os.path.join(work, "stripped")
    subprocess.run(["strip", "-o", stripped, binary], check=True)
    print(json.dumps({
        "bench": "startup", "first_ms": first, "runs_ms": each,
        "binary_bytes": os.path.getsize(binary),
        "stripped_bytes": os.path.getsize(stripped),
    }))
finally:
    shutil.rmtree(work, ignore_errors=True)
