#!/usr/bin/env bash
# Measures a release switchboard against the tutorials' own servers (Python,
# bench/reference/*.py), bare tokio servers (bench/reference/bare_*.rs) and
# socat, all on loopback in one run. Keeps every raw report in
# bench/results/<date>-<commit>/ and writes BENCHMARKS.md from it with
# bench/report.py, so every figure can be recomputed (bench/METHOD.md).
#
#   bench/run.sh            # about 10 minutes on 2 cores (a cached build)
#   ROUNDS=1 SECS=2 bench/run.sh   # a quicker, noisier pass
#   bench/run.sh --quick    # under 2 minutes: only the headline figures,
#                           # compared with the newest full run; exit 1 if
#                           # any fell more than 10 %. Writes nothing tracked.
#   bench/run.sh --proxy    # only the tcp-proxy comparison (haproxy, socat),
#                           # into target/bench-proxy; PROXY_MIB=64 SECS=1
#                           # ROUNDS=1 for a smoke pass. Writes nothing tracked.
#   bench/run.sh --toxics   # only the toxics' accuracy and no-toxic cost
#                           # (bench/sections/toxics.sh), into bench/results.
#
# Needs python3, socat, curl and haproxy (installed with apt-get when
# missing and running as root). Not part of the test command.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=""
PROXY_ONLY=""
case "${1:-}" in
    --quick) QUICK=1 ;;
    # Starts what --quick starts, then runs only the proxy section.
    --proxy) QUICK=1 PROXY_ONLY=1 ;;
    --toxics) QUICK=1 TOXICS_ONLY=1 RESULTS=${RESULTS:-target/bench-toxics} ;; # bench/sections/toxics.sh
    "") ;;
    *) echo "usage: bench/run.sh [--quick | --proxy | --toxics]" >&2; exit 2 ;;
esac

ROUNDS=${ROUNDS:-3}   # each timed figure is the median of this many rounds
SECS=${SECS:-3}       # seconds per timed run
IDLE_CONNS=${IDLE_CONNS:-10000}   # connections `bench idle` holds
BIG_IDLE=${BIG_IDLE:-100000}      # the large idle hold (0: skip it)
OUT=${OUT:-BENCHMARKS.md}
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
CHANGES=false
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then CHANGES=true; fi
BASE=${BASE_PORT:-19000}

# Where the raw reports go: a new directory per full run (tracked, small
# JSON only); one scratch directory for quick runs.
if [ -n "$PROXY_ONLY" ]; then
    RES=${RESULTS:-target/bench-proxy}
    rm -rf "$RES"
elif [ -n "$QUICK" ]; then
    RES=${RESULTS:-target/bench-quick}
    rm -rf "$RES"
else
    RES=bench/results/$(date -u +%F)-$COMMIT
    if [ "$CHANGES" = true ]; then RES=$RES-changes; fi
    if [ -e "$RES" ]; then
        i=2
        while [ -e "$RES-$i" ]; do i=$((i + 1)); done
        RES=$RES-$i
    fi
fi

TOOLS=(python3 socat curl haproxy)
if [ -n "$QUICK" ]; then TOOLS=(python3); fi
if [ -n "$PROXY_ONLY" ]; then TOOLS=(python3 socat haproxy); fi
for tool in "${TOOLS[@]}"; do
    if ! command -v "$tool" >/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            # Package lists may be empty (a fresh container): update once.
            apt-get install -y -qq "$tool" >/dev/null 2>&1 ||
                { apt-get update -qq >/dev/null && apt-get install -y -qq "$tool" >/dev/null; }
        else
            echo "bench/run.sh needs $tool" >&2
            exit 1
        fi
    fi
done

echo "building (release)..." >&2
if [ -n "$QUICK" ]; then
    cargo build --release --quiet --bin switchboard --example bare-echo --example bare-udp
else
    cargo build --release --quiet --bin switchboard --example bare-echo --example bare-udp --example bare-recv
fi
# SB=path: measure another build (e.g. a copy kept from before a change).
# Where cargo put them: $CARGO_TARGET_DIR when set.
SB=${SB:-${CARGO_TARGET_DIR:-target}/release/switchboard}
BARE=${CARGO_TARGET_DIR:-target}/release/examples

WORK=$(mktemp -d /tmp/switchboard-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
    rm -rf "${SHM:-/nonexistent}"
    if [ -f "$RES/run.json" ] && grep -q '"finished": false' "$RES/run.json"; then
        echo "the run stopped half-way: $RES holds what it measured (report.py says so)" >&2
    fi
}
trap cleanup EXIT
# 100,000 idle connections need more open files than most defaults: root
# raises the hard limit; anyone raises the soft limit to the hard one.
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# A server promises its instances' caps against its open-file limit (less
# the dashboard's 1,024 and a margin) and refuses to start past it, so the
# caps raised for the run must fit that limit: where it is small (20,000
# here, not raisable), the instances the bench loads lightly keep
# SMALL_MAX, echo what its 10,000-connection runs need, and the capturing
# instance the rest (its many-connection run then uses what it has).
NOFILE=$(ulimit -n)
if [ "$NOFILE" -ge 250000 ]; then
    ECHO_MAX=200000 CAP_MAX=20000 SMALL_MAX=1024 PX_MAX=20000
else
    SMALL_MAX=256
    ECHO_MAX=$((IDLE_CONNS > 10000 ? IDLE_CONNS + 100 : 10100))
    CAP_MAX=$((NOFILE - 1280 - 5 * SMALL_MAX - ECHO_MAX - 600))
    PX_MAX=$(((NOFILE - 1280 - 100) / 2)) # two sockets a connection
fi
CAP_MANY=$((CAP_MAX < 10050 ? CAP_MAX - 50 : 10000))
mkdir -p "$WORK/sb" "$WORK/py-files" "$WORK/bare-files" "$WORK/socat" "$RES"

# run.json: what report.py says about the machine and the settings. Written
# first (finished: false) so a run that stops half-way still reads as such.
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//' || true)
SOCAT_V=$(socat -V 2>/dev/null | grep -m1 'socat version' || echo socat)
python3 - "$RES/run.json" "$COMMIT" "$CHANGES" "$(nproc)" "${CPU:-?}" "$(uname -r)" \
    "$(python3 --version 2>&1)" "$SOCAT_V" "$ROUNDS" "$SECS" "${QUICK:+quick}" "$IDLE_CONNS" <<'PY'
import datetime, json, sys
path, commit, changes, cores, cpu, kernel, python, socat, rounds, secs, mode, idle = sys.argv[1:]
mem = "?"
with open("/proc/meminfo") as f:
    mem = f"{int(f.readline().split()[1]) / 1048576:.0f} GiB"
now = datetime.datetime.now(datetime.timezone.utc)
json.dump({
    "date": now.date().isoformat(), "started": now.isoformat(timespec="seconds"),
    "commit": commit, "changes": changes == "true", "mode": mode or "full",
    "cores": int(cores), "cpu": cpu, "mem": mem, "kernel": kernel,
    "python": python, "socat": socat, "rounds": int(rounds), "secs": float(secs) if "." in secs else int(secs),
    "idle_connections": int(idle), "finished": False,
}, open(path, "w"), indent=1)
PY

# Waits (bounded) until something listens on a TCP port.
wait_port() {
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    exit 1
}

start() { # start NAME CMD... : runs CMD in the background, remembers its pid
    local name=$1; shift
    "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    eval "PID_${name//-/_}=$!"
}

# Start-up first, with nothing else running: exec to every port bound (the
# ready file), 20 starts on one data directory; the first, which creates the
# admin account (argon2), apart. Also the binary's size, stripped.
if [ -z "$QUICK" ]; then
    echo "start-up time" >&2
    echo startup >>"$RES/order.txt"
    python3 bench/startup.py "$SB" 20 $((BASE + 300)) >"$RES/startup.json"
fi

# A second files-classic instance whose folder is on tmpfs (/dev/shm), to
# compare with a socat copy to tmpfs with no disk in the way.
SHM=$(mktemp -d /dev/shm/switchboard-bench.XXXXXX)
mkdir -p "$SHM/sb" "$SHM/socat"
printf '[services.classic-shm]\nkind = "files-classic"\nlisten = "127.0.0.1:%s"\nfolder = "%s"\nmax_connections = %s\n' \
    $((BASE + 7)) "$SHM/sb" "$SMALL_MAX" >"$WORK/sb.toml"
# And an echo instance with the wire inspector capturing every connection.
printf '[services.echo-cap]\nkind = "echo"\nlisten = "127.0.0.1:%s"\ncapture = true\nmax_connections = %s\nmax_connections_per_peer = %s\n' \
    $((BASE + 8)) "$CAP_MAX" "$CAP_MAX" >>"$WORK/sb.toml"

# switchboard, with the limits a load test needs raised (see BENCHMARKS.md).
PASSWORD=bench-$RANDOM-$RANDOM-$RANDOM
export SWITCHBOARD_ADMIN_PASSWORD=$PASSWORD
start sb env \
    SWITCHBOARD_ECHO_LISTEN=127.0.0.1:$((BASE + 0)) \
    SWITCHBOARD_UDP_ECHO_LISTEN=127.0.0.1:$((BASE + 1)) \
    SWITCHBOARD_TIME_LISTEN=127.0.0.1:$((BASE + 2)) \
    SWITCHBOARD_EXEC_LISTEN=127.0.0.1:$((BASE + 3)) \
    SWITCHBOARD_FILES_LISTEN=127.0.0.1:$((BASE + 4)) \
    SWITCHBOARD_FILES_CLASSIC_LISTEN=127.0.0.1:$((BASE + 5)) \
    SWITCHBOARD_LOGIN_LISTEN=127.0.0.1:$((BASE + 6)) \
    SWITCHBOARD_WEB_LISTEN=127.0.0.1:$((BASE + 80)) \
    SWITCHBOARD_ECHO_MAX_CONNECTIONS=$ECHO_MAX \
    SWITCHBOARD_ECHO_MAX_CONNECTIONS_PER_PEER=$ECHO_MAX \
    SWITCHBOARD_EXEC_MAX_CONNECTIONS=$SMALL_MAX \
    SWITCHBOARD_FILES_MAX_CONNECTIONS=$SMALL_MAX \
    SWITCHBOARD_FILES_CLASSIC_MAX_CONNECTIONS=$SMALL_MAX \
    SWITCHBOARD_LOGIN_MAX_CONNECTIONS=$SMALL_MAX \
    SWITCHBOARD_UDP_ECHO_PEER_RATE=10000000 \
    SWITCHBOARD_TIME_PEER_RATE=10000000 \
    SWITCHBOARD_EXEC_MAX_COMMANDS=32 \
    RUST_LOG=switchboard=warn \
    "$SB" --data-dir "$WORK/sb" --config "$WORK/sb.toml"
start bare-echo "$BARE/bare-echo" 127.0.0.1:$((BASE + 110))
start bare-udp "$BARE/bare-udp" 127.0.0.1:$((BASE + 111))
if [ -z "$QUICK" ]; then
    start py-echo python3 bench/reference/echo_server.py 127.0.0.1 $((BASE + 100))
    start py-udp python3 bench/reference/udp_server.py 127.0.0.1 $((BASE + 101))
    start py-files python3 bench/reference/file_server.py 127.0.0.1 $((BASE + 102)) "$WORK/py-files"
    start py-exec python3 bench/reference/exec_server.py 127.0.0.1 $((BASE + 103))
    start bare-recv "$BARE/bare-recv" 127.0.0.1:$((BASE + 112)) "$WORK/bare-files"
    for p in 0 3 4 5 80 100 102 103 110 112; do wait_port $((BASE + p)); done
else
    for p in 0 110; do wait_port $((BASE + p)); done
fi

# settle PID [THREADS]: waits (at most 120 s) until process PID is nearly
# idle (<= 2 ticks in 0.5 s) and, given THREADS, has at most that many
# threads left: a Python server still unwinding thousands of connections
# would otherwise slow the next run down, whichever server it measures, or
# time it out. Its 10,000 threads took 40 s of both cores to end on a fresh
# machine (2026-12-07), busy all along; 30 s was not enough.
settle() {
    local a b threads
    for _ in $(seq 1 240); do
        [ -d "/proc/$1" ] || return 0 # it ended: nothing to wait for
        threads=$(awk '/^Threads:/ {print $2}' "/proc/$1/status")
        a=$(awk '{print $14 + $15}' "/proc/$1/stat")
        sleep 0.5
        b=$(awk '{print $14 + $15}' "/proc/$1/stat")
        if [ "$threads" -le "${2:-$threads}" ] && [ $((b - a)) -le 2 ]; then return 0; fi
    done
    echo "process $1 did not settle in 120 s" >&2
}

# run LABEL ARGS... : one `switchboard bench` run, its JSON kept as
# $RES/LABEL.json and its label appended to $RES/order.txt.
run() {
    local label=$1 kind=$2; shift 2
    echo "  $label" >&2
    echo "$label" >>"$RES/order.txt"
    # --json before the arguments: after a `--` it would be part of the command.
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    "$SB" bench "$kind" --json --allow-errors "$@" >"$RES/$label.json"
    # The machine is shared: each report keeps the load average (1 min)
    # it started at, and report.py states their range.
    python3 -c 'import json, sys
r = json.load(open(sys.argv[1])); r["loadavg_1m"] = float(sys.argv[2])
json.dump(r, open(sys.argv[1], "w"), indent=2)' "$RES/$label.json" "$load"
}

# in_order ROUND ITEM... : the items as given in odd rounds, reversed in even
# ones, so each of a pair runs first in every other round (bench/METHOD.md).
in_order() {
    local r=$1 i; shift
    local items=("$@")
    if [ $((r % 2)) = 1 ]; then
        printf '%s\n' "${items[@]}"
    else
        for ((i = ${#items[@]} - 1; i >= 0; i--)); do printf '%s\n' "${items[$i]}"; done
    fi
}

E=$((BASE + 0)) U=$((BASE + 1)) T=$((BASE + 2)) X=$((BASE + 3)) F=$((BASE + 4)) C=$((BASE + 5))
PE=$((BASE + 100)) PU=$((BASE + 101)) PF=$((BASE + 102)) PX=$((BASE + 103))
BE=$((BASE + 110)) BU=$((BASE + 111)) BR=$((BASE + 112))
KEY=(--key-file "$WORK/sb/key")

# --- tcp-proxy against haproxy and socat ------------------------------------
# Three forwarders on loopback in front of bare-echo, plus bare-echo direct
# as the floor: switchboard's tcp-proxy (a process of its own, built-in
# services off, so its CPU is the proxy's), haproxy (mode tcp, defaults
# but maxconn 5000, which fits a 20000 fd limit; no splice) and socat (a
# process per connection). Per round and forwarder, in alternating order:
# PROXY_MIB MiB sent through it to the echo and back (a socat client, timed
# to the last byte back, so 2 x PROXY_MIB MiB cross the forwarder) and
# `bench echo` 64 B round trips at 50 connections for SECS. CPU is the
# forwarder's own, children included (socat forks), from /proc before and
# after each run. Raw figures go to $RES/proxy-*.json (and their labels to
# order.txt), which report.py renders with the two proxy targets; the
# medians also to $RES/proxy-summary.md and stderr.
PROXY_MIB=${PROXY_MIB:-1024}
proxy_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; }
proxy_section() {
    local PS=$((BASE + 130)) PH=$((BASE + 131)) PO=$((BASE + 132)) hz n
    local r who port pid c0 c1 t0 t1
    hz=$(getconf CLK_TCK)
    mkdir -p "$WORK/px"
    {
        printf '[web]\nlisten = "127.0.0.1:%s"\n' $((BASE + 139))
        for n in echo udp-echo time exec files files-classic login; do
            printf '[services.%s]\nenabled = false\n' "$n"
        done
        printf '[services.px]\nkind = "tcp-proxy"\nlisten = "127.0.0.1:%s"\n' "$PS"
        printf 'upstream = "127.0.0.1:%s"\nmax_connections = %s\n' "$BE" "$PX_MAX"
        printf 'max_connections_per_peer = %s\n' "$PX_MAX"
    } >"$WORK/px/switchboard.toml"
    {
        printf 'global\n    maxconn 5000\n'
        printf 'defaults\n    mode tcp\n    timeout connect 5s\n'
        printf '    timeout client 120s\n    timeout server 120s\n'
        printf 'listen echo\n    bind 127.0.0.1:%s\n    server echo 127.0.0.1:%s\n' "$PH" "$BE"
    } >"$WORK/px/haproxy.cfg"
    start px-sb env RUST_LOG=switchboard=warn "$SB" --config "$WORK/px/switchboard.toml" --data-dir "$WORK/px/data"
    start px-haproxy haproxy -db -f "$WORK/px/haproxy.cfg"
    start px-socat socat TCP-LISTEN:$PO,bind=127.0.0.1,reuseaddr,fork,backlog=1024 TCP:127.0.0.1:$BE
    for port in $PS $PH $PO; do wait_port "$port"; done
    echo "tcp-proxy vs haproxy vs socat: $PROXY_MIB MiB through and back, 64 B round trips at 50 connections" >&2
    head -c $((PROXY_MIB << 20)) /dev/zero >"$WORK/px/payload"
    for r in $(seq 1 "$ROUNDS"); do
        for who in $(in_order "$r" sb haproxy socat direct); do
            case $who in
                sb) port=$PS pid=$PID_px_sb ;;
                haproxy) port=$PH pid=$PID_px_haproxy ;;
                socat) port=$PO pid=$PID_px_socat ;;
                direct) port=$BE pid=$PID_bare_echo ;;
            esac
            echo "  proxy-bulk-$who-$r" >&2
            echo "proxy-bulk-$who-$r" >>"$RES/order.txt"
            c0=$(proxy_ticks "$pid") t0=$EPOCHREALTIME
            # Reads the file, writes what comes back to /dev/null; -t 60:
            # after our EOF, wait for the echo's (the last byte back).
            socat -t 60 -b 65536 "OPEN:$WORK/px/payload,rdonly!!OPEN:/dev/null,wronly" TCP:127.0.0.1:$port
            t1=$EPOCHREALTIME
            sleep 0.2 # socat reaps its child: its CPU lands in the parent's
            c1=$(proxy_ticks "$pid")
            python3 -c 'import json,sys
t0, t1, c0, c1, hz, mib = map(float, sys.argv[2:])
s, cpu = t1 - t0, (c1 - c0) / hz
moved = 2 * mib * 1048576
print(json.dumps({"bench": "proxy-bulk", "forwarder": sys.argv[1], "mib_each_way": mib,
    "elapsed_s": s, "mib_per_s": mib / s, "cpu_s": cpu, "cpu_ns_per_byte": cpu * 1e9 / moved}))' \
                "$who" "$t0" "$t1" "$c0" "$c1" "$hz" "$PROXY_MIB" >"$RES/proxy-bulk-$who-$r.json"
            echo "  proxy-rtt-$who-$r" >&2
            echo "proxy-rtt-$who-$r" >>"$RES/order.txt"
            c0=$(proxy_ticks "$pid")
            "$SB" bench echo --json --allow-errors 127.0.0.1:$port -c 50 -d "${SECS}s" --timeout 10s >"$RES/proxy-rtt-$who-$r.json"
            sleep 0.2
            c1=$(proxy_ticks "$pid")
            python3 -c 'import json,sys
path, c0, c1, hz = sys.argv[1], *map(float, sys.argv[2:])
r = json.load(open(path))
r["forwarder_cpu_s"] = (c1 - c0) / hz
r["forwarder_cpu_us_per_op"] = r["forwarder_cpu_s"] * 1e6 / max(r["requests"], 1)
json.dump(r, open(path, "w"))' "$RES/proxy-rtt-$who-$r.json" "$c0" "$c1" "$hz"
        done
    done
    rm -f "$WORK/px/payload"
    python3 bench/proxy_summary.py "$RES" "$PROXY_MIB" "$SECS" | tee "$RES/proxy-summary.md" >&2
}
. bench/sections/toxics.sh # toxics: accuracy, no-toxic cost (defines; runs in full and --toxics runs)
if [ -n "$PROXY_ONLY" ]; then
    proxy_section
    python3 -c 'import json, sys
meta = json.load(open(sys.argv[1]))
meta.update(finished=True, mode="proxy")
json.dump(meta, open(sys.argv[1], "w"), indent=1)' "$RES/run.json"
    exit 0
fi
if [ -n "$QUICK" ]; then
    SERVERS=(sb bare) ECHO_CONNS=(50 500) UDP_SOCKS=(50)
else
    SERVERS=(sb bare py) ECHO_CONNS=(1 50 500 5000 10000) UDP_SOCKS=(1 50)
fi

echo "$IDLE_CONNS idle connections (first, while every server is fresh)" >&2
run idle-sb idle $E -c "$IDLE_CONNS" --hold 3s --server-pid "$PID_sb" --timeout 30s
if [ -z "$QUICK" ]; then
    run idle-bare idle $BE -c "$IDLE_CONNS" --hold 3s --server-pid "$PID_bare_echo" --timeout 30s
    run idle-py idle $PE -c "$IDLE_CONNS" --hold 3s --server-pid "$PID_py_echo" --timeout 30s
    settle "$PID_py_echo" 2
fi

echo "echo, 64 B round trips" >&2
"$SB" bench echo $E -c 50 -d 1s --json --allow-errors >"$WORK/warmup.json"
for conns in "${ECHO_CONNS[@]}"; do
    for r in $(seq 1 "$ROUNDS"); do
        for who in $(in_order "$r" "${SERVERS[@]}"); do
            case $who in
                sb) run "echo-sb-$conns-$r" echo $E -c "$conns" -d "${SECS}s" --server-pid "$PID_sb" --timeout 10s ;;
                bare) run "echo-bare-$conns-$r" echo $BE -c "$conns" -d "${SECS}s" --server-pid "$PID_bare_echo" --timeout 10s ;;
                py)
                    # Python's threaded server is not run at 10,000 threads.
                    if [ "$conns" -gt 5000 ]; then continue; fi
                    run "echo-py-$conns-$r" echo $PE -c "$conns" -d "${SECS}s" --server-pid "$PID_py_echo" --timeout 10s
                    settle "$PID_py_echo" 2
                    ;;
            esac
        done
    done
done

# The wire inspector's cost: echo at 50 connections on the capturing
# instance against the plain one, alternated; then 10,000 captured
# connections exchanging 1 KiB, the server's RSS against the capture budget.
if [ -z "$QUICK" ]; then
    echo "echo with the wire inspector capturing" >&2
    for r in $(seq 1 "$ROUNDS"); do
        for who in $(in_order "$r" off on); do
            if [ "$who" = off ]; then port=$E; else port=$((BASE + 8)); fi
            run "capture-$who-$r" echo $port -c 50 -d "${SECS}s" --server-pid "$PID_sb"
        done
    done
    run "capture-many" echo $((BASE + 8)) -c "$CAP_MANY" -s 1024 -d "${SECS}s" --server-pid "$PID_sb" --timeout 30s
    settle "$PID_sb"
fi

LIVE_BYTES=0
printf '%s\n' "$PASSWORD" >"$WORK/password"

# hold_idle ADDR N SOURCES PID HOLD OUT: holds N idle connections to ADDR in
# the background (a `bench idle` of its own, report to OUT) and returns once
# process PID has them all open (at most 180 s); release_idle ends the hold.
HOLDER=""
hold_idle() {
    local addr=$1 n=$2 sources=$3 pid=$4 hold=$5 out=$6 base fds
    base=$(ls "/proc/$pid/fd" | wc -l)
    "$SB" bench idle --json --allow-errors "$addr" -c "$n" --sources "$sources" --hold "$hold" \
        --server-pid "$pid" --timeout 60s >"$out" 2>"$out.err" &
    HOLDER=$!
    for _ in $(seq 1 1800); do
        fds=$(ls "/proc/$pid/fd" | wc -l)
        if [ $((fds - base)) -ge "$n" ]; then return 0; fi
        if ! kill -0 "$HOLDER" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "the idle hold did not reach $n connections: $(cat "$out.err")" >&2
    exit 1
}
release_idle() {
    kill "$HOLDER" 2>/dev/null || true
    wait "$HOLDER" 2>/dev/null || true
    HOLDER=""
}

if [ -z "$QUICK" ]; then
    echo "echo with the dashboard's live stream open" >&2
    COOKIES=$WORK/cookies
    curl -sf -c "$COOKIES" -H 'content-type: application/json' \
        -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" \
        "http://127.0.0.1:$((BASE + 80))/api/v1/session" >/dev/null
    for r in $(seq 1 "$ROUNDS"); do
        for state in $(in_order "$r" off on); do
            if [ "$state" = off ]; then
                run "live-off-$r" echo $E -c 50 -d "${SECS}s" --server-pid "$PID_sb"
            else
                curl -sfN -b "$COOKIES" "http://127.0.0.1:$((BASE + 80))/api/v1/live" >"$WORK/live-$r.sse" &
                LIVE=$!
                run "live-on-$r" echo $E -c 50 -d "${SECS}s" --server-pid "$PID_sb"
                kill $LIVE 2>/dev/null || true
                wait $LIVE 2>/dev/null || true
            fi
        done
    done
    LIVE_BYTES=$(cat "$WORK"/live-*.sse | wc -c)

    # The dashboard with $IDLE_CONNS connections open (held idle by a bench
    # of their own): /api/v1/connections listing all of them, and the live
    # stream's cost, on and off alternated 10 times (2 s each).
    echo "the dashboard with $IDLE_CONNS open connections" >&2
    hold_idle "$E" "$IDLE_CONNS" 1 "$PID_sb" 90s "$WORK/hold-10k.json"
    run "scale-api-connections" http $((BASE + 80)) --path "/api/v1/connections?limit=$IDLE_CONNS" \
        --password-file "$WORK/password" -c 1 -d "${SECS}s" --server-pid "$PID_sb"
    for r in $(seq 1 10); do
        for state in $(in_order "$r" off on); do
            if [ "$state" = on ]; then
                curl -sfN -b "$COOKIES" "http://127.0.0.1:$((BASE + 80))/api/v1/live" >/dev/null &
                LIVE=$!
            fi
            run "scale-live-$state-$r" echo $E -c 50 -d 2s --server-pid "$PID_sb"
            if [ "$state" = on ]; then kill $LIVE 2>/dev/null || true; wait $LIVE 2>/dev/null || true; fi
        done
    done
    release_idle
fi

echo "UDP echo, 64 B datagrams" >&2
for socks in "${UDP_SOCKS[@]}"; do
    for r in $(seq 1 "$ROUNDS"); do
        for who in $(in_order "$r" "${SERVERS[@]}"); do
            case $who in
                sb) run "udp-sb-$socks-$r" udp $U -c "$socks" -d "${SECS}s" --server-pid "$PID_sb" --timeout 1s ;;
                bare) run "udp-bare-$socks-$r" udp $BU -c "$socks" -d "${SECS}s" --server-pid "$PID_bare_udp" --timeout 1s ;;
                py) run "udp-py-$socks-$r" udp $PU -c "$socks" -d "${SECS}s" --server-pid "$PID_py_udp" --timeout 1s ;;
            esac
        done
    done
done

if [ -z "$QUICK" ]; then
    run "time-sb-1" time $T -c 10 -d "${SECS}s" --server-pid "$PID_sb" --timeout 1s

    echo "exec: echo hi" >&2
    for conns in 1 10; do
        for r in $(seq 1 "$ROUNDS"); do
            for who in $(in_order "$r" sb py); do
                if [ "$who" = sb ]; then
                    run "exec-sb-$conns-$r" exec $X "${KEY[@]}" -c $conns -d "${SECS}s" --server-pid "$PID_sb" -- echo hi
                else
                    run "exec-py-$conns-$r" exec $PX --classic -c $conns -d "${SECS}s" --server-pid "$PID_py_exec" -- echo hi
                fi
            done
        done
    done

    echo "uploads: 1 x 1 GiB and 8 x 128 MiB" >&2
    head -c $((1 << 30)) /dev/urandom >"$WORK/src-1g"
    head -c $((128 << 20)) "$WORK/src-1g" >"$WORK/src-128m"
    # socat_copy LABEL SRC N SYNC: N parallel socat file-to-file copies over loopback
    socat_copy() {
        local label=$1 src=$2 n=$3 sync=$4 size t0 t1 pids=() i
        size=$(stat -c %s "$src")
        rm -f "$WORK"/socat/*
        for i in $(seq 1 "$n"); do
            socat -u TCP-LISTEN:$((BASE + 120 + i)),bind=127.0.0.1,reuseaddr \
                "OPEN:$WORK/socat/out-$i,creat,trunc" &
            pids+=($!)
        done
        for i in $(seq 1 "$n"); do wait_port_socat $((BASE + 120 + i)); done
        echo "  $label" >&2
        echo "$label" >>"$RES/order.txt"
        t0=$EPOCHREALTIME
        for i in $(seq 1 "$n"); do
            socat -u "OPEN:$src" "TCP:127.0.0.1:$((BASE + 120 + i))" &
            pids+=($!)
        done
        wait "${pids[@]}"
        if [ "$sync" = sync ]; then sync "$WORK"/socat/out-*; fi
        t1=$EPOCHREALTIME
        python3 -c "import json,sys; s=float(sys.argv[1]); n=int(sys.argv[2]); z=int(sys.argv[3]); print(json.dumps({'bench': 'socat', 'elapsed_s': s, 'mib_per_s': n*z/s/1048576, 'requests': n, 'bytes': n*z, 'errors': 0}))" \
            "$(python3 -c "print($t1 - $t0)")" "$n" "$size" >"$RES/$label.json"
    }
    # socat_copy_to LABEL SRC DIR: one socat file-to-file copy over loopback into DIR
    socat_copy_to() {
        local label=$1 src=$2 dir=$3 size t0 t1 lp
        size=$(stat -c %s "$src")
        socat -u TCP-LISTEN:$((BASE + 140)),bind=127.0.0.1,reuseaddr "OPEN:$dir/out,creat,trunc" &
        lp=$!
        wait_port_socat $((BASE + 140))
        echo "  $label" >&2
        echo "$label" >>"$RES/order.txt"
        t0=$EPOCHREALTIME
        socat -u "OPEN:$src" "TCP:127.0.0.1:$((BASE + 140))"
        wait "$lp"
        t1=$EPOCHREALTIME
        python3 -c "import json,sys; s=float(sys.argv[1]); z=int(sys.argv[2]); print(json.dumps({'bench': 'socat', 'elapsed_s': s, 'mib_per_s': z/s/1048576, 'requests': 1, 'bytes': z, 'errors': 0}))" \
            "$(python3 -c "print($t1 - $t0)")" "$size" >"$RES/$label.json"
    }
    # A socat listener takes its one connection and exits: probe it with ss, not a connect.
    wait_port_socat() {
        for _ in $(seq 1 200); do
            if ss -ltn "sport = :$1" 2>/dev/null | grep -q LISTEN; then return 0; fi
            sleep 0.05
        done
    }
    clean() { rm -f "$WORK"/sb/files/* "$WORK"/py-files/* "$WORK"/bare-files/* "$WORK"/socat/*; sync; }
    # upload KIND ROUND: one upload measurement (1g: 1 x 1 GiB, 8: 8 x 128 MiB)
    upload() {
        local what=$1 size=$2 r=$3 s p src
        if [ "$size" = 1g ]; then s=1GiB p=1 src=$WORK/src-1g; else s=128MiB p=8 src=$WORK/src-128m; fi
        clean
        case $what in
            files) run "put-files-$size-$r" put $F "${KEY[@]}" -s $s -P $p --server-pid "$PID_sb" --timeout 30s ;;
            classic) run "put-classic-$size-$r" put $C --classic -s $s -P $p --verify-dir "$WORK/sb/files" --server-pid "$PID_sb" --timeout 30s ;;
            py) run "put-py-$size-$r" put $PF --classic -s $s -P $p --verify-dir "$WORK/py-files" --server-pid "$PID_py_files" --timeout 30s ;;
            bare) run "put-bare-$size-$r" put $BR --classic -s $s -P $p --verify-dir "$WORK/bare-files" --server-pid "$PID_bare_recv" --timeout 30s ;;
            socat) socat_copy "put-socat-$size-$r" "$src" $p nosync ;;
            socatsync) socat_copy "put-socatsync-$size-$r" "$src" $p sync ;;
        esac
    }
    for r in $(seq 1 "$ROUNDS"); do
        for size in 1g 8; do
            for what in $(in_order "$r" files classic py bare socat socatsync); do upload "$what" "$size" "$r"; done
        done
    done
    clean

    # The same 1 GiB to tmpfs: files-classic (SHA-256 computed) against a
    # socat copy, nothing but the copy and the hash in the way.
    echo "uploads to tmpfs: 1 x 1 GiB" >&2
    for r in $(seq 1 "$ROUNDS"); do
        for what in $(in_order "$r" classic socat); do
            rm -f "$SHM"/sb/* "$SHM"/socat/*
            if [ "$what" = classic ]; then
                run "shm-classic-$r" put $((BASE + 7)) --classic -s 1GiB -P 1 --server-pid "$PID_sb" --timeout 30s
            else
                socat_copy_to "shm-socat-$r" "$WORK/src-1g" "$SHM/socat"
            fi
        done
    done
    rm -f "$SHM"/sb/* "$SHM"/socat/*

    # The browser's path: 512 MiB with PUT /api/v1/files/NAME (curl, signed
    # in) against the same file with `bench put` straight to the service.
    echo "upload through the dashboard vs straight to files: 512 MiB" >&2
    head -c $((512 << 20)) "$WORK/src-1g" >"$WORK/src-512m"
    CSRF=$(curl -sf -c "$WORK/relay-cookies" -H 'content-type: application/json' \
        -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" \
        "http://127.0.0.1:$((BASE + 80))/api/v1/session" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf_token"])')
    for r in $(seq 1 "$ROUNDS"); do
        for what in $(in_order "$r" relay direct); do
            clean
            if [ "$what" = direct ]; then
                run "relay-direct-$r" put $F "${KEY[@]}" -s 512MiB -P 1 --server-pid "$PID_sb" --timeout 30s
            else
                echo "  relay-web-$r" >&2
                echo "relay-web-$r" >>"$RES/order.txt"
                curl -sf -b "$WORK/relay-cookies" -H "X-CSRF-Token: $CSRF" -H "Origin: http://127.0.0.1:$((BASE + 80))" \
                    -T "$WORK/src-512m" -o /dev/null -w '%{time_total} %{size_upload}\n' \
                    "http://127.0.0.1:$((BASE + 80))/api/v1/files/relay-$r.bin" |
                    python3 -c 'import json,sys; t,z=sys.stdin.read().split(); t=float(t); z=int(float(z)); print(json.dumps({"bench": "relay-put", "elapsed_s": t, "bytes": z, "mib_per_s": z/t/1048576, "requests": 1, "errors": 0}))' \
                    >"$RES/relay-web-$r.json"
            fi
        done
    done
    clean
    rm -f "$WORK"/src-*
    . bench/sections/resume.sh # resumable uploads: 1 GiB with tuspy vs one PUT, on tmpfs

    # The Send page's three paths (an HTTP request per message, one open
    # WebSocket, the server's own client) and the Console's B/S − C/S for
    # `date`, measured from Node as the pages measure them.
    if command -v node >/dev/null; then
        echo "the dashboard's paths (node bench/paths.mjs)" >&2
        echo paths >>"$RES/order.txt"
        SWITCHBOARD_ADMIN_PASSWORD=$PASSWORD node --experimental-websocket --no-warnings \
            bench/paths.mjs "http://127.0.0.1:$((BASE + 80))" 200 20 >"$RES/paths.json"
    else
        echo "skipping the dashboard's paths: no node" >&2
    fi

    echo "dashboard API, signed in" >&2
    run http-services http $((BASE + 80)) --password-file "$WORK/password" -c 10 -d "${SECS}s" --server-pid "$PID_sb"
fi

source bench/sections/perf.sh # issue #33: exec vs a bare spawner, echo vs epoll, tmpfs uploads
if [ -z "$QUICK" ]; then proxy_section; fi

# $BIG_IDLE idle connections held (from 5 loopback addresses: one has about
# 28,000 ports towards one server address), on switchboard and on bare
# tokio; while they are held, a new echo client and (switchboard) the
# dashboard's /metrics and service list, timed.
if [ -z "$QUICK" ] && [ "$BIG_IDLE" -gt 0 ]; then
    if [ "$(ulimit -n)" -lt $((BIG_IDLE + 5000)) ]; then
        echo "skipping $BIG_IDLE idle connections: the open-file limit is $(ulimit -n)" >&2
        printf '{"bench": "idle-big", "skipped": "open-file limit %s"}\n' "$(ulimit -n)" >"$RES/idle-big-skipped.json"
    else
        echo "$BIG_IDLE idle connections, and what is served meanwhile" >&2
        for who in sb bare; do
            if [ "$who" = sb ]; then addr=$E pid=$PID_sb; else addr=$BE pid=$PID_bare_echo; fi
            echo "  idle-big-$who" >&2
            echo "idle-big-$who" >>"$RES/order.txt"
            hold_idle "$addr" "$BIG_IDLE" 5 "$pid" 40s "$RES/idle-big-$who.json"
            run "idle-big-$who-echo" echo "$addr" -c 1 -d "${SECS}s" --server-pid "$pid"
            if [ "$who" = sb ]; then
                run idle-big-sb-metrics http $((BASE + 80)) --path /metrics \
                    --password-file "$WORK/password" -c 1 -d "${SECS}s" --server-pid "$pid"
                run idle-big-sb-services http $((BASE + 80)) --path /api/v1/services \
                    --password-file "$WORK/password" -c 1 -d "${SECS}s" --server-pid "$pid"
            fi
            # The holder writes its report when its hold ends.
            wait "$HOLDER"
            rm -f "$RES/idle-big-$who.json.err"
            settle "$pid"
        done
    fi
fi

# The run is complete: say so in run.json, with what only the script knows.
python3 - "$RES/run.json" "$LIVE_BYTES" <<'PY'
import json, sys
path, live = sys.argv[1], int(sys.argv[2])
meta = json.load(open(path))
meta["finished"] = True
# The machine's load when the run ended: report.py --check weighs a fall
# against it (a loaded machine makes every ratio noisy).
meta["loadavg"] = [round(x, 2) for x in __import__("os").getloadavg()]
if meta["mode"] == "full":
    meta["live_bytes"] = live
json.dump(meta, open(path, "w"), indent=1)
PY

if [ -n "$QUICK" ]; then
    python3 bench/report.py --check "$RES"
else
    echo "writing $OUT" >&2
    python3 bench/report.py "$RES" --out "$OUT"
    echo "done: $OUT, from the raw reports in $RES (commit them with it)" >&2
fi
