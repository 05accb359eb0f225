"""What a reader sees of a format-2 store: Zarr up to the last block, then the log's tail.

A live writer logs every document at once but writes Zarr in blocks. A reader reads the
block mark (``_wal/applied.json``), then Zarr (cut to the lengths the mark records, so a
block written meanwhile is not read twice), then the log records after the mark, and
reads again if the mark changed meanwhile (the writer trims the log after a block). The
result is one consistent view, as current as the writer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from sdl.errors import StoreError

from . import _layout as L
from ._wal import LEDGER, WAL, read_applied, read_records

__all__ = ["LiveView", "TableRunView"]


class LiveView:
    """Zarr's runs (as of the block mark) and the documents logged after it."""

    def __init__(self, root: zarr.Group, mark: dict[str, Any], records: list, rows: dict):
        self.root = root
        self.lengths: dict[str, int] = dict(mark.get("lengths", {}))
        self.marked = "through" in mark and int(mark["through"]) >= 0
        self.records = records
        self.rows = rows  # uid -> row in runs/
        self.starts: dict[str, dict] = {}
        self.stops: dict[str, dict] = {}
        self.descriptors: dict[str, list[dict]] = {}  # run uid -> its logged descriptors
        self.events: dict[str, list[dict]] = {}  # descriptor uid -> its logged events
        self.assets: dict[str, list[dict]] = {kind: [] for kind in L.ASSET_KINDS}
        for name, doc, _ in records:
            if name in self.assets:
                self.assets[name].append(doc)
            if name == "start":
                self.starts[doc["uid"]] = doc
            elif name == "stop":
                self.stops[doc["run_start"]] = doc
            elif name == "descriptor":
                self.descriptors.setdefault(doc["run_start"], []).append(doc)
            elif name == "event":
                self.events.setdefault(doc["descriptor"], []).append(doc)
            elif name == "event_page":
                import event_model

                for event in event_model.unpack_event_page(doc):
                    self.events.setdefault(event["descriptor"], []).append(event)

    @classmethod
    def read(
        cls,
        root: zarr.Group,
        path: Path,
        *,
        between: Callable[[], Any] | None = None,
        runs: bool = True,
    ) -> LiveView:
        """A consistent view; ``between`` is called after the mark and the runs are read and
        before the log is (what it reads from Zarr is then consistent with the view).
        ``runs=False``: the runs in Zarr are not read (for the table alone)."""
        wal = path / WAL
        for _ in range(100):
            mark = read_applied(wal)
            rows = _run_rows(root) if runs else {}
            if between is not None:
                between()
            try:
                records = [
                    (name, doc, flags)
                    for _, name, doc, flags in read_records(wal, after=int(mark["through"]))
                ]
            except FileNotFoundError:  # the writer finished a block meanwhile
                time.sleep(0.002)
                continue
            if read_applied(wal).get("through") == mark.get("through"):
                return cls(root, mark, records, rows)
        raise StoreError(f"{path}: the campaign wrote faster than this reader could read")

    def uids(self) -> list[str]:
        return [*self.rows, *(u for u in self.starts if u not in self.rows)]

    def run(self, uid: str) -> TableRunView:
        return TableRunView(self, self.rows.get(uid, -1), uid)

    def starts_and_stops(self) -> dict[str, tuple[dict, dict | None]]:
        """uid -> (start, stop or None) of every run, each column read once."""
        out: dict[str, tuple[dict, dict | None]] = {}
        if self.rows:
            n = max(self.rows.values()) + 1
            starts = self.root[L.RUNS]["start"][:n]
            stops = self.root[L.RUNS]["stop"][:n]
            for uid, row in self.rows.items():
                stop = str(stops[row])
                out[uid] = (
                    json.loads(str(starts[row]) or "{}"),
                    json.loads(stop) if stop else None,
                )
        for uid, start in self.starts.items():
            out[uid] = (start, out.get(uid, (start, None))[1])
        for uid, stop in self.stops.items():
            if uid in out:
                out[uid] = (out[uid][0], stop)
        return out

    def transitions(self) -> list[tuple[dict, float]]:
        """``(values, time)`` of the logged life-cycle transitions after the mark."""
        return [(doc["data"], doc["time"]) for name, doc, f in self.records if f & LEDGER]

    def table_length(self, table: str, n: int) -> int:
        """Rows of a stream table this view reads (what the last block's mark holds)."""
        key = f"{L.STREAMS}/{table}"
        return min(n, int(self.lengths[key])) if self.marked and key in self.lengths else n


def _run_rows(root: zarr.Group) -> dict[str, int]:
    if L.RUNS not in root or "uid" not in root[L.RUNS]:
        return {}
    uids = root[L.RUNS]["uid"][:]
    return {str(u): i for i, u in enumerate(uids) if u}


class TableRunView:
    """Format 2: one bluesky run, read from ``runs/``, the stream tables it has rows in,
    and the documents of it that a live writer has logged but not yet written."""

    def __init__(self, live: LiveView, row: int, uid: str):
        self.live = live
        self.root = live.root
        self.row = row
        self.uid = uid

    def _column(self, name: str) -> str:
        if self.row < 0:
            return ""
        return str(self.root[L.RUNS][name][self.row])

    @property
    def start(self) -> dict[str, Any]:
        if self.uid in self.live.starts:
            return dict(self.live.starts[self.uid])
        return dict(json.loads(self._column("start") or "{}"))

    @property
    def stop(self) -> dict[str, Any] | None:
        if self.uid in self.live.stops:
            return dict(self.live.stops[self.uid])
        text = self._column("stop")
        return dict(json.loads(text)) if text else None

    @property
    def descriptors(self) -> list[dict[str, Any]]:
        stored = list(json.loads(self._column("descriptors") or "[]"))
        known = {d["uid"] for d in stored}
        return stored + [
            d for d in self.live.descriptors.get(self.uid, []) if d["uid"] not in known
        ]

    @property
    def streams(self) -> list[str]:
        return sorted({d.get("name", "primary") for d in self.descriptors})

    def assets(self, kind: str = "datum") -> list[dict[str, Any]]:
        """The run's documents of ``kind`` (``resource``, ``datum``, ``stream_resource`` or
        ``stream_datum``) in the order they were emitted."""
        if kind not in L.ASSET_KINDS:
            raise ValueError(f"kind must be one of {', '.join(L.ASSET_KINDS)}; got {kind!r}")
        stored = self._stored_assets(kind)
        if kind in ("resource", "stream_resource"):
            logged = [d for d in self.live.assets[kind] if d.get("run_start") == self.uid]
        else:
            parent = "resource" if kind == "datum" else "stream_resource"
            mine = {d["uid"] for d in self._stored_assets(parent)}
            mine |= {d["uid"] for d in self.live.assets[parent] if d.get("run_start") == self.uid}
            logged = [d for d in self.live.assets[kind] if d.get(parent) in mine]
        return stored + logged

    def _stored_assets(self, kind: str) -> list[dict[str, Any]]:
        if self.row < 0:
            return []
        try:
            g = self.root[L.ASSET_TABLES][kind]
            docs = g[L.ASSET_DOC][:]
            runs = g[L.RUN_ROW][: len(docs)]
        except KeyError:
            return []
        key = f"{L.ASSET_TABLES}/{kind}"
        n = (
            min(len(docs), int(self.live.lengths[key]))
            if self.live.marked and key in self.live.lengths
            else len(docs)
        )
        return [json.loads(t) for t in docs[:n][runs[:n] == self.row] if t]

    def _stored(self, stream: str) -> dict[str, np.ndarray] | None:
        tables = json.loads(self._column("streams") or "{}")
        table = tables.get(stream)
        if table is None:
            return None
        g = self.root[L.STREAMS][table]
        times = g[L.STREAM_TIME][:] if L.STREAM_TIME in g else np.empty(0)
        cut = np.flatnonzero(np.isnan(times))  # rows cut by a crash mid-append
        n = self.live.table_length(table, int(cut[0]) if len(cut) else len(times))
        rows = np.flatnonzero(g[L.RUN_ROW][:n] == self.row) if n else np.empty(0, dtype=int)
        lo, hi = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 0)
        pick = rows - lo  # a run's rows are (nearly always) one range: read only that

        def read(arr: zarr.Array) -> np.ndarray:
            return arr[lo:hi][pick] if hi > lo else arr[0:0]

        out = {L.STREAM_TIME: times[rows], L.STREAM_SEQ: read(g[L.STREAM_SEQ])}
        if L.STREAM_DATA in g:
            for key, arr in g[L.STREAM_DATA].arrays():
                out[key] = read(arr)
        return out

    def data(self, stream: str = "primary") -> dict[str, np.ndarray]:
        """Data key -> array (``n x ...``) of a stream, with ``time`` and ``seq_num``."""
        descriptors = [d for d in self.descriptors if d.get("name", "primary") == stream]
        if not descriptors:
            raise KeyError(f"run {self.uid} has no stream {stream!r}; streams: {self.streams}")
        stored = self._stored(stream)
        logged = [e for d in descriptors for e in self.live.events.get(d["uid"], [])]
        if not logged:
            if stored is None:
                keys = {k for d in descriptors for k in d["data_keys"]}
                return {
                    L.STREAM_TIME: np.empty(0),
                    L.STREAM_SEQ: np.empty(0, dtype=int),
                    **{k: np.empty(0) for k in keys},
                }
            return stored
        logged.sort(key=lambda e: e["seq_num"])
        tail: dict[str, Any] = {
            L.STREAM_TIME: np.array([e["time"] for e in logged], dtype=float),
            L.STREAM_SEQ: np.array([e["seq_num"] for e in logged], dtype=np.int64),
        }
        for key in {k for e in logged for k in e["data"]}:
            tail[key] = np.asarray([e["data"].get(key) for e in logged])
        if stored is None:
            return tail
        out = {}
        for key, values in stored.items():
            extra = tail.get(key)
            if extra is None:
                out[key] = values
                continue
            try:
                out[key] = np.concatenate([values, extra.astype(values.dtype, copy=False)])
            except (TypeError, ValueError):
                out[key] = np.concatenate([values.astype(object), extra.astype(object)])
        return out

    def to_xarray(self, stream: str = "primary"):
        """``stream`` as an ``xarray.Dataset`` with dimension ``time``; arrays keep their shape."""
        from ._reader import RunView

        return RunView.to_xarray(self, stream)  # type: ignore[arg-type]

    def to_dataframe(self, stream: str = "primary"):
        """Scalar data keys of ``stream`` as a DataFrame (arrays as one object per row)."""
        from ._reader import RunView

        return RunView.to_dataframe(self, stream)  # type: ignore[arg-type]
