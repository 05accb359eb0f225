"""`sdl run` and `sdl show`: run a YAML campaign; print a store's table."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

__all__ = ["add_commands"]

EXIT_OK = 0


def _default_store(name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{name}-{stamp}.zarr"


def _cmd_run(args: argparse.Namespace) -> int:
    from sdl.config import build_campaign, load_config

    config = load_config(args.campaign, budget=args.budget, seed=args.seed, store=args.store)
    store = Path(config.store) if config.store else _default_store(config.name)
    campaign = build_campaign(config)
    print(
        f"sdl: campaign {config.name!r}: {config.budget} experiments, planner "
        f"{config.planner.name!r}, protocol {config.protocol.name!r}, store {store}",
        flush=True,
    )
    result = campaign.run(store=store, overwrite=args.overwrite, progress=not args.quiet)
    print(result.summary())
    return EXIT_OK


def _cmd_show(args: argparse.Namespace) -> int:
    import pandas as pd

    from sdl import open_store
    from sdl._result import CampaignResult

    store = open_store(args.store)
    df = store.to_dataframe()
    cols = [*store.parameter_names, *store.objective_names, "status", "cause"]
    with pd.option_context("display.max_rows", args.rows, "display.width", 160, "display.max_colwidth", 60):
        print(df[cols].tail(args.rows).to_string())
    print(CampaignResult.from_store(store).summary())
    return EXIT_OK


def _cmd_resume(args: argparse.Namespace) -> int:
    from sdl import open_store
    from sdl.config import build_campaign, load_config
    from sdl.errors import ConfigError

    stored = open_store(args.store).campaign
    if "config" not in stored:
        raise ConfigError(
            f"{args.store} was written by a campaign built in Python, not from YAML; resume it "
            f"from Python with campaign.resume(store=...) using the same campaign"
        )
    config = load_config(stored["config"], budget=args.budget)
    campaign = build_campaign(config)
    print(f"sdl: resuming {config.name!r} in {args.store} (budget {config.budget}, interrupted "
          f"experiments: {args.interrupted})", flush=True)
    result = campaign.resume(
        store=args.store, policy=args.interrupted, progress=not args.quiet
    )
    print(result.summary())
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from sdl import open_store

    store = open_store(args.store)
    out = store.to_csv(args.csv)
    print(f"wrote {out} ({len(store.to_dataframe())} experiments)")
    return EXIT_OK


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``run``, ``resume``, ``show`` and ``export``."""
    run = sub.add_parser("run", help="run a campaign described in YAML")
    run.add_argument("campaign", help="campaign YAML file")
    run.add_argument("--budget", type=int, help="number of experiments (overrides the file)")
    run.add_argument("--store", help="path of the Zarr store (default: runs/<name>-<time>.zarr)")
    run.add_argument("--seed", type=int, help="planner seed (overrides the file)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing store")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=_cmd_run)

    resume = sub.add_parser("resume", help="continue a campaign from its store (after a crash or stop)")
    resume.add_argument("store")
    resume.add_argument("--budget", type=int, help="new total budget (earlier experiments included)")
    resume.add_argument(
        "--interrupted", choices=["rerun", "skip"], default="rerun",
        help="what to do with experiments the crash interrupted (default: rerun)",
    )
    resume.add_argument("--quiet", action="store_true", help="no progress bar")
    resume.set_defaults(func=_cmd_resume)

    export = sub.add_parser("export", help="write a store's experiment table as CSV")
    export.add_argument("store")
    export.add_argument("--csv", required=True, help="output file")
    export.set_defaults(func=_cmd_export)

    show = sub.add_parser("show", help="print a store's experiment table and summary")
    show.add_argument("store")
    show.add_argument("--rows", type=int, default=30, help="show the last ROWS experiments")
    show.set_defaults(func=_cmd_show)
