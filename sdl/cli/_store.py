"""``sdl check`` and ``sdl repair``: compare a store's table with its event log; rebuild it."""

from __future__ import annotations

import argparse

__all__ = ["add_commands"]

EXIT_OK, EXIT_DAMAGED = 0, 1


def _cmd_check(args: argparse.Namespace) -> int:
    from sdl.store import check_store, lock_holder

    problems = check_store(args.store)
    if not problems:
        live = " (a campaign is writing it)" if lock_holder(args.store) else ""
        print(f"sdl: {args.store}: the table agrees with the event log{live}")
        return EXIT_OK
    from sdl.store._check import damage_message

    for problem in problems:
        print(f"  {problem}")
    print(f"sdl: {damage_message(args.store, problems)}")
    return EXIT_DAMAGED


def _cmd_repair(args: argparse.Namespace) -> int:
    from sdl.store import repair_store

    report = repair_store(args.store)
    for problem in report.found:
        print(f"  found: {problem}")
    print(f"sdl: {args.store}: {report.summary()}")
    return EXIT_OK if not report.remaining else EXIT_DAMAGED


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``check`` and ``repair``."""
    check = sub.add_parser(
        "check", help="compare a store's experiment table with its event log (exit 1: damaged)"
    )
    check.add_argument("store")
    check.set_defaults(func=_cmd_check)

    repair = sub.add_parser(
        "repair",
        help="rebuild a damaged experiment table from the event log (the damaged one is kept)",
    )
    repair.add_argument("store")
    repair.set_defaults(func=_cmd_repair)
