"""``sdl lab export-qserver|up|status|down``: a lab's stations as bluesky-queueserver RE
Managers on this machine (docs/distributed.md)."""

from __future__ import annotations

import argparse

__all__ = ["add_commands"]


def _cmd_lab(args: argparse.Namespace) -> int:
    from sdl.lab import LabServers, export_qserver
    from sdl.lab._qserver_servers import read_state

    if args.lab_action == "export-qserver":
        out = export_qserver(args.file, args.dir)
        print(f"wrote the RE workers' startup folders and permissions into {out}")
        return 0
    if args.lab_action == "up":
        servers = LabServers.start(args.file, args.dir, redis=args.redis)
        print(f"lab services up; state in {servers.directory}/state.json")
        print(f"  redis {servers.redis}, 0MQ proxy {servers.proxy_in} -> {servers.proxy_out}")
        for station, addresses in servers.managers.items():
            print(f"  {station}: {', '.join(addresses)}")
        print(f"run a campaign on them: sdl run {args.file} --lab-services {servers.directory}")
        return 0
    servers = read_state(args.dir)
    if args.lab_action == "status":
        status = servers.status()
        for name, state in status.items():
            print(f"{name}: {state}")
        bad = [n for n, s in status.items() if s in ("gone", "no answer")]
        return 1 if bad else 0
    servers.stop()
    print(f"lab services in {args.dir} stopped")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``lab export-qserver FILE DIR``, ``lab up FILE DIR``, ``lab status DIR``
    and ``lab down DIR``."""
    lab = sub.add_parser(
        "lab", help="run a lab's stations as bluesky-queueserver RE Managers on this machine"
    )
    actions = lab.add_subparsers(dest="lab_action", required=True)
    export = actions.add_parser(
        "export-qserver", help="write the RE workers' startup folders and permissions"
    )
    export.add_argument("file", help="lab campaign YAML (lab: and workflow:)")
    export.add_argument("dir", help="folder to write")
    up = actions.add_parser(
        "up", help="start Redis, the 0MQ proxy and one RE Manager per station lane"
    )
    up.add_argument("file", help="lab campaign YAML (lab: and workflow:)")
    up.add_argument("dir", help="folder for the startup folders, logs and state.json")
    up.add_argument("--redis", metavar="HOST:PORT", help="use this Redis instead of starting one")
    for name, text in (("status", "what each service does"), ("down", "stop the services")):
        p = actions.add_parser(name, help=text)
        p.add_argument("dir", help="the folder given to 'sdl lab up'")
    lab.set_defaults(func=_cmd_lab)
