"""The in-process backend: a bluesky RunEngine per station lane, in the campaign's process.

Each lane (a station of capacity 3 has 3) has its own RunEngine, with its own event loop
thread, and one thread that calls it (``RE(plan)`` blocks its caller). Every RunEngine
sends its documents to the same subscribers; the store writer serializes them under its
lock, so the one store receives the runs of every station, interleaved as they happen.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from bluesky import RunEngine
from bluesky.run_engine import DuringTask

from sdl.protocols import Capture, capture

from ._backend import StepOutcome, StepRequest
from ._model import Lab

__all__ = ["InProcessBackend"]

logger = logging.getLogger(__name__)


class _Lane:
    def __init__(self, station: str, lane: int, subscribers: Sequence[Callable[[str, dict], Any]]):
        self.name = f"{station}[{lane}]"
        # DuringTask: just wait (the default one drives Qt from the main thread)
        self.RE = RunEngine({}, context_managers=[], during_task=DuringTask())
        self.tokens = [self.RE.subscribe(cb) for cb in subscribers]
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sdl-{self.name}")
        self.busy = threading.Event()
        self.cancelled = False

    def run(self, request: StepRequest) -> StepOutcome:
        sink = Capture()
        self.cancelled = False
        self.busy.set()
        started = time.time()
        error: BaseException | None = None
        try:
            plan = request.step.plan(dict(request.point), request.context, md=dict(request.md))
            self.RE(capture(plan, sink, md=request.md))
        except BaseException as err:  # noqa: BLE001 - an outcome, not a crash of the lane
            error = err
        finally:
            self.busy.clear()
        cancelled = self.cancelled
        if cancelled and error is None:
            error = RuntimeError("cancelled")
        return StepOutcome(
            error=error,
            readings=dict(sink.readings),
            run_uids=list(sink.run_uids),
            started=started,
            finished=time.time(),
            cancelled=cancelled,
        )

    def cancel(self, reason: str) -> None:
        if not self.busy.is_set():
            return
        self.cancelled = True
        try:
            if self.RE.state != "idle":
                self.RE.abort(reason)
        except Exception as err:  # already idle, or ended meanwhile
            logger.debug("cancel %s: %s", self.name, err)

    def close(self) -> None:
        for token in self.tokens:
            self.RE.unsubscribe(token)
        self.pool.shutdown(wait=True)
        loop = self.RE.loop
        loop.call_soon_threadsafe(loop.stop)


class InProcessBackend:
    """Runs each station's steps on its own RunEngines in this process.

    Args:
        lab: the lab (a RunEngine per lane of each station).
    """

    def __init__(self, lab: Lab):
        self.lab = lab
        self._lanes: dict[tuple[str, int], _Lane] = {}
        self._open = False

    def open(self, subscribers: Sequence[Callable[[str, dict], Any]]) -> None:
        if self._open:
            raise RuntimeError("backend already open")
        for station in self.lab.stations.values():
            for lane in range(station.capacity):
                self._lanes[(station.name, lane)] = _Lane(station.name, lane, subscribers)
        self._open = True

    def submit(self, request: StepRequest) -> Future[StepOutcome]:
        ctx = request.context
        lane = self._lanes.get((ctx.station, ctx.lane))
        if lane is None:
            raise KeyError(f"no lane {ctx.lane} at station {ctx.station!r}")
        return lane.pool.submit(lane.run, request)

    def cancel(self, station: str, lane: int, reason: str = "") -> None:
        item = self._lanes.get((station, lane))
        if item is not None:
            item.cancel(reason or "cancelled by the campaign")

    def close(self) -> None:
        for (_station, _lane), item in self._lanes.items():
            item.cancel("campaign closed")
        for item in self._lanes.values():
            item.close()
        self._lanes.clear()
        self._open = False
