"""Format 2: the runs table, one row per bluesky run with its documents as JSON text."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import zarr

from . import _layout as L
from ._concurrent import concurrently, require_arrays
from ._json import dumps
from ._table import set_rows

__all__ = ["RunTable"]


class RunTable:
    """Writes ``runs/``: ``start``, ``descriptors`` (a JSON list), ``stop`` (``""`` until the
    run stops), ``streams`` (stream name -> its table under ``streams/``) and ``uid``, which
    is written last: a row with a uid is complete up to its last write.

    Rows are staged in memory and written together by :meth:`commit`.

    Args:
        root: the store's root group.
    """

    def __init__(self, root: zarr.Group):
        group = root.require_group(L.RUNS)
        spec = {"shape": (0,), "chunks": (L.TABLE_CHUNK,), "dtype": "str", "fill_value": ""}
        arrays = require_arrays([(group, name, spec) for name in L.RUN_COLUMNS])
        self.columns: dict[str, zarr.Array] = dict(zip(L.RUN_COLUMNS, arrays, strict=True))
        uids = self.columns["uid"][:]
        filled = np.flatnonzero(uids != "")
        #: rows in use (a row staged but cut by a crash is rewritten by the log's replay)
        self.n_rows = int(filled[-1]) + 1 if len(filled) else 0
        self._staged: dict[int, dict[str, str]] = {}

    def new_row(self) -> int:
        row = self.n_rows
        self.n_rows += 1
        return row

    def stage(self, row: int, **columns: Any) -> None:
        """Keep ``columns`` (documents, made JSON here) of ``row`` until :meth:`commit`."""
        staged = self._staged.setdefault(row, {})
        for name, value in columns.items():
            staged[name] = value if isinstance(value, str) else dumps(value)

    def commit(self) -> None:
        self.take()()

    def take(self) -> Callable[[], None]:
        """Hand over the staged rows: returns the call that writes them."""
        staged, self._staged = self._staged, {}
        return lambda: self._write(staged)

    def _write(self, staged: dict[int, dict[str, str]]) -> None:
        if not staged:
            return
        rows = sorted(staged)
        short = [a for a in self.columns.values() if a.shape[0] < rows[-1] + 1]
        concurrently([a._async_array.resize((rows[-1] + 1,)) for a in short])
        for names in (L.RUN_COLUMNS[:-1], ("uid",)):  # uid last: the commit mark
            coroutines = []
            for name in names:
                have = [r for r in rows if name in staged[r]]
                if have:
                    values = np.array([staged[r][name] for r in have], dtype=object)
                    idx = np.asarray(have, dtype=np.int64)
                    coroutines.append(set_rows(self.columns[name]._async_array, idx, values))
            concurrently(coroutines)

    def documents(self, row: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The start document and the descriptors stored in ``row``."""
        start = json.loads(str(self.columns["start"][row]) or "{}")
        descriptors = json.loads(str(self.columns["descriptors"][row]) or "[]")
        return start, descriptors

    def cut_rows(self) -> dict[str, int]:
        """uid -> row of every run in use that has no stop document (a crash cut it)."""
        n = self.n_rows
        if n == 0:
            return {}
        uids, stops = self.columns["uid"][:n], self.columns["stop"][:n]
        return {str(u): row for row, (u, s) in enumerate(zip(uids, stops)) if u and not s}
