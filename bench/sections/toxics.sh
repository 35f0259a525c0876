# Sourced by bench/run.sh (after its helpers and the proxy section are
# defined): the toxics' accuracy, and what their engine costs a tcp-proxy
# that has none. `bench/run.sh --toxics` runs only this section, into a
# tracked bench/results/<date>-<commit>[-changes]-toxics/ directory; a full
# run runs it too, into its own directory. bench/report_toxics.py renders it.
#
# Accuracy (bench/toxics.py, against a switchboard of its own): latency
# (100 ms, jitter 0 and 20, added to 64 B round trips), bandwidth (100,
# 1,000 and 10,000 KB/s over 10 s), slicer (segment sizes from the wire
# inspector and from tshark on a capture of lo), limit_data (bytes that
# arrive before the close), each through a tcp-proxy over loopback.
#
# No toxic = no cost: with TOXICS_BEFORE=/path/to/switchboard (a release
# build from before the toxics engine, e.g. of efc21b9:
#   git archive efc21b9 | tar -x -C /tmp/before &&
#   (cd /tmp/before && cargo build --release --bin switchboard)
# ), that build's tcp-proxy and this one's, each in a process of its own in
# front of bare-echo, measured as the proxy section measures them (PROXY_MIB
# through and back; 64 B round trips at 50 connections), alternated for
# TOXICS_ROUNDS rounds (default 6), the order reversed every other round.
# Without TOXICS_BEFORE that part is skipped and says so.
#
# TOXICS_NICE=-10 runs the accuracy part's proxy and script at that
# niceness (root), to tell the toxics' accuracy from a busy machine's.
#
# Needs tshark and socat (installed with apt-get when missing and root).

toxics_tools() {
    local tool pkg
    for tool in tshark socat; do
        pkg=$tool
        command -v "$tool" >/dev/null && continue
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            # tshark's package asks whether to install dumpcap setuid: no
            # (root captures without it), and never stop to ask.
            echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null 2>&1 ||
                { apt-get update -qq >/dev/null &&
                    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null; }
        else
            echo "bench/run.sh --toxics needs $tool" >&2
            exit 1
        fi
    done
}

# toxics_config DIR WEB_PORT NAME=LISTEN:UPSTREAM...: a switchboard.toml with
# the built-in services off and one tcp-proxy per NAME.
toxics_config() {
    local dir=$1 web=$2 spec n
    shift 2
    mkdir -p "$dir"
    {
        printf '[web]\nlisten = "127.0.0.1:%s"\n' "$web"
        for n in echo udp-echo time exec files files-classic login; do
            printf '[services.%s]\nenabled = false\n' "$n"
        done
        for spec in "$@"; do
            printf '[services.%s]\nkind = "tcp-proxy"\nlisten = "127.0.0.1:%s"\n' "${spec%%=*}" "$(echo "${spec#*=}" | cut -d: -f1)"
            printf 'upstream = "127.0.0.1:%s"\nmax_connections = 1024\nmax_connections_per_peer = 1024\n' "${spec##*:}"
        done
    } >"$dir/switchboard.toml"
}

toxics_accuracy() {
    local T=$((BASE + 150))
    echo "toxics: accuracy (bench/toxics.py)" >&2
    toxics_config "$WORK/tx" $((T + 9)) "tx-echo=$T:$BE" "tx-src=$((T + 1)):$((T + 2))" "tx-sink=$((T + 3)):$((T + 4))"
    # TOXICS_NICE=-10 (root): the proxy and the measuring script at a higher
    # priority than the rest of the machine, to tell the toxics' accuracy from
    # a busy neighbour's; each report keeps the niceness it ran at.
    local nice=(env)
    if [ -n "${TOXICS_NICE:-}" ]; then nice=(nice -n "$TOXICS_NICE"); fi
    start tx-sb "${nice[@]}" env RUST_LOG=switchboard=warn "$SB" --config "$WORK/tx/switchboard.toml" --data-dir "$WORK/tx/data"
    wait_port "$T"
    wait_port $((T + 9))
    printf '%s\n' "$PASSWORD" >"$WORK/tx/password"
    echo toxics-accuracy >>"$RES/order.txt"
    "${nice[@]}" python3 bench/toxics.py --web "http://127.0.0.1:$((T + 9))" --password-file "$WORK/tx/password" \
        --out "$RES" --echo "tx-echo=$T" --source "tx-src=$((T + 1)),$((T + 2))" \
        --sink "tx-sink=$((T + 3)),$((T + 4))"
    kill "$PID_tx_sb" 2>/dev/null || true
    wait "$PID_tx_sb" 2>/dev/null || true
}

# toxics_nocost_one WHO PORT PID ROUND: one bulk and one round-trip run
# through WHO's proxy, as the proxy section makes them.
toxics_nocost_one() {
    local who=$1 port=$2 pid=$3 r=$4 hz c0 c1 t0 t1 load label
    hz=$(getconf CLK_TCK)
    label=toxics-nocost-bulk-$who-$r
    load=$(cut -d' ' -f1 /proc/loadavg)
    echo "  $label (load $load)" >&2
    echo "$label" >>"$RES/order.txt"
    c0=$(proxy_ticks "$pid") t0=$EPOCHREALTIME
    socat -t 60 -b 65536 "OPEN:$WORK/txn/payload,rdonly!!OPEN:/dev/null,wronly" TCP:127.0.0.1:$port
    t1=$EPOCHREALTIME
    c1=$(proxy_ticks "$pid")
    python3 -c 'import json,sys
who, t0, t1, c0, c1, hz, mib, load = sys.argv[1], *map(float, sys.argv[2:])
s, cpu = t1 - t0, (c1 - c0) / hz
print(json.dumps({"bench": "proxy-bulk", "forwarder": who, "mib_each_way": mib, "elapsed_s": s,
    "mib_per_s": mib / s, "cpu_s": cpu, "cpu_ns_per_byte": cpu * 1e9 / (2 * mib * 1048576),
    "loadavg_1m": load}))' "$who" "$t0" "$t1" "$c0" "$c1" "$hz" "$PROXY_MIB" "$load" >"$RES/$label.json"
    label=toxics-nocost-rtt-$who-$r
    load=$(cut -d' ' -f1 /proc/loadavg)
    echo "  $label (load $load)" >&2
    echo "$label" >>"$RES/order.txt"
    c0=$(proxy_ticks "$pid")
    "$SB" bench echo --json --allow-errors 127.0.0.1:$port -c 50 -d "${SECS}s" --timeout 10s >"$RES/$label.json"
    c1=$(proxy_ticks "$pid")
    python3 -c 'import json,sys
path, c0, c1, hz, load = sys.argv[1], *map(float, sys.argv[2:])
r = json.load(open(path))
r["forwarder_cpu_s"] = (c1 - c0) / hz
r["forwarder_cpu_us_per_op"] = r["forwarder_cpu_s"] * 1e6 / max(r["requests"], 1)
r["loadavg_1m"] = load
json.dump(r, open(path, "w"))' "$RES/$label.json" "$c0" "$c1" "$hz" "$load"
}

toxics_nocost() {
    local N=$((BASE + 170)) r who
    if [ -z "${TOXICS_BEFORE:-}" ]; then
        echo "toxics: no TOXICS_BEFORE build given: the no-toxic cost is not measured" >&2
        printf '{"bench": "toxics-nocost", "skipped": "no TOXICS_BEFORE build given"}\n' >"$RES/toxics-nocost.json"
        return 0
    fi
    echo "toxics: no toxic = no cost, $TOXICS_BEFORE against $SB, $PROXY_MIB MiB and 64 B round trips" >&2
    python3 -c 'import json,sys
print(json.dumps({"bench": "toxics-nocost", "before": sys.argv[1], "before_version": sys.argv[2],
    "after_version": sys.argv[3], "mib_each_way": int(sys.argv[4]), "secs": float(sys.argv[5])}))' \
        "${TOXICS_BEFORE_LABEL:-$TOXICS_BEFORE}" "$("$TOXICS_BEFORE" --version 2>&1 | head -1)" \
        "$("$SB" --version 2>&1 | head -1)" "$PROXY_MIB" "$SECS" >"$RES/toxics-nocost.json"
    toxics_config "$WORK/txn/before" $((N + 8)) "px=$N:$BE"
    toxics_config "$WORK/txn/after" $((N + 9)) "px=$((N + 1)):$BE"
    start txn-before env RUST_LOG=switchboard=warn "$TOXICS_BEFORE" --config "$WORK/txn/before/switchboard.toml" --data-dir "$WORK/txn/before/data"
    start txn-after env RUST_LOG=switchboard=warn "$SB" --config "$WORK/txn/after/switchboard.toml" --data-dir "$WORK/txn/after/data"
    wait_port "$N"
    wait_port $((N + 1))
    head -c $((PROXY_MIB << 20)) /dev/zero >"$WORK/txn/payload"
    for r in $(seq 1 "${TOXICS_ROUNDS:-6}"); do
        for who in $(in_order "$r" before after); do
            if [ "$who" = before ]; then
                toxics_nocost_one before "$N" "$PID_txn_before" "$r"
            else
                toxics_nocost_one after $((N + 1)) "$PID_txn_after" "$r"
            fi
        done
    done
    rm -f "$WORK/txn/payload"
    kill "$PID_txn_before" "$PID_txn_after" 2>/dev/null || true
    wait "$PID_txn_before" "$PID_txn_after" 2>/dev/null || true
}

toxics_section() {
    toxics_tools
    toxics_accuracy
    toxics_nocost
}

if [ -n "${TOXICS_ONLY:-}" ]; then
    # Tracked, as a full run's directory is, unless RESULTS named another.
    if [ "$RES" = target/bench-toxics ]; then
        dest=bench/results/$(date -u +%F)-$COMMIT
        if [ "$CHANGES" = true ]; then dest=$dest-changes; fi
        dest=$dest-toxics
        if [ -e "$dest" ]; then
            i=2
            while [ -e "$dest-$i" ]; do i=$((i + 1)); done
            dest=$dest-$i
        fi
        mkdir -p "$dest"
        mv "$RES/run.json" "$dest/"
        RES=$dest
    fi
    toxics_section
    python3 -c 'import json, os, sys
meta = json.load(open(sys.argv[1]))
meta.update(finished=True, mode="toxics", loadavg=[round(x, 2) for x in os.getloadavg()])
json.dump(meta, open(sys.argv[1], "w"), indent=1)' "$RES/run.json"
    python3 bench/report_toxics.py "$RES" >&2
    echo "done: $RES (bench/report.py renders the newest such run made without TOXICS_NICE into BENCHMARKS.md)" >&2
    exit 0
elif [ -z "$QUICK" ]; then
    toxics_section
fi
