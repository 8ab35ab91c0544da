#!/usr/bin/env python3
"""Reference figure for Cairn's MLP training benchmark, measured in PyTorch on the CPU.

Times one SGD step (forward, cross-entropy, backward, update) of an MLP 784-256-128-10 on a batch
of 64, at 1 and 2 threads (torch.set_num_threads), and prints samples/s. This is the step
`cargo bench -p cairn-ml --bench mlp_train` times in Rust.

Usage: python3 bench/torch_mlp.py [--setup] [--seconds 3]
  --setup   create bench/.venv and pip install torch from PyPI into it, then re-run
            this script inside the venv.
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, ".venv")
BATCH = 64


def setup_and_rerun(seconds):
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    # The default PyPI wheel; it bundles CUDA support but runs on the CPU when there is no GPU.
    subprocess.check_call([python, "-m", "pip", "install", "--quiet", "torch"])
    os.execv(python, [python, os.path.abspath(__file__), "--seconds", str(seconds)])


def measure(threads, seconds):
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.rand(BATCH, 784)
    y = torch.arange(BATCH) % 10
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=False)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    for _ in range(50):
        step()
    # Mean throughput over the whole timed span, like criterion's point estimate for the Rust side.
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        steps += 1
    return steps * BATCH / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setup", action="store_true", help="install torch into bench/.venv first")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per thread count")
    args = parser.parse_args()
    if args.setup:
        setup_and_rerun(args.seconds)
    import torch
    print(f"torch {torch.__version__}")
    for threads in (1, 2):
        print(f"mlp_784_256_128_10_b64_sgd threads={threads}: {measure(threads, args.seconds):.0f} samples/s")


if __name__ == "__main__":
    main()
