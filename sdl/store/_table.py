"""The campaign table: one row per experiment, updated in place at every transition."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import zarr

from . import _layout as L
from ._concurrent import concurrently, require_arrays

__all__ = ["CampaignTable", "ledger_writes", "parameter_dtype", "set_rows"]


def ledger_writes(
    values: Mapping[str, Any],
    timestamp: float,
    parameters: Sequence[str],
    objectives: Sequence[str],
    measurements: Sequence[str] = (),
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """What one ledger event writes into its row: (columns, parameters, objectives,
    measurements), each name -> value; ``status`` is the last column (the commit mark)."""
    status = str(values["status"])
    time_column = {"planned": "t_planned", "running": "t_started"}.get(status, "t_finished")
    columns: dict[str, Any] = {
        "experiment_id": int(values["experiment_id"]),
        "batch": int(values["batch"]),
        "run_uid": str(values.get("run_uid", "")),
        "cause": str(values.get("cause", "")),
        "failure_kind": str(values.get("failure_kind", "")),
        "rerun_of": int(values.get("rerun_of", -1)),
        time_column: timestamp,
        "status": status,
    }
    return (
        columns,
        {name: values[L.param_key(name)] for name in parameters},
        {name: values.get(L.objective_key(name), np.nan) for name in objectives},
        {name: values.get(L.measurement_key(name), np.nan) for name in measurements},
    )


async def set_rows(arr: zarr.AsyncArray, rows: np.ndarray, values: np.ndarray) -> None:
    """Write ``values`` into the rows ``rows`` (sorted, distinct) of a 1-D array, chunk by chunk."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.indexing import OrthogonalIndexer

    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):  # a range: plain slice
        await arr.setitem(slice(int(rows[0]), int(rows[-1]) + 1), values)
        return
    indexer = OrthogonalIndexer((rows,), arr.shape, arr.metadata.chunk_grid)
    await arr._set_selection(indexer, values, prototype=default_buffer_prototype())


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
        mgroup = self.group.require_group(L.TABLE_MEASUREMENTS)
        specs = [(self.group, name, dtype) for name, dtype in L.TABLE_COLUMNS.items()]
        specs += [(pgroup, p["name"], parameter_dtype(p)) for p in parameters]
        specs += [(ogroup, o, "float64") for o in objectives]
        specs += [(mgroup, m, "float64") for m in measurements]
        arrays = iter(
            require_arrays(
                [
                    (
                        group,
                        name,
                        {
                            "shape": (0,),
                            "chunks": (L.TABLE_CHUNK,),
                            "dtype": dtype,
                            "fill_value": _fill(dtype),
                        },
                    )
                    for group, name, dtype in specs
                ]
            )
        )
        self.columns: dict[str, zarr.Array] = {name: next(arrays) for name in L.TABLE_COLUMNS}
        self.parameters = {p["name"]: next(arrays) for p in parameters}
        self.objectives = {o: next(arrays) for o in objectives}
        self.measurements = {m: next(arrays) for m in measurements}
        self._staged: dict[int, dict[str, Any]] = {}  # array path -> {row: value}

    @property
    def n_rows(self) -> int:
        return self.columns["status"].shape[0]

    def _all(self):
        yield from self.columns.values()
        yield from self.parameters.values()
        yield from self.objectives.values()
        yield from self.measurements.values()

    def _writes(self, values: Mapping[str, Any], timestamp: float) -> list[tuple[zarr.Array, Any]]:
        """(array, value) of every column one ledger event writes into its row, ``status``
        last (the commit mark of the row)."""
        columns, params, objectives, measurements = ledger_writes(
            values, timestamp, self.parameters, self.objectives, self.measurements
        )
        status = columns.pop("status")
        out = [(self.columns[name], v) for name, v in columns.items()]
        out += [(self.parameters[name], v) for name, v in params.items()]
        out += [(self.objectives[name], v) for name, v in objectives.items()]
        out += [(self.measurements[name], v) for name, v in measurements.items()]
        out.append((self.columns["status"], status))
        return out

    def _grow(self, n_rows: int) -> None:
        # each column on its own: a crash during an earlier resize can leave them uneven
        short = [arr for arr in self._all() if arr.shape[0] < n_rows]
        if short:
            concurrently([arr._async_array.resize((n_rows,)) for arr in short])

    def apply(self, values: Mapping[str, Any], timestamp: float) -> None:
        """Write one ledger event (an experiment transition) into its row."""
        row = int(values["experiment_id"])
        self._grow(row + 1)
        writes = self._writes(values, timestamp)
        concurrently([arr._async_array.setitem(row, v) for arr, v in writes[:-1]])
        arr, status = writes[-1]
        arr[row] = status  # last: the commit mark of the row

    def stage(self, values: Mapping[str, Any], timestamp: float) -> None:
        """Keep one ledger event in memory until :meth:`commit` (what a later event of the
        same row writes replaces what an earlier one wrote, as :meth:`apply` would)."""
        row = int(values["experiment_id"])
        for arr, v in self._writes(values, timestamp):
            self._staged.setdefault(id(arr), {})[row] = v

    @property
    def n_staged(self) -> int:
        return len(self._staged)

    def commit(self) -> None:
        """Write every staged row: all columns together, then ``status`` (the commit mark)."""
        self.take()()

    def take(self) -> Callable[[], None]:
        """Hand over the staged rows: returns the call that writes them (as :meth:`commit`)."""
        staged, self._staged = self._staged, {}
        return lambda: self._write(staged)

    def _write(self, staged: dict[int, dict[int, Any]]) -> None:
        if not staged:
            return
        rows = {r for per_array in staged.values() for r in per_array}
        self._grow(max(rows) + 1)
        status = self.columns["status"]
        coroutines = []
        for arr in self._all():
            per_array = staged.get(id(arr))
            if not per_array or arr is status:
                continue
            coroutines.append(_set_column(arr, per_array))
        concurrently(coroutines)
        if id(status) in staged:
            concurrently([_set_column(status, staged[id(status)])])


def _set_column(arr: zarr.Array, per_row: Mapping[int, Any]):
    rows = np.fromiter(sorted(per_row), dtype=np.int64, count=len(per_row))
    dtype = object if arr.dtype.kind in "OUT" or str(arr.dtype).startswith("<U") else arr.dtype
    values = np.array([per_row[int(r)] for r in rows], dtype=dtype)
    return set_rows(arr._async_array, rows, values)
