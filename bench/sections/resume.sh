#!/usr/bin/env bash
# bench/sections/resume.sh: resumable uploads against a plain one. A 1 GiB
# file uploaded through the dashboard two ways, alternated over $ROUNDS
# rounds, to a switchboard of its own whose data dir is on tmpfs (so the
# disk is not what is measured):
#   resume-tus-R:  tuspy (PyPI), chunk 64 MiB, to /api/v1/uploads/ (tus 1.0.0)
#   resume-put-R:  curl -T, one PUT /api/v1/files/NAME (relayed into files)
# Both with the same operator token, each timed by the client itself (first
# request to last answer; not Python's start). Each report holds elapsed_s, mib_per_s,
# the server's CPU seconds and whether the stored file's SHA-256 is the
# source's; bench/report_resume.py renders them (goal: tus >= 0.8x PUT).
#
# Sourced by bench/run.sh in full runs (it uses run.sh's SB, RES, WORK,
# BASE, ROUNDS, start, wait_port, in_order), or run alone:
#   bench/sections/resume.sh [RESULTS_DIR]    # default target/bench-resume
# which builds nothing: it measures $SB (default the release build under
# $CARGO_TARGET_DIR) and writes only RESULTS_DIR; then
#   python3 bench/report_resume.py RESULTS_DIR
# prints the section. Needs python3 with tuspy, and curl.

resume_section() {
    local web=$((BASE + 150)) files=$((BASE + 151)) r what t0 t1 c0 c1 hz src shm token out
    hz=$(getconf CLK_TCK)
    if ! python3 -c 'import tusclient' 2>/dev/null; then
        python3 -m pip install --quiet --disable-pip-version-check tuspy 2>/dev/null ||
            python3 -m pip install --quiet --disable-pip-version-check --break-system-packages tuspy
    fi
    # Another program on these ports would be measured instead (or echo
    # the request back): refuse rather than report its figures.
    if (exec 3<>"/dev/tcp/127.0.0.1/$web") 2>/dev/null || (exec 3<>"/dev/tcp/127.0.0.1/$files") 2>/dev/null; then
        echo "bench/sections/resume.sh: port $web or $files is taken; set BASE_PORT" >&2
        return 1
    fi
    shm=$(mktemp -d /dev/shm/switchboard-resume.XXXXXX)
    RESUME_SHM=$shm
    src=$shm/src-1g
    head -c $((1 << 30)) /dev/urandom >"$src"
    local want
    want=$(sha256sum "$src" | cut -d' ' -f1)
    "$SB" token create resume-bench --role operator --data-dir "$shm/data" >"$shm/token" 2>/dev/null
    token=$(cat "$shm/token")
    local off=() k
    for k in echo udp-echo time exec files-classic login; do off+=(--set "services.$k.enabled=false"); done
    start resume-sb env \
        SWITCHBOARD_WEB_LISTEN=127.0.0.1:$web \
        SWITCHBOARD_FILES_LISTEN=127.0.0.1:$files \
        SWITCHBOARD_ADMIN_PASSWORD="resume-$RANDOM-$RANDOM" \
        RUST_LOG=switchboard=warn \
        "$SB" --data-dir "$shm/data" "${off[@]}"
    wait_port "$web"
    local pid=$PID_resume_sb
    echo "resumable uploads: 1 GiB, tuspy (64 MiB chunks) vs one PUT, data on tmpfs" >&2
    for r in $(seq 1 "$ROUNDS"); do
        for what in $(in_order "$r" tus put); do
            rm -f "$shm/data/files/"*.bin
            echo "  resume-$what-$r" >&2
            echo "resume-$what-$r" >>"$RES/order.txt"
            c0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
            t0=$EPOCHREALTIME
            if [ "$what" = tus ]; then
                # Timed from the first request to the last answer, as curl's
                # is: Python's own start (a second on a loaded machine) is
                # not the upload's.
                python3 - "http://127.0.0.1:$web/api/v1/uploads/" "$token" "$src" "resume-$r.bin" "$shm/t" <<'PY'
import sys, time
from tusclient import client
endpoint, token, path, name, out = sys.argv[1:]
c = client.TusClient(endpoint, headers={"Authorization": "Bearer " + token})
t0 = time.time()
c.uploader(file_path=path, chunk_size=64 << 20, metadata={"filename": name}, retries=0).upload()
open(out, "w").write("%r %r" % (t0, time.time()))
PY
            else
                # curl's own total (start 0, end time_total), likewise.
                curl -sf -H "Authorization: Bearer $token" -T "$src" -o /dev/null -w '0 %{time_total}' \
                    "http://127.0.0.1:$web/api/v1/files/resume-$r.bin" >"$shm/t"
            fi || echo "  resume-$what-$r failed (its report says so)" >&2
            t1=$EPOCHREALTIME
            c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
            # The client's own timing when it gave one.
            if [ -s "$shm/t" ]; then read -r t0 t1 <"$shm/t" || true; fi
            rm -f "$shm/t"
            out=$(sha256sum "$shm/data/files/resume-$r.bin" 2>/dev/null | cut -d' ' -f1)
            python3 -c 'import json, sys
t0, t1, c0, c1, hz, size, ok, what = sys.argv[1:]
s = float(t1) - float(t0)
print(json.dumps({"bench": "resume-" + what, "bytes": int(size), "elapsed_s": round(s, 4),
                  "mib_per_s": round(int(size) / s / 1048576, 1), "chunk_mib": 64 if what == "tus" else None,
                  "server_cpu_s": round((int(c1) - int(c0)) / int(hz), 2), "sha256_ok": ok == "true",
                  "requests": 1, "errors": 0 if ok == "true" else 1}, indent=2))' \
                "$t0" "$t1" "$c0" "$c1" "$hz" $((1 << 30)) "$([ "$out" = "$want" ] && echo true || echo false)" \
                "$what" >"$RES/resume-$what-$r.json"
        done
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$shm"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    # Run alone: the few helpers run.sh would have given.
    set -euo pipefail
    cd "$(dirname "$0")/../.."
    RES=${1:-target/bench-resume}
    ROUNDS=${ROUNDS:-3}
    BASE=${BASE_PORT:-19000}
    SB=${SB:-${CARGO_TARGET_DIR:-target}/release/switchboard}
    mkdir -p "$RES"
    PIDS=()
    trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "${RESUME_SHM:-/nonexistent}"' EXIT
    start() { local name=$1; shift; "$@" >"$RES/$name.log" 2>&1 & PIDS+=($!); eval "PID_${name//-/_}=$!"; }
    wait_port() {
        for _ in $(seq 1 200); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
            sleep 0.05
        done
        echo "nothing listens on port $1" >&2
        exit 1
    }
    in_order() {
        local r=$1 i; shift
        local items=("$@")
        if [ $((r % 2)) = 1 ]; then printf '%s\n' "${items[@]}"; else
            for ((i = ${#items[@]} - 1; i >= 0; i--)); do printf '%s\n' "${items[$i]}"; done
        fi
    }
    # What report_resume.py (report.py's Run) wants besides the reports;
    # mode "resume" keeps the directory out of `report.py --check`'s baselines.
    python3 -c 'import datetime, json, os, sys
now = datetime.datetime.now(datetime.timezone.utc)
json.dump({"mode": "resume", "date": now.date().isoformat(), "started": now.isoformat(timespec="seconds"),
           "commit": sys.argv[2], "rounds": int(sys.argv[3]), "cores": os.cpu_count(),
           "loadavg": [round(x, 2) for x in os.getloadavg()], "finished": False}, open(sys.argv[1], "w"), indent=1)' \
        "$RES/run.json" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$ROUNDS"
    resume_section
    python3 -c 'import json, os, sys
m = json.load(open(sys.argv[1])); m["finished"] = True; m["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
json.dump(m, open(sys.argv[1], "w"), indent=1)' "$RES/run.json"
    python3 bench/report_resume.py "$RES"
else
    resume_section
fi
