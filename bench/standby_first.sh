#!/bin/bash
# A standby validator that joins the consensus set BEFORE a task is created volunteers as a
# fifth task validator; every round must still count the trainers' updates. Runs the loopback
# devnet (4 validators, 1 standby, 4 trainers, 16-block epochs) RUNS times and prints, per
# round, how many updates each task validator voted it holds and how many counted.
#   bash bench/standby_first.sh [RUNS]   (CAIRN=path/to/cairn, default target/debug/cairn)
set -u
CAIRN=${CAIRN:-target/debug/cairn}
RUNS=${1:-4}
for run in $(seq 1 "$RUNS"); do
  base=$((21000 + run * 40))
  dir=$(mktemp -d)
  RUST_LOG=${LOG:-warn} "$CAIRN" devnet --validators 4 --standby 1 --epoch-length 16 --trainers 4 \
    --dir "$dir/net" --base-port $base --datasets digits --quiet --status-every 1 --for 400 \
    >/dev/null 2>&1 &
  pid=$!
  api() { echo 127.0.0.1:$((base + 2 * $1 + 1)); }
  for _ in $(seq 1 120); do
    curl -sf "$(api 4)/status" >/dev/null && break
    sleep 1
  done
  "$CAIRN" validator join --node "$(api 4)" --stake 10000 --wait --timeout 120 >/dev/null ||
    echo "run $run: the standby did not join"
  "$CAIRN" task create --node "$(api 0)" --dataset digits --rounds 3 --trainers 4 \
    --validators 4 >/dev/null
  "$CAIRN" task status --node "$(api 0)" --task 0 --wait-round 3 --timeout 300 >/dev/null ||
    echo "run $run: the task did not finish"
  for r in 0 1 2; do
    curl -s "$(api 0)/tasks/0/rounds/$r" | python3 -c "
import json, sys
r = json.load(sys.stdin)
votes = sorted(len(v) for v in r.get('votes', {}).values())
print(f'run $run round $r: task validators {len(votes)}, updates held per vote {votes}, '
      f'counted {len(r.get(\"available\") or [])}')"
  done
  kill -TERM $pid
  wait $pid 2>/dev/null
  rm -rf "$dir"
done
