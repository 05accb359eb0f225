"""Give a single-run callback (BestEffortCallback, LiveTable, ...) only the experiments.

A campaign is two levels of bluesky runs: the campaign run stays open while each
experiment opens and closes its own run inside it. Callbacks written for one run at a time,
like bluesky's ``BestEffortCallback``, get confused by the interleaved documents (a screen
of suppressed ``KeyError`` tracebacks). The experiments' runs never overlap one another, so
passing only their documents gives such a callback what it expects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["experiment_runs"]


class experiment_runs:  # noqa: N801 - used like a function: RE.subscribe(experiment_runs(bec))
    """Wrap ``callback`` so it sees only the documents of the experiments' runs.

    Example:
        >>> RE.subscribe(sdl.experiment_runs(BestEffortCallback()))  # doctest: +SKIP
    """

    def __init__(self, callback: Callable[[str, dict], Any]):
        self.callback = callback
        self._runs: set[str] = set()
        self._descriptors: set[str] = set()
        self._resources: set[str] = set()

    def __call__(self, name: str, doc: dict) -> Any:
        if name == "start":
            keep = "sdl_experiment_id" in doc
            if keep:
                self._runs.add(doc["uid"])
        elif name in ("descriptor", "stop", "resource", "stream_resource"):
            keep = doc.get("run_start") in self._runs
            if keep and name == "descriptor":
                self._descriptors.add(doc["uid"])
            elif keep and name != "stop":
                self._resources.add(doc["uid"])
        elif name in ("event", "event_page"):
            keep = doc.get("descriptor") in self._descriptors
        elif name in ("datum", "datum_page", "stream_datum"):
            keep = (doc.get("resource") or doc.get("stream_resource")) in self._resources
        else:
            keep = False
        if not keep:
            return None
        if name == "stop":
            self._runs.discard(doc["run_start"])
        return self.callback(name, doc)
