#!/usr/bin/env bash
# Load benchmark (BENCHMARKS.md): pullgate against the minimal hyper+rustls server
# (examples/baseline.rs), side by side and interleaved in one run, over TLS with
# HTTP/1.1 keep-alive on loopback. Prints Markdown tables; see BENCHMARKS.md.
#
#   benches/load.sh   # ROUNDS=4 PEAK_SECONDS=4 LATENCY_SECONDS=5 by default: about 5 minutes,
#                      # under 10 with a cold release build (about 4 minutes on 2 cores)
#
# Per round, for each server in turn (baseline, then pullgate):
#   - peak throughput at 25 connections, for 2, 10 and 25 KiB pod reviews;
#   - p50/p99 latency at 10 KiB at a fixed total rate of half the baseline's 10 KiB peak
#     (measured in round 1), spread over the same 25 connections (h2load --rps per client);
#   - each server's CPU time per request at peak (user + system, from /proc).
# The yardsticks `work-Nus` (the baseline with `--work-us N`: N µs of CPU per request on
# top) run the 10 KiB measurements too: they show how much work per request each target
# leaves room for, on this machine, in this run. The yardstick `parse-json` (the baseline
# with `--parse-json`: it checks that each body is JSON, with serde_json, and keeps
# nothing) runs them too: the least any webhook does with a review before it can decide.
# With PULLGATE_OTHER=PATH, the pullgate
# binary at PATH (another build, to compare a change) runs as `other` in every
# measurement too.
# pullgate runs `serve --config scaled.yaml --log-format json` (10,000 namespaces, 1,000
# spaces, 500 workspaces) with its audit log (stdout) going into a pipe, as a
# container's stdout does, read by `wc -l` (the reader a container runtime would be; a
# run writes gigabytes of audit lines, which a file would turn into a measurement of the
# kernel's dirty-page throttling). Its VmRSS/VmHWM are read from /proc after the config
# is loaded and after each round.
#
# LAYOUT=pinned (the default, with 2 or more cores): h2load runs on the last core and
# every server on the others (taskset). Each server's runtime sizes itself to the cores
# it is given, as in a pod with a CPU limit, and the load generator never takes a core
# from the server it measures (in production the apiserver runs elsewhere).
# LAYOUT=shared: generator and servers on every core, as the scheduler places them.
set -euo pipefail

ROUNDS=${ROUNDS:-4}
PEAK_SECONDS=${PEAK_SECONDS:-4}
LATENCY_SECONDS=${LATENCY_SECONDS:-5}
WARMUP_SECONDS=${WARMUP_SECONDS:-1}
WORK_US=${WORK_US:-6 10}
LAYOUT=${LAYOUT:-pinned}
CONNECTIONS=25
SIZES=(2 10 25)

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
target=${CARGO_TARGET_DIR:-$here/target}
work=$(mktemp -d "${TMPDIR:-/tmp}/pullgate-load.XXXXXX")
started=$(date +%s)
declare -A port pid # by server name
cleanup() {
    for p in "${pid[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

if ! command -v h2load >/dev/null; then
    echo "installing h2load (Debian nghttp2-client)" >&2
    apt-get install -y nghttp2-client >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y nghttp2-client >/dev/null; }
fi

echo "building release binaries" >&2
cargo build --release --quiet --bin pullgate --example baseline
pullgate=$target/release/pullgate
baseline=$target/release/examples/baseline

echo "generating the scaled config and the reviews in $work" >&2
python3 benches/loadgen.py config "$work/scaled.yaml"
for kib in "${SIZES[@]}"; do
    python3 benches/loadgen.py review "$kib" "$work/review-$kib.json" >"$work/review-$kib.size"
done

cores=$(nproc)
on_servers=()
on_generator=()
if [ "$LAYOUT" = pinned ] && [ "$cores" -ge 2 ] && command -v taskset >/dev/null; then
    on_servers=(taskset -c "0-$((cores - 2))")
    on_generator=(taskset -c "$((cores - 1))")
    layout="pinned: servers on cores 0-$((cores - 2)), h2load on core $((cores - 1))"
else
    LAYOUT=shared
    layout="shared: servers and h2load on all $cores cores"
fi
echo "layout $layout" >&2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    return 1
}

start_baseline() { # name [--work-us N]
    port[$1]=$(free_port)
    "${on_servers[@]}" "$baseline" "127.0.0.1:${port[$1]}" "${@:2}" 2>"$work/$1.log" &
    pid[$1]=$!
    wait_port "${port[$1]}"
}
# One at a time, before anything else runs: each times its work loop as it starts.
start_baseline baseline
yardsticks=()
for us in $WORK_US; do
    start_baseline "work-${us}us" --work-us "$us"
    yardsticks+=("work-${us}us")
done
start_baseline parse-json --parse-json
yardsticks+=(parse-json)
declare -A reader
start_pullgate() { # name binary
    port[$1]=$(free_port)
    mkfifo "$work/audit-$1"
    "${on_servers[@]}" wc -l <"$work/audit-$1" >"$work/audit-lines-$1" &
    reader[$1]=$!
    "${on_servers[@]}" "$2" serve --config "$work/scaled.yaml" --log-format json \
        --listen "127.0.0.1:${port[$1]}" --probe-listen "127.0.0.1:$(free_port)" \
        >"$work/audit-$1" 2>"$work/$1.log" &
    pid[$1]=$!
    wait_port "${port[$1]}"
}
compared=(baseline pullgate)
if [ -n "${PULLGATE_OTHER:-}" ]; then
    start_pullgate other "$PULLGATE_OTHER"
    compared+=(other)
fi
t0=$(date +%s%N)
start_pullgate pullgate "$pullgate"
t1=$(date +%s%N)
echo "pullgate ready in $(((t1 - t0) / 1000000)) ms with the scaled config" >&2

results=$work/results.tsv
rss() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/${pid[pullgate]}/status"; }
echo "0 pullgate rss-loaded-kib $(rss VmRSS)" >>"$results"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system, in clock ticks

peak() { # server kib round: prints requests/s and CPU µs per request
    local out=$work/peak-$1-$2-$3.txt
    "${on_generator[@]}" h2load --h1 -t1 -c"$CONNECTIONS" -D "$PEAK_SECONDS" --warm-up-time "$WARMUP_SECONDS" \
        -d "$work/review-$2.json" -H 'content-type: application/json' \
        "https://127.0.0.1:${port[$1]}/validate?timeout=10s" >"$out" 2>&1 &
    local h2=$! t0 t1 window=$((PEAK_SECONDS > 1 ? PEAK_SECONDS - 1 : 1))
    # CPU over the measured period, less a second at its end.
    sleep "$WARMUP_SECONDS"
    t0=$(cpu_ticks "${pid[$1]}")
    sleep "$window"
    t1=$(cpu_ticks "${pid[$1]}")
    wait "$h2" || true
    local rps
    rps=$(python3 benches/loadgen.py peak "$out") || return 1
    python3 -c 'import sys; r, t, hz, s = map(float, sys.argv[1:]); print(r, f"{t / hz / s / r * 1e6:.1f}")' \
        "$rps" "$((t1 - t0))" "$(getconf CLK_TCK)" "$window"
}

latency() { # server rps-per-connection round
    local log=$work/latency-$1-$3.log
    rm -f "$log"
    "${on_generator[@]}" h2load --h1 -t1 -c"$CONNECTIONS" -D "$LATENCY_SECONDS" --warm-up-time "$WARMUP_SECONDS" \
        --rps "$2" --log-file "$log" \
        -d "$work/review-10.json" -H 'content-type: application/json' \
        "https://127.0.0.1:${port[$1]}/validate?timeout=10s" >"$work/latency-$1-$3.txt" 2>&1
    python3 benches/loadgen.py latency "$log"
}

rate=""
for round in $(seq 1 "$ROUNDS"); do
    for kib in "${SIZES[@]}"; do
        servers=("${compared[@]}")
        if [ "$kib" = 10 ]; then servers+=("${yardsticks[@]}"); fi
        for server in "${servers[@]}"; do
            measured=$(peak "$server" "$kib" "$round")
            read -r r cpu <<<"$measured"
            echo "$round $server rps-${kib}KiB $r" >>"$results"
            echo "$round $server cpu-us-per-request-${kib}KiB $cpu" >>"$results"
            echo "round $round: $server ${kib} KiB peak $r req/s, $cpu µs CPU per request" >&2
        done
    done
    if [ -z "$rate" ]; then
        base10=$(awk '$1 == 1 && $2 == "baseline" && $3 == "rps-10KiB" {print $4}' "$results")
        rate=$(python3 -c "import sys; print(max(1, round(float(sys.argv[1]) / 2 / $CONNECTIONS)))" "$base10")
        echo "fixed rate: $rate req/s per connection x $CONNECTIONS = $((rate * CONNECTIONS)) req/s" >&2
    fi
    for server in "${compared[@]}" "${yardsticks[@]}"; do
        read -r p50 p99 n < <(latency "$server" "$rate" "$round")
        echo "$round $server p50-10KiB-at-half-peak $p50" >>"$results"
        echo "$round $server p99-10KiB-at-half-peak $p99" >>"$results"
        echo "round $round: $server p50 $p50 ms p99 $p99 ms ($n requests)" >&2
    done
    echo "$round pullgate rss-after-round-kib $(rss VmRSS)" >>"$results"
    echo "$round pullgate hwm-after-round-kib $(rss VmHWM)" >>"$results"
done

# Stopping pullgate writes its pending audit lines and closes the pipe.
kill "${pid[pullgate]}"
wait "${pid[pullgate]}" || true
wait "${reader[pullgate]}"
audit_lines=$(cat "$work/audit-lines-pullgate")
elapsed=$(($(date +%s) - started))

echo
echo "## Load benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $ROUNDS rounds, $cores cores)"
echo
echo "Layout: $layout."
echo "Review sizes (bytes): 2 KiB $(cat "$work/review-2.size"), 10 KiB $(cat "$work/review-10.size"), 25 KiB $(cat "$work/review-25.size")."
echo "Fixed rate for latency: $((rate * CONNECTIONS)) req/s ($rate per connection x $CONNECTIONS)."
echo "pullgate ready in $(((t1 - t0) / 1000000)) ms; audit lines written: $audit_lines; script time: ${elapsed} s."
echo
python3 benches/loadgen.py table "$results"
echo
echo "Raw results: $results"
