"""Stations on bluesky-queueserver against the in-process backend, on the same lab.

Run:  python -m benchmarks.qserver_overhead [--experiments 30] [--film-seeds 5]
          [--film-budget 20] [--film-time-scale 0.25] [--planner botorch]

Part 1 (overhead): a 3-station lab (the film lab's ``synthesize`` on 2 spin coaters,
then ``characterize`` on the spectrometer) with zero-time steps (``time_scale`` 0) runs
``--experiments`` experiments with the Sobol planner, once with the in-process backend
and once on three RE Managers (``LabServers``: Redis, the 0MQ proxy, a manager per
station, on 127.0.0.1). Printed: experiments/s, the median step time (start record to
end record in the ``steps`` stream: what a step costs besides its instrument), and the
queue server's extra ms per step with the ratio.

Part 2 (the film lab on managers): the whole film lab (3 coaters, a 2-slot furnace, the
robot, the spectrometer: 7 managers) at ``--film-time-scale`` with the planner, over
``--film-seeds`` seeds, in-process and on managers: the best true figure of merit reached
(median over seeds; sample efficiency) and the throughput ratio.

Not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import yaml


def _lab_yaml(path: Path, *, full: bool, time_scale: float, budget: int, seed: int, planner: str):
    lab = {"kind": "film", "synth_stations": 3 if full else 2, "time_scale": time_scale}
    data = {"name": "bench", "budget": budget, "seed": seed, "lab": lab}
    if not full:
        data["workflow"] = [
            {"name": "synthesize", "station": "synth-*", "plan": "film.synthesize"},
            {"name": "characterize", "station": "characterizer", "plan": "film.characterize"},
        ]
    data["planner"] = {"name": planner}
    if planner == "botorch":
        data["planner"]["options"] = {"num_restarts": 4, "raw_samples": 128}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _run(file: Path, store: Path, services: str | None):
    from sdl import open_store
    from sdl.config import load_campaign
    from sdl.lab import qserver_backend

    campaign = load_campaign(str(file))
    if services is not None:
        campaign.backend_factory = qserver_backend(services)
    t0 = time.perf_counter()
    campaign.run(store=store, progress=False)
    wall = time.perf_counter() - t0
    s = open_store(store)
    iv = s.step_intervals()
    steps = (iv["finished"] - iv["started"]).median()
    table = s.to_dataframe()
    done = int((table["status"] == "done").sum())
    best = _best_true(table)
    return wall, done, float(steps), best


def _best_true(table) -> float:
    from sdl.devices import film_figure_of_merit

    done = table[table["status"] == "done"]
    if done.empty:
        return float("nan")
    return max(film_figure_of_merit(r) for r in done.to_dict(orient="records"))


def overhead(n: int, directory: Path) -> None:
    from sdl.lab import LabServers

    file = _lab_yaml(
        directory / "small.yaml", full=False, time_scale=0.0, budget=n, seed=0, planner="sobol"
    )
    inproc = _run(file, directory / "inproc.zarr", None)
    t0 = time.perf_counter()
    servers = LabServers.start(file, directory / "svc-small")
    up = time.perf_counter() - t0
    try:
        qs = _run(file, directory / "qs.zarr", servers.directory)
    finally:
        servers.stop()
    print(f"\n## Overhead: 3 stations, zero-time steps, {n} experiments, sobol")
    print(f"(services up in {up:.1f} s: Redis, proxy, 3 RE Managers with their environments)\n")
    print("| backend | wall s | experiments/s | median step ms |")
    print("|---|---|---|---|")
    for name, (wall, done, step, _) in (("in-process", inproc), ("queue server", qs)):
        print(f"| {name} | {wall:.2f} | {done / wall:.2f} | {1000 * step:.1f} |")
    extra = 1000 * (qs[2] - inproc[2])
    print(
        f"\nqueue server: +{extra:.1f} ms per step ({qs[2] / inproc[2]:.1f}x the in-process "
        f"step); throughput {(qs[1] / qs[0]) / (inproc[1] / inproc[0]):.2f}x"
    )


def film(seeds: int, budget: int, time_scale: float, planner: str, directory: Path) -> None:
    from sdl.lab import LabServers

    rows = []
    for seed in range(seeds):
        file = _lab_yaml(
            directory / f"film{seed}.yaml", full=True, time_scale=time_scale, budget=budget,
            seed=seed, planner=planner,
        )  # fmt: skip
        inproc = _run(file, directory / f"film-in-{seed}.zarr", None)
        servers = LabServers.start(file, directory / f"svc-film-{seed}")
        try:
            qs = _run(file, directory / f"film-qs-{seed}.zarr", servers.directory)
        finally:
            servers.stop()
        rows.append((seed, inproc, qs))
    print(
        f"\n## The film lab on 7 RE Managers: {budget} experiments, {planner}, time scale {time_scale}"
    )
    print("| seed | in-process best | queue-server best | in-process exp/s | queue-server exp/s |")
    print("|---|---|---|---|---|")
    for seed, a, b in rows:
        print(f"| {seed} | {a[3]:.3f} | {b[3]:.3f} | {a[1] / a[0]:.2f} | {b[1] / b[0]:.2f} |")
    med_a = statistics.median(r[1][3] for r in rows)
    med_b = statistics.median(r[2][3] for r in rows)
    thr = statistics.median((r[2][1] / r[2][0]) / (r[1][1] / r[1][0]) for r in rows)
    print(
        f"\nmedian best: in-process {med_a:.3f}, queue server {med_b:.3f} "
        f"(ratio {med_b / med_a:.3f}); median throughput ratio {thr:.2f}"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiments", type=int, default=30)
    parser.add_argument("--film-seeds", type=int, default=5)
    parser.add_argument("--film-budget", type=int, default=20)
    parser.add_argument("--film-time-scale", type=float, default=0.25)
    parser.add_argument("--planner", default="botorch")
    args = parser.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    directory = Path(tempfile.mkdtemp(prefix="sdl-qs-bench-"))
    try:
        overhead(args.experiments, directory)
        if args.film_seeds > 0:
            film(args.film_seeds, args.film_budget, args.film_time_scale, args.planner, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
