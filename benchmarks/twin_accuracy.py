"""The twin against reality, and the twin's speed.

Run:  python -m benchmarks.twin_accuracy [--synth 4] [--time-scale 1.0] [--budget 80]
          [--planner botorch] [--replications 20] [--speed-replications 20]
          [--real-planner-days 0.25] [--skip-campaign]

Part 1 (accuracy): the simulated film lab (``sdl.lab.film_lab``) runs a real campaign
in this process (real RunEngines, the store; ``--time-scale`` 1.0: ~2 s per experiment,
a few minutes for 80 experiments). The twin, given the same lab, the campaign's budget,
and the timing calibrated from that store (``sdl twin calibrate``), forecasts it; printed
side by side (:func:`sdl.twin.predicted_vs_measured`): wall time, experiments done within
the measured wall time, and each station's utilization, with the ratio predicted /
measured. The goal: every ratio within 0.9-1.1.

Part 2 (speed): a 7-day forecast of ``examples/film_lab_twin.yaml`` (4 synthesis
stations, minute-scale steps, failures, shifts) with its declared planner-time model and
``--speed-replications`` replications (goal: <= 60 s), then with the real BoTorch planner
in the loop for ``--real-planner-days`` days and one replication (its measured ask times
charged to the clock; goal for 7 days: <= 10 min), reported with the planner's share.

Not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def accuracy(synth: int, time_scale: float, budget: int, planner: str, reps: int) -> None:
    from sdl import Campaign, open_store
    from sdl.lab import film_lab
    from sdl.twin import film_spec, predicted_vs_measured

    directory = Path(tempfile.mkdtemp(prefix="sdl-twin-"))
    try:
        lab, workflow, space, objectives = film_lab(
            synth_stations=synth, time_scale=time_scale, seed=1
        )
        options = {"num_restarts": 4, "raw_samples": 128} if planner == "botorch" else {}
        t0 = time.perf_counter()
        Campaign(
            parameters=space, objectives=objectives, lab=lab, workflow=workflow,
            planner=planner, planner_options=options, budget=budget, seed=1,
        ).run(store=directory / "film.zarr")  # fmt: skip
        ran = time.perf_counter() - t0
        store = open_store(directory / "film.zarr")
        t0 = time.perf_counter()
        table = predicted_vs_measured(
            store, film_spec(synth, time_scale=time_scale), replications=reps
        )
        took = time.perf_counter() - t0
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(
        f"\n## Accuracy: film lab, {synth} synthesis stations, time scale {time_scale}, "
        f"{budget} experiments, {planner}"
    )
    print(f"campaign ran in {ran:.1f} s; twin ({reps} replications) in {took:.2f} s\n")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    worst = (table["ratio"] - 1).abs().max()
    print(f"\nworst |ratio - 1|: {worst:.3f} (goal <= 0.10)")


def speed(reps: int, real_days: float) -> None:
    from sdl.twin import forecast, load_spec

    spec = load_spec(ROOT / "examples" / "film_lab_twin.yaml")
    t0 = time.perf_counter()
    f = forecast(spec, days=7, replications=reps)
    took = time.perf_counter() - t0
    mean, lo, hi = f.per_day
    print("\n## Speed: examples/film_lab_twin.yaml (4 synthesis stations)")
    print("| forecast | replications | wall s | experiments/day | bottleneck |")
    print("|---|---|---|---|---|")
    print(f"| 7 days, planner-time model | {reps} | {took:.1f} | {mean:.1f} [{lo:.1f}, {hi:.1f}] | {f.bottleneck} |")  # fmt: skip
    if real_days <= 0:
        return
    real = spec.copy()
    real.timing = real.timing.model_copy(
        update={"planner": real.timing.planner.model_copy(update={"real": True})}
    )
    t0 = time.perf_counter()
    g = forecast(real, days=real_days, replications=1)
    took = time.perf_counter() - t0
    rep = g.replications[0]
    asks = len(rep.asks)
    print(
        f"| {real_days:g} days, real BoTorch | 1 | {took:.1f} | {g.per_day[0]:.1f} | "
        f"{g.bottleneck} |"
    )
    print(
        f"\nreal planner: {asks} asks, {rep.ask_wall:.1f} s of asking "
        f"({rep.ask_wall / max(took, 1e-9):.0%} of the forecast), {rep.done} experiments; "
        f"a 7-day forecast at this pace: ~{took * 7 / real_days / 60:.1f} min (asks "
        f"slow down as the data grows, so this is a lower bound)"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--synth", type=int, default=4)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--budget", type=int, default=80)
    parser.add_argument("--planner", default="botorch")
    parser.add_argument("--replications", type=int, default=20)
    parser.add_argument("--speed-replications", type=int, default=20)
    parser.add_argument("--real-planner-days", type=float, default=0.25)
    parser.add_argument("--skip-campaign", action="store_true")
    args = parser.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    if not args.skip_campaign:
        accuracy(args.synth, args.time_scale, args.budget, args.planner, args.replications)
    speed(args.speed_replications, args.real_planner_days)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
