#!/usr/bin/env bash
# Alternated echo pairs for a change's before/after: bare tokio's echo and
# one or more switchboard builds, each serving echo in a process of its own,
# measured one after another at each connection count, the order reversed
# every other round (bench/METHOD.md). Each run's `switchboard bench echo`
# JSON is kept with the load average at its start; bench/pairs.py prints
# the per-server medians and the per-round ratios to bare tokio.
#
#   bench/pairs.sh OUT before=/path/to/old/switchboard after=target/release/switchboard
#   CONNS="50 5000" ROUNDS=5 SECS=3 bench/pairs.sh OUT after=target/release/switchboard
#
# Not part of bench/run.sh (which measures one build against the references);
# this is for the notes' before/after figures. Writes only under OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bench/pairs.sh OUT NAME=BINARY...}
shift
CONNS=${CONNS:-1 50 500 5000}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-3}
BASE=${BASE_PORT:-19400}
BARE=${BARE:-${CARGO_TARGET_DIR:-target}/release/examples/bare-echo}
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

PIDS=()
WORK=$(mktemp -d /tmp/switchboard-pairs.XXXXXX)
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    exit 1
}

NAMES=(bare) PORTS=($((BASE))) SPIDS=()
"$BARE" 127.0.0.1:$BASE >"$WORK/bare.log" 2>&1 &
PIDS+=($!) SPIDS+=($!)
i=1
LOADGEN=""
for spec in "$@"; do
    name=${spec%%=*} bin=${spec#*=}
    port=$((BASE + i))
    mkdir -p "$WORK/$name"
    # Only echo, with the limits a load test needs (as bench/run.sh).
    {
        printf '[web]\nlisten = "127.0.0.1:%s"\n' $((BASE + 50 + i))
        for n in udp-echo time exec files files-classic login; do
            printf '[services.%s]\nenabled = false\n' "$n"
        done
    } >"$WORK/$name/sb.toml"
    SWITCHBOARD_ADMIN_PASSWORD=pairs-$RANDOM-$RANDOM \
        SWITCHBOARD_ECHO_LISTEN=127.0.0.1:$port \
        SWITCHBOARD_ECHO_MAX_CONNECTIONS=15000 \
        SWITCHBOARD_ECHO_MAX_CONNECTIONS_PER_PEER=15000 \
        RUST_LOG=switchboard=warn \
        "$bin" --data-dir "$WORK/$name" --config "$WORK/$name/sb.toml" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!) SPIDS+=($!)
    NAMES+=("$name") PORTS+=("$port")
    LOADGEN=${LOADGEN:-$bin}
    i=$((i + 1))
done
for p in "${PORTS[@]}"; do wait_port "$p"; done
"$LOADGEN" bench echo 127.0.0.1:$((BASE + 1)) -c 50 -d 1s --json --allow-errors >/dev/null

for conns in $CONNS; do
    for r in $(seq 1 "$ROUNDS"); do
        idx=$(seq 0 $((${#NAMES[@]} - 1)))
        if [ $((r % 2)) = 0 ]; then idx=$(echo "$idx" | tac); fi
        for k in $idx; do
            label="${NAMES[$k]}-$conns-$r"
            load=$(cut -d' ' -f1 /proc/loadavg)
            echo "  $label (load $load)" >&2
            "$LOADGEN" bench echo --json --allow-errors 127.0.0.1:${PORTS[$k]} -c "$conns" \
                -d "${SECS}s" --server-pid "${SPIDS[$k]}" --timeout 10s >"$OUT/$label.json"
            python3 -c 'import json,sys
p=sys.argv[1]; r=json.load(open(p)); r["loadavg_1m"]=float(sys.argv[2])
r["server_name"]=sys.argv[3]; r["round"]=int(sys.argv[4]); json.dump(r, open(p,"w"))' \
                "$OUT/$label.json" "$load" "${NAMES[$k]}" "$r"
        done
    done
done
python3 bench/pairs.py "$OUT"
