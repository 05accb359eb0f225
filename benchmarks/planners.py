"""Planner benchmark: BoTorch vs. scikit-optimize vs. Sobol, through sdl's own Campaign.

Usage (see docs/planners.md)::

    python -m benchmarks.planners                 # the full benchmark
    python -m benchmarks.planners --quick         # smoke run: 1 seed, budget 8, small BoTorch
    python -m benchmarks.planners --problems hartmann6 --seeds 5 --budgets 20 40

Every run is a real campaign: one :class:`sdl.devices.SimMotor` per parameter, a
:class:`sdl.devices.SimDetector` whose physics is a BoTorch test function (noise added by
the detector), the generic ``set_settle_measure`` protocol, time scale 0, and
``Campaign(...).run(RE, store=<tmpdir>/...)``. Scores use the noise-free function at the
points measured: simple regret (best true value so far minus the optimum) or, for the
two-objective problem, the hypervolume of the true values (higher is better). For the
constrained problem only points satisfying the constraint count.

Outputs: a table on stdout (median over seeds at each budget, ratios to skopt and
Sobol, median ask latency), ``benchmarks/results/planners.csv`` and
``benchmarks/results/planners.png``.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"

#: BoTorch settings compared with the default: name -> options (``--planners`` accepts them)
VARIANTS: dict[str, dict[str, Any]] = {
    # the default before issue 12: noisy EI, 2 (d + 1) initial points, the former
    # optimizer budget (512 raw samples, 75 iterations, uniform starts)
    "botorch-before12": {
        "acquisition": "lognei",
        "n_initial": "2(d+1)",
        "raw_samples": 512,
        "maxiter": 75,
        "sample_around_best": False,
    },
    "botorch-logei": {"acquisition": "logei"},
    "botorch-init2d2": {"n_initial": "2(d+1)"},
    # the acquisition optimizer before the speed-up of issue 12 (today's default
    # otherwise): 512 raw samples, 75 L-BFGS iterations, uniform starting points only
    "botorch-512-75": {"raw_samples": 512, "maxiter": 75, "sample_around_best": False},
    # today's default without starting points around the best observations
    "botorch-nosab": {"sample_around_best": False},
    # today's default with the hyperparameters fitted through GPyTorch's autograd
    # instead of planners/_fast_mll.py (not an option: the benchmark switches it off)
    "botorch-before-mll": {"_fast_mll": False},
}


@dataclass
class Problem:
    name: str
    function: Any  # a botorch SyntheticTestFunction (noise-free)
    noise: float
    objectives: list  # sdl Objective list
    optimum: float | None = None  # for regret (minimization)
    constraint: Callable[[np.ndarray], float] | None = None  # c(x) <= 0 feasible
    ref_point: list[float] | None = None  # hypervolume reference (minimization units)

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1


def make_problem(name: str) -> Problem:
    from botorch.test_functions import Branin, Hartmann
    from botorch.test_functions.multi_objective import BraninCurrin

    from sdl.planners import Objective

    if name == "branin":
        return Problem(name, Branin(), 1.0, [Objective("f")], optimum=0.397887)
    if name == "hartmann6":
        return Problem(name, Hartmann(dim=6), 0.05, [Objective("f")], optimum=-3.32237)
    if name == "constrained_branin":
        # Gardner et al. (2014): Branin s.t. (x1 - 2.5)^2 + (x2 - 7.5)^2 <= 50
        def c(x):
            return (x[0] - 2.5) ** 2 + (x[1] - 7.5) ** 2 - 50.0

        return Problem(
            name, Branin(), 1.0, [Objective("f")], optimum=_grid_optimum(Branin(), c), constraint=c
        )
    if name == "branincurrin":
        return Problem(
            name,
            BraninCurrin(),
            0.5,
            [Objective("f0", threshold=18.0), Objective("f1", threshold=6.0)],
            ref_point=[18.0, 6.0],
        )
    raise SystemExit(f"unknown problem {name!r}")


def _grid_optimum(f, c, k: int = 400) -> float:
    import torch

    lo, hi = f.bounds[0].numpy(), f.bounds[1].numpy()
    g = np.stack(np.meshgrid(np.linspace(lo[0], hi[0], k), np.linspace(lo[1], hi[1], k)), -1)
    X = g.reshape(-1, 2)
    vals = f(torch.as_tensor(X)).numpy()
    feas = np.array([c(x) <= 0 for x in X])
    return float(vals[feas].min())


def true_values(problem: Problem, X: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return problem.function(torch.as_tensor(X, dtype=torch.float64)).numpy().reshape(len(X), -1)


def run_one(problem: Problem, planner_name: str, seed: int, budget: int, quick: bool, tmp: Path):
    """One campaign; returns (score per evaluation, ask latencies)."""
    from bluesky import RunEngine

    from sdl import Campaign
    from sdl.devices import SimDetector, SimMotor
    from sdl.planners import Real, Space, make_planner
    from sdl.protocols import set_settle_measure

    bounds = problem.function.bounds.numpy()
    d = bounds.shape[1]
    names = [f"x{i}" for i in range(d)]
    space = Space([Real(n, float(bounds[0, i]), float(bounds[1, i])) for i, n in enumerate(names)])
    motors = {
        n: SimMotor(n, limits=(float(bounds[0, i]), float(bounds[1, i])), seed=seed)
        for i, n in enumerate(names)
    }

    def physics(inputs):
        x = np.array([[inputs[n] for n in names]])
        y = true_values(problem, x)[0]
        out = {o.name: float(v) for o, v in zip(problem.objectives, y)}
        if problem.constraint is not None:  # the instrument also measures the constrained quantity
            out["c"] = float(problem.constraint(x[0]))
        return out

    det = SimDetector("det", physics=physics, inputs=motors, noise=problem.noise, seed=seed)
    from sdl.planners import Objective

    objectives = [
        Objective(o.name, o.goal, key=f"det_{o.name}", threshold=o.threshold)
        for o in problem.objectives
    ]
    options: dict[str, Any] = {}
    registry_name = planner_name
    if planner_name == "botorch" or planner_name in VARIANTS:
        registry_name = "botorch"
        options = (
            {"num_restarts": 2, "raw_samples": 64, "maxiter": 50, "n_initial": 4} if quick else {}
        )
        options.update(VARIANTS.get(planner_name, {}))
        if options.get("n_initial") == "2(d+1)":
            options["n_initial"] = 2 * (d + 1)
        if problem.constraint is not None:
            options["outcome_constraints"] = ["c <= 0"]
    fast_mll = options.pop("_fast_mll", True)
    planner = make_planner(registry_name, space, objectives, seed=seed, **options)
    # the campaign extracts the constrained quantity from the readings and tells it too
    measurements = [Objective("c", key="det_c")] if problem.constraint is not None else []
    latencies: list[float] = []
    ask = planner.ask

    def timed_ask(*a, **k):
        t0 = time.perf_counter()
        try:
            return ask(*a, **k)
        finally:
            latencies.append(time.perf_counter() - t0)

    planner.ask = timed_ask
    protocol = functools.partial(set_settle_measure, movables=motors, detectors=[det])
    campaign = Campaign(
        objectives=objectives,
        protocol=protocol,
        planner=planner,
        devices=[*motors.values(), det],
        budget=budget,
        name=problem.name,
        measurements=measurements,
    )
    RE = RunEngine({}, context_managers=[])
    from sdl.planners import _gp_fit

    saved = _gp_fit.fast_mll_closure
    if not fast_mll:
        _gp_fit.fast_mll_closure = lambda mll: None
    try:
        campaign.run(RE, store=tmp / f"{problem.name}-{planner_name}-{seed}.zarr")
    finally:
        _gp_fit.fast_mll_closure = saved
    X = np.array([[o.point[n] for n in names] for o in planner.observations])
    Y = true_values(problem, X)
    return score_curve(problem, X, Y), latencies


def score_curve(problem: Problem, X: np.ndarray, Y: np.ndarray) -> list[float]:
    """Score after each evaluation: simple regret (lower is better) or hypervolume."""
    from sdl.planners import hypervolume

    out = []
    if problem.multi:
        for k in range(1, len(Y) + 1):
            outs = [{o.name: float(v) for o, v in zip(problem.objectives, y)} for y in Y[:k]]
            out.append(hypervolume(outs, problem.objectives, problem.ref_point))
        return out
    best = math.inf
    for x, y in zip(X, Y[:, 0]):
        if problem.constraint is None or problem.constraint(x) <= 0:
            best = min(best, float(y))
        out.append(best - problem.optimum if math.isfinite(best) else math.nan)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="sdl planner benchmark")
    parser.add_argument(
        "--problems",
        nargs="+",
        default=["branin", "hartmann6", "constrained_branin", "branincurrin"],
        choices=["branin", "hartmann6", "constrained_branin", "branincurrin"],
    )
    parser.add_argument("--planners", nargs="+", default=["botorch", "skopt", "sobol"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds FIRST .. FIRST+SEEDS-1")
    parser.add_argument("--budgets", type=int, nargs="+", default=[20, 40])
    parser.add_argument("--quick", action="store_true", help="1 seed, budget 8, small BoTorch")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.budgets = 1, [8]
    budget = max(args.budgets)
    args.out.mkdir(parents=True, exist_ok=True)
    rows, curves, table = [], {}, {}
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmpdir:
        for pname in args.problems:
            problem = make_problem(pname)
            for planner in args.planners:
                if planner == "skopt" and problem.multi:
                    continue  # skopt is single-objective
                runs = []
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    curve, lat = run_one(problem, planner, seed, budget, args.quick, Path(tmpdir))
                    runs.append((curve, lat))
                    for k, v in enumerate(curve, 1):
                        rows.append((pname, planner, seed, k, v))
                curves[(pname, planner)] = np.array([c for c, _ in runs])
                lat = statistics.median([t for _, ts in runs for t in ts])
                table[(pname, planner)] = (
                    {
                        b: float(np.nanmedian(curves[(pname, planner)][:, b - 1]))
                        for b in args.budgets
                    },
                    lat,
                    curves[(pname, planner)][:, budget - 1].tolist(),  # each seed's final score
                )
    print(f"load average at end: {os.getloadavg()}")
    _print_table(table, args)
    _write(rows, curves, args)
    return table


def _print_table(table, args) -> None:
    print(
        f"\n{'problem':<20}{'planner':<9}"
        + "".join(f"{'@' + str(b):>10}" for b in args.budgets)
        + f"{'÷skopt':>9}{'÷sobol':>9}{'worst':>9}{'ask s':>8}"
    )
    for (pname, planner), (scores, lat, finals) in table.items():
        b = max(args.budgets)
        ratios = []
        for base in ("skopt", "sobol"):
            other = table.get((pname, base))
            ratios.append(scores[b] / other[0][b] if other and other[0][b] else math.nan)
        print(
            f"{pname:<20}{planner:<9}"
            + "".join(f"{scores[x]:>10.4g}" for x in args.budgets)
            + "".join(f"{r:>9.3g}" for r in ratios)
            + f"{_worst(pname, finals):>9.4g}"
            + f"{lat:>8.2f}"
        )
    print(
        "(regret: lower is better; branincurrin: hypervolume, higher is better; "
        f"ratios at budget {max(args.budgets)}; medians over {args.seeds} seed(s); "
        "worst: the worst seed's score at that budget)"
    )


def _worst(pname: str, finals: list[float]) -> float:
    values = [v for v in finals if math.isfinite(v)]
    if not values:
        return math.nan
    return min(values) if pname == "branincurrin" else max(values)


def _write(rows, curves, args) -> None:
    import csv

    with open(args.out / "planners.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["problem", "planner", "seed", "evaluations", "score"])
        w.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = list(dict.fromkeys(p for p, _ in curves))
    fig, axes = plt.subplots(1, len(problems), figsize=(4.5 * len(problems), 3.6), squeeze=False)
    for ax, pname in zip(axes[0], problems):
        for (p, planner), c in curves.items():
            if p != pname:
                continue
            ax.plot(np.arange(1, c.shape[1] + 1), np.nanmedian(c, axis=0), label=planner)
        ax.set_title(pname)
        ax.set_xlabel("evaluations")
        ax.set_ylabel("hypervolume" if pname == "branincurrin" else "simple regret")
        if pname != "branincurrin":
            ax.set_yscale("log")
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "planners.png", dpi=100)
    print(f"wrote {args.out / 'planners.csv'} and {args.out / 'planners.png'}")


if __name__ == "__main__":
    main()
