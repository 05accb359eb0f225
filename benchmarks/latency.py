"""Ask latency of BoTorchPlanner as data grow: unoptimized vs. checkpointed hyperparameters.

Usage::

    python -m benchmarks.latency --sizes 100 200 400 --asks 5

"Unoptimized" is ``refit_growth=0, fit_subset=n`` (full hyperparameter fit from scratch on
every ask, as before issue 3); "optimized" is the default (fit at checkpoints, on at most
``fit_subset`` rows). Both use the issue's setting: d=6, q=4, 10 restarts, 512 raw samples,
noisy Hartmann6 data. Each configuration is warmed up by one ask (the checkpoint fit), then
timed over ``--asks`` asks with one new observation told between asks; the table shows
the median and the max ask time, and the ratio of medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _data(n: int, seed: int = 0):
    import torch
    from botorch.test_functions import Hartmann

    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 6))
    f = Hartmann(dim=6)
    y = f(torch.as_tensor(X)).numpy() + 0.05 * rng.standard_normal(n)
    return X, y


def time_asks(n: int, asks: int, optimized: bool, q: int = 4, device: str = "cpu", **options):
    from sdl.planners import BoTorchPlanner, Objective, Real, Space

    space = Space([Real(f"x{i}", 0.0, 1.0) for i in range(6)])
    opts = {} if optimized else {"refit_growth": 0.0, "fit_subset": max(n + asks, 1)}
    planner = BoTorchPlanner(space, [Objective("y")], seed=0, device=device, **opts, **options)
    X, y = _data(n + asks + 1)
    planner.tell([dict(zip(space.names, r)) for r in X[:n]], [{"y": v} for v in y[:n]])
    planner.ask(q)  # warm-up: the first (checkpoint) fit
    times, fits = [], []
    for k in range(asks):
        planner.tell([dict(zip(space.names, X[n + k]))], [{"y": y[n + k]}])
        t0 = time.perf_counter()
        planner.ask(q)
        times.append(time.perf_counter() - t0)
        fits.append(planner.last_timings.get("fit", 0.0))
    return times, fits


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 400])
    parser.add_argument("--asks", type=int, default=5)
    parser.add_argument("--skip-unoptimized-above", type=int, default=400)
    args = parser.parse_args(argv)
    print(f"{'n':>6} {'config':>12} {'median s':>9} {'max s':>7} {'fit s':>7} {'ratio':>7}")
    for n in args.sizes:
        med = {}
        for optimized in (False, True):
            if not optimized and n > args.skip_unoptimized_above:
                continue
            times, fits = time_asks(n, args.asks, optimized)
            med[optimized] = statistics.median(times)
            ratio = (med[False] / med[True]) if optimized and False in med else float("nan")
            name = "optimized" if optimized else "unoptimized"
            print(
                f"{n:>6} {name:>12} {med[optimized]:>9.2f} {max(times):>7.2f} "
                f"{statistics.median(fits):>7.2f} {ratio:>7.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
