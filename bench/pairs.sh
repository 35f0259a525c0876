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
#   REFS="epoll=$CARGO_TARGET_DIR/release/examples/bare-epoll" bench/pairs.sh OUT sb=...
#   KIND=exec CONNS="1 10" bench/pairs.sh OUT before=... after=...
#
# KIND=exec measures exec (`echo hi` per request) instead, against
# bench/reference/bare_exec.rs (the bare spawner) as `bare`. REFS adds more
# reference servers (NAME=BINARY, started as `BINARY ADDR`, loaded as
# `bare` is); `python3 bench/pairs.py OUT NAME` gives the ratios to one.
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
KIND=${KIND:-echo}
case $KIND in
    echo) BARE=${BARE:-${CARGO_TARGET_DIR:-target}/release/examples/bare-echo} ;;
    exec) BARE=${BARE:-${CARGO_TARGET_DIR:-target}/release/examples/bare-exec} ;;
    *) echo "KIND is echo or exec" >&2; exit 2 ;;
esac
REFS=${REFS:-}
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

NAMES=(bare) PORTS=($((BASE))) SPIDS=() ISREF=(1)
"$BARE" 127.0.0.1:$BASE >"$WORK/bare.log" 2>&1 &
PIDS+=($!) SPIDS+=($!)
i=1
for spec in $REFS; do
    name=${spec%%=*} bin=${spec#*=}
    "$bin" 127.0.0.1:$((BASE + 30 + i)) >"$WORK/$name.log" 2>&1 &
    PIDS+=($!) SPIDS+=($!)
    NAMES+=("$name") PORTS+=($((BASE + 30 + i))) ISREF+=(1)
    i=$((i + 1))
done
LOADGEN=""
for spec in "$@"; do
    name=${spec%%=*} bin=${spec#*=}
    port=$((BASE + i))
    mkdir -p "$WORK/$name"
    # Only echo, with the limits a load test needs (as bench/run.sh).
    {
        printf '[web]\nlisten = "127.0.0.1:%s"\n' $((BASE + 50 + i))
        for n in udp-echo time exec files files-classic login echo; do
            if [ "$n" != "$KIND" ]; then printf '[services.%s]\nenabled = false\n' "$n"; fi
        done
    } >"$WORK/$name/sb.toml"
    SWITCHBOARD_ADMIN_PASSWORD=pairs-$RANDOM-$RANDOM \
        SWITCHBOARD_ECHO_LISTEN=127.0.0.1:$port \
        SWITCHBOARD_EXEC_LISTEN=127.0.0.1:$port \
        SWITCHBOARD_EXEC_MAX_COMMANDS=32 \
        SWITCHBOARD_ECHO_MAX_CONNECTIONS=15000 \
        SWITCHBOARD_ECHO_MAX_CONNECTIONS_PER_PEER=15000 \
        RUST_LOG=switchboard=warn \
        "$bin" --data-dir "$WORK/$name" --config "$WORK/$name/sb.toml" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!) SPIDS+=($!)
    NAMES+=("$name") PORTS+=("$port") ISREF+=(0)
    LOADGEN=${LOADGEN:-$bin}
    i=$((i + 1))
done
for p in "${PORTS[@]}"; do wait_port "$p"; done
if [ "$KIND" = echo ]; then
    "$LOADGEN" bench echo 127.0.0.1:${PORTS[-1]} -c 50 -d 1s --json --allow-errors >/dev/null
fi

# load K CONNS: the bench command line for server K (a reference or a build).
load() {
    local k=$1 c=$2 addr=127.0.0.1:${PORTS[$1]}
    local common=(--json --allow-errors -c "$c" -d "${SECS}s" --server-pid "${SPIDS[$k]}" --timeout 10s)
    if [ "$KIND" = echo ]; then
        echo bench echo "${common[@]}" "$addr"
    elif [ "${ISREF[$k]}" = 1 ]; then
        echo bench exec --classic "${common[@]}" "$addr" -- echo hi
    else
        echo bench exec --key-file "$WORK/${NAMES[$k]}/key" "${common[@]}" "$addr" -- echo hi
    fi
}

for conns in $CONNS; do
    for r in $(seq 1 "$ROUNDS"); do
        idx=$(seq 0 $((${#NAMES[@]} - 1)))
        if [ $((r % 2)) = 0 ]; then idx=$(echo "$idx" | tac); fi
        for k in $idx; do
            label="${NAMES[$k]}-$conns-$r"
            load=$(cut -d' ' -f1 /proc/loadavg)
            echo "  $label (load $load)" >&2
            # shellcheck disable=SC2046 # words from load(), none with spaces
            "$LOADGEN" $(load "$k" "$conns") >"$OUT/$label.json"
            python3 -c 'import json,sys
p=sys.argv[1]; r=json.load(open(p)); r["loadavg_1m"]=float(sys.argv[2])
r["server_name"]=sys.argv[3]; r["round"]=int(sys.argv[4]); json.dump(r, open(p,"w"))' \
                "$OUT/$label.json" "$load" "${NAMES[$k]}" "$r"
        done
    done
done
python3 bench/pairs.py "$OUT"
