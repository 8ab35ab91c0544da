#!/usr/bin/env bash
# Every grid of docs/robustness.md, into bench/results/robustness/<name>/ (runs.csv, summary.csv,
# robustness.md; robustness.json too, which is not committed). Times on 2 cores, 2026-12-06.
# Run one grid by naming it: bench/robustness.sh rules
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p cairn-cli
cairn=./target/release/cairn
out=bench/results/robustness
all="none,sign_flip,gaussian,ipm:0.1,ipm:0.5,alie,mimic,min_max:std,min_sum:std,label_flip"
fixed8="none,sign_flip,ipm:0.5,alie,mimic,min_max:std,label_flip,ipm:0.1"
run() { local name=$1; shift; echo "== $name"; "$cairn" robustness --out "$out/$name" "$@"; }
grid() {
  case "$1" in
  # the default grid: 4 partitions x 11 rules x 10 attacks x 3 seeds (37.5 min)
  rules) run rules --seeds 1..3 ;;
  # the recommended defence against every attack, the optimized ones included (4.2 min)
  recommended) run recommended --seeds 1..3 --attacks "$all,optimized_alie,optimized_ipm" \
      --defences 'arc:5,nnm:5>centered_clipping:1:3+sm:0.5' ;;
  # bucketing with server momentum, with and without worker momentum (9.2 min)
  bucketing-momentum) run bucketing-momentum --seeds 1..3 --attacks "$all,optimized_alie,optimized_ipm" \
      --defences 'bucketing:2>centered_clipping:1:3+sm:0.5;bucketing:2>centered_clipping:1:3+wm:0.5+sm:0.5' ;;
  # bucketing variants on the skewed partitions (5.2 min)
  bucketing-variants) run bucketing-variants --seeds 1..3 --partitions shards:2,dirichlet:0.1 --attacks "$fixed8" \
      --defences 'bucketing:2>centered_clipping:1:3+sm:0.5;bucketing:2>centered_clipping:1:3+wm:0.5;bucketing:2>centered_clipping:0.5:3;bucketing:3>centered_clipping:1:3;bucketing:2>centered_clipping:2:3;bucketing:2,nnm:5>centered_clipping:1:3' ;;
  # plain local SGD at lr 0.2 with server and worker momentum (11.4 min)
  local-sgd) run local-sgd --seeds 1..3 --optimizer sgd:lr=0.2,batch=32 --attacks "$all" \
      --defences 'nnm:5>trimmed_mean:5;nnm:5>trimmed_mean:5+sm:0.9;arc:5,nnm:5>centered_clipping:1:3;arc:5,nnm:5>centered_clipping:1:3+sm:0.9;arc:5,nnm:5>centered_clipping:1:3+wm:0.5+sm:0.9' ;;
  local-sgd-bucketing) run local-sgd-bucketing --seeds 1..3 --optimizer sgd:lr=0.2,batch=32 \
      --partitions shards:2,dirichlet:0.1 --attacks "$fixed8" \
      --defences 'bucketing:2>centered_clipping:1:3;bucketing:2>centered_clipping:1:3+sm:0.9' ;;
  # plain local SGD at lr 0.2 with server momentum 0.9 against the hardest attacks (2.1 min)
  local-sgd-optimized) run local-sgd-optimized --seeds 1..3 --optimizer sgd:lr=0.2,batch=32 \
      --partitions shards:2,dirichlet:0.1 \
      --attacks none,sign_flip,ipm:0.5,optimized_ipm,optimized_alie,mimic,label_flip \
      --defences 'arc:5,nnm:5>centered_clipping:1:3+sm:0.9' ;;
  # the optimized attacks against the candidates (seeds 1..2, 5.4 min)
  optimized-attacks) run optimized-attacks --seeds 1..2 --partitions iid,shards:2 \
      --attacks none,optimized_alie,optimized_ipm,label_flip,gaussian \
      --defences 'nnm:5>trimmed_mean:5;arc:5,nnm:5>centered_clipping:1:3;bucketing:2>centered_clipping:1:3;bucketing:2>centered_clipping:1:3+sm:0.5;arc:5,nnm:5>centered_clipping:1:3+sm:0.5;nnm:5>trimmed_mean:5+sm:0.5;trimmed_mean:5' ;;
  # larger round budgets and other tries against the attacks along the negative mean (2026-12-07)
  budget-40) run budget-40 --seeds 1..3 --rounds 40 --partitions shards:2,dirichlet:0.1 \
      --attacks "$all,optimized_alie,optimized_ipm" --defences 'arc:5,nnm:5>centered_clipping:1:3+sm:0.5' ;;
  budget-60) run budget-60 --seeds 1..3 --rounds 60 --partitions shards:2 \
      --attacks none,sign_flip,ipm:0.5,optimized_ipm --defences 'arc:5,nnm:5>centered_clipping:1:3+sm:0.5' ;;
  local-sgd-40) run local-sgd-40 --seeds 1..3 --rounds 40 --partitions shards:2 --optimizer sgd:lr=0.2,batch=32 \
      --attacks none,sign_flip,ipm:0.5,optimized_ipm,optimized_alie --defences 'arc:5,nnm:5>centered_clipping:1:3+sm:0.9' ;;
  clipping) run clipping --seeds 1..3 --partitions shards:2 \
      --attacks none,sign_flip,ipm:0.5,optimized_ipm,optimized_alie \
      --defences 'arc:5,nnm:5>centered_clipping:0.3:3+sm:0.5;arc:5,nnm:5>centered_clipping:1:10+sm:0.5' ;;
  local-steps-5) run local-steps-5 --seeds 1..3 --rounds 40 --local-steps 5 --partitions shards:2 \
      --attacks none,sign_flip,ipm:0.5,optimized_ipm,optimized_alie --defences 'arc:5,nnm:5>centered_clipping:1:3+sm:0.5' ;;
  # the held-out guard on the recommended rule, against every attack and the guard-aware IPM
  # (6.5 min), at 40 rounds on the skewed partitions (6 min), and the guard-aware IPM against
  # the rule without the guard (1 min)
  guard) run guard --seeds 1..3 --attacks "$all,optimized_alie,optimized_ipm,guard_ipm:0.5,guard_ipm:1" \
      --defences 'arc:5,nnm:5>centered_clipping:1:3+screen:5+sm:0.5' ;;
  guard-40) run guard-40 --seeds 1..3 --rounds 40 --partitions shards:2,dirichlet:0.1 \
      --attacks "$all,optimized_alie,optimized_ipm,guard_ipm:0.5,guard_ipm:1" \
      --defences 'arc:5,nnm:5>centered_clipping:1:3+screen:5+sm:0.5' ;;
  guard-unguarded) run guard-unguarded --seeds 1..3 --partitions shards:2,dirichlet:0.1 \
      --attacks none,guard_ipm:0.5,guard_ipm:1 --defences 'arc:5,nnm:5>centered_clipping:1:3+sm:0.5' ;;
  # the guard on other rules, on the skewed partitions (7 min)
  guard-rules) run guard-rules --seeds 1..3 --partitions shards:2,dirichlet:0.1 \
      --attacks "$all,optimized_alie,optimized_ipm" \
      --defences 'mean+screen:5;median+screen:5;nnm:5>trimmed_mean:5+screen:5' ;;
  *) echo "unknown grid $1" >&2; exit 2 ;;
  esac
}
if [ $# -gt 0 ]; then
  for name in "$@"; do grid "$name"; done
else
  for name in rules recommended bucketing-momentum bucketing-variants local-sgd local-sgd-bucketing \
      local-sgd-optimized optimized-attacks budget-40 budget-60 local-sgd-40 clipping local-steps-5 \
      guard guard-40 guard-unguarded guard-rules; do
    grid "$name"
  done
fi
