#!/usr/bin/env python3
"""Cheats against verified work, over many seeds: `cairn simulate` with each cheating behaviour
at 20% of the trainers (2 of 10), or a lazy auditor or a false challenger among 4 validators,
for every seed in 1..=N. Prints, per behaviour, the measured catch rate per cheating round next
to the documented formula, how many honest nodes were ever slashed (must be 0), and every
cheat's mean net tokens (rewards - slashes) next to an honest trainer's; writes the per-run rows
and the summary as CSV. docs/verification.md and docs/benchmarks/verification.md quote its output.

    python3 bench/verification.py                 # 200 seeds, every behaviour, all cores
    python3 bench/verification.py --seeds 20 --behaviours lazy_steps copier
    python3 bench/verification.py --reuse        # summarize the runs already in --out again

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
availability = 2
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


def run_one(binary: str, out: Path, behaviour: str, seed: int, reuse: bool) -> dict:
    groups, _ = BEHAVIOURS[behaviour]
    folder = out / behaviour / f"seed-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    scenario = folder / "scenario-in.toml"
    text = BASE.format(seed=seed) + groups
    results = folder / "results.json"
    if reuse and results.exists() and scenario.exists() and scenario.read_text() == text:
        return json.loads(results.read_text())
    scenario.write_text(text)
    result = subprocess.run(
        [binary, "simulate", "--scenario", str(scenario), "--out", str(folder)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{behaviour} seed {seed} failed:\n{result.stderr[-2000:]}")
    return json.loads(results.read_text())


SYBIL_IDENTITIES = 2


def cheats(result: dict, behaviour: str) -> list:
    """The nodes whose rounds are not their own work in this run (with `lazy_auditor`, the lazy
    trainers whose audits it shares with an honest validator; with `noise_sybil`, every identity
    but the first, which trains honestly)."""
    if behaviour == "lazy_auditor":
        return [n for n in result["nodes"] if n["role"] == "trainer" and n["behaviour"] != "honest"]
    if behaviour == "noise_sybil":
        return [n for i, n in enumerate(attackers(result)) if i % SYBIL_IDENTITIES != 0]
    return attackers(result)


def attackers(result: dict) -> list:
    """The nodes that are not honest, in order."""
    return [n for n in result["nodes"] if n["behaviour"] != "honest"]


def attacker_nets(result: dict, behaviour: str) -> tuple:
    """The attackers' role and the net tokens (rewards - slashes) of each: a noise Sybil counts
    as one attacker, the sum over its identities, to compare with one honest trainer's; with
    `lazy_auditor` the attacker is the validator."""
    nodes = attackers(result)
    if behaviour == "lazy_auditor":
        nodes = [n for n in nodes if n["role"] == "validator"]
    nets = [int(n["rewards_total"]) - int(n["slashed_total"]) for n in nodes]
    if behaviour == "noise_sybil":
        nets = [sum(nets[i : i + SYBIL_IDENTITIES]) for i in range(0, len(nets), SYBIL_IDENTITIES)]
    return nodes[0]["role"], nets


def wilson(successes: int, trials: int) -> tuple:
    """The 95% Wilson interval of a binomial proportion."""
    if trials == 0:
        return float("nan"), float("nan")
    z = 1.96
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return centre - half, centre + half


def summarize(behaviour: str, results: list) -> dict:
    """Per behaviour: how often a cheating trainer's round was audited (against the formula),
    how many audited cheats were caught, honest nodes slashed, and mean net tokens of cheats
    against honest nodes of the same role."""
    _, kind = BEHAVIOURS[behaviour]
    rate = results[0]["verification"]["audit_ppm"] / 1e6
    rounds = audited = cheats_audited = cheats_caught = 0
    cheat_net, honest_net, honest_slashed = [], {"trainer": [], "validator": []}, 0
    cheat_role = None
    # Audit compute relative to training: each audited trainer-round is re-run by min(2, V)
    # validators, each training round once by its trainer.
    audit_runs = trained_rounds = 0
    dispute_blocks, refereed, witness_bytes = [], 0, 0
    for result in results:
        dispute_blocks.extend(result["verification"]["dispute_blocks"])
        refereed += result["verification"]["refereed"]
        witness_bytes += result["verification"]["witness_bytes"]
        validators = sum(1 for n in result["nodes"] if n["role"] == "validator")
        audit_runs += result["verification"]["audited"] * min(2, validators)
        trained_rounds += sum(n["revealed"] for n in result["nodes"] if n["role"] == "trainer")
        for node in result["nodes"]:
            net = int(node["rewards_total"]) - int(node["slashed_total"])
            if node["behaviour"] == "honest":
                honest_slashed += int(node["slashed_total"]) > 0
                honest_net[node["role"]].append(net)
        cheat_role, nets = attacker_nets(result, behaviour)
        cheat_net.extend(nets)
        for node in cheats(result, behaviour):
            if node["role"] == "trainer":
                rounds += node["revealed"]
                audited += node["audited"]
                cheats_audited += node["audited"] > 0
                cheats_caught += node["disputes_lost"] > 0
    low, high = wilson(audited, rounds)
    expected = {"drawn": rate, "forced": 1.0, "none": float("nan")}[kind]
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")
    cheat_half = 1.96 * math.sqrt(
        sum((x - mean(cheat_net)) ** 2 for x in cheat_net) / max(len(cheat_net) - 1, 1) / max(len(cheat_net), 1)
    )
    return {
        "behaviour": behaviour,
        "runs": len(results),
        "audit_rate": rate,
        "cheat_rounds": rounds,
        "audited_rounds": audited,
        "audited_per_round": audited / rounds if rounds else float("nan"),
        "audited_low": low,
        "audited_high": high,
        "formula": expected,
        "audit_compute": audit_runs / trained_rounds if trained_rounds else float("nan"),
        "disputes": len(dispute_blocks),
        "dispute_blocks_mean": mean(dispute_blocks),
        "dispute_blocks_max": max(dispute_blocks, default=float("nan")),
        "witness_bytes_per_refereed": witness_bytes / refereed if refereed else float("nan"),
        "cheats_audited": cheats_audited,
        "cheats_caught": cheats_caught,
        "honest_slashed": honest_slashed,
        "cheat_net_mean": mean(cheat_net),
        "cheat_net_low": mean(cheat_net) - cheat_half,
        "cheat_net_high": mean(cheat_net) + cheat_half,
        "attacker_role": cheat_role,
        "honest_net_mean": mean(honest_net[cheat_role or "trainer"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=200, help="seeds 1..=N per behaviour [200]")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel runs [all cores]")
    parser.add_argument("--out", type=Path, default=Path("/tmp/cairn-verification"), help="run folders and CSV")
    parser.add_argument("--behaviours", nargs="*", default=list(BEHAVIOURS), choices=list(BEHAVIOURS))
    parser.add_argument("--bin", help="a built cairn binary [builds the release one]")
    parser.add_argument(
        "--reuse", action="store_true", help="read a run's results.json from --out when its scenario is unchanged"
    )
    args = parser.parse_args()
    binary = args.bin
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "-p", "cairn-cli"], cwd=ROOT, check=True)
        binary = str(ROOT / "target" / "release" / "cairn")
    args.out.mkdir(parents=True, exist_ok=True)
    summaries = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for behaviour in args.behaviours:
            futures = [pool.submit(run_one, binary, args.out, behaviour, seed, args.reuse) for seed in range(1, args.seeds + 1)]
            results = [future.result() for future in futures]
            summary = summarize(behaviour, results)
            summaries.append(summary)
            print(
                f"{behaviour:>16}: audited {summary['audited_rounds']:>4} of {summary['cheat_rounds']:>4} cheating "
                f"rounds ({summary['audited_per_round']:.4f}, 95% {summary['audited_low']:.4f}-"
                f"{summary['audited_high']:.4f}; formula {summary['formula']:.4f}), caught "
                f"{summary['cheats_caught']} of {summary['cheats_audited']} audited cheats, honest slashed "
                f"{summary['honest_slashed']}, net tokens per attacker {summary['cheat_net_mean']:.0f} (95% "
                f"{summary['cheat_net_low']:.0f} to {summary['cheat_net_high']:.0f}) vs honest {summary['attacker_role']} "
                f"{summary['honest_net_mean']:.0f}; audit compute {100 * summary['audit_compute']:.1f}% of training",
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
