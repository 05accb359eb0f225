"""Documents that point at data stored outside the store (detectors' own files)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import zarr

from . import _layout as L
from ._json import jsonable

__all__ = ["AssetLog", "AssetRouting", "AssetTables"]


class AssetLog:
    """The ``resource``, ``datum``, ``stream_resource`` and ``stream_datum`` documents of one
    run, appended as JSON text to ``runs/<uid>/_assets/<kind>``.

    Detectors that write their own files (area detectors, ophyd-async's ``StreamResource``)
    emit these instead of putting frames in events; events then hold datum ids, or nothing
    for ``STREAM:`` keys. They are buffered like events and written before the events of
    the same flush, so a stored event never points at a reference that is not stored.

    Args:
        run_group: the run's group (``runs/<uid>``).
    """

    def __init__(self, run_group: zarr.Group):
        self.run_group = run_group
        self._pending: dict[str, list[str]] = {kind: [] for kind in L.ASSET_KINDS}
        self._arrays: dict[str, zarr.Array] = {}

    def __len__(self) -> int:
        return sum(len(docs) for docs in self._pending.values())

    def add(self, kind: str, doc: Mapping[str, Any]) -> None:
        self._pending[kind].append(json.dumps(jsonable(dict(doc))))

    def flush(self) -> None:
        """Append what is buffered, resources before the datums that name them."""
        for kind in L.ASSET_KINDS:
            docs = self._pending[kind]
            if docs:
                self._array(kind).append(np.array(docs, dtype=object))
                docs.clear()

    def _array(self, kind: str) -> zarr.Array:
        arr = self._arrays.get(kind)
        if arr is None:
            group = self.run_group.require_group(L.ASSETS)
            if kind in group:
                arr = group[kind]
            else:  # "" fill: an entry cut between resize and write reads as empty
                arr = group.create_array(
                    kind, shape=(0,), chunks=(L.TABLE_CHUNK,), dtype="str", fill_value=""
                )
            self._arrays[kind] = arr
        return arr


class AssetTables:
    """Format 2: the asset documents of every run, one table per kind under ``assets/<kind>``
    with the run's row (``run``) and the document as JSON text (``doc``, written last: the
    commit mark, ``""`` fill).

    Args:
        root: the store's root group.
    """

    def __init__(self, root: zarr.Group):
        self.root = root
        self._pending: dict[str, list[tuple[int, str]]] = {kind: [] for kind in L.ASSET_KINDS}
        self._arrays: dict[tuple[str, str], zarr.Array] = {}

    def __len__(self) -> int:
        return sum(len(docs) for docs in self._pending.values())

    def add(self, kind: str, doc: Mapping[str, Any], run: int) -> None:
        self._pending[kind].append((run, json.dumps(jsonable(dict(doc)))))

    def group(self, kind: str) -> zarr.Group:
        return self.root.require_group(L.ASSET_TABLES).require_group(kind)

    def _array(self, kind: str, name: str, dtype: str, fill: Any) -> zarr.Array:
        arr = self._arrays.get((kind, name))
        if arr is None:
            group = self.group(kind)
            if name in group:
                arr = group[name]
            else:
                arr = group.create_array(
                    name, shape=(0,), chunks=(L.TABLE_CHUNK,), dtype=dtype, fill_value=fill
                )
            self._arrays[(kind, name)] = arr
        return arr

    def flush(self) -> None:
        """Append what is buffered, resources before the datums that name them."""
        self.take()()

    def take(self) -> Callable[[], None]:
        """Hand over what is buffered: returns the call that appends it."""
        pending = self._pending
        self._pending = {kind: [] for kind in L.ASSET_KINDS}
        return lambda: self._append(pending)

    def _append(self, pending: dict[str, list[tuple[int, str]]]) -> None:
        for kind in L.ASSET_KINDS:
            docs = pending[kind]
            if docs:
                runs = np.array([r for r, _ in docs], dtype="int64")
                self._array(kind, L.RUN_ROW, "int64", -1).append(runs)
                texts = np.array([d for _, d in docs], dtype=object)
                self._array(kind, L.ASSET_DOC, "str", "").append(texts)

    def lengths(self) -> dict[str, int]:
        """Committed rows of each kind's table written by this process (path -> rows)."""
        return {
            f"{L.ASSET_TABLES}/{kind}": arr.shape[0]
            for (kind, name), arr in self._arrays.items()
            if name == L.ASSET_DOC
        }


class AssetRouting:
    """Routes a run's asset documents to ``self._asset(kind, run, doc)``, finding the run
    of a datum from its resource (both writers mix this into their document router; they
    keep open runs in ``self._runs`` by uid and resources in ``self._resource_run``)."""

    _runs: dict[str, Any]
    _resource_run: dict[str, Any]

    def _asset(self, kind: str, run: Any, doc: dict) -> dict:
        raise NotImplementedError

    def _resource(self, kind: str, doc: dict) -> dict:
        run = self._runs.get(doc.get("run_start", ""))  # the RunEngine fills run_start in
        if run is not None:
            self._resource_run[doc["uid"]] = run
        return self._asset(kind, run, doc)

    def resource(self, doc):
        return self._resource("resource", doc)

    def datum(self, doc):
        return self._asset("datum", self._resource_run.get(doc["resource"]), doc)

    def stream_resource(self, doc):
        return self._resource("stream_resource", doc)

    def stream_datum(self, doc):
        return self._asset("stream_datum", self._resource_run.get(doc["stream_resource"]), doc)
