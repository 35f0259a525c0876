#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 600), one
# after another, each as a single libFuzzer process, and prints per target
# the executions, the coverage (libFuzzer's cov: and ft:) and whether it
# found a crash. Exits non-zero if any did; the input is in
# fuzz/artifacts/TARGET/ and the line to replay it is printed.
#
# Needs nightly Rust (cargo-fuzz builds with it); installs cargo-fuzz if it
# is missing. The corpus grows in fuzz/corpus/ (seeded from fuzz/seeds/) and
# the logs are kept in fuzz/target/fuzz-logs/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs="${1:-600}"
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS]   (seconds per target, default 600)" >&2
  exit 2
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzzing needs nightly Rust, which is not installed: rustup toolchain install nightly" >&2
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

# The code under test is safe Rust (unsafe is forbidden), so AddressSanitizer
# would find nothing its checks do not: build without it, for speed.
fuzz=(cargo +nightly fuzz)
build_flags=(--sanitizer none)

echo "==> building the fuzz targets"
"${fuzz[@]}" build "${build_flags[@]}"

logs=target/fuzz-logs
mkdir -p "$logs"
failed=()
summary=()
for target in $("${fuzz[@]}" list); do
  corpus="corpus/$target"
  mkdir -p "$corpus"
  if [ -d "seeds/$target" ]; then
    cp -n "seeds/$target"/* "$corpus"/ 2>/dev/null || true
  fi
  args=(-max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048)
  if [ -f "dicts/$target.dict" ]; then
    args+=(-dict="dicts/$target.dict")
  fi
  log="$logs/$target.log"
  echo "==> fuzzing $target for ${secs}s (log: fuzz/$log)"
  status=0
  "${fuzz[@]}" run "${build_flags[@]}" "$target" "$corpus" -- "${args[@]}" >"$log" 2>&1 || status=$?

  # The final stats, else the last status line ("#N ... cov: C ft: F ...").
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ -z "$execs" ]; then
    execs=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#' || true)
  fi
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2 || true)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2 || true)
  artifact=$(grep -o 'artifacts/[^ ]*' "$log" | grep -v '/$' | tail -n 1 || true)
  if [ "$status" -eq 0 ]; then
    verdict="no crash"
  elif [ -n "$artifact" ]; then
    verdict="CRASH (exit $status): fuzz/$artifact"
    failed+=("$target")
    echo "    replay: cd fuzz && cargo +nightly fuzz run ${build_flags[*]} $target $artifact"
    grep -m 5 -E "panicked|ERROR: libFuzzer|SUMMARY" "$log" | sed 's/^/    /' || true
  else
    verdict="FAILED to run (exit $status): see fuzz/$log"
    failed+=("$target")
    tail -n 5 "$log" | sed 's/^/    /'
  fi
  line=$(printf '%-16s execs %10s   cov %6s   ft %7s   %s' \
    "$target" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$verdict")
  echo "    $line"
  summary+=("$line")
done

echo
echo "==> summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "crashed or failed: ${failed[*]}" >&2
  exit 1
fi
