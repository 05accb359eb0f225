"""Operator commands: ``sdl dashboard``, ``sdl report``, ``sdl control pause|resume|stop|abort``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

__all__ = [
    "add_allow_import_option",
    "add_commands",
    "add_control_token_option",
    "control_token_from",
]

EXIT_OK, EXIT_FAILED = 0, 1


def add_allow_import_option(parser: argparse.ArgumentParser) -> None:
    """``--allow-import``: let 'module:attribute' paths in the configuration be imported."""
    parser.add_argument(
        "--allow-import",
        action="store_true",
        help="import 'module:attribute' paths in the configuration (device types, planner, "
        "protocol, objective functions): they run code, so only for a file you trust as code",
    )


def add_control_token_option(parser: argparse.ArgumentParser, *, campaign: bool = False) -> None:
    """``--control-token-file PATH``; without it the token comes from ``$SDL_CONTROL_TOKEN``."""
    what = (
        "accept only control requests signed with the token in this file"
        if campaign
        else "sign control requests with the token in this file"
    )
    parser.add_argument(
        "--control-token-file",
        metavar="PATH",
        help=f"{what} (default: $SDL_CONTROL_TOKEN; never give the token itself on the "
        "command line, where every local user can read it)",
    )


def control_token_from(args: argparse.Namespace) -> str | None:
    """The control token of a command: ``--control-token-file``, else ``$SDL_CONTROL_TOKEN``."""
    from sdl.control import read_control_token

    return read_control_token(getattr(args, "control_token_file", None))


def _cmd_control(args: argparse.Namespace) -> int:
    from sdl.control import ControlChannel
    from sdl.errors import StoreError

    if not os.path.isdir(args.store):
        raise StoreError(
            f"no campaign store at {args.store}: give the store the campaign writes to"
        )
    channel = ControlChannel(args.store, token=control_token_from(args))
    return send_request(channel, args, args.action, args.action, "is the campaign running?")


def send_request(
    channel: Any,
    args: argparse.Namespace,
    action: str,
    what: str,
    hint: str,
    *,
    refusal_to_stderr: bool = False,
    **request_args: Any,
) -> int:
    """Send a control request, wait ``args.timeout`` for its answer and print it; withdraw
    it if none came. Returns the exit status (0 accepted, 1 refused or no answer).

    Args:
        what: how the messages name the request; hint: what to check when none answers.
    """
    rid = channel.request(action, args.who, expires_in=args.timeout, **request_args)
    ack = channel.wait(rid, timeout=args.timeout)
    if ack is None and channel.withdraw(rid):
        state = channel.state().get("state")
        last = f" (its last published state: {state})" if state else ""
        print(
            f"sdl: {what}: no answer from the campaign at {args.store} within "
            f"{args.timeout:g} s: {hint}{last} The request was withdrawn.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    ack = ack or channel.response(rid)
    if ack is None:  # answered and withdrawn at once: read it once more
        print(f"sdl: {what}: the answer could not be read", file=sys.stderr)
        return EXIT_FAILED
    out = sys.stderr if refusal_to_stderr and not ack.ok else sys.stdout
    print(f"sdl: {what}: {ack.result}", file=out)
    return EXIT_OK if ack.ok else EXIT_FAILED


def _cmd_report(args: argparse.Namespace) -> int:
    from sdl.report import write_report

    index = write_report(args.store, args.out)
    print(f"sdl: report written to {index}")
    return EXIT_OK


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from sdl.dashboard import make_server

    if args.control_token:
        print(
            "sdl: warning: --control-token is deprecated: every local user can read it in the "
            "process list; put the token in $SDL_CONTROL_TOKEN or a file (--control-token-file)",
            file=sys.stderr,
        )
    token = args.control_token or control_token_from(args)
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
        help="deprecated (visible to every local user in the process list): use "
        "$SDL_CONTROL_TOKEN or --control-token-file",
    )
    add_control_token_option(dash)
    dash.epilog = (
        "With a control token (from $SDL_CONTROL_TOKEN or --control-token-file) the page "
        "controls the campaign: every action must give the token, and requests are signed "
        "with it. Without one the page is read-only."
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
        add_control_token_option(p)

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
