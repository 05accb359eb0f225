"""What warming the planner up while a lab's first experiments run buys, in a fresh process.

Run:  python -m benchmarks.lab_warm_up [--seeds N] [--stations K] [--experiments M]

The film lab with K synthesis stations (default 4) and BoTorch, one campaign per fresh
interpreter (as ``sdl run`` starts one: nothing imported or called before), with the
planner's warm-up (``Planner.warm_up``, called by the lab in the planner's worker after
its first ask) and without it (replaced by a no-op in that interpreter), alternating,
paired by seed. Prints throughput, the synthesis stations' steady utilization and the best
figure of merit per run, and the medians with their ratio. Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_ONE = """
import json, statistics, sys, tempfile
from pathlib import Path
from benchmarks import lab_throughput as lt
from sdl.planners import BoTorchPlanner
mode, seed, stations, budget = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if mode == "without":
    BoTorchPlanner.warm_up = lambda self: None
r = lt.measure(stations, 1.0, "botorch", budget, seed, Path(tempfile.mkdtemp()) / "lab")
synth = [v for k, v in r["steady"].items() if k.startswith("synth")]
print(json.dumps({"rate": r["throughput"], "steady": statistics.mean(synth), "best": r["best"]}))
"""


def _one(mode: str, seed: int, stations: int, budget: int) -> dict[str, float]:
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run(
        [sys.executable, "-c", _ONE, mode, str(seed), str(stations), str(budget)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
        env=env,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--stations", type=int, default=4)
    parser.add_argument("--experiments", type=int, default=24)
    args = parser.parse_args(argv)
    runs: dict[str, list[dict[str, float]]] = {"without": [], "with": []}
    print(f"film lab, {args.stations} synthesis stations, BoTorch, {args.experiments} experiments")
    print(
        f"{'seed':>4s} {'warm-up':>8s} {'exp/s':>6s} {'steady synth':>13s} {'best':>6s} {'load':>5s}"
    )
    for seed in range(args.seeds):
        for mode in ("without", "with"):  # alternating: load changes hit both alike
            r = _one(mode, seed, args.stations, args.experiments)
            runs[mode].append(r)
            print(
                f"{seed:4d} {mode:>8s} {r['rate']:6.2f} {r['steady']:13.0%} {r['best']:6.3f} "
                f"{os.getloadavg()[0]:5.2f}",
                flush=True,
            )
    med = {
        mode: {k: statistics.median(r[k] for r in rs) for k in ("rate", "steady", "best")}
        for mode, rs in runs.items()
    }
    print(
        f"\nmedian without: {med['without']['rate']:.2f} exp/s, "
        f"{med['without']['steady']:.0%} steady synthesis utilization, best "
        f"{med['without']['best']:.3f}"
    )
    print(
        f"median with:    {med['with']['rate']:.2f} exp/s ({med['with']['rate'] / med['without']['rate']:.2f}x), "
        f"{med['with']['steady']:.0%}, best {med['with']['best']:.3f}"
    )


if __name__ == "__main__":
    main()
