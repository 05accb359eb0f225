"""`sdl run` and `sdl show`: run a YAML campaign; print a store's table."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["add_commands"]

EXIT_OK = 0

#: a campaign process whose heartbeat is younger than this is alive (it beats every 2 s)
LIVE_HEARTBEAT_S = 10.0


def _default_store(name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{name}-{stamp}.zarr"


def _session_kwargs(args: argparse.Namespace, config: Any) -> dict:
    """RunEngine, store and session options shared by ``run`` and ``resume``."""
    from sdl.control import make_run_engine

    interactive = sys.stdin is not None and sys.stdin.isatty()
    return {
        # in a terminal Ctrl-C pauses (bluesky's handling); without one SIGINT stops cleanly
        "RE": make_run_engine(interactive),
        "store_options": config.store_options.model_dump(),
        "progress": not args.quiet,
        "plot": getattr(args, "plot", False),
        "control": not args.no_control,
        "interactive": interactive,
    }


def _cmd_run(args: argparse.Namespace) -> int:
    from sdl.cli._operate import control_token_from
    from sdl.config import build_campaign, load_config
    from sdl.config._check import check_store_path, summary, what_runs
    from sdl.control import control_token

    config = load_config(args.campaign, budget=args.budget, seed=args.seed, store=args.store)
    if args.approve:
        config = config.model_copy(update={"approval": args.approve})
    store = Path(config.store) if config.store else _default_store(config.name)
    token = control_token_from(args)
    # every check before the store is created: its path, then the dry run against the devices
    check_store_path(store, overwrite=args.overwrite, campaign_file=args.campaign)
    campaign = build_campaign(config, allow_import=args.allow_import)
    _lab_services(campaign, args)
    if args.check:
        print(f"ok: {summary(config, campaign, store)}")
        return EXIT_OK
    print(
        f"sdl: campaign {config.name!r}: {config.budget} experiments, planner "
        f"{config.planner.name!r}, {what_runs(config, campaign)}, store {store}",
        flush=True,
    )
    with control_token(token):  # the campaign's watcher accepts only requests signed with it
        result = campaign.run(
            store=store,
            overwrite=args.overwrite,
            **_session_kwargs(args, config),
        )
    print(result.summary())
    return EXIT_OK


def _cmd_show(args: argparse.Namespace) -> int:
    import pandas as pd

    from sdl import open_store
    from sdl._result import CampaignResult
    from sdl.store import StoreDamagedError, check_store
    from sdl.store._check import damage_message

    store = open_store(args.store)
    problems = check_store(args.store)  # a damaged table would show as a shorter campaign
    if problems:
        raise StoreDamagedError(damage_message(args.store, problems), problems)
    df = store.to_dataframe()
    cols = [*store.parameter_names, *store.objective_names, "status", "cause"]
    with pd.option_context(
        "display.max_rows", args.rows, "display.width", 160, "display.max_colwidth", 60
    ):
        print(df[cols].tail(args.rows).to_string())
    print(CampaignResult.from_store(store).summary())
    if store.campaign.get("lab"):
        print(_stations_table(store))
    return EXIT_OK


def _stations_table(store: Any) -> str:
    """A lab campaign's stations: what each does now, its steps, utilization, idle time by cause."""
    import pandas as pd

    from sdl.store import station_overview

    df = station_overview(store)
    wall = float(df["wall_s"].max()) if len(df) else 0.0

    def seconds(v: float) -> str:
        return f"{v:.2f} s" if wall < 100 else f"{v:.0f} s"

    table = pd.DataFrame(
        {
            "now": df["now"],
            "done": df["steps_done"],
            "failed": df["steps_failed"],
            "utilization": [("" if v != v else f"{100 * v:.0f}%") for v in df["utilization"]],
            "out of service": df["idle_out_of_service"].map(seconds),
            "waiting lease": df["idle_waiting_lease"].map(seconds),
            "waiting robot": df["idle_waiting_robot"].map(seconds),
            "waiting planner": df["idle_waiting_planner"].map(seconds),
            "no work": df["idle_no_work"].map(seconds),
        },
        index=df.index,
    )
    lab = store.campaign["lab"].get("name", "lab")
    head = f"stations of lab {lab!r} (over {seconds(wall)} of wall time; idle time by cause):"
    return f"{head}\n{table.to_string()}"


def _live_campaign_state(store: str) -> str | None:
    """The state a running campaign process publishes for ``store``, if one is alive."""
    from sdl.control import ControlChannel

    state = ControlChannel(store).state()
    alive = time.time() - float(state.get("heartbeat", 0)) < LIVE_HEARTBEAT_S
    if alive and state.get("host") == socket.gethostname() and state.get("pid"):
        try:  # on this machine the process itself can be asked (a SIGKILL leaves a fresh beat)
            os.kill(int(state["pid"]), 0)
        except ProcessLookupError:
            alive = False
        except PermissionError:
            pass
    return state.get("state") if alive else None


def _cmd_resume(args: argparse.Namespace) -> int:
    from sdl import open_store
    from sdl.cli._operate import control_token_from
    from sdl.config import build_campaign, load_config
    from sdl.control import control_token
    from sdl.errors import ConfigError

    stored = open_store(args.store).campaign
    live = _live_campaign_state(args.store)
    if live == "paused":  # a campaign process is waiting: resume it through the channel
        from sdl.cli._operate import _cmd_control

        return _cmd_control(
            argparse.Namespace(
                store=args.store,
                action="resume",
                who=None,
                timeout=10.0,
                control_token_file=args.control_token_file,
            )
        )
    if live in ("running", "pausing", "waiting-approval", "stopping"):
        raise ConfigError(
            f"the campaign in {args.store} is still running ({live}); pause it with "
            f"'sdl pause {args.store}' or wait for it to end"
        )
    if not stored:  # the root group was written, the campaign run never began
        from sdl.config._check import no_campaign_yet
        from sdl.store import lock_holder

        holder = lock_holder(args.store)
        if holder is not None:
            raise ConfigError(
                f"{args.store} is being created by PID {holder.get('pid')} on host "
                f"{holder.get('host')}; wait for its campaign to start, then try again"
            )
        raise no_campaign_yet(Path(args.store))
    if "config" not in stored:
        raise ConfigError(
            f"{args.store} was written by a campaign built in Python, not from YAML; resume it "
            f"from Python with campaign.resume(store=...) using the same campaign"
        )
    config = load_config(stored["config"], budget=args.budget)
    token = control_token_from(args)
    # the saved configuration is data anyone with write access to the store may have edited:
    # an import path in it runs only with --allow-import on this command line
    campaign = build_campaign(config, allow_import=args.allow_import)
    _lab_services(campaign, args)
    print(
        f"sdl: resuming {config.name!r} in {args.store} (budget {config.budget}, interrupted "
        f"experiments: {args.interrupted})",
        flush=True,
    )
    with control_token(token):
        result = campaign.resume(
            store=args.store,
            policy=args.interrupted,
            **_session_kwargs(args, config),
        )
    print(result.summary())
    return EXIT_OK


def _lab_services(campaign, args: argparse.Namespace) -> None:
    """``--lab-services DIR``: run the lab's steps on the RE Managers ``sdl lab up`` started."""
    if getattr(args, "lab_services", None) is None:
        return
    from sdl.errors import ConfigError
    from sdl.lab import qserver_backend

    if campaign.lab is None or campaign.workflow is None:
        raise ConfigError("--lab-services: the campaign has no lab: and workflow: to run on them")
    campaign.backend_factory = qserver_backend(args.lab_services)


def _cmd_export(args: argparse.Namespace) -> int:
    from sdl import open_store

    store = open_store(args.store)
    out = store.to_csv(args.csv)
    print(f"wrote {out} ({len(store.to_dataframe())} experiments)")
    return EXIT_OK


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``run``, ``resume``, ``show`` and ``export``."""
    from sdl.cli._operate import add_allow_import_option, add_control_token_option

    run = sub.add_parser("run", help="run a campaign described in YAML")
    run.add_argument("campaign", help="campaign YAML file")
    run.add_argument("--budget", type=int, help="number of experiments (overrides the file)")
    run.add_argument("--store", help="path of the Zarr store (default: runs/<name>-<time>.zarr)")
    run.add_argument("--seed", type=int, help="planner seed (overrides the file)")
    run.add_argument("--overwrite", action="store_true", help="replace an existing store")
    run.add_argument(
        "--check",
        action="store_true",
        help="only check the campaign (build its devices, dry-run; create no store) and exit",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--lab-services", metavar="DIR",
        help="run the lab's steps on the RE Managers 'sdl lab up' started in DIR",
    )  # fmt: skip
    run.add_argument("--plot", action="store_true", help="show live plots")
    run.add_argument(
        "--approve",
        choices=["terminal", "dashboard"],
        help="an operator approves each batch, here or in the dashboard",
    )
    run.add_argument(
        "--no-control",
        action="store_true",
        help="ignore sdl pause/stop/abort and the dashboard's controls",
    )
    add_allow_import_option(run)
    add_control_token_option(run, campaign=True)
    run.set_defaults(func=_cmd_run)

    resume = sub.add_parser(
        "resume",
        help="continue a campaign: a paused one through its control channel, else from its store",
    )
    resume.add_argument("store")
    resume.add_argument(
        "--lab-services", metavar="DIR",
        help="run the lab's steps on the RE Managers 'sdl lab up' started in DIR",
    )  # fmt: skip
    resume.add_argument(
        "--budget", type=int, help="new total budget (earlier experiments included)"
    )
    resume.add_argument(
        "--interrupted",
        choices=["rerun", "skip"],
        default="rerun",
        help="what to do with experiments the crash interrupted (default: rerun)",
    )
    resume.add_argument("--quiet", action="store_true", help="no progress bar")
    resume.add_argument("--plot", action="store_true", help="show live plots")
    resume.add_argument("--no-control", action="store_true", help="ignore the control channel")
    add_allow_import_option(resume)
    add_control_token_option(resume, campaign=True)
    resume.set_defaults(func=_cmd_resume)

    export = sub.add_parser("export", help="write a store's experiment table as CSV")
    export.add_argument("store")
    export.add_argument("--csv", required=True, help="output file")
    export.set_defaults(func=_cmd_export)

    show = sub.add_parser("show", help="print a store's experiment table and summary")
    show.add_argument("store")
    show.add_argument("--rows", type=int, default=30, help="show the last ROWS experiments")
    show.set_defaults(func=_cmd_show)
