#!/usr/bin/env python3
"""Loopback devnet benchmark: a real chain of one OS process per node against `cairn simulate`.

Starts `cairn devnet` (V validators, T trainers, loopback TCP), runs one task on `digits`
through a node's API, and measures:
  - round latency: wall seconds between round openings on the devnet, next to the simulated
    milliseconds `cairn simulate` reports for the same task (same counts, rule, windows);
  - CPU seconds and peak resident memory of every node process over the task;
  - bytes on the wire: the growth of every node's `runtime_outbound_bandwidth` counter
    (commonware's metered network) over the task, per round;
  - where the agents' time went: deciding in block callbacks (with the ledger store locked)
    against slow jobs (training, aggregation, scoring, audits) on the worker pool.

Writes devnet.json and devnet.md to --out. Usage:
  cargo build --release -p cairn-cli
  python3 bench/devnet.py --cairn target/release/cairn --out bench/results/devnet
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TICKS = os.sysconf("SC_CLK_TCK")


def get(address, path, timeout=5):
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=timeout) as answer:
            return answer.read()
    except Exception:  # noqa: BLE001 - a node not answering yet
        return None


def get_json(address, path):
    body = get(address, path)
    return json.loads(body) if body is not None else None


def free_base(count):
    """A run of `count` free ports below the kernel's ephemeral range (the nodes' outgoing
    connections take ephemeral ports, and one could take a port a node has yet to bind)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for base in range(20000 + (os.getpid() % 500) * 16, low - count, count):
        ok = True
        for port in range(base, base + count):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return base
    sys.exit("no free port range below the ephemeral ports")


def proc_sample(pid):
    """(cpu seconds, resident bytes) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICKS
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))
        return cpu, rss
    except (OSError, StopIteration, IndexError, ValueError):
        return None


def outbound_bytes(address):
    body = get(address, "/metrics")
    if body is None:
        return None
    total = 0
    for line in body.decode().splitlines():
        if re.match(r"^\S*outbound_bandwidth(_total)?(\{[^}]*\})? ", line):
            total += float(line.split()[-1])
    return total


AGENT_METRICS = ("cairn_agent_callback_seconds", "cairn_agent_job_seconds", "cairn_agent_jobs",
                 "cairn_agent_jobs_refused")


def agent_metrics(address):
    """The node's agent timings: time deciding in block callbacks (store locked) and time its
    slow jobs took on the worker pool, with the job counts."""
    body = get(address, "/metrics")
    found = {}
    if body is None:
        return found
    for line in body.decode().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in AGENT_METRICS:
            found[parts[0]] = float(parts[1])
    return found


def wait(what, limit, done):
    deadline = time.time() + limit
    while time.time() < deadline:
        if done():
            return
        time.sleep(0.25)
    sys.exit(f"timed out waiting for {what}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cairn", default="target/release/cairn")
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--trainers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rule", default="arc:1,nnm:1>centered_clipping:1:3+sm:0.5")
    parser.add_argument("--block-interval-ms", type=int, default=400)
    parser.add_argument("--epoch-length", type=int, default=50,
                        help="blocks per consensus epoch (0: one epoch, the genesis set for good)")
    parser.add_argument("--out", default="bench/results/devnet")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    count = args.validators + args.trainers
    tmp = tempfile.mkdtemp(prefix="cairn-devnet-bench-")
    base = free_base(2 * count)
    env = dict(os.environ, RUST_LOG="warn", RUST_BACKTRACE="0")
    devnet = subprocess.Popen(
        [args.cairn, "devnet", "--validators", str(args.validators), "--trainers", str(args.trainers),
         "--dir", f"{tmp}/net", "--base-port", str(base), "--datasets", "digits", "--quiet",
         "--status-every", "1", "--block-interval-ms", str(args.block_interval_ms),
         "--epoch-length", str(args.epoch_length)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    apis = [f"127.0.0.1:{base + 2 * i + 1}" for i in range(count)]
    names = [f"validator-{i}" for i in range(args.validators)] + [f"trainer-{i}" for i in range(args.trainers)]
    try:
        wait("every node at height 2", 120, lambda: all(
            (get_json(a, "/status") or {}).get("height", 0) >= 2 for a in apis))
        with open(f"{tmp}/net/status.json") as f:
            pids = {row["name"]: row["pid"] for row in json.load(f)}
        cpu0 = {n: proc_sample(pids[n])[0] for n in names}
        bytes0 = {n: outbound_bytes(a) for n, a in zip(names, apis)}
        peak = {n: 0 for n in names}
        created = subprocess.run(
            [args.cairn, "task", "create", "--node", apis[0], "--dataset", "digits",
             "--rounds", str(args.rounds), "--trainers", str(args.trainers),
             "--validators", str(args.validators), "--rule", args.rule],
            env=env, capture_output=True, text=True)
        if created.returncode != 0:
            sys.exit(created.stderr)
        start = time.time()
        opened = {}
        while True:
            task = get_json(apis[0], "/tasks/0")
            now = time.time()
            for n in names:
                sample = proc_sample(pids[n])
                if sample:
                    peak[n] = max(peak[n], sample[1])
            if task:
                status = task["status"]
                if isinstance(status, dict) and "Running" in status:
                    r = status["Running"]["round"]
                    opened.setdefault(r, now)
                elif status in ("Finished", "Settled"):
                    opened.setdefault(args.rounds, now)
                    break
            if now - start > 900:
                sys.exit("the task did not finish in 15 minutes")
            time.sleep(0.2)
        cpu1 = {n: proc_sample(pids[n])[0] for n in names}
        bytes1 = {n: outbound_bytes(a) for n, a in zip(names, apis)}
        rounds = sorted(opened)
        latencies = [opened[rounds[i + 1]] - opened[rounds[i]] for i in range(len(rounds) - 1)]
        height = get_json(apis[0], "/status")["height"]
        agents = {n: agent_metrics(a) for n, a in zip(names, apis)}
    finally:
        devnet.send_signal(signal.SIGTERM)
        try:
            devnet.wait(timeout=30)
        except subprocess.TimeoutExpired:
            devnet.kill()

    # The same task in the simulator (loopback: 1 ms links).
    sim_out = f"{tmp}/sim"
    subprocess.run(
        [args.cairn, "simulate", "--dataset", "digits", "--rounds", str(args.rounds),
         "--trainers", str(args.trainers), "--attackers", "0", "--validators", str(args.validators),
         "--rule", args.rule, "--latency-ms", "1", "--out", sim_out],
        env=env, check=True, capture_output=True)
    with open(f"{sim_out}/results.json") as f:
        sim = json.load(f)
    sim_rounds = [r.get("finalization_latency_ms") for r in sim["rounds"]]

    nodes = []
    for n in names:
        nodes.append({
            "name": n,
            "cpu_seconds": round(cpu1[n] - cpu0[n], 2),
            "peak_rss_mib": round(peak[n] / 2**20, 1),
            "sent_bytes": (bytes1[n] - bytes0[n]) if bytes1[n] is not None and bytes0[n] is not None else None,
            "callback_seconds": agents[n].get("cairn_agent_callback_seconds"),
            "job_seconds": agents[n].get("cairn_agent_job_seconds"),
            "jobs": agents[n].get("cairn_agent_jobs"),
            "jobs_refused": agents[n].get("cairn_agent_jobs_refused"),
        })
    sent = sum(n["sent_bytes"] or 0 for n in nodes)
    result = {
        "validators": args.validators,
        "trainers": args.trainers,
        "rounds": args.rounds,
        "rule": args.rule,
        "block_interval_ms": args.block_interval_ms,
        "epoch_length": args.epoch_length,
        "cores": os.cpu_count(),
        "devnet_round_seconds": [round(x, 2) for x in latencies],
        "devnet_task_seconds": round(opened[args.rounds] - opened[min(opened)], 2),
        "devnet_height_at_end": height,
        "sim_round_finalization_ms": sim_rounds,
        "sim_simulated_ms": sim["simulated_ms"],
        "sim_final_accuracy": sim.get("final_accuracy"),
        "bytes_sent_per_round": round(sent / args.rounds),
        "nodes": nodes,
    }
    with open(f"{args.out}/devnet.json", "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    lines = [
        f"# Loopback devnet: {args.validators} validators + {args.trainers} trainers, digits, "
        f"{args.rounds} rounds, {os.cpu_count()} cores",
        "",
        "| round | devnet wall s (opening to opening) | simulate: simulated ms, opening to finalization |",
        "|---|---|---|",
    ]
    for i, latency in enumerate(latencies):
        sim_ms = sim_rounds[i] if i < len(sim_rounds) else None
        lines.append(f"| {i} | {latency:.2f} | {sim_ms} |")
    lines += [
        "",
        f"Bytes sent by all nodes per round: {result['bytes_sent_per_round']:,}",
        "",
        "| node | CPU s over the task | peak RSS MiB | bytes sent | agent s in block callbacks | "
        "job s on the pool | jobs (refused) |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in nodes:
        lines.append(f"| {n['name']} | {n['cpu_seconds']} | {n['peak_rss_mib']} | {n['sent_bytes']:,.0f} | "
                     f"{n['callback_seconds']} | {n['job_seconds']} | {n['jobs']} ({n['jobs_refused']}) |")
    with open(f"{args.out}/devnet.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
