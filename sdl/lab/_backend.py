"""Where a step's plan runs: the one small interface between the coordinator and engines.

The coordinator never touches a RunEngine of a station. It hands a :class:`StepRequest`
to a :class:`StepBackend`, gets a ``concurrent.futures.Future`` back, and learns from
it, as a :class:`StepOutcome`, when and how the step ended. The in-process backend
(:class:`~sdl.lab.InProcessBackend`: a RunEngine per station lane in this process) is the
first; a distributed one (a queue server per station) and a simulated-time one (the
digital twin) implement the same four methods.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ._model import Step, StepContext

__all__ = ["StepBackend", "StepOutcome", "StepRequest"]


@dataclass(frozen=True)
class StepRequest:
    """One step of one experiment, ready to run where its lease says.

    Attributes:
        step: the workflow's step (its name and plan).
        point: the experiment's parameters.
        context: where it runs (station, lane, devices, history).
        md: metadata for the runs it opens (campaign uid, experiment id, step, station).
    """

    step: Step
    point: Mapping[str, Any]
    context: StepContext
    md: Mapping[str, Any]


@dataclass
class StepOutcome:
    """How a step ended.

    Attributes:
        error: the exception that failed it (None: it succeeded).
        readings: data key -> last value it read.
        run_uids: the runs it opened.
        started: when it started (epoch seconds).
        finished: when it ended (epoch seconds).
        cancelled: it was cancelled (:meth:`StepBackend.cancel`) before it ended.
    """

    error: BaseException | None = None
    readings: dict[str, Any] = field(default_factory=dict)
    run_uids: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled


@runtime_checkable
class StepBackend(Protocol):
    """Runs step plans on a lab's stations."""

    def open(self, subscribers: Sequence[Callable[[str, dict], Any]]) -> None:
        """Start the engines; every document they emit goes to ``subscribers``
        (the store writer first). Called once, before the first :meth:`submit`."""

    def submit(self, request: StepRequest) -> Future[StepOutcome]:
        """Start the step on ``request.context``'s station and lane; return at once.

        The future always ends with a :class:`StepOutcome` (a failed step is an outcome
        with its ``error``, not an exception of the future)."""

    def cancel(self, station: str, lane: int, reason: str = "") -> None:
        """Abort what runs on that lane now (its future then ends, ``cancelled``)."""

    def close(self) -> None:
        """Stop the engines (after cancelling what still runs)."""

    # A backend whose stations outlive the campaign's process (a queue server's managers)
    # also has ``reconcile(request) -> Future[StepOutcome] | None``: for a step recorded
    # as started before a crash (``request.md["sdl_correlation"]`` names it), the future
    # of its outcome where its station ran it or still runs it, or None where it never
    # started (the coordinator then submits it again). See ``docs/distributed.md``.
