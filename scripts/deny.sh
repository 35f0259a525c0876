#!/usr/bin/env bash
# Checks switchboard's dependencies with cargo-deny (deny.toml): licenses,
# banned or wildcard versions, and that every crate comes from crates.io.
# Offline: the advisory database cannot be fetched on these machines, so
# security advisories are not part of this check. Installs cargo-deny if
# it is missing (about 5 minutes to build).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo deny --version >/dev/null 2>&1; then
  echo "==> installing cargo-deny"
  cargo install --locked cargo-deny
fi
cargo deny --offline check licenses bans sources
