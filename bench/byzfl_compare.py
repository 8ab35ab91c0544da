#!/usr/bin/env python3
"""Times Cairn's aggregation rules against ByzFL's on the same inputs, in one run.

Inputs: n = 50 updates of dimension d = 1,000,000 (float32, seeded numpy), written once to an
.npy file. For each rule:

- ByzFL: the aggregator called in-process on the float32 numpy array (best of --repeat runs);
- Cairn: `cairn aggregate --rule ... --input updates.npy --output out.npy` as a subprocess,
  best of --repeat runs: the time of the rule itself (logged by the command at RUST_LOG=info as
  `elapsed_s`) and the whole command's wall time, including process start, reading the 200 MB
  input and writing the output. The ratio is taken on the rule's own time, like ByzFL's.

The two outputs are compared (max relative difference) so the timing is of equal work.
Prints a Markdown table for docs/benchmarks/robust-vs-byzfl.md.

Usage: python3 bench/byzfl_compare.py [--cairn target/release/cairn] [--n 50] [--d 1000000]
Needs byzfl (see scripts/make_fixtures.py, which creates /tmp/fixtures-venv with it): this script
re-executes itself in that venv when byzfl is not importable.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ensure_byzfl():
    try:
        import byzfl  # noqa: F401
        import numpy  # noqa: F401
    except ImportError:
        venv = Path(os.environ.get("FIXTURES_VENV", "/tmp/fixtures-venv"))
        python = venv / "bin" / "python"
        if not python.exists() or Path(sys.prefix).resolve() == venv.resolve():
            sys.exit("byzfl is not installed: run scripts/make_fixtures.py first (it creates the venv)")
        os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


ensure_byzfl()

import numpy as np  # noqa: E402
import byzfl  # noqa: E402


def best_of(repeat, fn):
    best = float("inf")
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cairn", default=str(ROOT / "target/release/cairn"))
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--d", type=int, default=1_000_000)
    parser.add_argument("--f", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, d, f = args.n, args.d, args.f

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d)).astype(np.float32)
    # ByzFL's in-place pre-aggregators would modify x: every call gets its own copy.
    # Factories: ByzFL's CenteredClipping keeps its last output as the next starting point, so
    # every call gets a fresh aggregator.
    cases = [
        ("mean", lambda: byzfl.Average()),
        ("median", lambda: byzfl.Median()),
        (f"trimmed_mean:{f}", lambda: byzfl.TrMean(f=f)),
        (f"krum:{f}:byzfl", lambda: byzfl.Krum(f=f)),
        (f"multi_krum:{f}:auto:byzfl", lambda: byzfl.MultiKrum(f=f)),
        ("geometric_median:0.1:3:zeros", lambda: byzfl.GeometricMedian(nu=0.1, T=3)),
        ("centered_clipping:100:1", lambda: byzfl.CenteredClipping(L=1, tau=100.0)),
        (f"meamed:{f}", lambda: byzfl.Meamed(f=f)),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        updates = os.path.join(tmp, "updates.npy")
        out = os.path.join(tmp, "out.npy")
        np.save(updates, x)
        x64 = x.astype(np.float64)
        for rule, make in cases:
            byzfl_time, _ = best_of(args.repeat, lambda: make()(x.copy()))
            # The reference output is ByzFL's in float64 on the same values: its float32 run
            # breaks near-ties (e.g. Meamed's distances to the median) by rounding.
            theirs = make()(x64.copy())
            command = [args.cairn, "aggregate", "--rule", rule, "--input", updates, "--output", out]

            inner = []

            def run_cairn():
                done = subprocess.run(command, check=True, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True,
                                      env={**os.environ, "RUST_LOG": "cairn=info", "NO_COLOR": "1"})
                match = re.search(r"elapsed_s=([0-9.eE+-]+)", done.stderr)
                if match:
                    inner.append(float(match.group(1)))
                return np.load(out)

            cairn_time, ours = best_of(args.repeat, run_cairn)
            cairn_inner = min(inner) if inner else float("nan")
            theirs = np.asarray(theirs, dtype=np.float64)
            # Largest coordinate error relative to the output's scale.
            difference = float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))
            rows.append((rule, byzfl_time, cairn_inner, cairn_time, byzfl_time / cairn_inner, difference))
            print(f"{rule}: byzfl {byzfl_time:.3f}s cairn {cairn_inner:.3f}s ({cairn_time:.3f}s with I/O)",
                  file=sys.stderr)

    print(f"n = {n}, d = {d}, f = {f}, float32; best of {args.repeat}; "
          f"byzfl {__import__('importlib.metadata').metadata.version('byzfl')}, numpy {np.__version__}")
    print()
    print("| rule | ByzFL (s) | Cairn rule (s) | `cairn aggregate` incl. process + I/O (s) | ByzFL / Cairn rule | max abs. diff / max abs. |")
    print("|---|---:|---:|---:|---:|---:|")
    for rule, b, c, total, ratio, diff in rows:
        print(f"| `{rule}` | {b:.3f} | {c:.3f} | {total:.3f} | {ratio:.2f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
