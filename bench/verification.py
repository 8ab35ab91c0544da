#!/usr/bin/env python3
"""Cheats against verified work, over many seeds: `cairn simulate` with each cheating behaviour
at 20% of the trainers (2 of 10), or a lazy auditor or a false challenger among 4 validators,
for every seed in 1..=N. Prints, per behaviour, the measured catch rate per cheating round next
to the documented formula, how many honest nodes were ever slashed (must be 0), and every
cheat's mean net tokens (rewards - slashes) next to an honest trainer's; writes the per-run rows
and the summary as CSV. docs/verification.md and docs/benchmarks/verification.md quote its output.

    python3 bench/verification.py                 # 200 seeds, every behaviour, all cores
    python3 bench/verification.py --seeds 20 --behaviours lazy_steps copier

The scenario is small (digits, MLP 64-64-10, 3 rounds of 20 steps, 2-block windows) so that a
run takes about a second; the task parameters (stakes, reward, audit rate) are the defaults.
"""

import argparse
import concurrent.futures
import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BASE = """
seed = {seed}
rounds = 3
local_steps = 20
dataset = "digits"
[windows]
commit = 2
reveal = 2
attest = 2
[network]
latency_ms = 10
jitter_ms = 2
"""

HONEST_VALIDATORS = """
[[validators]]
count = 4
"""


def trainers(cheat: str, count: int = 2) -> str:
    """8 honest trainers and `count` nodes of the `cheat` group (TOML keys of that group)."""
    return f"""
[[trainers]]
count = 8
[[trainers]]
count = {count}
{cheat}
"""


# name -> (trainer and validator groups, what the formula says about the catch rate per round)
BEHAVIOURS = {
    "lazy_steps": (trainers('behaviour = "lazy"\nlazy = "steps"\nfraction = 0.5') + HONEST_VALIDATORS, "drawn"),
    "lazy_shard": (trainers('behaviour = "lazy"\nlazy = "shard"\nfraction = 0.5') + HONEST_VALIDATORS, "drawn"),
    "forged_trace": (trainers('behaviour = "forged_trace"') + HONEST_VALIDATORS, "drawn"),
    "copier": (trainers('behaviour = "copier"\nvictim = "t0"') + HONEST_VALIDATORS, "forced"),
    "noise_sybil": (trainers('behaviour = "noise_sybil"\nidentities = 2', count=1) + HONEST_VALIDATORS, "drawn"),
    "perturbed_stale": (trainers('behaviour = "perturbed_stale"') + HONEST_VALIDATORS, "drawn"),
    "scaled": (trainers('behaviour = "scaled"\nfactor = 2.0') + HONEST_VALIDATORS, "drawn"),
    "label_flip": (trainers('behaviour = "label_flip"') + HONEST_VALIDATORS, "drawn"),
    "lazy_auditor": (
        trainers('behaviour = "lazy"\nlazy = "steps"\nfraction = 0.5')
        + '\n[[validators]]\ncount = 3\n[[validators]]\ncount = 1\nbehaviour = "lazy_auditor"\n',
        "drawn",
    ),
    "false_challenger": (
        "\n[[trainers]]\ncount = 10\n"
        + '\n[[validators]]\ncount = 3\n[[validators]]\ncount = 1\nbehaviour = "false_challenger"\n',
        "none",
    ),
}


def run_one(binary: str, out: Path, behaviour: str, seed: int) -> dict:
    groups, _ = BEHAVIOURS[behaviour]
    folder = out / behaviour / f"seed-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    scenario = folder / "scenario-in.toml"
    scenario.write_text(BASE.format(seed=seed) + groups)
    result = subprocess.run(
        [binary, "simulate", "--scenario", str(scenario), "--out", str(folder)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{behaviour} seed {seed} failed:\n{result.stderr[-2000:]}")
    return json.loads((folder / "results.json").read_text())


def cheats(result: dict, behaviour: str) -> list:
    """The nodes that cheat in this run (the trainers or validator that are not honest)."""
    if behaviour in ("lazy_auditor",):
        return [n for n in result["nodes"] if n["role"] == "trainer" and n["behaviour"] != "honest"]
    return [n for n in result["nodes"] if n["behaviour"] != "honest"]


def summarize(behaviour: str, results: list) -> dict:
    _, kind = BEHAVIOURS[behaviour]
    rate = results[0]["verification"]["audit_ppm"] / 1e6
    trials = caught = 0
    cheat_net, honest_net, honest_slashed = [], [], 0
    for result in results:
        for node in result["nodes"]:
            net = int(node["rewards_total"]) - int(node["slashed_total"])
            if node["behaviour"] == "honest":
                if int(node["slashed_total"]) > 0:
                    honest_slashed += 1
                if node["role"] == "trainer":
                    honest_net.append(net)
        for node in cheats(result, behaviour):
            cheat_net.append(int(node["rewards_total"]) - int(node["slashed_total"]))
            if node["role"] == "trainer":
                trials += node["revealed"]
                caught += 1 if node["disputes_lost"] > 0 else 0
    measured = caught / trials if trials else float("nan")
    expected = {"drawn": rate, "forced": 1.0, "none": float("nan")}[kind]
    # 95% interval of a binomial proportion (Wilson).
    if trials:
        z = 1.96
        centre = (measured + z * z / (2 * trials)) / (1 + z * z / trials)
        half = z * math.sqrt(measured * (1 - measured) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
        low, high = centre - half, centre + half
    else:
        low = high = float("nan")
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")
    return {
        "behaviour": behaviour,
        "runs": len(results),
        "audit_rate": rate,
        "cheat_rounds": trials,
        "caught": caught,
        "catch_rate": measured,
        "catch_low": low,
        "catch_high": high,
        "formula": expected,
        "honest_slashed": honest_slashed,
        "cheat_net_mean": mean(cheat_net),
        "honest_net_mean": mean(honest_net),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=200, help="seeds 1..=N per behaviour [200]")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel runs [all cores]")
    parser.add_argument("--out", type=Path, default=Path("/tmp/cairn-verification"), help="run folders and CSV")
    parser.add_argument("--behaviours", nargs="*", default=list(BEHAVIOURS), choices=list(BEHAVIOURS))
    parser.add_argument("--bin", help="a built cairn binary [builds the release one]")
    args = parser.parse_args()
    binary = args.bin
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "-p", "cairn-cli"], cwd=ROOT, check=True)
        binary = str(ROOT / "target" / "release" / "cairn")
    args.out.mkdir(parents=True, exist_ok=True)
    summaries = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for behaviour in args.behaviours:
            futures = [pool.submit(run_one, binary, args.out, behaviour, seed) for seed in range(1, args.seeds + 1)]
            results = [future.result() for future in futures]
            summary = summarize(behaviour, results)
            summaries.append(summary)
            print(
                f"{behaviour:>16}: caught {summary['caught']:>4} of {summary['cheat_rounds']:>4} cheating rounds "
                f"({summary['catch_rate']:.4f}, 95% {summary['catch_low']:.4f}-{summary['catch_high']:.4f}; "
                f"formula {summary['formula']:.4f}), honest slashed {summary['honest_slashed']}, "
                f"net tokens cheat {summary['cheat_net_mean']:.0f} vs honest {summary['honest_net_mean']:.0f}",
                flush=True,
            )
    path = args.out / "summary.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(summaries[0]))
        writer.writeheader()
        writer.writerows(summaries)
    print(f"wrote {path}")
    failed = [s["behaviour"] for s in summaries if s["honest_slashed"] > 0]
    if failed:
        print(f"honest nodes were slashed with: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
