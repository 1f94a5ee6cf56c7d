#!/usr/bin/env bash
# The whole test suite: installs what the tests need (Debian packages, Python packages
# in a venv under target/), then runs the Rust tests and the manifest checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
command -v skopeo >/dev/null || need_apt+=(skopeo)
command -v htpasswd >/dev/null || need_apt+=(apache2-utils)
command -v make >/dev/null || need_apt+=(make)  # builds jemalloc (tikv-jemalloc-sys)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# promtool checks /metrics (tests/it/metrics.rs). Debian ships it in the server's package
# (about 100 MB); without the recommended node exporter, and no service is started.
if ! command -v promtool >/dev/null; then
  echo "installing prometheus (for promtool)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
# Headless Chromium renders the overview page (tests/it/ui.rs); without recommends (no
# desktop services), with the fonts the page is drawn in.
if ! command -v chromium >/dev/null; then
  echo "installing chromium (for the overview page test)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core fonts-liberation >/dev/null
fi

# The packages are installed above, so the real-registry, promtool and browser tests must
# not skip.
export PULLGATE_REQUIRE_REAL_REGISTRY=1
export PULLGATE_REQUIRE_PROMTOOL=1
export PULLGATE_REQUIRE_CHROMIUM=1
cargo test --all-targets --locked

# cargo fuzz: each target for a bounded time on the committed corpora (stable toolchain,
# no sanitizer); a crash fails the run. FUZZ_SECONDS=0 skips it. It runs before the
# manifest checks so that their "N passed, N failed" line closes the run.
if [ "${FUZZ_SECONDS:-60}" != 0 ]; then
  FUZZ_SECONDS=${FUZZ_SECONDS:-60} tests/fuzz.sh
fi

# The manifest checks run the binary (flags, CRD drift): `cargo test --all-targets` built
# it; a separate `cargo build` would compile the dependencies again with other features.
[ -x target/debug/pullgate ] || cargo build --locked
if [ -x tests/manifests/run.sh ]; then
  tests/manifests/run.sh
fi
