"""The life cycle of one experiment, written down in one place.

::

    planned ──► running ──► done
       │           ├──────► failed       (device error, NaN, missing data; cause recorded)
       │           └──────► interrupted  (the campaign stopped or crashed mid-experiment)
       ├──────────────────► failed       (refused before it ran, e.g. outside limits)
       ├──────────────────► rejected     (an operator rejected the proposal; never ran)
       └──────────────────► interrupted

Every transition is written to the store durably before the next step starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

__all__ = ["Status", "Experiment", "TRANSITIONS", "IllegalTransition", "budget_spent"]


class Status(str, Enum):
    """Where an experiment is in its life cycle."""

    PLANNED = "planned"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    REJECTED = "rejected"

    @property
    def final(self) -> bool:
        return self in (Status.DONE, Status.FAILED, Status.INTERRUPTED, Status.REJECTED)


TRANSITIONS: dict[Status | None, frozenset[Status]] = {
    None: frozenset({Status.PLANNED}),
    Status.PLANNED: frozenset({Status.RUNNING, Status.FAILED, Status.INTERRUPTED, Status.REJECTED}),
    Status.RUNNING: frozenset({Status.DONE, Status.FAILED, Status.INTERRUPTED}),
    Status.DONE: frozenset(),
    Status.FAILED: frozenset(),
    Status.INTERRUPTED: frozenset(),
    Status.REJECTED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A transition that the life cycle does not allow (a bug in the caller)."""


@dataclass(frozen=True)
class Experiment:
    """One experiment of a campaign.

    Attributes:
        id: index of the experiment in the campaign, from 0.
        batch: index of the planner ask that proposed it.
        point: parameter name -> value.
        status: life-cycle state.
        run_uid: uid of the bluesky run that measured it ("" before it ran).
        cause: why it failed or was interrupted ("" otherwise).
        objectives: objective (and measured quantity) name -> value (empty unless done).
        failure_kind: for a failed experiment, whose fault it was: ``"instrument"`` (a
            disconnect, timeout or device error: not the point's fault) or ``"sample"``
            (a NaN or out-of-range outcome, a protocol's own verdict: told to the
            planner as infeasible); "" otherwise. See :mod:`sdl._failures`.
        rerun_of: id of the experiment whose point this one measures again (an
            interrupted one, or one failed by its instrument); -1 for a new point.
    """

    id: int
    batch: int
    point: dict[str, Any]
    status: Status = Status.PLANNED
    run_uid: str = ""
    cause: str = ""
    objectives: dict[str, float] = field(default_factory=dict)
    failure_kind: str = ""
    rerun_of: int = -1

    @property
    def chain(self) -> int:
        """Id of the first experiment of this point's chain of measurements (see
        ``rerun_of``): this experiment's own id unless it re-runs another."""
        return self.rerun_of if self.rerun_of >= 0 else self.id

    def advance(self, status: Status, **changes: Any) -> Experiment:
        """Return a copy in ``status``; raise :class:`IllegalTransition` if not allowed."""
        if status not in TRANSITIONS[self.status]:
            raise IllegalTransition(
                f"experiment {self.id}: {self.status.value} -> {status.value} is not allowed"
            )
        return replace(self, status=status, **changes)


def budget_spent(table: Any) -> int:
    """Experiments of a campaign table (``store.to_dataframe()``) that count against its
    budget: done and failed ones, except a failure whose point was measured again (an
    instrument failure re-run, named by a later experiment's ``rerun_of``)."""
    if len(table) == 0:
        return 0
    status = table["status"]
    rerun = table.index.isin(table["rerun_of"]) if "rerun_of" in table else False
    return int((status == "done").sum() + ((status == "failed") & ~rerun).sum())
