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
(``planners/_fast_nei.py``); "before-mll" is today's default with the hyperparameters
fitted through GPyTorch's autograd instead of ``planners/_fast_mll.py``; "default" is
today's default. All use the issue's setting:
d=6, q=4, 10 restarts, noisy Hartmann6 data.
After one throwaway ask (the process's first calls of torch and BoTorch), each
configuration's planner is told the data at once and asked ("fresh": a new planner's first
ask, which fits the hyperparameters); then ``--asks`` asks are timed with one new
observation told before each, the data crossing a checkpoint in the middle of them
("refit": the ask that refitted the hyperparameters; "rows": the data's sizes at those
asks). The table shows the median and max of the other asks, the refit ask and the fresh
ask with their ratios to that median, and the ratios of the "before-12", "before-speed" and "before-cache" medians to each
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
        "before-mll": {},
        "default": {},
    }[config]
    return BoTorchPlanner(space, [Objective("y")], seed=0, device=device, **opts, **options)


def _ask(planner, config: str, q: int) -> None:
    """``planner.ask(q)``; earlier configurations with BoTorch's own noisy EI (no cached
    solves), and before that with exact variances (cached ones from 1000 observations for
    "before-speed") and noisy EI pruning its whole baseline."""
    from botorch.acquisition.logei import qLogNoisyExpectedImprovement

    from sdl.planners import _botorch, _gp_fit

    saved = _botorch.FAST_PRED_VAR_FROM, _botorch._plausible_incumbents, _botorch.FastLogNEI
    saved_mll = _gp_fit.fast_mll_closure
    if config != "default":
        _gp_fit.fast_mll_closure = lambda mll: None
    if config not in ("default", "before-mll"):
        _botorch.FastLogNEI = qLogNoisyExpectedImprovement
    if config not in ("default", "before-mll", "before-cache"):
        _botorch.FAST_PRED_VAR_FROM = 1000 if config == "before-speed" else 10**12
        _botorch._plausible_incumbents = lambda model, X, *constraints: X
    try:
        planner.ask(q)
    finally:
        _botorch.FAST_PRED_VAR_FROM, _botorch._plausible_incumbents, _botorch.FastLogNEI = saved
        _gp_fit.fast_mll_closure = saved_mll


def _next_checkpoint(n: int, growth: float = 0.1) -> int:
    """The first checkpoint (a refit of the hyperparameters) at ``n`` rows or more."""
    from sdl.planners._gp_fit import checkpoint

    while checkpoint(n, growth) != n:
        n += 1
    return n


def _warm_process(q: int) -> None:
    """One throwaway ask, so that no timed ask pays the process's first calls of torch,
    GPyTorch and BoTorch (a campaign has asked many times before it has 200 points)."""
    X, y = _data(30, seed=1)
    names = [f"x{i}" for i in range(6)]
    planner = _planner(30, "default")
    planner.tell([dict(zip(names, r)) for r in X], [{"y": v} for v in y])
    planner.ask(q)


def time_asks(n: int, asks: int, configs, q: int = 4, **options):
    """``{config: (fresh first ask s, [ask s...], [refit ask s...], start)}``, the
    configurations interleaved.

    Each configuration's planner is told ``start`` points (a fresh planner: its first ask
    fits the hyperparameters), then ``asks`` asks are timed with one new observation told
    before each; ``start`` is chosen so that the data cross the first checkpoint at or
    after ``n`` in the middle of those asks. An ask that refitted (the planner's count of
    fits grew) is a "refit ask"; the others are the ordinary asks."""
    start = max(1, _next_checkpoint(n) - 1 - asks // 2)
    X, y = _data(start + asks + 1)
    names = [f"x{i}" for i in range(6)]
    _warm_process(q)
    planners, out = {}, {}
    for config in configs:
        planner = _planner(n, config, **options)
        planner.tell([dict(zip(names, r)) for r in X[:start]], [{"y": v} for v in y[:start]])
        t0 = time.perf_counter()
        _ask(planner, config, q)  # the checkpoint fit
        planners[config] = planner
        out[config] = (time.perf_counter() - t0, [], [], start)
    for k in range(asks):
        for config, planner in planners.items():
            planner.tell([dict(zip(names, X[start + k]))], [{"y": y[start + k]}])
            fits = planner._gp_cache.n_fits
            t0 = time.perf_counter()
            _ask(planner, config, q)
            elapsed = time.perf_counter() - t0
            out[config][2 if planner._gp_cache.n_fits > fits else 1].append(elapsed)
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
        default=[
            "unoptimized",
            "before-12",
            "before-speed",
            "before-cache",
            "before-mll",
            "default",
        ],
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
        f"{'n':>10} {'config':>12} {'median s':>9} {'max s':>7} {'refit s':>8} "
        f"{'refit/med':>9} {'fresh s':>8} {'fresh/med':>9} {'before/this':>11} "
        f"{'speed/this':>10} {'cache/this':>10}"
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
        for config, (fresh, times, refits, start) in results.items():
            if not times:  # "unoptimized" refits at every ask: all its asks are alike
                times, refits = refits, []
            med = statistics.median(times)
            refit = max(refits) if refits else math.nan
            rows = f"{start + 1}-{start + args.asks}"
            print(
                f"{rows:>10} {config:>12} {med:>9.2f} {max(times):>7.2f} {refit:>8.2f} "
                f"{refit / med:>9.1f} {fresh:>8.2f} {fresh / med:>9.1f} "
                f"{base['before-12'] / med:>11.2f} {base['before-speed'] / med:>10.2f} "
                f"{base['before-cache'] / med:>10.2f}",
                flush=True,
            )
        print(f"load average after n={n}: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
