#!/usr/bin/env bash
# Measures a release switchboard against the tutorials' own servers (Python,
# bench/reference/*.py), bare tokio servers (bench/reference/bare_*.rs) and
# socat, all on loopback in one run, and writes BENCHMARKS.md.
#
#   bench/run.sh            # about 10 minutes on 2 cores (a cached build)
#   ROUNDS=1 SECS=2 bench/run.sh   # a quicker, noisier pass
#
# Needs python3, socat and curl (installed with apt-get when missing and
# running as root). Not part of the test command.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}   # each timed figure is the median of this many runs, interleaved
SECS=${SECS:-3}       # seconds per timed run
OUT=${OUT:-BENCHMARKS.md}
KEEP_JSON=${KEEP_JSON:-target/bench-json}   # the raw reports, for bench/report.py again
BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then BENCH_COMMIT="$BENCH_COMMIT+changes"; fi
export BENCH_COMMIT
BASE=${BASE_PORT:-19000}

for tool in python3 socat curl; do
    if ! command -v "$tool" >/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get install -y -qq "$tool" >/dev/null
        else
            echo "bench/run.sh needs $tool" >&2
            exit 1
        fi
    fi
done

echo "building (release)..." >&2
cargo build --release --quiet --bin switchboard --example bare-echo --example bare-udp --example bare-recv
SB=target/release/switchboard
BARE=target/release/examples

WORK=$(mktemp -d /tmp/switchboard-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p "$WORK/json" "$WORK/sb" "$WORK/py-files" "$WORK/bare-files" "$WORK/socat"

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
    SWITCHBOARD_ECHO_MAX_CONNECTIONS=20000 \
    SWITCHBOARD_ECHO_MAX_CONNECTIONS_PER_PEER=20000 \
    SWITCHBOARD_UDP_ECHO_PEER_RATE=10000000 \
    SWITCHBOARD_TIME_PEER_RATE=10000000 \
    SWITCHBOARD_EXEC_MAX_COMMANDS=32 \
    RUST_LOG=switchboard=warn \
    "$SB" --data-dir "$WORK/sb"
start py-echo python3 bench/reference/echo_server.py 127.0.0.1 $((BASE + 100))
start py-udp python3 bench/reference/udp_server.py 127.0.0.1 $((BASE + 101))
start py-files python3 bench/reference/file_server.py 127.0.0.1 $((BASE + 102)) "$WORK/py-files"
start py-exec python3 bench/reference/exec_server.py 127.0.0.1 $((BASE + 103))
start bare-echo "$BARE/bare-echo" 127.0.0.1:$((BASE + 110))
start bare-udp "$BARE/bare-udp" 127.0.0.1:$((BASE + 111))
start bare-recv "$BARE/bare-recv" 127.0.0.1:$((BASE + 112)) "$WORK/bare-files"
for p in 0 3 4 5 80 100 102 103 110 112; do wait_port $((BASE + p)); done

# Waits (at most 30 s) until process $1 is nearly idle (<= 2 ticks in 0.5 s):
# a Python server still unwinding thousands of connections would otherwise
# slow the next run down, whichever server it measures.
settle() {
    local a b
    for _ in $(seq 1 60); do
        a=$(awk '{print $14 + $15}' "/proc/$1/stat")
        sleep 0.5
        b=$(awk '{print $14 + $15}' "/proc/$1/stat")
        if [ $((b - a)) -le 2 ]; then return 0; fi
    done
}

# run LABEL ARGS... : one `switchboard bench` run, its JSON kept as LABEL.json
run() {
    local label=$1 kind=$2; shift 2
    echo "  $label" >&2
    # --json before the arguments: after a `--` it would be part of the command.
    "$SB" bench "$kind" --json "$@" >"$WORK/json/$label.json"
}

E=$((BASE + 0)) U=$((BASE + 1)) T=$((BASE + 2)) X=$((BASE + 3)) F=$((BASE + 4)) C=$((BASE + 5))
PE=$((BASE + 100)) PU=$((BASE + 101)) PF=$((BASE + 102)) PX=$((BASE + 103))
BE=$((BASE + 110)) BU=$((BASE + 111)) BR=$((BASE + 112))
KEY=(--key-file "$WORK/sb/key")

echo "10,000 idle connections (first, while every server is fresh)" >&2
run idle-sb idle $E -c 10000 --hold 3s --server-pid "$PID_sb" --timeout 30s
run idle-bare idle $BE -c 10000 --hold 3s --server-pid "$PID_bare_echo" --timeout 30s
run idle-py idle $PE -c 10000 --hold 3s --server-pid "$PID_py_echo" --timeout 30s
settle "$PID_py_echo"

echo "echo, 64 B round trips" >&2
run warmup echo $E -c 50 -d 1s
for conns in 1 50 500 5000; do
    for r in $(seq 1 "$ROUNDS"); do
        run "echo-sb-$conns-$r" echo $E -c $conns -d "${SECS}s" --server-pid "$PID_sb" --timeout 10s
        run "echo-bare-$conns-$r" echo $BE -c $conns -d "${SECS}s" --server-pid "$PID_bare_echo" --timeout 10s
        run "echo-py-$conns-$r" echo $PE -c $conns -d "${SECS}s" --server-pid "$PID_py_echo" --timeout 10s
        settle "$PID_py_echo"
    done
done

echo "echo with the dashboard's live stream open" >&2
COOKIES=$WORK/cookies
curl -sf -c "$COOKIES" -H 'content-type: application/json' \
    -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" \
    "http://127.0.0.1:$((BASE + 80))/api/v1/session" >/dev/null
for r in $(seq 1 "$ROUNDS"); do
    run "live-off-$r" echo $E -c 50 -d "${SECS}s" --server-pid "$PID_sb"
    curl -sfN -b "$COOKIES" "http://127.0.0.1:$((BASE + 80))/api/v1/live" >"$WORK/live-$r.sse" &
    LIVE=$!
    run "live-on-$r" echo $E -c 50 -d "${SECS}s" --server-pid "$PID_sb"
    kill $LIVE 2>/dev/null || true
    wait $LIVE 2>/dev/null || true
done
LIVE_BYTES=$(cat "$WORK"/live-*.sse | wc -c)

echo "UDP echo, 64 B datagrams" >&2
for socks in 1 50; do
    for r in $(seq 1 "$ROUNDS"); do
        run "udp-sb-$socks-$r" udp $U -c $socks -d "${SECS}s" --server-pid "$PID_sb" --timeout 1s
        run "udp-bare-$socks-$r" udp $BU -c $socks -d "${SECS}s" --server-pid "$PID_bare_udp" --timeout 1s
        run "udp-py-$socks-$r" udp $PU -c $socks -d "${SECS}s" --server-pid "$PID_py_udp" --timeout 1s
    done
done
run "time-sb-1" time $T -c 10 -d "${SECS}s" --server-pid "$PID_sb" --timeout 1s

echo "exec: echo hi" >&2
for conns in 1 10; do
    for r in $(seq 1 "$ROUNDS"); do
        run "exec-sb-$conns-$r" exec $X "${KEY[@]}" -c $conns -d "${SECS}s" --server-pid "$PID_sb" -- echo hi
        run "exec-py-$conns-$r" exec $PX --classic -c $conns -d "${SECS}s" --server-pid "$PID_py_exec" -- echo hi
    done
done

echo "uploads: 1 x 1 GiB and 8 x 128 MiB" >&2
head -c $((1 << 30)) /dev/urandom >"$WORK/src-1g"
head -c $((128 << 20)) "$WORK/src-1g" >"$WORK/src-128m"
# socat_copy LABEL SIZE_FILE N SYNC: N parallel socat file-to-file copies over loopback
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
    t0=$EPOCHREALTIME
    for i in $(seq 1 "$n"); do
        socat -u "OPEN:$src" "TCP:127.0.0.1:$((BASE + 120 + i))" &
        pids+=($!)
    done
    wait "${pids[@]}"
    if [ "$sync" = sync ]; then sync "$WORK"/socat/out-*; fi
    t1=$EPOCHREALTIME
    python3 -c "import json,sys; s=float(sys.argv[1]); n=int(sys.argv[2]); z=int(sys.argv[3]); print(json.dumps({'elapsed_s': s, 'mib_per_s': n*z/s/1048576, 'requests': n}))" \
        "$(python3 -c "print($t1 - $t0)")" "$n" "$size" >"$WORK/json/$label.json"
    echo "  $label" >&2
}
# A socat listener takes its one connection and exits: probe it with ss, not a connect.
wait_port_socat() {
    for _ in $(seq 1 200); do
        if ss -ltn "sport = :$1" 2>/dev/null | grep -q LISTEN; then return 0; fi
        sleep 0.05
    done
}
clean() { rm -f "$WORK"/sb/files/* "$WORK"/py-files/* "$WORK"/bare-files/* "$WORK"/socat/*; sync; }
for r in $(seq 1 "$ROUNDS"); do
    clean; run "put-files-1g-$r" put $F "${KEY[@]}" -s 1GiB -P 1 --server-pid "$PID_sb" --timeout 30s
    clean; run "put-classic-1g-$r" put $C --classic -s 1GiB -P 1 --verify-dir "$WORK/sb/files" --server-pid "$PID_sb" --timeout 30s
    clean; run "put-py-1g-$r" put $PF --classic -s 1GiB -P 1 --verify-dir "$WORK/py-files" --server-pid "$PID_py_files" --timeout 30s
    clean; run "put-bare-1g-$r" put $BR --classic -s 1GiB -P 1 --verify-dir "$WORK/bare-files" --server-pid "$PID_bare_recv" --timeout 30s
    clean; socat_copy "put-socat-1g-$r" "$WORK/src-1g" 1 nosync
    clean; socat_copy "put-socatsync-1g-$r" "$WORK/src-1g" 1 sync
    clean; run "put-files-8-$r" put $F "${KEY[@]}" -s 128MiB -P 8 --server-pid "$PID_sb" --timeout 30s
    clean; run "put-classic-8-$r" put $C --classic -s 128MiB -P 8 --verify-dir "$WORK/sb/files" --server-pid "$PID_sb" --timeout 30s
    clean; run "put-py-8-$r" put $PF --classic -s 128MiB -P 8 --verify-dir "$WORK/py-files" --server-pid "$PID_py_files" --timeout 30s
    clean; run "put-bare-8-$r" put $BR --classic -s 128MiB -P 8 --verify-dir "$WORK/bare-files" --server-pid "$PID_bare_recv" --timeout 30s
    clean; socat_copy "put-socat-8-$r" "$WORK/src-128m" 8 nosync
    clean; socat_copy "put-socatsync-8-$r" "$WORK/src-128m" 8 sync
done
clean
rm -f "$WORK"/src-*

echo "dashboard API, signed in" >&2
printf '%s\n' "$PASSWORD" >"$WORK/password"
run http-services http $((BASE + 80)) --password-file "$WORK/password" -c 10 -d "${SECS}s" --server-pid "$PID_sb"

echo "writing $OUT" >&2
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
python3 bench/report.py "$WORK/json" "$OUT" \
    --cores "$(nproc)" --cpu "$CPU" --kernel "$(uname -r)" \
    --rounds "$ROUNDS" --secs "$SECS" --live-bytes "$LIVE_BYTES" \
    --python "$(python3 --version 2>&1)" \
    --socat "$(socat -V 2>/dev/null | grep -m1 'socat version' || echo socat)"
rm -rf "$KEEP_JSON" && mkdir -p "$(dirname "$KEEP_JSON")" && cp -r "$WORK/json" "$KEEP_JSON"
echo "done: $OUT (raw reports in $KEEP_JSON)" >&2
