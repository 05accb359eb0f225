"""Sample efficiency of asynchronous planning, screened on the twin.

Run:  python -m benchmarks.twin_efficiency [--seeds 10] [--budget 30] [--synth 4]
          [--max-in-flight 4 6] [--restarts 4] [--raw-samples 128]

The film lab's twin (``sdl.twin.film_spec``, time scale 1.0: ~2 s per experiment) runs
the campaign's asking and lease policy on virtual time with the real BoTorch planner in
the loop; its measured ask times are charged to the virtual clock, and every result is
the film's true figure of merit plus noise (sd 0.01), told as the campaign tells it. So a
seed takes seconds instead of a real-time minute, and many seeds separate policies whose
figures move by 0.1 between single real runs (docs/lab.md).

For each configuration, over seeds 0..N-1: the best true figure of merit among the
points measured (1.0 at the optimum), median and mean, with the ratio of the median to
sequential planning's, and the experiments per simulated hour over the whole campaign
(pipeline fill included), with its ratio to the asynchronous default's. The
configurations:

* ``sequential``: one coater, one experiment in flight, ``lookahead`` 0 (the
  one-instrument loop: every point knows every result before it);
* ``asynchronous``: ``--synth`` coaters, the default (as many in flight as the stations
  hold, ``lookahead`` 1);
* ``max_in_flight k``: the same lab, the campaign's ``max_in_flight`` set to each k.

Not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

#: a ``final_in_flight`` no pipeline reaches: no limit on the final experiments
NO_LIMIT = 10**6


def run_one(
    seed: int,
    synth: int,
    *,
    lookahead: int,
    max_in_flight: int | None,
    budget: int,
    planner_options: dict,
    final_in_flight: int | None = None,
) -> tuple[float, float]:
    """(best true figure of merit, experiments per simulated hour) of one seed."""
    import numpy as np

    from sdl.devices import film_figure_of_merit
    from sdl.lab import film_lab
    from sdl.planners import make_planner
    from sdl.twin import TwinTiming, film_spec, simulate

    _, _, space, objectives = film_lab(synth_stations=synth, time_scale=1.0)
    timing = TwinTiming.model_validate({"planner": {"real": True}})
    spec = film_spec(
        synth, time_scale=1.0, timing=timing, lookahead=lookahead, max_in_flight=max_in_flight
    )
    spec.budget = budget
    spec.final_in_flight = final_in_flight
    planner = make_planner("botorch", space, objectives, seed=seed, **planner_options)
    noise = np.random.default_rng(1000 + seed)
    measured: list[dict] = []

    def outcome(point, _rng):
        measured.append(point)
        value = film_figure_of_merit(point) + float(noise.normal(0.0, 0.01))
        return {objectives[0].name: value}

    rep = simulate(spec, seed=seed, horizon=10 * 86400, planner=planner, outcome=outcome)
    best = max(film_figure_of_merit(p) for p in measured)
    return best, 3600.0 * rep.done / rep.end


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--synth", type=int, default=4)
    parser.add_argument("--max-in-flight", type=int, nargs="*", default=[4, 6])
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--raw-samples", type=int, default=128)
    parser.add_argument(
        "--per-seed", action="store_true", help="also print each seed's best and rate"
    )
    parser.add_argument(
        "--no-final-limit",
        action="store_true",
        help="also run the asynchronous lab without the limit on its final experiments "
        "(final_in_flight as large as the pipeline: every station busy to the end)",
    )
    parser.add_argument(
        "--no-sequential", action="store_true", help="leave the sequential baseline out"
    )
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # GPyTorch's jitter notes, one per ask late in a run
    options = {"num_restarts": args.restarts, "raw_samples": args.raw_samples}
    configs = [("sequential", 1, 0, 1, None)] if not args.no_sequential else []
    configs += [("asynchronous", args.synth, 1, None, None)]
    if args.no_final_limit:
        configs += [("asynchronous, no final limit", args.synth, 1, None, NO_LIMIT)]
    configs += [(f"max_in_flight {k}", args.synth, 1, k, None) for k in args.max_in_flight]
    print(
        f"film lab twin, {args.budget} experiments, seeds 0-{args.seeds - 1}, BoTorch "
        f"(num_restarts {args.restarts}, raw_samples {args.raw_samples}), "
        f"load {os.getloadavg()[0]:.1f}"
    )
    rows = []
    for name, synth, lookahead, limit, final in configs:
        t0 = time.perf_counter()
        results = [
            run_one(
                seed,
                synth,
                lookahead=lookahead,
                max_in_flight=limit,
                budget=args.budget,
                planner_options=options,
                final_in_flight=final,
            )  # fmt: skip
            for seed in range(args.seeds)
        ]
        best = [b for b, _ in results]
        if args.per_seed:
            print(f"  {name} per seed: " + " ".join(f"{b:.3f}" for b in best))
        rate = statistics.median(r for _, r in results)
        rows.append((name, statistics.median(best), statistics.mean(best), rate))
        print(f"  {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    seq = rows[0][1] if not args.no_sequential else float("nan")
    asynchronous = next(r[3] for r in rows if r[0] == "asynchronous")
    print()
    print("| configuration | median best | mean best | x sequential | exp/h | x asynchronous |")
    print("|---|---|---|---|---|---|")
    for name, median, mean, rate in rows:
        print(
            f"| {name} | {median:.3f} | {mean:.3f} | {median / seq:.3f} | {rate:.0f} "
            f"| {rate / asynchronous:.2f} |"
        )


if __name__ == "__main__":
    main()
