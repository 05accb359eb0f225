"""The campaign run's own streams: what the loop records, as bluesky events.

The loop plan never writes to the store. It records what it decides by reading small
``Readable`` objects in streams of the campaign run:

* ``experiments`` -- every experiment life-cycle transition (:class:`Ledger`); the store
  writer turns these into the campaign table, durably, before the plan's next message
  (the RunEngine hands every event to its subscribers before it answers ``save``);
* ``planner`` -- every ask: how long it took, what it proposed, the planner's state;
* ``approvals`` -- every operator decision on a proposed batch.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

from bluesky.utils import IllegalMessageSequence, Msg

from sdl.planners import Categorical, Integer, Objective, Space

from ._lifecycle import Experiment
from .store._layout import measurement_key, objective_key, param_key

__all__ = [
    "APPROVAL_STREAM",
    "LEDGER_STREAM",
    "PLANNER_STREAM",
    "ApprovalLog",
    "Ledger",
    "PlannerLog",
]

LEDGER_STREAM = "experiments"
PLANNER_STREAM = "planner"
APPROVAL_STREAM = "approvals"

_DTYPES = {
    "integer": "<i8",
    "number": "<f8",
    "string": "<U4096",
}


class _Record:
    """A ``bluesky.protocols.Readable`` with fixed data keys whose reading the plan sets.

    Args:
        name: device name.
        stream: the event stream its readings go to.
        schema: data key -> event-model dtype (``"integer"``, ``"number"``, ``"string"``).
    """

    def __init__(self, name: str, stream: str, schema: Mapping[str, str]):
        self.name = name
        self.parent = None
        self.stream = stream
        self._schema = dict(schema)
        self._reading: dict[str, dict[str, Any]] = {}
        #: the values of the last :meth:`emit` that an exception cut (None: it completed).
        #: Cut at its ``save``, the event may have been written or not: the RunEngine can
        #: throw a stop in at a message it has carried out (a pause lands between the two).
        self.cut: dict[str, Any] | None = None

    def describe(self) -> dict[str, dict[str, Any]]:
        return {
            key: {
                "source": f"sdl:{self.stream}",
                "dtype": dtype,
                "shape": [],
                "dtype_numpy": _DTYPES[dtype],
            }
            for key, dtype in self._schema.items()
        }

    def read(self) -> dict[str, dict[str, Any]]:
        return dict(self._reading)

    def emit(self, values: Mapping[str, Any]):
        """Plan: one event in this record's stream holding ``values``."""
        now = time.time()
        self._reading = {k: {"value": values[k], "timestamp": now} for k in self._schema}
        self.cut = None
        # bare messages, not plan stubs: a stub formats the whole call stack when it is
        # created (bluesky.utils.Plan), and this runs several times per experiment deep
        # inside the campaign's wrappers (benchmarks/loop_overhead.py)
        try:
            yield Msg("create", name=self.stream)
            yield Msg("read", self)
        except GeneratorExit:
            raise
        except BaseException as err:
            self.cut = dict(values)
            # a stop or an abort thrown in mid-bundle (the RunEngine paused at the create or
            # the read): close the bundle, so the caller can still record what the stop cut
            try:
                yield Msg("drop")
            except IllegalMessageSequence:  # the pause came before the create opened it
                pass
            raise err
        try:
            yield Msg("save")
        except GeneratorExit:
            raise
        except BaseException:
            self.cut = dict(values)  # written or not: see ``cut``
            raise


class Ledger(_Record):
    """Experiment transitions (``experiments`` stream); see :mod:`sdl._lifecycle`."""

    def __init__(
        self,
        space: Space,
        objectives: tuple[Objective, ...],
        measurements: tuple[Objective, ...] = (),
        name: str = "ledger",
    ):
        schema = {
            "experiment_id": "integer",
            "batch": "integer",
            "status": "string",
            "run_uid": "string",
            "cause": "string",
            "failure_kind": "string",
            "rerun_of": "integer",
        }
        for p in space:
            kind = (
                "string"
                if isinstance(p, Categorical)
                else "integer"
                if isinstance(p, Integer)
                else "number"
            )
            schema[param_key(p.name)] = kind
        for o in objectives:
            schema[objective_key(o.name)] = "number"
        for m in measurements:
            schema[measurement_key(m.name)] = "number"
        super().__init__(name, LEDGER_STREAM, schema)
        self.space = space
        self.objectives = objectives
        self.measurements = measurements

    def record(self, exp: Experiment):
        """Plan: emit ``exp``'s current state."""
        values: dict[str, Any] = {
            "experiment_id": exp.id,
            "batch": exp.batch,
            "status": exp.status.value,
            "run_uid": exp.run_uid,
            "cause": exp.cause,
            "failure_kind": exp.failure_kind,
            "rerun_of": exp.rerun_of,
        }
        for p in self.space:
            v = exp.point[p.name]
            values[param_key(p.name)] = (
                str(v)
                if isinstance(p, Categorical)
                else int(v)
                if isinstance(p, Integer)
                else float(v)
            )
        for o in self.objectives:
            values[objective_key(o.name)] = float(exp.objectives.get(o.name, math.nan))
        for m in self.measurements:
            values[measurement_key(m.name)] = float(exp.objectives.get(m.name, math.nan))
        yield from self.emit(values)


class PlannerLog(_Record):
    """One event per ask (``planner`` stream): ``batch``, ``n_asks``, ``n_observations``,
    ``ask_seconds``, ``planner``, ``proposals`` and ``state`` (JSON text)."""

    def __init__(self, name: str = "planner_log"):
        super().__init__(
            name,
            PLANNER_STREAM,
            {
                "batch": "integer",
                "n_asks": "integer",
                "n_observations": "integer",
                "ask_seconds": "number",
                "planner": "string",
                "proposals": "string",
                "state": "string",
            },
        )

    def record(
        self, planner: Any, batch: int, points: list[dict[str, Any]], seconds: float, known: int
    ):
        """Plan: describe the ask that proposed ``points`` (``known``: observations it had)."""
        describe = getattr(planner, "describe_state", None)
        try:
            state = describe() if callable(describe) else {}
        except Exception as err:  # provenance must never stop the campaign
            state = {"error": f"{type(err).__name__}: {err}"}
        yield from self.emit(
            {
                "batch": int(batch),
                "n_asks": int(planner.n_asks),
                "n_observations": int(known),
                "ask_seconds": float(seconds),
                "planner": str(planner.name),
                "proposals": json.dumps(points, default=str),
                "state": json.dumps(state, default=str),
            }
        )


class ApprovalLog(_Record):
    """One event per operator decision (``approvals`` stream): ``batch``, ``who``,
    ``decided_at`` (epoch seconds) and ``decision`` (JSON: accepted, rejected, edited, added)."""

    def __init__(self, name: str = "approval_log"):
        super().__init__(
            name,
            APPROVAL_STREAM,
            {
                "batch": "integer",
                "who": "string",
                "decided_at": "number",
                "decision": "string",
            },
        )

    def record(self, batch: int, decision: Any):
        """Plan: record an ``ApprovalDecision``-like object."""
        payload = {
            "accepted": list(decision.accepted),
            "rejected": list(decision.rejected),
            "edited": [list(pair) for pair in getattr(decision, "edited", [])],
            "added": list(decision.added),
        }
        yield from self.emit(
            {
                "batch": int(batch),
                "who": str(decision.who),
                "decided_at": float(decision.time),
                "decision": json.dumps(payload, default=str),
            }
        )
