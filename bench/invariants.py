#!/usr/bin/env python3
"""A thousand seeds of random faults, zero invariant violations.

Runs `examples/simulate-faults.toml` (7 validators, 8 trainers, digits, 10 rounds) at every seed
of a range through `cairn simulate --seeds`. Each seed draws its own faults (a validator crash and
restart, a trainer crashing for good, a partition that splits the validators in halves, up to
10% of messages lost, honest validators turned Byzantine, at most f = (n - 1) / 3 of them
Byzantine or down at once) and every run checks the invariants at its end: no fork, no minted or
lost tokens, every finalized model the honest validators' own, no steady honest node slashed,
and a round finalizing within 3 rounds of the last fault healing. The first violation stops the
run and names its seed; rerun that seed alone with `cairn simulate --seed N` to see it.

Usage:
    cargo build --release -p cairn-cli
    python3 bench/invariants.py                 # seeds 1..1000, every core (~25 min on 2)
    python3 bench/invariants.py --seeds 1..100  # a smaller check

Writes the many-seed report (groups.csv with each node group's profit per seed) to
bench/results/invariants/ and prints one summary line; exits 1 on a violation.
"""

import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="1..1000", help="FIRST..LAST (inclusive)")
    parser.add_argument(
        "--binary", default=os.path.join(ROOT, "target", "release", "cairn")
    )
    parser.add_argument(
        "--out", default=os.path.join(ROOT, "bench", "results", "invariants")
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if not os.path.exists(args.binary):
        print(f"{args.binary} is missing: cargo build --release -p cairn-cli", file=sys.stderr)
        return 2
    command = [
        args.binary,
        "simulate",
        "--scenario",
        os.path.join(ROOT, "examples", "simulate-faults.toml"),
        "--seeds",
        args.seeds,
        "--threads",
        str(args.threads),
        "--out",
        args.out,
    ]
    env = dict(os.environ, RUST_LOG="error", RUST_BACKTRACE="0")
    started = time.time()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.time() - started
    if done.returncode != 0:
        print(done.stdout)
        print(done.stderr, file=sys.stderr)
        print(f"FAILED after {wall:.0f} s: see the seed named above", file=sys.stderr)
        return 1
    first, last = (int(x) for x in args.seeds.split(".."))
    for line in done.stdout.splitlines():
        if " seeds (" in line:
            print(line)
    print(
        f"{last - first + 1} seeds of random faults, 0 invariant violations, "
        f"{wall:.0f} s on {args.threads} threads; report in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
