"""The campaign's ledger: experiment transitions as bluesky events.

The loop plan never writes to the store. It records each experiment transition by
reading this small ``Readable`` in the campaign run's ``experiments`` stream; the store
writer (a RunEngine subscriber) turns those events into the campaign table. So the
table is durable before the plan's next message, because the RunEngine hands every
event to its subscribers before it answers the ``save`` message.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import bluesky.plan_stubs as bps

from sdl.planners import Categorical, Integer, Objective, Space

from ._lifecycle import Experiment
from .store._layout import objective_key, param_key

__all__ = ["Ledger", "LEDGER_STREAM", "PlannerLog", "PLANNER_STREAM"]

LEDGER_STREAM = "experiments"


class Ledger:
    """A ``bluesky.protocols.Readable`` whose reading is the latest experiment transition.

    Args:
        space: the campaign's parameters.
        objectives: the campaign's objectives.
        name: device name (prefix of nothing: data keys are fixed, see :func:`param_key`).
    """

    def __init__(self, space: Space, objectives: tuple[Objective, ...], name: str = "ledger"):
        self.name = name
        self.parent = None
        self.space = space
        self.objectives = objectives
        self._reading: dict[str, dict[str, Any]] = {}

    def describe(self) -> dict[str, dict[str, Any]]:
        def key(dtype: str, dtype_numpy: str) -> dict[str, Any]:
            return {"source": "sdl:ledger", "dtype": dtype, "shape": [], "dtype_numpy": dtype_numpy}

        desc = {
            "experiment_id": key("integer", "<i8"),
            "batch": key("integer", "<i8"),
            "status": key("string", "<U16"),
            "run_uid": key("string", "<U36"),
            "cause": key("string", "<U256"),
        }
        for p in self.space:
            if isinstance(p, Categorical):
                desc[param_key(p.name)] = key("string", "<U64")
            elif isinstance(p, Integer):
                desc[param_key(p.name)] = key("integer", "<i8")
            else:
                desc[param_key(p.name)] = key("number", "<f8")
        for o in self.objectives:
            desc[objective_key(o.name)] = key("number", "<f8")
        return desc

    def read(self) -> dict[str, dict[str, Any]]:
        return dict(self._reading)

    def record(self, exp: Experiment):
        """Plan: emit one ``experiments`` event holding ``exp``'s current state."""
        now = time.time()
        values: dict[str, Any] = {
            "experiment_id": exp.id,
            "batch": exp.batch,
            "status": exp.status.value,
            "run_uid": exp.run_uid,
            "cause": exp.cause,
        }
        for p in self.space:
            v = exp.point[p.name]
            if isinstance(p, Categorical):
                v = str(v)
            elif isinstance(p, Integer):
                v = int(v)
            else:
                v = float(v)
            values[param_key(p.name)] = v
        for o in self.objectives:
            values[objective_key(o.name)] = float(exp.objectives.get(o.name, math.nan))
        self._reading = {k: {"value": v, "timestamp": now} for k, v in values.items()}
        yield from bps.create(LEDGER_STREAM)
        yield from bps.read(self)
        yield from bps.save()


PLANNER_STREAM = "planner"


class PlannerLog:
    """A ``Readable`` whose reading describes the planner's latest ask (``planner`` stream).

    Data keys: ``batch``, ``n_asks`` (asks made, this one included), ``n_observations``
    (experiments told before this ask), ``ask_seconds``, ``planner`` (name), ``proposals``
    and ``state`` (JSON text; ``state`` is the planner's ``describe_state()`` if it has one).
    """

    def __init__(self, name: str = "planner_log"):
        self.name = name
        self.parent = None
        self._reading: dict[str, dict[str, Any]] = {}

    def describe(self) -> dict[str, dict[str, Any]]:
        def key(dtype: str, dtype_numpy: str) -> dict[str, Any]:
            return {"source": "sdl:planner", "dtype": dtype, "shape": [], "dtype_numpy": dtype_numpy}

        return {
            "batch": key("integer", "<i8"),
            "n_asks": key("integer", "<i8"),
            "n_observations": key("integer", "<i8"),
            "ask_seconds": key("number", "<f8"),
            "planner": key("string", "<U64"),
            "proposals": key("string", "<U4096"),
            "state": key("string", "<U4096"),
        }

    def read(self) -> dict[str, dict[str, Any]]:
        return dict(self._reading)

    def record(self, planner: Any, batch: int, points: list[dict[str, Any]], seconds: float):
        """Plan: emit one ``planner`` event describing the ask that proposed ``points``."""
        describe = getattr(planner, "describe_state", None)
        try:
            state = describe() if callable(describe) else {}
        except Exception as err:  # provenance must never stop the campaign
            state = {"error": f"{type(err).__name__}: {err}"}
        values = {
            "batch": int(batch),
            "n_asks": int(planner.n_asks),
            "n_observations": len(planner.observations),
            "ask_seconds": float(seconds),
            "planner": str(planner.name),
            "proposals": json.dumps(points, default=str),
            "state": json.dumps(state, default=str),
        }
        now = time.time()
        self._reading = {k: {"value": v, "timestamp": now} for k, v in values.items()}
        yield from bps.create(PLANNER_STREAM)
        yield from bps.read(self)
        yield from bps.save()
