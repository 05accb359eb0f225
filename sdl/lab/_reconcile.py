"""Where a lab's experiments stood when the campaign's process died, from its ``steps`` stream.

A campaign resumed on a backend whose stations outlived it (the queue server's RE
Managers) does not re-run such an experiment from its first step: the coordinator takes
it up where it was (:meth:`~sdl.lab._coordinator._LabLoop` and
``QServerBackend.reconcile``). This module reads, for each experiment the crash left
running, the steps it finished (stations, runs, readings) and the step it had started
and not seen end (station, lane, resources, correlation uid).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["InFlight", "in_flight"]


@dataclass(frozen=True)
class InFlight:
    """An experiment in flight when its campaign's process died.

    Attributes:
        experiment_id: the experiment.
        index: the step it is at (the open step, or the next one if none is open).
        history: step name -> station, of the steps it finished.
        run_uids: the runs of the steps it finished.
        readings: data key -> last value read by the steps it finished.
        station, lane, resources, correlation: the step it had started and whose end is
            not recorded ("" / -1 / () / "" if none).
    """

    experiment_id: int
    index: int
    history: Mapping[str, str] = field(default_factory=dict)
    run_uids: tuple[str, ...] = ()
    readings: Mapping[str, Any] = field(default_factory=dict)
    station: str = ""
    lane: int = -1
    resources: tuple[str, ...] = ()
    correlation: str = ""

    @property
    def open(self) -> bool:
        """A step was started and its end is not recorded."""
        return bool(self.correlation)


def in_flight(store: Any, experiment_ids: Iterable[int]) -> dict[int, InFlight]:
    """experiment id -> :class:`InFlight`, for those of ``experiment_ids`` that the
    ``steps`` stream of ``store`` shows in flight (none of their steps failed or was
    cancelled). Experiments with no step record, or from stores written before steps had
    correlation uids, are left out (they are re-run from their first step)."""
    steps = store.steps()
    out: dict[int, InFlight] = {}
    if steps.empty:
        return out
    for exp_id in experiment_ids:
        mine = steps[steps["experiment_id"] == int(exp_id)]
        if mine.empty:
            continue
        index, history, runs, started = 0, {}, [], None
        usable = True
        for row in mine.itertuples(index=False):
            if row.status == "queued":
                index, started = int(row.index), None
            elif row.status == "started":
                index, started = int(row.index), row
            elif row.status == "done":
                history[row.step] = row.station
                runs.extend(row.run_uids)
                index, started = int(row.index) + 1, None
            elif row.status in ("failed", "cancelled"):
                usable = False
        if not usable or (started is not None and not started.correlation):
            continue
        out[int(exp_id)] = InFlight(
            experiment_id=int(exp_id),
            index=index,
            history=history,
            run_uids=tuple(runs),
            readings=_readings(store, runs),
            station="" if started is None else str(started.station),
            lane=-1 if started is None else int(started.lane),
            resources=() if started is None else tuple(started.resources),
            correlation="" if started is None else str(started.correlation),
        )
    return out


def _readings(store: Any, run_uids: Iterable[str]) -> dict[str, Any]:
    """data key -> its last value in the runs (as a step's readings were collected)."""
    out: dict[str, Any] = {}
    for uid in run_uids:
        run = store.run(uid)
        for stream in run.streams:
            data = run.data(stream)
            order = np.argsort(data["seq_num"], kind="stable")
            for key, values in data.items():
                if key not in ("time", "seq_num") and len(values):
                    value = values[order[-1]]
                    out[key] = (
                        value.item() if hasattr(value, "item") and not np.ndim(value) else value
                    )
    return out
