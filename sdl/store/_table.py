"""The campaign table: one row per experiment, updated in place at every transition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import zarr

from . import _layout as L
from ._concurrent import concurrently

__all__ = ["CampaignTable", "parameter_dtype"]


def parameter_dtype(spec: Mapping[str, Any]) -> str:
    """numpy dtype name of a parameter column, from its description in the campaign metadata."""
    return {"categorical": "str", "integer": "int64"}.get(spec.get("kind", "real"), "float64")


def _fill(dtype: str) -> Any:
    return {"str": "", "int64": -1}.get(dtype, np.nan)


class CampaignTable:
    """Writes the ``experiments`` group of a store.

    Each transition rewrites one row of every column, the ``status`` column last: a
    reader that sees a final status for a row sees that row's values complete.

    Args:
        root: the store's root group (opened for writing).
        parameters: parameter descriptions (``name``, ``kind``) from the campaign metadata.
        objectives: objective names.
        measurements: names of other measured quantities (e.g. constrained ones).
    """

    def __init__(
        self,
        root: zarr.Group,
        parameters: Sequence[Mapping[str, Any]],
        objectives: Sequence[str],
        measurements: Sequence[str] = (),
    ):
        self.group = root.require_group(L.TABLE)
        pgroup = self.group.require_group(L.TABLE_PARAMETERS)
        ogroup = self.group.require_group(L.TABLE_OBJECTIVES)
        self.columns: dict[str, zarr.Array] = {}
        for name, dtype in L.TABLE_COLUMNS.items():
            self.columns[name] = self._require(self.group, name, dtype)
        self.parameters = {
            p["name"]: self._require(pgroup, p["name"], parameter_dtype(p)) for p in parameters
        }
        self.objectives = {o: self._require(ogroup, o, "float64") for o in objectives}
        mgroup = self.group.require_group(L.TABLE_MEASUREMENTS)
        self.measurements = {m: self._require(mgroup, m, "float64") for m in measurements}

    @staticmethod
    def _require(group: zarr.Group, name: str, dtype: str) -> zarr.Array:
        if name in group:
            return group[name]
        return group.create_array(
            name, shape=(0,), chunks=(L.TABLE_CHUNK,), dtype=dtype, fill_value=_fill(dtype)
        )

    @property
    def n_rows(self) -> int:
        return self.columns["status"].shape[0]

    def _all(self):
        yield from self.columns.values()
        yield from self.parameters.values()
        yield from self.objectives.values()
        yield from self.measurements.values()

    def apply(self, values: Mapping[str, Any], timestamp: float) -> None:
        """Write one ledger event (an experiment transition) into its row."""
        row = int(values["experiment_id"])
        # each column on its own: a crash during an earlier resize can leave them uneven
        short = [arr for arr in self._all() if arr.shape[0] <= row]
        if short:
            concurrently([arr._async_array.resize((row + 1,)) for arr in short])
        status = str(values["status"])
        time_column = {"planned": "t_planned", "running": "t_started"}.get(status, "t_finished")
        writes = {
            "experiment_id": row,
            "batch": int(values["batch"]),
            "run_uid": str(values.get("run_uid", "")),
            "cause": str(values.get("cause", "")),
            "failure_kind": str(values.get("failure_kind", "")),
            "rerun_of": int(values.get("rerun_of", -1)),
            time_column: timestamp,
        }
        updates = [self.columns[name]._async_array.setitem(row, v) for name, v in writes.items()]
        updates += [
            arr._async_array.setitem(row, values[L.param_key(name)])
            for name, arr in self.parameters.items()
        ]
        updates += [
            arr._async_array.setitem(row, values.get(L.objective_key(name), np.nan))
            for name, arr in self.objectives.items()
        ]
        updates += [
            arr._async_array.setitem(row, values.get(L.measurement_key(name), np.nan))
            for name, arr in self.measurements.items()
        ]
        concurrently(updates)
        self.columns["status"][row] = status  # last: the commit mark of the row
