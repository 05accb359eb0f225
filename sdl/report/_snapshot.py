"""One consistent look at a campaign, read from its store and its control channel.

Used by the dashboard (every poll) and by reports. The store may be being written by
another process: every read is allowed to fail, and the snapshot then says why.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sdl._lifecycle import budget_spent
from sdl.control import ControlChannel

__all__ = ["Snapshot", "read_snapshot", "STALE_AFTER"]

#: Seconds without a heartbeat after which a "running" campaign is called unresponsive.
STALE_AFTER = 30.0

_LIVE_STATES = ("pausing", "paused", "waiting-approval", "stopping")


@dataclass(frozen=True)
class Snapshot:
    """A campaign as read at one moment.

    Attributes:
        path: the store.
        status: ``not started``, ``running``, ``pausing``, ``paused``, ``waiting-approval``,
            ``stopping``, ``finished``, ``stopped``, ``aborted``, ``failed`` or ``unreadable``.
        detail: a sentence for people (why failed, who paused, a read error).
        campaign: the campaign's description (parameters, objectives, budget, ...).
        table: the experiment table (``CampaignStore.to_dataframe()``).
        counts: experiments per status.
        budget: the campaign's budget (0 if unknown).
        control: the control channel's published state.
        proposals: points the planner proposed that have not run yet (planned/running
            rows, or the batch awaiting approval).
        error: the read error, if the store could not be read.
        time: when this was read (seconds since the epoch).
        stations: a lab campaign's stations (:func:`sdl.store.station_overview`: what
            each does now, its utilization and idle time by cause); empty otherwise.
        intervals: a lab campaign's steps that started
            (``CampaignStore.step_intervals``); empty otherwise.
    """

    path: Path
    status: str
    detail: str = ""
    campaign: dict[str, Any] = field(default_factory=dict)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    counts: dict[str, int] = field(default_factory=dict)
    budget: int = 0
    control: dict[str, Any] = field(default_factory=dict)
    proposals: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    time: float = 0.0
    stations: pd.DataFrame = field(default_factory=pd.DataFrame)
    intervals: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def is_lab(self) -> bool:
        """Whether the campaign runs a lab (several stations, a workflow of steps)."""
        return bool(self.campaign.get("lab"))

    def station_rows(self) -> list[dict[str, Any]]:
        """The stations as JSON-able rows (``station``, ``now``, ``in_service``,
        ``steps_done``, ``steps_failed``, ``utilization``, ``busy_s``, ``wall_s``,
        ``idle_s`` and the idle causes); empty without a lab."""
        return [
            {"station": str(name), **{k: _plain(v) for k, v in row.items()}}
            for name, row in self.stations.iterrows()
        ]

    @property
    def parameter_names(self) -> list[str]:
        return [p["name"] for p in self.campaign.get("parameters", [])]

    @property
    def objectives(self) -> list[dict[str, Any]]:
        return list(self.campaign.get("objectives", []))

    @property
    def n_finished(self) -> int:
        """Experiments that count against the budget (done + failed, less re-run failures)."""
        return budget_spent(self.table)

    def best(self) -> tuple[int, dict[str, Any]] | None:
        """(experiment id, row) of the best done experiment for the first objective."""
        if not self.objectives or self.table.empty:
            return None
        first = self.objectives[0]
        done = self.table[self.table["status"] == "done"]
        values = pd.to_numeric(done.get(first["name"]), errors="coerce")
        if values is None or not np.isfinite(values).any():
            return None
        eid = values.idxmin() if first.get("goal", "minimize") == "minimize" else values.idxmax()
        return int(eid), done.loc[eid].to_dict()


def _status_from_store(
    store: Any, spent: int, budget: int, control: dict[str, Any]
) -> tuple[str, str]:
    runs = store.campaign_runs
    if not runs:
        return "not started", "the store has no campaign run yet"
    try:
        run = store.run(runs[-1])
        stop = run.stop
        start_time = float(run.start.get("time", 0.0))
    except Exception as err:  # the run group is being created
        return "running", f"(campaign run not readable yet: {type(err).__name__})"
    if stop is None:
        state = control.get("state")
        fresh = float(control.get("time", 0.0)) >= start_time - 1.0
        beat = float(control.get("heartbeat", 0.0) or 0.0)
        who = control.get("message", "")
        if fresh and beat and time.time() - beat > STALE_AFTER:
            return "running", (
                f"no heartbeat for {time.time() - beat:.0f} s: is the campaign process alive?"
            )
        if fresh and state in _LIVE_STATES:
            return str(state), who
        return "running", who
    exit_status = stop.get("exit_status", "")
    reason = stop.get("reason", "")
    if exit_status == "success":
        if budget and spent < budget:
            return (
                "stopped",
                f"stopped before the budget ({reason})" if reason else "stopped before the budget",
            )
        return "finished", ""
    if exit_status == "abort":
        return "aborted", reason
    return "failed", reason or exit_status


def read_snapshot(store_path: str | os.PathLike) -> Snapshot:
    """Read a campaign's store and control state; never raises (see ``Snapshot.error``)."""
    from sdl.store import open_store

    path = Path(store_path)
    now = time.time()
    try:
        control = ControlChannel(path).state()
    except Exception:
        control = {}
    try:
        store = open_store(path)
        campaign = store.campaign
        table = store.to_dataframe()
    except Exception as err:
        return Snapshot(
            path=path,
            status="unreadable",
            detail=f"{type(err).__name__}: {err}",
            control=control,
            error=f"{type(err).__name__}: {err}",
            time=now,
        )
    counts = (
        {str(k): int(v) for k, v in table["status"].value_counts().items()} if len(table) else {}
    )
    budget = int(campaign.get("budget", 0) or 0)
    try:
        status, detail = _status_from_store(store, budget_spent(table), budget, control)
    except Exception as err:
        status, detail = "running", f"status unreadable: {type(err).__name__}: {err}"
    if status == "waiting-approval" and control.get("proposals"):
        proposals = [dict(p) for p in control["proposals"]]
    else:
        names = store.parameter_names
        pending = table[table["status"].isin(["planned", "running"])] if len(table) else table
        proposals = [
            {
                "experiment_id": int(eid),
                "status": row["status"],
                **{n: _plain(row[n]) for n in names},
            }
            for eid, row in pending.iterrows()
        ]
    stations, intervals, lab_error = _lab_views(store, now)
    if lab_error:
        detail = f"{detail}; {lab_error}" if detail else lab_error
    return Snapshot(
        path=path,
        status=status,
        detail=detail,
        campaign=campaign,
        table=table,
        counts=counts,
        budget=budget,
        control=control,
        proposals=proposals,
        time=now,
        stations=stations,
        intervals=intervals,
    )


def _lab_views(store: Any, now: float) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(stations, step intervals, read error) of a lab campaign; empty without a lab."""
    if not store.campaign.get("lab"):
        return pd.DataFrame(), pd.DataFrame(), ""
    from sdl.store._lab_views import LabTimeline

    try:
        timeline = LabTimeline(store, now)
        return timeline.overview(), timeline.intervals, ""
    except Exception as err:  # the streams are being written: the next read has them
        return pd.DataFrame(), pd.DataFrame(), f"stations unreadable: {type(err).__name__}: {err}"


def _plain(v: Any) -> Any:
    v = v.item() if isinstance(v, np.generic) else v
    return None if isinstance(v, float) and math.isnan(v) else v
