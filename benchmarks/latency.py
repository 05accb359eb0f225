"""Ask latency of BoTorchPlanner as data grow: the default against earlier settings.

Usage::

    python -m benchmarks.latency --sizes 200 2000 --asks 5
    python -m benchmarks.latency --one-d 50 --sizes   # a 1-D campaign only

Configurations: "unoptimized" is ``refit_growth=0, fit_subset=n`` (full hyperparameter
fit from scratch on every ask, as before issue 3; skipped above
``--skip-unoptimized-above``); "before-12" is the default before issue 12
(``acquisition="lognei"``, torch's own thread count, ``fit_subset=1000``, exact
predictive variances, 512 raw samples, 75 L-BFGS iterations, noisy EI pruning its whole
baseline); "before-speed" is the default just before the acquisition speed-up of issue
12 (today's default with 512 raw samples, 75 iterations, cached variances only from 1000
observations and no pre-selection of noisy EI's incumbents); "before-cache" is today's
default with BoTorch's own noisy EI instead of the one from cached solves
(``planners/_fast_nei.py``); "default" is today's default. All use the issue's setting:
d=6, q=4, 10 restarts, noisy Hartmann6 data.
Each configuration's first ask does the checkpoint fit ("first" column: the first ask
after a refit); then ``--asks`` asks are timed with one new observation told between
asks. The table shows the median and max of those, the first ask's ratio to the median,
and the ratios of the "before-12", "before-speed" and "before-cache" medians to each
configuration's median (>1: faster).
The configurations of one size run interleaved, so they see the same machine load; the
load average is printed with each size.
"""

from __future__ import annotations

import argparse
import math
import os
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


def _planner(n: int, config: str, device: str = "cpu", **options):
    import torch

    from sdl.planners import BoTorchPlanner, Objective, Real, Space

    space = Space([Real(f"x{i}", 0.0, 1.0) for i in range(6)])
    old_optimizer = {"raw_samples": 512, "maxiter": 75}
    opts = {
        "unoptimized": {
            "refit_growth": 0.0,
            "fit_subset": n + 1000,
            "acquisition": "lognei",
            **old_optimizer,
        },
        "before-12": {
            "acquisition": "lognei",
            "threads": torch.get_num_threads(),
            "fit_subset": 1000,
            **old_optimizer,
        },
        "before-speed": old_optimizer,
        "before-cache": {},
        "default": {},
    }[config]
    return BoTorchPlanner(space, [Objective("y")], seed=0, device=device, **opts, **options)


def _ask(planner, config: str, q: int) -> None:
    """``planner.ask(q)``; earlier configurations with BoTorch's own noisy EI (no cached
    solves), and before that with exact variances (cached ones from 1000 observations for
    "before-speed") and noisy EI pruning its whole baseline."""
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement

    from sdl.planners import _botorch

    saved = _botorch.FAST_PRED_VAR_FROM, _botorch._plausible_incumbents, _botorch.FastLogNEI
    if config != "default":
        _botorch.FastLogNEI = qLogNoisyExpectedImprovement
    if config not in ("default", "before-cache"):
        _botorch.FAST_PRED_VAR_FROM = 1000 if config == "before-speed" else 10**12
        _botorch._plausible_incumbents = lambda model, X, *constraints: X
    try:
        planner.ask(q)
    finally:
        _botorch.FAST_PRED_VAR_FROM, _botorch._plausible_incumbents, _botorch.FastLogNEI = saved


def time_asks(n: int, asks: int, configs, q: int = 4, **options):
    """``{config: (first ask s, [ask s...], [fit s...])}``, configurations interleaved."""
    X, y = _data(n + asks + 1)
    names = [f"x{i}" for i in range(6)]
    planners, out = {}, {}
    for config in configs:
        planner = _planner(n, config, **options)
        planner.tell([dict(zip(names, r)) for r in X[:n]], [{"y": v} for v in y[:n]])
        t0 = time.perf_counter()
        _ask(planner, config, q)  # the checkpoint fit
        planners[config] = planner
        out[config] = (time.perf_counter() - t0, [], [])
    for k in range(asks):
        for config, planner in planners.items():
            planner.tell([dict(zip(names, X[n + k]))], [{"y": y[n + k]}])
            t0 = time.perf_counter()
            _ask(planner, config, q)
            out[config][1].append(time.perf_counter() - t0)
            out[config][2].append(planner.last_timings.get("fit", 0.0))
    return out


def one_dimensional(asks: int = 50, configs=("before-speed", "default")):
    """A 1-D campaign (``sin(6 x)`` + noise 0.01, one point per ask, ``asks`` asks), the
    configurations interleaved: ``{config: ([ask s...], number of NumericalWarnings)}``."""
    import warnings

    from linear_operator.utils.warnings import NumericalWarning

    from sdl.planners import BoTorchPlanner, Objective, Real, Space

    space = Space([Real("x", 0.0, 1.0)])
    rng = np.random.default_rng(0)
    noise = 0.01 * rng.standard_normal((len(configs), asks))
    planners, out = {}, {}
    for config in configs:
        opts = {"raw_samples": 512, "maxiter": 75} if config == "before-speed" else {}
        planners[config] = BoTorchPlanner(space, [Objective("y", "maximize")], seed=0, **opts)
        out[config] = ([], 0)
    for k in range(asks):
        for i, (config, planner) in enumerate(planners.items()):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", NumericalWarning)
                t0 = time.perf_counter()
                _ask_1(planner, config)
                elapsed = time.perf_counter() - t0
            point = planner._last_1d
            planner.tell([point], [{"y": float(np.sin(6 * point["x"]) + noise[i, k])}])
            jitter = sum(issubclass(w.category, NumericalWarning) for w in caught)
            out[config] = (out[config][0] + [elapsed], out[config][1] + jitter)
    return out


def _ask_1(planner, config: str) -> None:
    from sdl.planners import _botorch

    saved = _botorch.FAST_PRED_VAR_FROM, _botorch._plausible_incumbents
    if config != "default":
        _botorch.FAST_PRED_VAR_FROM = 1000
        _botorch._plausible_incumbents = lambda model, X: X
    try:
        planner._last_1d = planner.ask(1)[0]
    finally:
        _botorch.FAST_PRED_VAR_FROM, _botorch._plausible_incumbents = saved


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[200, 2000])
    parser.add_argument("--asks", type=int, default=5)
    parser.add_argument("--skip-unoptimized-above", type=int, default=400)
    parser.add_argument(
        "--configs",
        nargs="+",
        default=["unoptimized", "before-12", "before-speed", "before-cache", "default"],
    )
    parser.add_argument(
        "--one-d", type=int, default=0, metavar="ASKS", help="also a 1-D campaign of ASKS asks"
    )
    args = parser.parse_args(argv)
    if args.one_d:
        print(f"load average before the 1-D campaign: {os.getloadavg()}", flush=True)
        for config, (times, jitter) in one_dimensional(args.one_d).items():
            print(
                f"1-D {config:>12}: median {statistics.median(times):.3f} s, "
                f"max {max(times):.3f} s, {jitter} jitter warnings",
                flush=True,
            )
        print(f"load average after the 1-D campaign: {os.getloadavg()}", flush=True)
    if not args.sizes:
        return
    print(
        f"{'n':>6} {'config':>12} {'median s':>9} {'max s':>7} {'fit s':>7} "
        f"{'first s':>8} {'first/med':>9} {'before/this':>11} {'speed/this':>10} "
        f"{'cache/this':>10}"
    )
    for n in args.sizes:
        configs = [
            c for c in args.configs if c != "unoptimized" or n <= args.skip_unoptimized_above
        ]
        print(f"load average before n={n}: {os.getloadavg()}", flush=True)
        results = time_asks(n, args.asks, configs)
        base = {
            c: statistics.median(results[c][1]) if c in results else math.nan
            for c in ("before-12", "before-speed", "before-cache")
        }
        for config, (first, times, fits) in results.items():
            med = statistics.median(times)
            print(
                f"{n:>6} {config:>12} {med:>9.2f} {max(times):>7.2f} "
                f"{statistics.median(fits):>7.2f} {first:>8.2f} {first / med:>9.1f} "
                f"{base['before-12'] / med:>11.2f} {base['before-speed'] / med:>10.2f} "
                f"{base['before-cache'] / med:>10.2f}",
                flush=True,
            )
        print(f"load average after n={n}: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
