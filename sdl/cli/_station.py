"""``sdl station enable|disable STORE NAME``: take a lab station out of service, or back."""

from __future__ import annotations

import argparse
import os

__all__ = ["add_commands"]


def _cmd_station(args: argparse.Namespace) -> int:
    from sdl.cli._operate import control_token_from, send_request
    from sdl.control import ControlChannel
    from sdl.errors import ConfigError, StoreError

    if not os.path.isdir(args.store):
        raise StoreError(
            f"no campaign store at {args.store}: give the store the lab campaign writes to"
        )
    if args.timeout <= 0:
        raise ConfigError(f"--timeout must be more than 0 seconds, got {args.timeout:g}")
    channel = ControlChannel(args.store, token=control_token_from(args))
    return send_request(
        channel,
        args,
        "station",
        f"station {args.station_action} {args.name}",
        "is a lab campaign running there, with control on?",
        refusal_to_stderr=True,
        name=args.name,
        enable=args.station_action == "enable",
    )


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``station enable|disable STORE NAME``."""
    from sdl.cli._operate import add_control_token_option

    station = sub.add_parser(
        "station",
        help="take a station of a running lab campaign out of service, or put it back",
        description="Ask a running lab campaign (started with control on: the default of "
        "sdl run) to stop starting steps on a station (disable), or to use it again "
        "(enable). Steps running there finish. Exit status: 0 accepted, 1 refused or no "
        "answer, 2 a usage error.",
    )
    actions = station.add_subparsers(dest="station_action", required=True)
    helps = {
        "disable": "no new steps start on the station (those running there finish)",
        "enable": "put the station back in service",
    }
    for action, text in helps.items():
        p = actions.add_parser(action, help=text)
        p.add_argument("store", help="the lab campaign's store")
        p.add_argument("name", help="the station's name (e.g. synth-2)")
        p.add_argument("--who", help="your name (default $SDL_OPERATOR or your login)")
        p.add_argument(
            "--timeout",
            type=float,
            default=10.0,
            help="seconds to wait for the campaign to answer (default 10)",
        )
        add_control_token_option(p)
        p.set_defaults(func=_cmd_station)
