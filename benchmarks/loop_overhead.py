"""What the closed loop and its store add to each experiment, against a bare RunEngine.

Run:  python -m benchmarks.loop_overhead [--experiments N] [--repeats R] [--dir DIR]

The same protocol (``set_settle_measure`` on ``ophyd.sim`` motor1/motor2 and det4) at the
same Sobol points, measured in one process, one after another:

* **bare**: a plain RunEngine runs the protocol at every point, with no subscriber;
* **bare + writer**: the same, with sdl's store writer subscribed (the cost of the documents);
* **campaign**: ``Campaign.run`` with its store: the loop plan, the ledger (every life-cycle
  transition durable before the next experiment starts), the planner log, the status
  guard, the planner's asks (Sobol: microseconds), the writer.

Prints per-experiment medians (over ``--repeats`` runs of N experiments each), the overhead
in milliseconds per experiment and its ratio to the bare RunEngine. Not part of the tests.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def _setup():
    from ophyd.sim import det4, motor1, motor2

    from sdl.planners import Objective, Real, SobolPlanner
    from sdl.protocols import set_settle_measure

    objectives = [Objective("det4", goal="maximize")]
    space = [Real("x", -5.0, 5.0), Real("y", -5.0, 5.0)]
    protocol = functools.partial(
        set_settle_measure, movables={"x": motor1, "y": motor2}, detectors=[det4]
    )
    return objectives, space, protocol, SobolPlanner


def _points(n: int) -> list[dict[str, float]]:
    objectives, space, _, sobol = _setup()
    return sobol(space, objectives, seed=0).ask(n)


def bare(n: int, directory: Path, with_writer: bool) -> float:
    """Seconds per experiment: the protocol at ``n`` points under a plain RunEngine."""
    from bluesky import RunEngine

    from sdl.store import ZarrWriter

    _, _, protocol, _ = _setup()
    RE = RunEngine({}, context_managers=[])
    writer = ZarrWriter(directory / "bare.zarr") if with_writer else None
    if writer is not None:
        RE.subscribe(writer)
    points = _points(n)

    def plan():
        for p in points:
            yield from protocol(p)

    t0 = time.perf_counter()
    RE(plan())
    took = (time.perf_counter() - t0) / n
    if writer is not None:
        writer.close()  # (not timed, as a campaign's last block is not)
    return took


def campaign(n: int, directory: Path, sync_to_disk: bool = True) -> float:
    """Seconds per experiment: ``Campaign.run`` of ``n`` experiments with its store."""
    from bluesky import RunEngine

    from sdl import Campaign

    objectives, space, protocol, sobol = _setup()
    camp = Campaign(
        objectives=objectives,
        protocol=protocol,
        planner=sobol(space, objectives, seed=0),
        budget=n,
        safe_state=None,
    )
    RE = RunEngine({}, context_managers=[])
    t0 = time.perf_counter()
    result = camp.run(
        RE, store=directory / "campaign.zarr", store_options={"sync_to_disk": sync_to_disk}
    )
    elapsed = time.perf_counter() - t0
    assert result.n_done == n, result.summary()
    return elapsed / n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where the stores go (a tmp dir)")
    args = parser.parse_args(argv)
    root = Path(args.dir or tempfile.mkdtemp(prefix="sdl-loop-"))
    cases = {
        "bare RunEngine": lambda d: bare(args.experiments, d, with_writer=False),
        "bare RunEngine + sdl writer": lambda d: bare(args.experiments, d, with_writer=True),
        "Campaign.run (store, syncfs at stops)": lambda d: campaign(args.experiments, d),
        "Campaign.run (store, no syncfs)": lambda d: campaign(args.experiments, d, False),
    }
    bare(5, root / "warm", with_writer=True)  # imports, first-call caches
    campaign(3, root / "warm")
    results: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(args.repeats):
        for name, fn in cases.items():  # interleaved: load changes hit every case alike
            d = root / f"{r}-{len(results[name])}-{abs(hash(name))}"
            d.mkdir(parents=True)
            results[name].append(fn(d))
            shutil.rmtree(d, ignore_errors=True)
    base = statistics.median(results["bare RunEngine"])
    load = os.getloadavg()[0]
    print(f"\n{args.experiments} experiments x {args.repeats} repeats; load average {load:.2f}\n")
    print(f"{'case':40s} {'ms/experiment':>14s} {'overhead ms':>12s} {'x bare':>8s}  runs (ms)")
    for name, values in results.items():
        med = statistics.median(values)
        spread = ", ".join(f"{v * 1e3:.1f}" for v in values)
        print(
            f"{name:40s} {med * 1e3:14.1f} {(med - base) * 1e3:12.1f} {med / base:8.2f}  [{spread}]"
        )
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
