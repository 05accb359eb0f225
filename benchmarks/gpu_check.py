"""Time GP fit + acquisition of BoTorchPlanner on CUDA (if present) and on CPU.

Usage::

    python -m benchmarks.gpu_check            # n=2000, d=6, q=4 on cuda (and cpu n=200)
    python -m benchmarks.gpu_check --n 100    # CPU smoke check
    python -m benchmarks.gpu_check --sweep 200 500 1000 2000   # where the GPU wins

``--sweep`` times the default configuration on the CPU and on the GPU at each size and
prints the CPU/GPU ratio: the size where it passes 1 is what ``device="auto"`` should
use (``sdl.planners._botorch.GPU_FROM``, 1000 until measured).

Prints one row per (device, configuration): the full ask time, and its fit and
acquisition parts (``BoTorchPlanner.last_timings``). "refit" refits hyperparameters
from scratch (``refit_growth=0``); "checkpoint" is the default (timed on the ask after
the checkpoint fit).
"""

from __future__ import annotations

import argparse
import time


def check(device: str, n: int, refit: bool, q: int = 4, d: int = 6) -> tuple[float, float, float]:
    import numpy as np
    import torch
    from botorch.test_functions import Hartmann

    from sdl.planners import BoTorchPlanner, Objective, Real, Space

    space = Space([Real(f"x{i}", 0.0, 1.0) for i in range(d)])
    options = {"refit_growth": 0.0, "fit_subset": n + 2} if refit else {}
    planner = BoTorchPlanner(space, [Objective("y")], seed=0, device=device, **options)
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(n + 1, d))
    y = Hartmann(dim=d)(torch.as_tensor(X)).numpy() + 0.05 * rng.standard_normal(n + 1)
    planner.tell([dict(zip(space.names, r)) for r in X[:n]], [{"y": v} for v in y[:n]])
    planner.ask(q)  # warm-up (CUDA context, checkpoint fit)
    planner.tell([dict(zip(space.names, X[n]))], [{"y": y[n]}])
    t0 = time.perf_counter()
    planner.ask(q)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    total = time.perf_counter() - t0
    return total, planner.last_timings["fit"], planner.last_timings["acquisition"]


def main(argv=None) -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="observations on the GPU")
    parser.add_argument("--cpu-n", type=int, default=None, help="observations on the CPU")
    parser.add_argument("--sweep", type=int, nargs="+", help="sizes: CPU vs. GPU, default")
    args = parser.parse_args(argv)
    if args.sweep:
        print(f"{'n':>6}{'cpu s':>8}{'cuda s':>8}{'cpu/cuda':>9}")
        for n in args.sweep:
            cpu = check("cpu", n, False)[0]
            gpu = check("cuda", n, False)[0] if torch.cuda.is_available() else float("nan")
            print(f"{n:>6}{cpu:>8.2f}{gpu:>8.2f}{cpu / gpu:>9.2f}", flush=True)
        return
    runs = []
    if torch.cuda.is_available():
        runs += [("cuda", args.n, True), ("cuda", args.n, False)]
    else:
        print("no CUDA GPU: CPU only")
    cpu_n = args.cpu_n or (args.n if not torch.cuda.is_available() else 200)
    runs += [("cpu", cpu_n, True), ("cpu", cpu_n, False)]
    print(f"{'device':<7}{'n':>6} {'config':<11}{'ask s':>8}{'fit s':>8}{'acqf s':>8}")
    for device, n, refit in runs:
        total, fit, acq = check(device, n, refit)
        name = "refit" if refit else "checkpoint"
        print(f"{device:<7}{n:>6} {name:<11}{total:>8.2f}{fit:>8.2f}{acq:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
