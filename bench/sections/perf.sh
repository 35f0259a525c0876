# bench/sections/perf.sh: issue #33's comparisons, sourced by bench/run.sh
# in a full run (after the uploads, before the proxy section), with its
# helpers (start, wait_port, run, in_order, socat_copy_to) and settings in
# scope. Rendered by bench/report_perf.py.
#
# - exec against a bare spawner: `echo hi` per request at 1 and 10
#   connections, switchboard's exec (HMAC handshake, message protocol,
#   process group, audit) against bench/reference/bare_exec.rs (one spawn
#   per request, a length prefix, nothing else), alternated per round.
# - echo against the metal: 64 B round trips at 50 and 5,000 connections,
#   switchboard, bare tokio and bench/reference/bare_epoll.rs (epoll via
#   mio, no runtime), alternated per round.
# - uploads to tmpfs with SHA-256: 1 GiB to files (HMAC protocol) and to
#   files-classic, both with folders on /dev/shm, against a socat copy to
#   /dev/shm (8 KiB and 128 KiB buffers), alternated per round.
# - the dashboard's upload relay against a straight put, to the same files
#   service on tmpfs: 512 MiB from a file on /dev/shm with curl -T (PUT
#   /api/v1/files/NAME, signed in), with `switchboard put FILE` (the C/S
#   client: reads the file, hashes what it sends and checks the server's
#   hash) and with `switchboard bench put` (sends from memory, its hash known
#   beforehand), alternated per round; the server's CPU and the client's.
#
# Labels: perf-exec-{sb,bare}-C-R, perf-echo-{sb,bare,epoll}-C-R,
# perf-shm-{files,classic,socat,socat128k}-R, perf-relay-{web,cli,bench}-R.

if [ -z "$QUICK" ]; then
    echo "issue #33: exec vs a bare spawner, echo vs epoll, uploads to tmpfs" >&2
    cargo build --release --quiet --example bare-exec --example bare-epoll
    PERF_BX=$((BASE + 150)) PERF_BM=$((BASE + 151))
    PERF_F=$((BASE + 152)) PERF_C=$((BASE + 153))
    start bare-exec "$BARE/bare-exec" 127.0.0.1:$PERF_BX
    start bare-epoll "$BARE/bare-epoll" 127.0.0.1:$PERF_BM
    # A switchboard of its own for files and files-classic on tmpfs, so its
    # CPU is the uploads' alone.
    mkdir -p "$WORK/perf-sb" "$SHM/perf-files" "$SHM/perf-classic" "$SHM/perf-socat"
    {
        printf '[web]\nlisten = "127.0.0.1:%s"\n' $((BASE + 154))
        for n in echo udp-echo time exec login; do
            printf '[services.%s]\nenabled = false\n' "$n"
        done
        printf '[services.files]\nlisten = "127.0.0.1:%s"\nfolder = "%s"\n' "$PERF_F" "$SHM/perf-files"
        printf '[services.files-classic]\nlisten = "127.0.0.1:%s"\nfolder = "%s"\n' "$PERF_C" "$SHM/perf-classic"
    } >"$WORK/perf-sb/sb.toml"
    start perf-sb env RUST_LOG=switchboard=warn "$SB" --data-dir "$WORK/perf-sb" --config "$WORK/perf-sb/sb.toml"
    for p in $PERF_BX $PERF_BM $PERF_F $PERF_C; do wait_port "$p"; done

    for conns in 1 10; do
        for r in $(seq 1 "$ROUNDS"); do
            for who in $(in_order "$r" sb bare); do
                if [ "$who" = sb ]; then
                    run "perf-exec-sb-$conns-$r" exec $X "${KEY[@]}" -c $conns -d "${SECS}s" --server-pid "$PID_sb" -- echo hi
                else
                    run "perf-exec-bare-$conns-$r" exec $PERF_BX --classic -c $conns -d "${SECS}s" --server-pid "$PID_bare_exec" -- echo hi
                fi
            done
        done
    done

    for conns in 50 5000; do
        for r in $(seq 1 "$ROUNDS"); do
            for who in $(in_order "$r" sb bare epoll); do
                case $who in
                    sb) port=$E pid=$PID_sb ;;
                    bare) port=$BE pid=$PID_bare_echo ;;
                    epoll) port=$PERF_BM pid=$PID_bare_epoll ;;
                esac
                run "perf-echo-$who-$conns-$r" echo "$port" -c "$conns" -d "${SECS}s" --server-pid "$pid" --timeout 10s
            done
        done
    done

    # perf_socat LABEL BUFFER: the 1 GiB source over loopback into tmpfs by
    # two socats with BUFFER-byte reads and writes, timed to the receiver's end.
    perf_socat() {
        local label=$1 b=$2 t0 t1 lp port=$((BASE + 155))
        socat -u -b "$b" TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr "OPEN:$SHM/perf-socat/out,creat,trunc" &
        lp=$!
        for _ in $(seq 1 200); do
            if ss -ltn "sport = :$port" 2>/dev/null | grep -q LISTEN; then break; fi
            sleep 0.05
        done
        echo "  $label" >&2
        echo "$label" >>"$RES/order.txt"
        local load
        load=$(cut -d' ' -f1 /proc/loadavg)
        t0=$EPOCHREALTIME
        socat -u -b "$b" "OPEN:$SHM/perf-src" "TCP:127.0.0.1:$port"
        wait "$lp"
        t1=$EPOCHREALTIME
        python3 -c 'import json,sys; s=float(sys.argv[2])-float(sys.argv[1]); z=1<<30; print(json.dumps({"bench": "socat", "buffer": int(sys.argv[3]), "elapsed_s": s, "mib_per_s": z/s/1048576, "requests": 1, "bytes": z, "errors": 0, "loadavg_1m": float(sys.argv[4])}))' \
            "$t0" "$t1" "$b" "$load" >"$RES/$label.json"
    }
    head -c $((1 << 30)) /dev/urandom >"$SHM/perf-src"
    for r in $(seq 1 "$ROUNDS"); do
        for what in $(in_order "$r" files classic socat socat128k); do
            rm -f "$SHM"/perf-files/* "$SHM"/perf-classic/* "$SHM"/perf-socat/*
            case $what in
                files) run "perf-shm-files-$r" put $PERF_F --key-file "$WORK/perf-sb/key" -s 1GiB -P 1 --server-pid "$PID_perf_sb" --timeout 30s ;;
                classic) run "perf-shm-classic-$r" put $PERF_C --classic -s 1GiB -P 1 --server-pid "$PID_perf_sb" --timeout 30s ;;
                socat) perf_socat "perf-shm-socat-$r" 8192 ;;
                socat128k) perf_socat "perf-shm-socat128k-$r" 131072 ;;
            esac
        done
    done

    # perf_upload LABEL CMD...: CMD (an upload of $SHM/perf-src-512m to
    # perf-sb) timed to its end, with perf-sb's CPU and CMD's own around it.
    perf_upload() {
        local label=$1 load c0 c1 t0 t1 own
        shift
        echo "  $label" >&2
        echo "$label" >>"$RES/order.txt"
        load=$(cut -d' ' -f1 /proc/loadavg)
        c0=$(awk '{print $14 + $15}' "/proc/$PID_perf_sb/stat")
        t0=$EPOCHREALTIME
        if ! own=$({ TIMEFORMAT='%U %S' && time "$@" >/dev/null 2>"$WORK/perf-sb/$label.err"; } 2>&1); then
            echo "$label failed:" >&2
            cat "$WORK/perf-sb/$label.err" >&2
            return 1
        fi
        t1=$EPOCHREALTIME
        c1=$(awk '{print $14 + $15}' "/proc/$PID_perf_sb/stat")
        python3 -c 'import json,sys
t0, t1, c0, c1, hz, load, user, system = map(float, sys.argv[2:])
s, z = t1 - t0, 512 << 20
print(json.dumps({"bench": sys.argv[1], "elapsed_s": s, "mib_per_s": z / s / 1048576, "bytes": z,
    "requests": 1, "errors": 0, "loadavg_1m": load, "client_cpu_s": user + system,
    "server": {"cpu_s": (c1 - c0) / hz}}))' "$label" "$t0" "$t1" "$c0" "$c1" "$(getconf CLK_TCK)" "$load" $own \
            >"$RES/$label.json"
    }
    head -c $((512 << 20)) "$SHM/perf-src" >"$SHM/perf-src-512m"
    rm -f "$SHM/perf-src"
    PERF_WEB=http://127.0.0.1:$((BASE + 154))
    PERF_CSRF=$(curl -sf -c "$WORK/perf-sb/cookies" -H 'content-type: application/json' \
        -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" "$PERF_WEB/api/v1/session" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf_token"])')
    for r in $(seq 1 "$ROUNDS"); do
        for what in $(in_order "$r" web cli bench); do
            rm -f "$SHM"/perf-files/*
            case $what in
                web) perf_upload "perf-relay-web-$r" curl -sf -b "$WORK/perf-sb/cookies" \
                    -H "X-CSRF-Token: $PERF_CSRF" -H "Origin: $PERF_WEB" -T "$SHM/perf-src-512m" \
                    "$PERF_WEB/api/v1/files/relay-$r.bin" ;;
                cli) perf_upload "perf-relay-cli-$r" "$SB" put 127.0.0.1:$PERF_F --key-file "$WORK/perf-sb/key" \
                    --name "cli-$r.bin" "$SHM/perf-src-512m" ;;
                bench) run "perf-relay-bench-$r" put $PERF_F --key-file "$WORK/perf-sb/key" -s 512MiB -P 1 \
                    --server-pid "$PID_perf_sb" --timeout 30s ;;
            esac
        done
    done
    rm -rf "$SHM"/perf-*
fi
