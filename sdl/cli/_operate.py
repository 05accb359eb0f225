"""Operator commands: ``sdl dashboard``, ``sdl report``, ``sdl control pause|resume|stop|abort``."""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["add_commands"]

EXIT_OK, EXIT_FAILED = 0, 1


def _cmd_control(args: argparse.Namespace) -> int:
    from sdl.control import ControlChannel
    from sdl.errors import StoreError

    if not os.path.isdir(args.store):
        raise StoreError(
            f"no campaign store at {args.store}: give the store the campaign writes to"
        )
    channel = ControlChannel(args.store)
    rid = channel.request(args.action, args.who, expires_in=args.timeout)
    ack = channel.wait(rid, timeout=args.timeout)
    if ack is None and channel.withdraw(rid):
        state = channel.state().get("state")
        last = f" (its last published state: {state})" if state else ""
        print(
            f"sdl: {args.action}: no answer from the campaign at {args.store} within "
            f"{args.timeout:g} s: is the campaign running?{last} The request was withdrawn.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    ack = ack or channel.response(rid)
    print(f"sdl: {args.action}: {ack.result}")
    return EXIT_OK if ack.ok else EXIT_FAILED


def _cmd_report(args: argparse.Namespace) -> int:
    from sdl.report import write_report

    index = write_report(args.store, args.out)
    print(f"sdl: report written to {index}")
    return EXIT_OK


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from sdl.dashboard import make_server

    token = args.control_token or os.environ.get("SDL_CONTROL_TOKEN") or None
    server = make_server(
        args.store, port=args.port, host=args.host, control_token=token, interval=args.interval
    )
    mode = "control enabled (token required)" if token else "read-only"
    print(
        f"sdl: dashboard of {args.store} at http://{args.host}:{args.port}/ ({mode}); Ctrl-C to quit",
        flush=True,
    )
    try:
        server.io_loop.start()
    finally:
        server.sdl_poller.stop()
    return EXIT_OK


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``dashboard``, ``report``, ``control ACTION`` and the shortcuts ``pause``, ``stop``, ``abort``."""
    dash = sub.add_parser(
        "dashboard", help="serve a browser dashboard that follows a campaign store"
    )
    dash.add_argument("store", help="the campaign store (it may not exist yet)")
    dash.add_argument("--port", type=int, default=5006, help="TCP port (default 5006)")
    dash.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    dash.add_argument(
        "--control-token",
        help="enable control from the page; every action must give this token "
        "(or set SDL_CONTROL_TOKEN). Without it the page is read-only",
    )
    dash.add_argument("--interval", type=float, default=1.0, help="seconds between store reads")
    dash.set_defaults(func=_cmd_dashboard)

    rep = sub.add_parser("report", help="write PNG plots and an HTML summary of a campaign")
    rep.add_argument("store")
    rep.add_argument("--out", required=True, help="folder to write index.html and the PNGs into")
    rep.set_defaults(func=_cmd_report)

    helps = {
        "pause": "pause a running campaign before its next experiment",
        "resume": "resume a paused campaign",
        "stop": "end a campaign cleanly after its current experiment",
        "abort": "abort a campaign now (the running experiment is marked interrupted)",
    }

    def options(p: argparse.ArgumentParser) -> None:
        p.add_argument("store", help="the campaign's store")
        p.add_argument(
            "--timeout",
            type=float,
            default=10.0,
            help="seconds to wait for the campaign to acknowledge (default 10)",
        )
        p.add_argument("--who", help="your name (default $SDL_OPERATOR or your login)")

    control = sub.add_parser("control", help="pause, resume, stop or abort a running campaign")
    actions = control.add_subparsers(dest="action", required=True)
    for action, text in helps.items():
        p = actions.add_parser(action, help=text)
        options(p)
        p.set_defaults(func=_cmd_control, action=action)
    # shortcuts: `sdl pause STORE` ...; `sdl resume` already means "continue a campaign from its
    # store" (sdl.cli._run), so a paused campaign is resumed with `sdl control resume STORE`.
    for action in ("pause", "stop", "abort"):
        if action not in sub.choices:
            p = sub.add_parser(action, help=f"{helps[action]} (= sdl control {action})")
            options(p)
            p.set_defaults(func=_cmd_control, action=action)
