#!/usr/bin/env bash
# Node and simulation scale figures of docs/benchmarks/node.md.
#
# Builds the release `cairn`, runs every scenario of bench/scenarios/ (or the ones named on the
# command line, e.g. `bench/node_scale.sh node-t10 node-t100`) under `cairn simulate --timing`,
# and prints one table row per run: wall time, per round, the training / validation / other
# split, blocks, peak RSS, rounds finalized and simulated time. Reports and timings stay in
# $OUT_DIR (default /tmp/cairn-node-scale). Runs one scenario at a time, on 1 thread (the
# scenario default), so figures compare; the load average is printed with every row.
#
# Memory: the simulator's p2p quota is 1 000 msg/s; node-t100 peaks near 1.3 GiB and scale-t500
# near 7.5 GiB and runs about 10 minutes (docs/benchmarks/node.md explains why a larger quota costs far more).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out_dir="${OUT_DIR:-/tmp/cairn-node-scale}"
mkdir -p "$out_dir"
cd "$root"

# CAIRN_BIN=path runs another build of cairn (e.g. one with a changed constant) and skips the build.
if [ -n "${CAIRN_BIN:-}" ]; then
    bin="$CAIRN_BIN"
else
    cargo build --release -p cairn-cli >&2
    bin="$root/target/release/cairn"
fi

if [ "$#" -gt 0 ]; then
    names=("$@")
else
    names=(node-t10 model-t20-h32 model-t20-h256 node-t100 scale-t500)
fi

echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ)"
printf '| %-15s | %7s | %8s | %9s | %10s | %8s | %6s | %8s | %9s | %9s | %-14s |\n' \
    scenario wall_s s/round training_s validation_s other_s blocks peak_MiB finalized sim_s load
printf '| %-15s | %7s | %8s | %9s | %10s | %8s | %6s | %8s | %9s | %9s | %-14s |\n' \
    --- --- --- --- --- --- --- --- --- --- ---
for name in "${names[@]}"; do
    scenario="bench/scenarios/$name.toml"
    [ -f "$scenario" ] || { echo "no scenario $scenario" >&2; exit 1; }
    load="$(cut -d' ' -f1-3 /proc/loadavg)"
    "$bin" simulate --scenario "$scenario" --out "$out_dir/$name" \
        --timing "$out_dir/$name.timing.json" > "$out_dir/$name.log" 2>&1
    python3 - "$out_dir/$name.timing.json" "$out_dir/$name/results.json" "$name" "$load" <<'EOF'
import json, sys
timing = json.load(open(sys.argv[1]))
result = json.load(open(sys.argv[2]))
rounds = result["rounds"]
finalized = sum(1 for r in rounds if r["finalized"])
wall = timing["wall_ms"] / 1000
peak = (timing["peak_rss_bytes"] or 0) / 2**20
print("| %-15s | %7.1f | %8.2f | %9.1f | %10.1f | %8.1f | %6d | %8.0f | %9s | %9.1f | %-14s |" % (
    sys.argv[3], wall, wall / max(len(rounds), 1), timing["training_ms"] / 1000,
    timing["validation_ms"] / 1000, timing["other_ms"] / 1000, timing["blocks"], peak,
    "%d/%d" % (finalized, len(rounds)), result["simulated_ms"] / 1000, sys.argv[4]))
EOF
done
