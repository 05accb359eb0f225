"""What the closed loop and its store add to each experiment, against a bare RunEngine.

Run:  python -m benchmarks.loop_overhead [--experiments N] [--small M] [--repeats R] [--events E]
      [--long L] [--dir DIR]

The same protocol (``set_settle_measure`` on ``ophyd.sim`` motor1/motor2 and det4) at the
same Sobol points, measured in one process, one after another:

* **bare**: a plain RunEngine runs the protocol at every point, with no subscriber;
* **bare + writer**: the same, with sdl's store writer subscribed (the cost of the documents);
* **campaign**: ``Campaign.run`` with its store: the loop plan, the ledger (every life-cycle
  transition durable before the next experiment starts), the planner log, the status
  guard, the planner's asks (Sobol: about 0.2 ms), the writer; with and without
  ``sync_to_disk``, and with Zarr blocks every second (``log_flush_interval: 1``, the
  default before it was 5 s) to show what blocks cost.

Prints per-experiment medians (over ``--repeats`` runs of N experiments each) and their ratio
to the bare RunEngine; and, from a second, shorter run of each case, what one more
experiment costs (the overhead per experiment, apart from what a campaign pays once:
creating its store, collecting provenance, reading its result) and that one-time cost.
Then the same ratios paired by repeat (each case's runs against the bare RunEngine's runs
of the same repeat, which ran next to them): their median and range, and in how many
repeats the overhead per experiment met issue 12's 1.3x. On a machine whose speed drifts
(a run of the same case spreads by 10-20 % here) the range says whether a goal is met or
within the noise.

Then what one of the loop's own events costs (a campaign emits four per experiment here:
the ask, and the transitions planned, running, done): the campaign's ``Ledger`` emitting
under a bare RunEngine, alone and with the writer subscribed, and event-model's schema
validation of one such event, which bluesky's RunEngine does for every event it composes.

Last, one long campaign (``--long``, 1500 experiments: about half a minute here) and a bare
run of as many: what the writer's Zarr blocks, one every 5 s, cost the loop while they are
written (the runs above are too short to have one), timed from the writer's debug record of
each block. Not part of the tests.
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
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


def _sobol_campaign(n: int):
    """The benchmark's campaign of ``n`` experiments: the protocol at Sobol points."""
    from sdl import Campaign

    objectives, space, protocol, sobol = _setup()
    return Campaign(
        objectives=objectives,
        protocol=protocol,
        planner=sobol(space, objectives, seed=0),
        budget=n,
        safe_state=None,
    )


def campaign(
    n: int, directory: Path, sync_to_disk: bool = True, log_flush_interval: float | None = None
) -> float:
    """Seconds per experiment: ``Campaign.run`` of ``n`` experiments with its store."""
    from bluesky import RunEngine

    camp = _sobol_campaign(n)
    RE = RunEngine({}, context_managers=[])
    t0 = time.perf_counter()
    options: dict[str, object] = {"sync_to_disk": sync_to_disk}
    if log_flush_interval is not None:
        options["log_flush_interval"] = log_flush_interval
    result = camp.run(RE, store=directory / "campaign.zarr", store_options=options)
    elapsed = time.perf_counter() - t0
    assert result.n_done == n, result.summary()
    return elapsed / n


class _Blocks(logging.Handler):
    """Collects the writer's block records: ``(started, seconds)`` in ``time.monotonic``."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.windows: list[tuple[float, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("%s: block through log record"):
            _, _, seconds, started = record.args  # type: ignore[misc]
            self.windows.append((started, seconds))


def long_campaign(
    n: int, directory: Path, log_flush_interval: float | None = None
) -> dict[str, float]:
    """What the writer's blocks (one every ``log_flush_interval``, 5 s) cost a campaign
    long enough to have several: ``Campaign.run`` of ``n`` experiments with its defaults.

    The shorter runs above end before their first timed block (their blocks are the one at
    the start and the one at the end), so their "per experiment more" leaves these out.
    Keys: ``"ms/exp"`` (whole run), ``"blocks"`` (written while experiments ran),
    ``"block s"`` (median seconds one took), ``"ms/exp in"`` and ``"ms/exp out"`` (mean
    time from one experiment's stop document to the next, for those ending while a block
    was written and for the others), ``"blocks ms/exp"`` (the extra time of the former,
    spread over all ``n`` experiments: what blocks add per experiment).
    ``log_flush_interval``: the store's, if not its default.
    """
    from bluesky import RunEngine

    camp = _sobol_campaign(n)
    RE = RunEngine({}, context_managers=[])
    stops: list[float] = []
    RE.subscribe(lambda name, doc: stops.append(time.monotonic()) if name == "stop" else None)
    handler, logger = _Blocks(), logging.getLogger("sdl.store._writer")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        t0 = time.perf_counter()
        options = {} if log_flush_interval is None else {"log_flush_interval": log_flush_interval}
        result = camp.run(RE, store=directory / "long.zarr", store_options=options)
        elapsed = time.perf_counter() - t0
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert result.n_done == n, result.summary()
    runs = stops[:-1]  # the last stop is the campaign run's own
    # blocks while experiments ran: not the campaign's first (at its start) nor its last
    windows = [(a, a + s) for a, s in handler.windows if runs[0] < a < runs[-1]]
    inside, outside = [], []
    for before, after in zip(runs, runs[1:]):
        (inside if any(a <= after <= b for a, b in windows) else outside).append(after - before)
    if not outside:  # (every experiment met a block: blocks far more often than the default)
        raise ValueError(f"every experiment ended while a block was written: {windows}")
    extra = sum(inside) - len(inside) * statistics.mean(outside) if inside else 0.0
    return {
        "ms/exp": elapsed / n * 1e3,
        "blocks": len(windows),
        "block s": statistics.median(b - a for a, b in windows) if windows else math.nan,
        "ms/exp in": statistics.mean(inside) * 1e3 if inside else math.nan,
        "ms/exp out": statistics.mean(outside) * 1e3,
        "blocks ms/exp": extra / n * 1e3,
    }


def loop_event_cost(n: int, directory: Path) -> dict[str, float]:
    """Seconds per event of the campaign's ledger stream (``sdl._ledger.Ledger``).

    Keys: ``"RunEngine"`` (emitted in one run of a bare RunEngine, no subscriber), ``"+
    writer"`` (the same with sdl's writer subscribed), ``"validation"`` (event-model's
    schema validation of one event, which the RunEngine does inside the first).
    """
    from bluesky import RunEngine
    from bluesky.utils import Msg
    from event_model import DocumentNames, schema_validators

    from sdl._ledger import Ledger
    from sdl._lifecycle import Experiment, Status
    from sdl.store import ZarrWriter

    objectives, space, _, _ = _setup()
    ledger = Ledger(space, tuple(objectives))
    exp = Experiment(id=0, batch=0, point={"x": 0.5, "y": -1.0}, status=Status.RUNNING)
    events: list[dict] = []

    def plan():
        yield Msg("open_run")
        for _ in range(n):
            yield from ledger.record(exp)
        yield Msg("close_run", exit_status="success", reason="")

    out: dict[str, float] = {}
    for label, writer in (
        ("RunEngine", None),
        ("+ writer", ZarrWriter(directory / "events.zarr")),
    ):
        RE = RunEngine({}, context_managers=[])
        if writer is not None:
            RE.subscribe(writer)
        else:
            RE.subscribe(lambda name, doc: events.append(doc) if name == "event" else None)
        t0 = time.perf_counter()
        RE(plan())
        out[label] = (time.perf_counter() - t0) / n
        if writer is not None:
            writer.close()
    validator = schema_validators[DocumentNames.event]
    t0 = time.perf_counter()
    for doc in events:
        validator.validate(doc)
    out["validation"] = (time.perf_counter() - t0) / len(events)
    return out


def paired_ratios(
    results: dict[tuple[str, int], list[float]], name: str, base: str, big: int, small: int
) -> tuple[list[float], list[float]]:
    """Per repeat: ``name``'s whole run of ``big`` over ``base``'s, and its cost of one
    more experiment (runs of ``big`` and ``small``) over ``base``'s. The runs of one repeat
    came one after another, so a change of the machine's load hits both sides of a ratio
    alike; the medians of the table pair runs of different moments."""
    whole, more = [], []
    for r in range(len(results[base, big])):
        whole.append(results[name, big][r] / results[base, big][r])
        num = results[name, big][r] - results[name, small][r]
        more.append(num / (results[base, big][r] - results[base, small][r]))
    return whole, more


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=100)
    parser.add_argument(
        "--small",
        type=int,
        default=20,
        help="a second, shorter run of each case: the difference gives the cost of one more "
        "experiment, apart from what a campaign pays once (store creation, provenance, result)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--events", type=int, default=1000, help="loop events per run in the event section"
    )
    parser.add_argument(
        "--long",
        type=int,
        default=1500,
        help="experiments of one long campaign (several Zarr blocks) and of a bare run, in the "
        "last section (0: skip)",
    )
    parser.add_argument("--dir", type=Path, default=None, help="where the stores go (a tmp dir)")
    args = parser.parse_args(argv)
    root = Path(args.dir or tempfile.mkdtemp(prefix="sdl-loop-"))
    cases = {
        "bare RunEngine": lambda n, d: bare(n, d, with_writer=False),
        "bare RunEngine + sdl writer": lambda n, d: bare(n, d, with_writer=True),
        "Campaign.run (store, syncfs at stops)": lambda n, d: campaign(n, d),
        "Campaign.run (store, no syncfs)": lambda n, d: campaign(n, d, False),
        "Campaign.run (store, a block every 1 s)": lambda n, d: campaign(
            n, d, log_flush_interval=1.0
        ),
    }
    bare(5, root / "warm", with_writer=True)  # imports, first-call caches
    campaign(3, root / "warm")
    sizes = (args.experiments, args.small)
    results: dict[tuple[str, int], list[float]] = {(c, n): [] for c in cases for n in sizes}
    for r in range(args.repeats):
        for n in sizes:
            for name, fn in cases.items():  # interleaved: load changes hit every case alike
                d = root / f"{r}-{n}-{abs(hash(name))}"
                d.mkdir(parents=True)
                results[name, n].append(fn(n, d) * n)  # seconds for the whole run
                shutil.rmtree(d, ignore_errors=True)
    load = os.getloadavg()[0]
    big, small = sizes

    def per_exp(name: str) -> float:
        return statistics.median(results[name, big]) / big

    def marginal(name: str) -> float:  # seconds per experiment beyond the first ``small``
        return (statistics.median(results[name, big]) - statistics.median(results[name, small])) / (
            big - small
        )

    base, base_m = per_exp("bare RunEngine"), marginal("bare RunEngine")
    print(f"\n{big} (and {small}) experiments x {args.repeats} repeats; load average {load:.2f}\n")
    print(
        f"{'case':40s} {'ms/exp':>7s} {'x bare':>7s} | {'ms/exp more':>11s} {'overhead':>8s} "
        f"{'x bare':>7s} | {'once (s)':>8s}  runs of {big} (ms/exp)"
    )
    for name in cases:
        med, m = per_exp(name), marginal(name)
        once = statistics.median(results[name, small]) - small * m
        spread = ", ".join(f"{v / big * 1e3:.1f}" for v in results[name, big])
        print(
            f"{name:40s} {med * 1e3:7.1f} {med / base:7.2f} | {m * 1e3:11.1f} "
            f"{(m - base_m) * 1e3:8.1f} {m / base_m:7.2f} | {once:8.3f}  [{spread}]"
        )
    print(
        "\nms/exp: the whole run of N over N. ms/exp more: what one more experiment costs "
        f"(runs of {big} and {small}); overhead: that, less the bare RunEngine's. once: what "
        "the run pays once (store creation, provenance, reading the result)."
    )
    print(
        f"\npaired by repeat (each case's runs against the bare RunEngine's of the same repeat, "
        f"run next to them; median [min-max] of {args.repeats}):"
    )
    for name in list(cases)[1:]:
        whole, more = paired_ratios(results, name, "bare RunEngine", big, small)
        print(
            f"  {name:40s} x bare {_spread(whole)} | per experiment more x bare {_spread(more)}"
            f"; <= 1.3x in {sum(r <= 1.3 for r in more)} of {len(more)}"
        )
    costs = [loop_event_cost(args.events, root / f"events-{r}") for r in range(args.repeats)]
    print(
        f"\none event of the loop's ledger stream ({args.events} in a run; median of "
        f"{args.repeats}):"
    )
    for key in costs[0]:
        print(f"  {key:12s} {statistics.median(c[key] for c in costs) * 1e3:6.3f} ms")
    print(
        "  (RunEngine: emitted under a bare RunEngine, no subscriber; + writer: with the "
        "store's writer; validation: event-model's schema check of one event, which the "
        "RunEngine does inside the first)"
    )
    if args.long:
        base_long = bare(args.long, root / "long-bare", with_writer=False) * 1e3
        (root / "long").mkdir()
        long = long_campaign(args.long, root / "long")
        print(
            f"\na long campaign ({args.long} experiments, {long['blocks']} Zarr blocks while "
            f"they ran, median {long['block s']:.2f} s each; load average "
            f"{os.getloadavg()[0]:.2f}):\n"
            f"  bare RunEngine {base_long:6.1f} ms/exp; Campaign.run {long['ms/exp']:6.1f} "
            f"ms/exp ({long['ms/exp'] / base_long:.2f}x, one run each)\n"
            f"  from one experiment's stop to the next: {long['ms/exp out']:.1f} ms, "
            f"{long['ms/exp in']:.1f} ms while a block was written\n"
            f"  what the blocks add, spread over every experiment: "
            f"{long['blocks ms/exp']:.2f} ms/exp (not in 'ms/exp more' above: those runs end "
            "before their first timed block)"
        )
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
