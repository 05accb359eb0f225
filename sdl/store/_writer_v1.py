"""The writer of format-1 stores (a group per run), kept to continue campaigns stored so."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import event_model
import zarr

from sdl.errors import StoreError

from . import _layout as L
from ._assets import AssetLog, AssetRouting
from ._disk import sync_filesystem
from ._init import check_writer_options, init_store
from ._json import jsonable
from ._lock import WriterLock
from ._stream import StreamWriter
from ._table import CampaignTable

__all__ = ["ZarrWriterV1"]

logger = logging.getLogger(__name__)


class _Run:
    def __init__(self, group: zarr.Group, start: dict[str, Any]):
        self.group = group
        self.start = start
        self.descriptors: list[dict[str, Any]] = []
        self.streams: dict[str, StreamWriter] = {}  # descriptor uid -> writer
        self.assets = AssetLog(group)

    def flush(self) -> None:
        self.assets.flush()  # first: events may point at these
        for stream in self.streams.values():
            stream.flush()


class ZarrWriterV1(AssetRouting, event_model.DocumentRouter):
    """Stream bluesky documents into a campaign store.

    Every run becomes ``runs/<uid>`` with its start, descriptors and stop documents as
    attributes and one group per event stream holding one array per data key (arrays
    and images keep their shape). The campaign run's ``experiments`` stream also updates
    the campaign table, synchronously, at every event.

    Event data are buffered per stream and appended in blocks: when ``flush_rows``
    events or ``flush_bytes`` bytes are waiting, ``flush_interval`` seconds after the
    first unwritten event (a timer on the RunEngine's event loop, so also when events
    stop arriving), at every stop, and at a pause (see :meth:`on_state_change`). So at
    most ``flush_interval`` seconds of data are at risk in a crash of the process, and
    none after a clean stop or pause. The ``experiments`` stream (the log of campaign
    transitions, from which the table can be rebuilt: see :func:`~sdl.store.repair_store`)
    is the exception: each of its events is appended before the table is updated, so
    the log is never behind the table.

    The writer holds the store's writer lock (:class:`~sdl.store.WriterLock`) from the
    moment it opens the store until :meth:`close`: a second writer is refused, with a
    message naming this process.

    Appended data sit in the OS page cache until the OS writes them back; with
    ``sync_to_disk`` (the default) every run stop and every pause also waits until the
    store's filesystem is on disk, so what a clean stop or pause saved survives a crash of
    the OS or a power cut as well.

    The writer is safe to call from the RunEngine's thread and, for :meth:`flush` and
    :meth:`log_operator_action`, from any other thread.

    Args:
        path: directory of the Zarr v3 store; created if missing.
        flush_interval: seconds of event data that may wait in memory.
        flush_rows: events that may wait in memory per stream.
        flush_bytes: bytes of event data that may wait in memory per stream.
        overwrite: replace an existing store instead of adding to it (the lock is taken
            before anything is deleted).
        sync_to_disk: at every run stop and pause, wait for the OS to write the store's
            filesystem to disk (``syncfs``).
        lock: the store's writer lock, already taken by the caller; the writer releases
            it at :meth:`close`. Taken here when None.
        new: refuse a store that already holds a campaign (unless ``overwrite``).

    Raises:
        StoreLockedError: another live process writes to the store.
        StoreError: the store is unusable, or (``new``) already holds a campaign.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        flush_interval: float = 1.0,
        log_flush_interval: float = 5.0,  # (format 1 has no log: every block is due in flush_interval)
        flush_rows: int = 10_000,
        flush_bytes: int = 64 << 20,
        overwrite: bool = False,
        sync_to_disk: bool = True,
        lock: WriterLock | None = None,
        new: bool = False,
    ):
        super().__init__()
        check_writer_options(flush_interval, flush_rows, flush_bytes, log_flush_interval)
        self.path = Path(path)
        self.flush_interval = float(flush_interval)
        self.flush_rows = int(flush_rows)
        self.flush_bytes = int(flush_bytes)
        self.sync_to_disk = bool(sync_to_disk)
        # the lock first: nothing is read, created or deleted before it is ours
        self.lock = lock if lock is not None else WriterLock.acquire(self.path)
        try:
            if new and not overwrite and (self.path / "zarr.json").exists():
                raise StoreError(
                    f"store {self.path} already holds a campaign; choose another store path, "
                    f"overwrite it (overwrite=True, or --overwrite on the command line), "
                    f"or continue it (campaign.resume(store), or sdl resume)"
                )
            self.root = init_store(self.path, overwrite=overwrite)
        except BaseException:
            self.lock.release()
            raise
        self._lock = threading.RLock()
        self._timer: asyncio.TimerHandle | None = None
        self._runs: dict[str, _Run] = {}
        self._stream_run: dict[str, _Run] = {}
        self._table: CampaignTable | None = None
        self._ledger_descriptors: set[str] = set()
        self._resource_run: dict[str, _Run] = {}  # (stream) resource uid -> its run

    def __call__(self, name, doc, validate=False):
        with self._lock:
            return super().__call__(name, doc, validate)

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
        attrs = self.root.attrs.asdict()
        runs = list(attrs.get("campaign_runs", []))
        runs.append(doc["uid"])
        update = {"campaign_runs": runs}
        if "campaign" not in attrs:
            update["campaign"] = jsonable(spec)
        self.root.attrs.update(update)  # before the table: readers need it to read the table
        self._table = CampaignTable(
            self.root,
            spec.get("parameters", []),
            [o["name"] for o in spec.get("objectives", [])],
            [m["name"] for m in spec.get("measurements", [])],
        )

    def descriptor(self, doc):
        run = self._runs.get(doc["run_start"])
        if run is None:
            raise StoreError(f"descriptor for unknown run {doc['run_start']!r}")
        run.descriptors.append(jsonable(dict(doc)))
        run.group.attrs["descriptors"] = run.descriptors
        name = doc.get("name", "primary")
        if name == L.ASSETS:
            raise StoreError(f"the stream name {L.ASSETS!r} is reserved by the store; rename it")
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
            # The log of transitions is the source of truth (the table can be rebuilt from
            # it): append the event before the table changes, so the log is never behind.
            stream.flush()
            self._table.apply(doc["data"], doc["time"])
            return doc
        if (
            len(stream) >= self.flush_rows
            or stream.nbytes >= self.flush_bytes
            or time.monotonic() - stream.last_flush >= self.flush_interval
        ):
            run.assets.flush()  # first: the events may point at these
            stream.flush()
        elif self._timer is None:
            self._arm_timer()
        return doc

    def _asset(self, kind: str, run: _Run | None, doc: dict) -> dict:
        if run is None:
            raise StoreError(
                f"{kind} document {doc.get('uid', doc.get('datum_id'))!r} for no open run"
            )
        run.assets.add(kind, doc)
        if len(run.assets) >= self.flush_rows:
            run.assets.flush()
        elif self._timer is None:
            self._arm_timer()
        return doc

    def stop(self, doc):
        run = self._runs.pop(doc["run_start"], None)
        if run is None:
            return doc
        run.flush()
        for uid in run.streams:
            self._stream_run.pop(uid, None)
            self._ledger_descriptors.discard(uid)
        for uid in [u for u, r in self._resource_run.items() if r is run]:
            del self._resource_run[uid]
        run.group.attrs["stop"] = jsonable(dict(doc))
        self._sync()
        return doc

    # -- control -----------------------------------------------------------------------------

    def _arm_timer(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # fed outside an event loop: flushes happen as events arrive
            return
        self._timer = loop.call_later(self.flush_interval, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Append every buffered event of every open run."""
        with self._lock:
            for run in self._runs.values():
                run.flush()

    def close(self) -> None:
        """Append what is buffered and release the store's writer lock (idempotent).

        The writer stays usable as a reader of its store; another writer may now open it.
        """
        with self._lock:
            try:
                if self.lock.held:
                    for run in self._runs.values():
                        run.flush()
            finally:  # released also when a write fails: this process may open it again
                self.lock.release()

    def __enter__(self) -> ZarrWriterV1:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sync(self) -> None:
        if self.sync_to_disk:
            sync_filesystem(self.path)

    def log_operator_action(self, action: str, *, who: str = "", detail: str = "") -> None:
        """Append ``{time, action, who, detail}`` to the store's ``operator_log`` attribute."""
        with self._lock:
            entry = {"time": time.time(), "action": action, "who": who, "detail": detail}
            log = list(self.root.attrs.get("operator_log", []))
            log.append(entry)
            self.root.attrs["operator_log"] = log

    def on_state_change(self, new_state: str, old_state: str) -> None:
        """A RunEngine ``state_hook``: flush at a pause and log the operator-visible change.

        Never raises (see :meth:`sdl.store.ZarrWriter.on_state_change`): a failure is
        logged."""
        try:
            if new_state == "paused" or new_state == "idle":
                self.flush()
            if new_state == "paused":
                self.log_operator_action("running -> paused", who="RunEngine")
                self._sync()
            elif old_state == "paused":
                self.log_operator_action(f"paused -> {new_state}", who="RunEngine")
        except Exception:
            logger.exception(
                "%s: writing the store at the RunEngine's %s failed", self.path, new_state
            )
