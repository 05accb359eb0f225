"""The film lab with 1, 2 and 4 synthesis stations: throughput, utilization, sample efficiency.

Run:  python -m benchmarks.lab_throughput [--time-scale 1.0] [--experiments 60]
          [--planner botorch] [--efficiency-seeds 5] [--efficiency-budget 30]
          [--efficiency-time-scale 1.0] [--dir DIR]

Part 1 (throughput): the simulated film lab (``sdl.lab.film_lab``: synthesize 1.2 s,
transfer 0.1 s, anneal 0.4 s in a furnace of capacity 2, transfer 0.1 s, characterize
0.2 s, all times ``time_scale``: ~2 s per experiment at 1.0) runs ``--experiments``
experiments with the planner, once with 1, 2 and 4 synthesis stations. Throughput is
measured in the steady state: experiments finished per second between the first and the
last experiment's end (so the first experiment's pipeline fill is left out). Printed per
run: throughput and its ratio to the 1-station lab, the median ask time (all asks but the
first; ``model``: the median and ``max`` of the asks that fit a model, those made with 3
results or more, BoTorch's design asks taking milliseconds), the experiment time (first
step start to last step end, median) and its ratio to the model-based median ask
(``exp/ask``: issue 13 asks for 90 % utilization where this is at least 3), and
utilization per station (busy time of its lanes / (capacity x the campaign's span from the
first step start to the last end)).

60 experiments by default: with 24, 4 coaters make 6 experiments each and the campaign
(about 11 s) is mostly the pipeline filling and the first model-based asks (docs/lab.md).

Part 2 (sample efficiency): the best figure of merit reached after the same number of
experiments (the true, noise-free value of the best film made: at most 1.0),
asynchronous (4 synthesis stations, ``lookahead`` 1, every point in flight passed to the
planner as pending) against sequential (1 station, ``lookahead`` 0: asked
after every result is told), over ``--efficiency-seeds`` seeds; ratio of the medians.

Not part of the tests. Figures from one run go into the closing note of the issue.
"steady": synthesis utilization between the first experiment's end and the last synthesis
start (the pipeline full, work left for every synthesis station), or the first synthesis
of the budget's final experiments if that is earlier: those run with at most
``final_in_flight`` in flight (half the pipeline by default), so synthesis stations idle
there by design; the whole-run column and the throughput include them.
``--final-in-flight 100`` runs every campaign without that limit.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def _campaign(
    n_synth: int,
    time_scale: float,
    planner: str,
    budget: int,
    seed: int,
    lookahead: int = 1,
    max_in_flight: int | None = None,
    final_in_flight: int | None = None,
):
    from sdl import Campaign
    from sdl.lab import film_lab

    lab, workflow, space, objectives = film_lab(
        synth_stations=n_synth, time_scale=time_scale, seed=seed
    )
    options = {"num_restarts": 4, "raw_samples": 128} if planner == "botorch" else {}
    return (
        Campaign(
            parameters=space,
            objectives=objectives,
            lab=lab,
            workflow=workflow,
            planner=planner,
            planner_options=options,
            budget=budget,
            seed=seed,
            lookahead=lookahead,
            max_in_flight=max_in_flight,
            final_in_flight=final_in_flight,
        ),  # fmt: skip
        lab,
    )


def _run(
    n_synth,
    time_scale,
    planner,
    budget,
    seed,
    directory: Path,
    lookahead=1,
    max_in_flight=None,
    final_in_flight=None,
):
    from sdl import open_store

    campaign, lab = _campaign(
        n_synth, time_scale, planner, budget, seed, lookahead, max_in_flight, final_in_flight
    )
    path = directory / f"lab-{n_synth}-{seed}-{lookahead}-{max_in_flight}-{final_in_flight}.zarr"
    t0 = time.perf_counter()
    campaign.run(store=path, overwrite=True)
    wall = time.perf_counter() - t0
    store = open_store(path)
    return store, lab, wall


def _intervals(store):
    import pandas as pd

    frames = [store.run(uid).to_dataframe("steps") for uid in store.campaign_runs]
    steps = pd.concat(frames, ignore_index=True).sort_values("time")
    started = steps[steps["status"] == "started"].set_index(["experiment_id", "index"])
    ended = steps[steps["status"].isin(["done", "failed", "cancelled"])].set_index(
        ["experiment_id", "index"]
    )
    out = started[["station", "lane", "time"]].rename(columns={"time": "start"})
    out["end"] = ended["time"].reindex(out.index)
    return out.reset_index()


def _best_true(store) -> float:
    """The true (noise-free) figure of merit of the best measured film: the measured
    maximum would reward the luckiest noise."""
    from sdl.devices import film_figure_of_merit

    done = store.to_dataframe()
    done = done[done["status"] == "done"]
    return max(film_figure_of_merit(row) for _, row in done.iterrows())


def measure(n_synth, time_scale, planner, budget, seed, directory, lookahead=1, final=None):
    store, lab, wall = _run(
        n_synth, time_scale, planner, budget, seed, directory, lookahead, None, final
    )
    from sdl.lab._asking import final_in_flight

    table = store.to_dataframe()
    iv = _intervals(store)
    ends = iv.groupby("experiment_id")["end"].max().sort_values()
    starts = iv.groupby("experiment_id")["start"].min()
    rate = (len(ends) - 1) / (ends.iloc[-1] - ends.iloc[0])
    span0, span1 = iv["start"].min(), iv["end"].max()
    util, steady = {}, {}
    # the steady state: from the first experiment's end (the pipeline is full) to the start
    # of the last synthesis (after it, synthesis stations run out of work by design), or
    # of the first of the budget's final experiments, when they run with fewer in flight
    # (``final_in_flight``: by design too)
    w0 = ends.iloc[0]
    synth_starts = iv.loc[iv["index"] == 0, "start"].sort_values()
    w1 = synth_starts.iloc[-1]
    pipeline = sum(lab.capacity(s) for s in lab.names)
    limit = final_in_flight(final, pipeline)
    if limit < pipeline and len(synth_starts) > pipeline + lookahead:
        w1 = min(w1, synth_starts.iloc[len(synth_starts) - pipeline - lookahead])
    for station, group in iv.groupby("station"):
        util[station] = (group["end"] - group["start"]).sum() / (
            lab.capacity(station) * (span1 - span0)
        )
        if w1 > w0:
            clipped = (group["end"].clip(w0, w1) - group["start"].clip(w0, w1)).sum()
            steady[station] = clipped / (lab.capacity(station) * (w1 - w0))
    planner_log = store.run(store.campaign_runs[0]).to_dataframe("planner")
    asks = planner_log["ask_seconds"].to_numpy()
    # the asks that fit a model: BoTorch's design ends once 3 results are in (a lab this
    # size always has its ``n_initial`` in flight by then); design asks take milliseconds
    model_asks = planner_log.loc[planner_log["n_observations"] >= 3, "ask_seconds"]
    model_asks = model_asks.to_numpy() if len(model_asks) else asks
    return {
        "stations": n_synth,
        "done": int((table["status"] == "done").sum()),
        "wall_s": wall,
        "throughput": rate,
        "experiment_s": float((ends - starts.reindex(ends.index)).median()),
        "ask_median_s": float(statistics.median(asks[1:] if len(asks) > 1 else asks)),
        "model_ask_median_s": float(statistics.median(model_asks)),
        "model_ask_max_s": float(max(model_asks)),
        "asks": len(asks),
        "util": util,
        "steady": steady,
        "best": float(table["fom"].max()),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--experiments", type=int, default=60)
    parser.add_argument("--planner", default="botorch")
    parser.add_argument("--stations", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--efficiency-seeds", type=int, default=5)
    parser.add_argument("--efficiency-budget", type=int, default=30)
    # 1.0: ~2.2 s per experiment, the scale; at 0.25 asks take about as long as
    # experiments, and asynchronous planning loses more (docs/lab.md)
    parser.add_argument("--efficiency-time-scale", type=float, default=1.0)
    parser.add_argument("--lookahead", type=int, default=1)
    parser.add_argument(
        "--final-in-flight",
        type=int,
        default=None,
        metavar="N",
        help="the campaigns' final_in_flight (default: theirs, half the pipeline; the "
        "pipeline's size or more: every station busy to the end)",
    )
    parser.add_argument(
        "--efficiency-max-in-flight",
        type=int,
        default=None,
        metavar="N",
        help="also run the asynchronous lab with max_in_flight N (fewer results unknown "
        "at each ask, less throughput)",
    )
    parser.add_argument("--dir", default=None)
    args = parser.parse_args(argv)
    directory = Path(args.dir or tempfile.mkdtemp(prefix="sdl-lab-bench-"))
    print(f"# load average at start: {os.getloadavg()[0]:.2f}; cores: {os.cpu_count()}")
    print(
        f"# film lab, {args.planner}, {args.experiments} experiments, time_scale {args.time_scale}"
    )
    rows = [
        measure(
            n,
            args.time_scale,
            args.planner,
            args.experiments,
            0,
            directory,
            args.lookahead,
            args.final_in_flight,
        )
        for n in args.stations
    ]
    base = rows[0]["throughput"]
    names = sorted(
        {s for r in rows for s in r["util"]}, key=lambda s: (not s.startswith("synth"), s)
    )
    print(
        f"{'synth':>5} {'done':>4} {'wall s':>7} {'exp/s':>6} {'x 1st':>6} {'exp s':>6} "
        f"{'ask s':>6} {'model':>6} {'max':>5} {'exp/ask':>7} {'synth util':>10} {'steady':>6}"
        "  utilization per station"
    )
    for r in rows:
        synth = [v for k, v in r["util"].items() if k.startswith("synth")]
        steady_synth = [v for k, v in r["steady"].items() if k.startswith("synth")]
        steady = statistics.mean(steady_synth) if steady_synth else float("nan")
        others = "  ".join(
            f"{k} {r['util'][k]:.0%}" for k in names if k in r["util"] and not k.startswith("synth")
        )
        print(
            f"{r['stations']:>5} {r['done']:>4} {r['wall_s']:>7.1f} {r['throughput']:>6.2f} "
            f"{r['throughput'] / base:>6.2f} {r['experiment_s']:>6.2f} {r['ask_median_s']:>6.3f} "
            f"{r['model_ask_median_s']:>6.3f} {r['model_ask_max_s']:>5.2f} "
            f"{r['experiment_s'] / r['model_ask_median_s']:>7.1f} "
            f"{statistics.mean(synth):>10.0%} {steady:>6.0%}  {others}"
        )
    print(f"# load average after part 1: {os.getloadavg()[0]:.2f}")
    if args.efficiency_seeds:
        print(
            f"\n# sample efficiency: best fom after {args.efficiency_budget} experiments, "
            f"time_scale {args.efficiency_time_scale}"
        )
        cap = args.efficiency_max_in_flight
        capped = f"{cap} in flight"
        print(
            f"{'seed':>4} {'sequential':>10} {'async x4':>9} {'wall s':>7}"
            + (f" {capped:>12} {'wall s':>7}" if cap else "")
        )
        seq, asy, lim, wall_a, wall_l = [], [], [], [], []
        common = (args.planner, args.efficiency_budget)
        for seed in range(args.efficiency_seeds):
            s, _, _ = _run(1, args.efficiency_time_scale, *common, seed, directory, 0)
            a, _, wa = _run(
                4, args.efficiency_time_scale, *common, seed, directory, 1, None,
                args.final_in_flight,
            )  # fmt: skip
            seq.append(_best_true(s))
            asy.append(_best_true(a))
            wall_a.append(wa)
            line = f"{seed:>4} {seq[-1]:>10.4f} {asy[-1]:>9.4f} {wa:>7.1f}"
            if cap:
                c, _, wc = _run(4, args.efficiency_time_scale, *common, seed, directory, 1, cap)
                lim.append(_best_true(c))
                wall_l.append(wc)
                line += f" {lim[-1]:>12.4f} {wc:>7.1f}"
            print(line, flush=True)
        ms, ma = statistics.median(seq), statistics.median(asy)
        print(
            f"{'med':>4} {ms:>10.4f} {ma:>9.4f}   async / sequential: {ma / ms:.3f}; "
            f"regret (1 - best) async / sequential: {(1 - ma) / max(1 - ms, 1e-9):.2f}"
        )
        if cap:
            ml = statistics.median(lim)
            print(
                f"# {capped}: median {ml:.4f}, / sequential {ml / ms:.3f}; wall time "
                f"x {statistics.median(wall_l) / statistics.median(wall_a):.2f} the async lab's"
            )
        print(f"# load average at end: {os.getloadavg()[0]:.2f}")
    if args.dir is None:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
