"""`sdl devices|planners|protocols`: list installed plugins and where they come from."""

from __future__ import annotations

import argparse

__all__ = ["add_commands"]

EXIT_OK = 0


def _cmd_list(kind: str):
    def run(args: argparse.Namespace) -> int:
        if kind == "devices":
            from sdl.devices import available_devices as available
        elif kind == "planners":
            from sdl.planners import available_planners as available
        else:
            from sdl.protocols import available_protocols as available
        for name, source in available().items():
            print(f"{name:28s} {source}")
        return EXIT_OK

    return run


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``devices``, ``planners`` and ``protocols``."""
    for kind in ("devices", "planners", "protocols"):
        p = sub.add_parser(kind, help=f"list the installed {kind} and where they come from")
        p.set_defaults(func=_cmd_list(kind))
