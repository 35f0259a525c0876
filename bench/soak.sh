#!/usr/bin/env bash
# Soak: one release switchboard under a mixed load for MINUTES, to show that
# nothing leaks: no processes, fds, threads or memory left behind.
#
#   bench/soak.sh              # 30 minutes (about 31 with the build cached)
#   bench/soak.sh 3            # or --minutes 3; 0.5 for a quick check (too
#                              # short to measure RSS drift: that goal says so)
#
# What it does (bench/soak.py holds the load, the sampler and the verdict):
# 1. builds release, starts switchboard on 127.0.0.1 ports BASE..BASE+6 and
#    BASE+80 for the web (BASE = $SOAK_BASE_PORT, default 19200) with a fresh
#    data dir in /tmp, the admin password from $SWITCHBOARD_ADMIN_PASSWORD
#    (random if unset), a key, exec shell mode on, and the limits raised that
#    would otherwise make the load generator fail;
# 2. runs, until the time is up: `switchboard bench` echo / udp / time / exec /
#    http, one at a time, in runs of $SOAK_BURST s (1.5) with $SOAK_PAUSE s
#    (0.5) between, so 2 cores are busy but not saturated; beside them, exec
#    commands that end, that the server must kill (timeout, output cap) and
#    whose client goes away (FIN, reset, while silent, after not reading),
#    uploads whole and cut off, dashboard sign-ins, API reads, live streams
#    held 3 s, and wrong passwords;
# 3. samples the server every 10 s: RSS, open fds, threads, child processes, and
#    `sleep 777` processes anywhere (every command meant to be killed or left
#    starts one in the background);
# 4. stops the load, waits (at most 90 s) for quiet, samples again, sends
#    SIGTERM and checks: no `sleep 777` left, no `panicked` in stderr, fds,
#    threads and children back at the baseline taken after start-up (no
#    tolerance: the audit log is opened at start-up), RSS drift after warm-up
#    <= 5 % (warm-up: the first 20 % of the run, at most 5 minutes; drift:
#    median of the last quarter of the samples after it vs the first quarter),
#    nothing left in files/ by cut-off uploads, a clean exit, and a load that
#    ran as meant (every part did its work; no errors or unexpected replies).
#
# Bounds: every `switchboard bench` run is -d 1.5s, or for uploads -n 4 of 1 MiB
# (and killed after 60 s regardless); every Python client has socket timeouts;
# the load stops at MINUTES, the quiet wait at 90 s, and the server gets 30 s
# to exit before SIGKILL. Loopback only.
#
# Reading the results: the table printed at the end (also bench/SOAK.md, which
# BENCHMARKS.md links to); target/soak/samples.csv has one
# row per sample (t_s, phase, rss_kib, fds, threads, children, sleep777, CPU %);
# target/soak/server.err is the server's log. Exit status 1 when a goal is
# missed. Not part of the test command.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; }
MINUTES=30
while [ $# -gt 0 ]; do
    case $1 in
        --minutes) MINUTES=${2:?--minutes needs a number}; shift 2 ;;
        --minutes=*) MINUTES=${1#*=}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) MINUTES=$1; shift ;;
    esac
done
if ! [[ $MINUTES =~ ^[0-9]+(\.[0-9]+)?$ ]] || ! python3 -c "import sys; sys.exit(not 0 < float(sys.argv[1]) <= 600)" "$MINUTES"; then
    echo "bench/soak.sh: MINUTES must be a number above 0 and at most 600, not \`$MINUTES'" >&2
    exit 2
fi

BASE=${SOAK_BASE_PORT:-19200}
OUT=target/soak
MD=${SOAK_MD:-bench/SOAK.md}
SOAK_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then SOAK_COMMIT="$SOAK_COMMIT+changes"; fi
export SOAK_COMMIT

# Orphans are counted machine-wide by their marker: one already there would
# be blamed on this run.
if pgrep -f '(^|[[:space:]])sleep 777([[:space:]]|$)' >/dev/null; then
    echo "bench/soak.sh: processes matching 'sleep 777' are already running (pgrep -af 'sleep 777'); end them first" >&2
    exit 2
fi

echo "building (release)..." >&2
cargo build --release --locked --quiet --bin switchboard
SB=target/release/switchboard

WORK=$(mktemp -d /tmp/switchboard-soak.XXXXXX)
SB_PID=
DRIVER_PID=
# Waits (at most $2 tenths of a second) for process $1 to exit; a zombie
# (exited, not yet waited for) counts as exited.
wait_exit() {
    local i state
    for i in $(seq 1 "$2"); do
        state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || echo gone)
        if [ "$state" = Z ] || [ "$state" = gone ]; then return 0; fi
        sleep 0.1
    done
    return 1
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$DRIVER_PID" ]; then
        kill -TERM "$DRIVER_PID" 2>/dev/null || true
        wait_exit "$DRIVER_PID" 100 || kill -KILL "$DRIVER_PID" 2>/dev/null || true
        wait "$DRIVER_PID" 2>/dev/null || true
    fi
    if [ -n "$SB_PID" ]; then
        kill -TERM "$SB_PID" 2>/dev/null || true
        wait_exit "$SB_PID" 300 || kill -KILL "$SB_PID" 2>/dev/null || true
        wait "$SB_PID" 2>/dev/null || true
    fi
    if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
rm -rf "$OUT" && mkdir -p "$OUT"

export SWITCHBOARD_ADMIN_PASSWORD=${SWITCHBOARD_ADMIN_PASSWORD:-soak-$RANDOM-$RANDOM-$RANDOM-$RANDOM}
export SWITCHBOARD_KEY=${SWITCHBOARD_KEY:-$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}

# Raised limits, each because the default would fail the load generator:
# udp-echo and time answer 5,000 datagrams/s per peer by default (bench
# udp/time send as fast as replies come); exec runs 8 commands at once by
# default, and bench exec, the Python clients and commands still being
# killed and reaped can together briefly hold more.
"$SB" --data-dir "$WORK/data" \
    --set "services.echo.listen=127.0.0.1:$((BASE + 0))" \
    --set "services.udp-echo.listen=127.0.0.1:$((BASE + 1))" \
    --set "services.time.listen=127.0.0.1:$((BASE + 2))" \
    --set "services.exec.listen=127.0.0.1:$((BASE + 3))" \
    --set "services.files.listen=127.0.0.1:$((BASE + 4))" \
    --set "services.files-classic.listen=127.0.0.1:$((BASE + 5))" \
    --set "services.login.listen=127.0.0.1:$((BASE + 6))" \
    --set "web.listen=127.0.0.1:$((BASE + 80))" \
    --set "services.exec.allow=sh,echo,uname,date" \
    --set "services.exec.shell=true" \
    --set "services.exec.max_commands=16" \
    --set "services.udp-echo.peer_rate=10000000" \
    --set "services.time.peer_rate=10000000" \
    >"$OUT/server.out" 2>"$OUT/server.err" &
SB_PID=$!

# Waits (bounded: 10 s) until something listens on a TCP port.
wait_port() {
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        if ! kill -0 "$SB_PID" 2>/dev/null; then break; fi
        sleep 0.05
    done
    echo "bench/soak.sh: nothing listens on port $1; the server said:" >&2
    tail -n 20 "$OUT/server.err" >&2
    exit 1
}
for p in 0 3 4 5 6 80; do wait_port $((BASE + p)); done
echo "switchboard (pid $SB_PID) up on 127.0.0.1:$BASE-$((BASE + 6)), web :$((BASE + 80)); load for $MINUTES min" >&2

python3 bench/soak.py run --pid "$SB_PID" --sb "$SB" --base "$BASE" \
    --data-dir "$WORK/data" --minutes "$MINUTES" --out "$OUT" --work "$WORK" \
    --burst "${SOAK_BURST:-1.5}" --pause "${SOAK_PAUSE:-0.5}" &
DRIVER_PID=$!
DRIVER_RC=0
wait "$DRIVER_PID" || DRIVER_RC=$?
DRIVER_PID=
if [ "$DRIVER_RC" != 0 ]; then
    echo "bench/soak.sh: the load driver failed (status $DRIVER_RC); the server's last lines:" >&2
    tail -n 20 "$OUT/server.err" >&2
    exit 1
fi

echo "SIGTERM to the server" >&2
T0=$EPOCHREALTIME
kill -TERM "$SB_PID"
if ! wait_exit "$SB_PID" 300; then
    echo "bench/soak.sh: the server did not exit within 30 s of SIGTERM; killed" >&2
    kill -KILL "$SB_PID" 2>/dev/null || true
fi
SB_RC=0
wait "$SB_PID" || SB_RC=$?
SB_PID=
SHUTDOWN_S=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$T0" "$EPOCHREALTIME")

python3 bench/soak.py report --out "$OUT" --stderr "$OUT/server.err" \
    --exit-code "$SB_RC" --shutdown-s "$SHUTDOWN_S" --md "$MD"
