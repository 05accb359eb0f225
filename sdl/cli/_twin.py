"""``sdl twin FILE``: forecast a lab; ``sdl twin calibrate STORE -o FILE``: its timing."""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["add_commands"]


def _cmd_calibrate(args: argparse.Namespace) -> int:
    import os

    from sdl.errors import ConfigError, StoreError
    from sdl.store import open_store
    from sdl.twin import calibrate, write_timing

    if args.store is None:
        raise ConfigError("sdl twin calibrate: give the store: sdl twin calibrate STORE -o FILE")
    if not args.output:
        raise ConfigError("sdl twin calibrate: give -o FILE, the timing file to write")
    if not os.path.isdir(args.store):
        raise StoreError(f"no campaign store at {args.store}: give a lab campaign's store")
    store = open_store(args.store)
    timing = calibrate(store, dist=args.dist)
    write_timing(timing, args.output)
    print(f"wrote {args.output}: {len(timing.get('steps', {}))} step durations, "
          f"{len(timing.get('stations', {}))} station(s) with their own timing")  # fmt: skip
    return 0


def _cmd_twin(args: argparse.Namespace) -> int:
    if args.file == "calibrate":
        return _cmd_calibrate(args)
    from sdl.errors import ConfigError
    from sdl.twin import forecast_what_ifs, format_table, load_spec, write_report

    if args.store is not None:
        raise ConfigError(f"sdl twin: unexpected argument {args.store!r} after the file")
    spec = load_spec(args.file, timing_file=args.timing)
    if args.budget is not None:
        if args.budget < 1:
            raise ConfigError(f"--budget: must be >= 1, got {args.budget}")
        spec.budget = args.budget
    if args.real_planner:
        spec.timing = spec.timing.model_copy(
            update={"planner": spec.timing.planner.model_copy(update={"real": True})}
        )
    forecasts = forecast_what_ifs(
        spec,
        args.what_if or (),
        days=args.days,
        replications=args.replications,
        seed=args.seed if args.seed is not None else spec.seed,
    )
    if args.json == "-":
        json.dump([f.to_dict() for f in forecasts], sys.stdout, indent=2)
        print()
    else:
        print(format_table(forecasts))
        if args.json:
            with open(args.json, "w") as fh:
                json.dump([f.to_dict() for f in forecasts], fh, indent=2)
            print(f"\nwrote {args.json}")
    if args.report:
        page = write_report(forecasts, args.report, hours=args.gantt_hours)
        print(f"wrote {page}", file=sys.stderr if args.json == "-" else sys.stdout)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``twin FILE`` and ``twin calibrate STORE -o FILE``."""
    twin = sub.add_parser(
        "twin",
        help="forecast a lab on simulated time (experiments/day, utilization, bottleneck); "
        "'sdl twin calibrate STORE -o FILE' fits its timing from a campaign's store",
        description="Forecast a lab campaign with its digital twin (docs/twin.md), or "
        "'sdl twin calibrate STORE -o timing.yaml'.",
    )
    twin.add_argument("file", help="campaign or lab YAML file (or 'calibrate')")
    twin.add_argument("store", nargs="?", help=argparse.SUPPRESS)
    twin.add_argument("--days", type=float, help="days to forecast (default: twin.days, 7)")
    twin.add_argument("--replications", type=int, help="independent runs (default: 10)")
    twin.add_argument("--seed", type=int, help="seed of the first replication (default: seed:)")
    twin.add_argument(
        "--what-if", action="append", metavar="KEY=VALUE",
        help="a change to forecast beside the baseline, e.g. stations.characterizer.capacity=2 "
        "or robot.speed=2x (repeatable)",
    )  # fmt: skip
    twin.add_argument("--timing", help="timing file (sdl twin calibrate) over the twin: section")
    twin.add_argument("--budget", type=int, help="stop after this many experiments")
    twin.add_argument(
        "--real-planner", action="store_true",
        help="run the campaign's planner and charge its measured ask time (slow)",
    )  # fmt: skip
    twin.add_argument("--json", metavar="FILE", help="write the forecast as JSON ('-': stdout)")
    twin.add_argument("--report", metavar="DIR", help="write PNG charts and an HTML page")
    twin.add_argument("--gantt-hours", type=float, default=8.0, help="hours in the Gantt chart")
    twin.add_argument("-o", "--output", help="calibrate: the timing file to write")
    twin.add_argument(
        "--dist", default="lognormal", choices=["lognormal", "normal", "gamma"],
        help="calibrate: the distribution fitted to step durations",
    )  # fmt: skip
    twin.set_defaults(func=_cmd_twin)
