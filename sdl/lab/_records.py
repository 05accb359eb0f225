"""The lab's own streams of the campaign run: ``steps`` and ``stations``.

* ``steps``: one event per step transition of an experiment: ``queued`` (waiting for its
  leases), ``started`` (leases granted, plan submitted), then ``done``, ``failed`` or
  ``cancelled``; with the station, lane, leased resources, runs and cause, and the
  step's correlation uid (``sdl_correlation`` in the start documents of its runs, by
  which a resumed campaign finds a step that a station ran while the campaign was down). The table's
  per-step stations and times (``CampaignStore.to_dataframe``) and the per-station views
  (utilization, Gantt chart) are read from it.
* ``stations``: one event per change of a station's service: taken out (by its failures
  or an operator) or put back, with the cause and who.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sdl._ledger import _Record

__all__ = ["STATION_STREAM", "STEP_STREAM", "StationLog", "StepLog"]

STEP_STREAM = "steps"
STATION_STREAM = "stations"


class StepLog(_Record):
    """Step transitions (``steps`` stream)."""

    def __init__(self, name: str = "step_log"):
        super().__init__(
            name,
            STEP_STREAM,
            {
                "experiment_id": "integer",
                "step": "string",
                "index": "integer",
                "status": "string",
                "station": "string",
                "lane": "integer",
                "resources": "string",
                "run_uids": "string",
                "cause": "string",
                "correlation": "string",
            },
        )

    def record(
        self,
        experiment_id: int,
        step: str,
        index: int,
        status: str,
        *,
        station: str = "",
        lane: int = -1,
        resources: Sequence[str] = (),
        run_uids: Sequence[str] = (),
        cause: str = "",
        correlation: str = "",
    ):
        """Plan: one step transition."""
        yield from self.emit(
            {
                "experiment_id": int(experiment_id),
                "step": step,
                "index": int(index),
                "status": status,
                "station": station,
                "lane": int(lane),
                "resources": json.dumps(list(resources)),
                "run_uids": json.dumps(list(run_uids)),
                "cause": cause[:1000],
                "correlation": correlation,
            }
        )


class StationLog(_Record):
    """Changes of a station's service (``stations`` stream)."""

    def __init__(self, name: str = "station_log"):
        super().__init__(
            name,
            STATION_STREAM,
            {"station": "string", "in_service": "integer", "cause": "string", "who": "string"},
        )

    def record(self, station: str, in_service: bool, cause: str, who: str = "sdl"):
        """Plan: ``station`` taken out of service (or put back) because of ``cause``."""
        yield from self.emit(
            {"station": station, "in_service": int(in_service), "cause": cause[:1000], "who": who}
        )
