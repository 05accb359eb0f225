"""Operators' station requests for a lab campaign: take a station out of service, or back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["take_station_requests"]


def take_station_requests(watcher: Any, stations: Sequence[str]) -> list[tuple[str, bool, str]]:
    """The ``station`` requests waiting now, as ``(station, enable, who)``; does not wait.

    A request naming no station of the lab, or without a boolean ``enable``, is refused
    (and answered so); the others are answered at once: the coordinator applies them
    before it starts another step.
    """
    out = []
    for req in watcher.take(["station"], timeout=0.0):
        name, enable = req.args.get("name"), req.args.get("enable")
        if name not in stations:
            watcher.acknowledge(
                req,
                f"no station {name!r} in this lab; its stations: {', '.join(stations)}",
                ok=False,
            )
            continue
        if not isinstance(enable, bool):
            watcher.acknowledge(req, f"enable must be true or false, got {enable!r}", ok=False)
            continue
        what = "back in service" if enable else "out of service: no new steps start there"
        watcher.acknowledge(req, f"station {name} {what}")
        out.append((name, enable, req.who))
    return out
