"""The store writer: a RunEngine subscriber streaming every document into Zarr v3."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import event_model
import zarr

from sdl.errors import StoreError

from . import _layout as L
from ._json import jsonable
from ._stream import StreamWriter
from ._table import CampaignTable

__all__ = ["ZarrWriter", "init_store"]


def init_store(path: str | os.PathLike, *, overwrite: bool = False) -> zarr.Group:
    """Open (or create) the store's root group and check its layout version.

    Raises:
        StoreError: the path holds something that is not an sdl store, or a store of a
            newer layout version than this sdl reads.
    """
    path = Path(path)
    if overwrite or not (path / "zarr.json").exists():
        if path.exists() and any(path.iterdir()) and not overwrite:
            raise StoreError(f"{path} exists and is not a Zarr store; choose another --store path")
        root = zarr.open_group(str(path), mode="w" if overwrite else "a", zarr_format=3)
        from sdl import __version__

        root.attrs[L.ROOT_ATTR] = {
            "format_version": L.FORMAT_VERSION,
            "kind": L.STORE_KIND,
            "sdl_version": __version__,
        }
        root.require_group(L.RUNS)
        return root
    root = zarr.open_group(str(path), mode="a", zarr_format=3)
    meta = root.attrs.get(L.ROOT_ATTR)
    if not isinstance(meta, dict) or meta.get("kind") != L.STORE_KIND:
        raise StoreError(f"{path} is a Zarr group but not an sdl campaign store")
    if int(meta.get("format_version", 0)) > L.FORMAT_VERSION:
        raise StoreError(
            f"{path} has store format {meta['format_version']}; this sdl reads up to "
            f"{L.FORMAT_VERSION}: upgrade sdl"
        )
    return root


class _Run:
    def __init__(self, group: zarr.Group, start: dict[str, Any]):
        self.group = group
        self.start = start
        self.descriptors: list[dict[str, Any]] = []
        self.streams: dict[str, StreamWriter] = {}  # descriptor uid -> writer


class ZarrWriter(event_model.DocumentRouter):
    """Stream bluesky documents into a campaign store.

    Every run becomes ``runs/<uid>`` with its start, descriptors and stop documents as
    attributes and one group per event stream holding one array per data key (arrays
    and images keep their shape). The campaign run's ``experiments`` stream also updates
    the campaign table, synchronously, at every event.

    Event data are buffered per stream and appended in blocks: when ``flush_rows``
    events are waiting, when ``flush_interval`` seconds have passed since the last
    append (checked as events arrive), at every campaign transition and at every stop.

    Args:
        path: directory of the Zarr v3 store; created if missing.
        flush_interval: seconds of event data that may wait in memory.
        flush_rows: events that may wait in memory per stream.
        overwrite: replace an existing store instead of adding to it.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        flush_interval: float = 1.0,
        flush_rows: int = 10_000,
        overwrite: bool = False,
    ):
        super().__init__()
        self.path = Path(path)
        self.root = init_store(self.path, overwrite=overwrite)
        self.flush_interval = float(flush_interval)
        self.flush_rows = int(flush_rows)
        self._runs: dict[str, _Run] = {}
        self._stream_run: dict[str, _Run] = {}
        self._table: CampaignTable | None = None
        self._ledger_descriptors: set[str] = set()

    # -- documents ---------------------------------------------------------------------------

    def start(self, doc):
        group = self.root[L.RUNS].require_group(doc["uid"])
        group.attrs["start"] = jsonable(dict(doc))
        run = _Run(group, doc)
        self._runs[doc["uid"]] = run
        if doc.get("sdl_role") == "campaign":
            self._begin_campaign(doc)
        return doc

    def _begin_campaign(self, doc) -> None:
        spec = doc.get("sdl_campaign", {})
        self._table = CampaignTable(
            self.root, spec.get("parameters", []), [o["name"] for o in spec.get("objectives", [])]
        )
        attrs = self.root.attrs.asdict()
        runs = list(attrs.get("campaign_runs", []))
        runs.append(doc["uid"])
        update = {"campaign_runs": runs}
        if "campaign" not in attrs:
            update["campaign"] = jsonable(spec)
        self.root.attrs.update(update)

    def descriptor(self, doc):
        run = self._runs.get(doc["run_start"])
        if run is None:
            raise StoreError(f"descriptor for unknown run {doc['run_start']!r}")
        run.descriptors.append(jsonable(dict(doc)))
        run.group.attrs["descriptors"] = run.descriptors
        name = doc.get("name", "primary")
        stream = StreamWriter(run.group.require_group(name), doc["data_keys"])
        run.streams[doc["uid"]] = stream
        self._stream_run[doc["uid"]] = run
        if run.start.get("sdl_role") == "campaign" and name == "experiments":
            self._ledger_descriptors.add(doc["uid"])
        return doc

    def event(self, doc):
        run = self._stream_run[doc["descriptor"]]
        stream = run.streams[doc["descriptor"]]
        stream.add(doc)
        if doc["descriptor"] in self._ledger_descriptors and self._table is not None:
            stream.flush()
            self._table.apply(doc["data"], doc["time"])
            self.flush()  # a transition: nothing measured before it stays at risk
        elif len(stream) >= self.flush_rows or (
            time.monotonic() - stream.last_flush >= self.flush_interval
        ):
            stream.flush()
        return doc

    def stop(self, doc):
        run = self._runs.pop(doc["run_start"], None)
        if run is None:
            return doc
        for uid, stream in run.streams.items():
            stream.flush()
            self._stream_run.pop(uid, None)
            self._ledger_descriptors.discard(uid)
        run.group.attrs["stop"] = jsonable(dict(doc))
        return doc

    # -- control -----------------------------------------------------------------------------

    def flush(self) -> None:
        """Append every buffered event of every open run."""
        for run in self._runs.values():
            for stream in run.streams.values():
                stream.flush()
