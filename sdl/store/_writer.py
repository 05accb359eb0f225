"""The store writer: a RunEngine subscriber streaming every document into Zarr v3."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import event_model

from sdl.errors import ConfigError, StoreError

from . import _layout as L
from ._assets import AssetRouting, AssetTables
from ._disk import sync_filesystem
from ._init import check_writer_options, init_store, store_version
from ._json import jsonable
from ._lock import WriterLock
from ._runs import RunTable
from ._stream import StreamWriter, cut_back
from ._table import CampaignTable
from ._wal import APPLIED, LEDGER, WAL, WriteAheadLog, read_applied, read_records, segments

__all__ = ["WRITER_OPTIONS", "ZarrWriter", "init_store"]

logger = logging.getLogger(__name__)

#: seconds by which a standing block timer may be later than a new document asks for
_TIMER_SLACK = 0.01

#: The writer's tuning options, as given by ``store_options`` (Python or YAML).
WRITER_OPTIONS = (
    "flush_interval",
    "log_flush_interval",
    "flush_rows",
    "flush_bytes",
    "sync_to_disk",
)


#: Life-cycle states after which an experiment is over (the log is synced to disk then).
_SETTLED = frozenset({"done", "failed", "interrupted", "rejected"})

#: The fields of an event the store keeps (so the log keeps no more).
_EVENT_KEYS = ("descriptor", "seq_num", "time", "data")


@dataclass
class _Run:
    row: int
    start: dict[str, Any]
    descriptors: list[dict[str, Any]] = field(default_factory=list)
    streams: dict[str, str] = field(default_factory=dict)  # stream name -> table
    # a run reopened after a crash: (table, seq_num) of the events already stored
    stored: set[tuple[str, int]] = field(default_factory=set)


@dataclass
class _Stream:
    run: _Run
    writer: StreamWriter
    bulk: bool  # array data: not in the log, written in blocks (at risk until then)
    ledger: bool
    table: str = ""


def _signature(data_keys: Mapping[str, Mapping[str, Any]]) -> str:
    return json.dumps(
        sorted(
            [k, d.get("dtype"), list(d.get("shape") or []), d.get("external") or ""]
            for k, d in data_keys.items()
        )
    )


def _is_bulk(data_keys: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether events carry array data (keys a detector writes to its own files carry a
    datum id, or nothing)."""
    return any(list(d.get("shape") or []) and not d.get("external") for d in data_keys.values())


class ZarrWriter(AssetRouting, event_model.DocumentRouter):
    """Stream bluesky documents into a campaign store (format 2, see docs/store.md).

    Every document but the events of array-valued streams is first appended to the
    store's write-ahead log (``_wal/``: one ``write(2)`` of a JSON line, in the OS's page
    cache when the call returns, so a crash of the process loses none of them); the Zarr
    arrays are then written from memory in blocks: ``runs/`` (one row per run with its
    start, descriptors and stop documents), ``streams/<name>/`` (the events of every run of
    a stream, with the row of their run), ``assets/<kind>/`` and the campaign table
    ``experiments/``, which the campaign run's ``experiments`` stream (the log of
    life-cycle transitions) keeps up to date. A block is written when ``flush_rows``
    events or ``flush_bytes`` bytes wait in one stream, ``flush_interval`` seconds after
    the first unwritten array-valued event (the only documents not in the log),
    ``log_flush_interval`` seconds after the first unwritten document when all of them
    are in the log (timers on the RunEngine's event loop), at a pause, when the
    RunEngine goes idle (with :meth:`on_state_change` as its ``state_hook``), at the
    stop of a run with array data, and at :meth:`close`. After the block, the log's
    segments it covered are deleted. Opening a store replays what the log holds beyond
    the last block, so a crash loses only array-valued events not yet in a block (at
    most ``flush_interval`` seconds of them).

    ``sdl.open_store`` reads the log's tail too, so the table a reader sees is never
    behind the writer; plain Zarr sees the documents within ``log_flush_interval``.

    The writer holds the store's writer lock (:class:`~sdl.store.WriterLock`) from the
    moment it opens the store until :meth:`close`: a second writer is refused, with a
    message naming this process.

    With ``sync_to_disk`` (the default) the writer also waits until the log is on disk
    (``fdatasync``) when an experiment of a campaign settles (done, failed, interrupted,
    rejected), which covers its run too, and at every other run stop; and every block
    waits until the store's filesystem is on disk (``syncfs``) before the log is trimmed.
    So a settled experiment survives a crash of the OS or a power cut as well. A failed
    ``fdatasync`` raises :class:`~sdl.errors.StoreError` (naming the store) there.

    The writer is safe to call from the RunEngine's thread and, for :meth:`flush` and
    :meth:`log_operator_action`, from any other thread.

    Use :meth:`open` to continue a store of format 1 (a group per run): it returns the
    writer of that format.

    Args:
        path: directory of the Zarr v3 store; created if missing.
        flush_interval: seconds an array-valued event (not in the log: at risk in a
            crash) may wait for its block.
        log_flush_interval: seconds a document already in the log may wait for its
            block (how far plain Zarr may lag behind; a block costs a few milliseconds
            per array, so a fast loop pays for frequent ones).
        flush_rows: events that may wait in memory per stream.
        flush_bytes: bytes of event data that may wait in memory per stream.
        overwrite: replace an existing store instead of adding to it (the lock is taken
            before anything is deleted).
        sync_to_disk: see above.
        lock: the store's writer lock, already taken by the caller; the writer releases
            it at :meth:`close`. Taken here when None.
        new: refuse a store that already holds a campaign (unless ``overwrite``).

    Raises:
        StoreLockedError: another live process writes to the store.
        StoreError: the store is unusable, of format 1 (use :meth:`open`), or (``new``)
            already holds a campaign.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        flush_interval: float = 1.0,
        log_flush_interval: float = 5.0,
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
        self.log_flush_interval = float(log_flush_interval)
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
            if store_version(self.root) < 2:
                raise StoreError(
                    f"{self.path} has store format {store_version(self.root)}: continue it "
                    f"with ZarrWriter.open(path), which picks that format's writer"
                )
            self._lock = threading.RLock()  # the documents' intake
            # one block at a time; written outside the intake lock (taken first when both)
            self._block_lock = threading.Lock()
            self._block_due = False
            self._block_error: BaseException | None = None
            self._flusher: ThreadPoolExecutor | None = None
            self._timer: asyncio.TimerHandle | None = None
            self._timer_loop: asyncio.AbstractEventLoop | None = None
            self._timer_token = 0
            self._wal_dir = self.path / WAL
            self._wal_dir.mkdir(exist_ok=True)
            self._runs_table = RunTable(self.root)
            self._assets = AssetTables(self.root)
            self._tables: dict[str, StreamWriter] = {}  # table name -> writer
            self._signatures: dict[str, str] = {}  # signature -> table name
            self._runs: dict[str, _Run] = {}  # open runs by uid
            self._streams: dict[str, _Stream] = {}  # descriptor uid -> stream
            self._resource_run: dict[str, _Run] = {}
            # runs a crash cut (no stop), by uid -> row: their documents sent again (by a
            # station that kept them) complete the same row instead of starting another
            self._cut: dict[str, int] = {}
            self._table: CampaignTable | None = None
            self._table_start: dict[str, Any] | None = None
            self._pending = 0  # documents applied since the last block
            self._replaying = False
            self._bulk_bytes = 0
            try:
                self._recover()
            except (StoreError, KeyboardInterrupt):
                raise
            except Exception as err:
                raise StoreError(
                    f"{self.path}: cannot bring the store up to date from its write-ahead "
                    f"log ({type(err).__name__}: {err}); 'sdl check {self.path}' names the "
                    f"damage, 'sdl repair {self.path}' rebuilds the table"
                ) from err
        except BaseException:
            self.lock.release()
            raise

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        options: Mapping[str, Any] | None = None,
        *,
        overwrite: bool = False,
        lock: WriterLock | None = None,
        new: bool = False,
    ) -> ZarrWriter:
        """A writer with ``options`` (keys of :data:`WRITER_OPTIONS`) checked by name; for
        an existing store of format 1, that format's writer (same interface).

        Raises:
            ConfigError: an unknown option, or a value out of range (checked before the
                store is touched).
            StoreLockedError: another live process writes to the store.
        """
        options = dict(options or {})
        unknown = sorted(set(options) - set(WRITER_OPTIONS))
        if unknown:
            raise ConfigError(
                f"store_options: unknown option(s) {unknown}; the options are "
                f"{', '.join(WRITER_OPTIONS)}"
            )
        check_writer_options(
            options.get("flush_interval", 1.0),
            options.get("flush_rows", 1),
            options.get("flush_bytes", 1),
            options.get("log_flush_interval", 1.0),
        )
        if not overwrite and _existing_version(Path(path)) == 1:
            from ._writer_v1 import ZarrWriterV1

            return ZarrWriterV1(path, lock=lock, new=new, **options)  # type: ignore[return-value]
        return cls(path, overwrite=overwrite, lock=lock, new=new, **options)

    def __call__(self, name, doc, validate=False):
        with self._lock:
            if name == "event" and self._stored_already(doc):
                return doc  # a reopened run's event that the store holds
            self._log(name, doc)
            if self._block_error is not None:
                raise StoreError(
                    f"{self.path}: writing a block of the store failed "
                    f"({type(self._block_error).__name__}: {self._block_error}); the "
                    f"documents since the last block are in its log, and are written into "
                    f"Zarr when the store is opened again"
                ) from self._block_error
            result = super().__call__(name, doc, validate)
            self._after(name, doc)
            due, self._block_due = self._block_due, False
        if due:  # a block the document called for: written outside the intake lock
            self.flush()
        return result

    # -- the log -------------------------------------------------------------------------------

    def _log(self, name: str, doc: Mapping[str, Any]) -> None:
        flags = 0
        if name in ("event", "event_page"):
            stream = self._streams.get(doc["descriptor"])
            if stream is not None and stream.bulk:
                return  # array data: written in blocks only
            flags = LEDGER if stream is not None and stream.ledger else 0
            if name == "event":  # what the store keeps of an event: half the encoding
                doc = {k: doc[k] for k in _EVENT_KEYS}
        self._wal.append(name, doc, flags)

    def _recover(self) -> None:
        """Undo what a block cut by a crash wrote, then replay the log into Zarr."""
        mark = read_applied(self._wal_dir)
        lengths = dict(mark.get("lengths", {}))
        if (self._wal_dir / APPLIED).exists() or segments(self._wal_dir):
            # (neither: a store whose log is gone; nothing to undo or redo)
            for prefix in (L.STREAMS, L.ASSET_TABLES):
                if prefix not in self.root:
                    continue
                for name, group in self.root[prefix].groups():
                    cut_back(group, int(lengths.get(f"{prefix}/{name}", 0)))
            if L.RUNS in lengths:  # rows of a cut block are written again, in order
                self._runs_table.n_rows = int(lengths[L.RUNS])
        self._cut = {
            uid: row
            for uid, row in self._runs_table.cut_rows().items()
            if uid not in mark.get("open", {})
        }
        if L.STREAMS in self.root:
            for name, group in self.root[L.STREAMS].groups():
                sig = group.attrs.get("signature")
                if sig is not None:
                    self._signatures[sig] = name
        # the runs open at the last block: their later documents may be in the log (their
        # rows as of that block: a block cut by the crash may have written more)
        for uid, state in mark.get("open", {}).items():
            start, stored = self._runs_table.documents(int(state["row"]))
            known = set(state["descriptors"])
            run = _Run(int(state["row"]), start)
            self._runs[uid] = run
            for desc in stored:
                if desc["uid"] in known:
                    run.descriptors.append(desc)
                    self._attach_stream(run, desc)
            if start.get("sdl_role") == "campaign":
                self._table_start = start  # the table is opened if the log has transitions
        self._mark = {"through": int(mark.get("through", -1)), "lengths": lengths}
        records = list(read_records(self._wal_dir, after=self._mark["through"]))
        next_n = max([self._mark["through"], *[r[0] for r in records]]) + 1
        self._wal = WriteAheadLog(self._wal_dir, next_n)
        self._replaying = True  # no block before the whole log is in memory
        for n, name, doc, _ in records:
            try:
                super().__call__(name, doc)
            except StoreError as err:  # refused when it came, too (logged first)
                logger.warning("store log record %d (%s) skipped: %s", n, name, err)
        self._replaying = False
        self._pending = len(records)
        self._flush_block()
        # runs the crash cut stay without a stop: those still open now join the cut ones
        self._cut.update({uid: run.row for uid, run in self._runs.items()})
        self._runs.clear()
        self._streams.clear()
        self._resource_run.clear()

    # -- documents ---------------------------------------------------------------------------

    def start(self, doc):
        row = self._cut.pop(doc["uid"], None)
        if row is None and doc["uid"] in self._runs:  # (open at the last block)
            row = self._runs[doc["uid"]].row
        if row is not None:
            return self._reopen(row, doc)
        run = _Run(self._runs_table.new_row(), dict(doc))
        self._runs[doc["uid"]] = run
        self._runs_table.stage(run.row, start=doc, descriptors=[], streams={}, uid=doc["uid"])
        if doc.get("sdl_role") == "campaign":
            self._begin_campaign(doc)
        return doc

    def _reopen(self, row: int, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        """A run a crash cut, sent again from its start (a station's RE worker keeps its
        runs' documents for a coordinator that died): its row is completed, and the events
        the store already holds are not written twice."""
        start, stored = self._runs_table.documents(row)
        run = _Run(row, start or dict(doc))
        self._runs[doc["uid"]] = run
        for desc in stored:
            run.descriptors.append(desc)
            self._attach_stream(run, desc)
        for table in set(run.streams.values()):
            g = self.root[L.STREAMS][table]
            if L.STREAM_SEQ in g and L.RUN_ROW in g:
                n = g[L.STREAM_TIME].shape[0] if L.STREAM_TIME in g else 0
                mine = g[L.RUN_ROW][:n] == row
                run.stored.update((table, int(q)) for q in g[L.STREAM_SEQ][:n][mine])
        logger.info(
            "run %s reopened in row %d (%d events stored)", doc["uid"], row, len(run.stored)
        )
        return doc

    def _stored_already(self, doc: Mapping[str, Any]) -> bool:
        stream = self._streams.get(doc["descriptor"])
        return (
            stream is not None
            and bool(stream.run.stored)
            and (stream.table, int(doc["seq_num"])) in stream.run.stored
        )

    def _campaign_table(self, start: Mapping[str, Any]) -> CampaignTable:
        spec = start.get("sdl_campaign", {})
        return CampaignTable(
            self.root,
            spec.get("parameters", []),
            [o["name"] for o in spec.get("objectives", [])],
            [m["name"] for m in spec.get("measurements", [])],
        )

    def _begin_campaign(self, doc) -> None:
        attrs = self.root.attrs.asdict()
        runs = list(attrs.get("campaign_runs", []))
        if doc["uid"] not in runs:
            runs.append(doc["uid"])
        update: dict[str, Any] = {"campaign_runs": runs}
        if "campaign" not in attrs:
            update["campaign"] = jsonable(doc.get("sdl_campaign", {}))
        self.root.attrs.update(update)  # before the table: readers need it to read the table
        self._table = self._campaign_table(doc)

    def _attach_stream(self, run: _Run, doc: Mapping[str, Any]) -> None:
        name = doc.get("name", "primary")
        if name == L.ASSETS:
            raise StoreError(f"the stream name {L.ASSETS!r} is reserved by the store; rename it")
        data_keys = doc["data_keys"]
        sig = _signature(data_keys)
        table = self._signatures.get(sig)
        if table is None:
            base = name.replace("/", "_")
            taken = set(self._signatures.values())
            table, k = base, 1
            while table in taken:
                table, k = f"{base}~{k}", k + 1
            self._signatures[sig] = table
        writer = self._tables.get(table)
        if writer is None:
            group = self.root.require_group(L.STREAMS).require_group(table)
            if "signature" not in group.attrs:
                group.attrs.update({"stream": name, "signature": sig})
            writer = StreamWriter(group, data_keys, run_column=True)
            self._tables[table] = writer
        run.streams[name] = table
        ledger = run.start.get("sdl_role") == "campaign" and name == "experiments"
        self._streams[doc["uid"]] = _Stream(run, writer, _is_bulk(data_keys), ledger, table)

    def descriptor(self, doc):
        run = self._runs.get(doc["run_start"])
        if run is None:
            raise StoreError(f"descriptor for unknown run {doc['run_start']!r}")
        if any(d["uid"] == doc["uid"] for d in run.descriptors):
            return doc  # a reopened run's descriptor: stored, its stream attached
        run.descriptors.append(dict(doc))
        self._attach_stream(run, doc)
        self._runs_table.stage(run.row, descriptors=run.descriptors, streams=run.streams)
        return doc

    def event(self, doc):
        if self._stored_already(doc):  # (replaying the log)
            return doc
        stream = self._streams[doc["descriptor"]]
        stream.writer.add(doc, stream.run.row)
        if stream.ledger:
            if self._table is None and self._table_start is not None:
                self._table = self._campaign_table(self._table_start)
            if self._table is not None:
                self._table.stage(doc["data"], doc["time"])
        if stream.bulk:
            self._bulk_bytes = max(self._bulk_bytes, stream.writer.nbytes)
        if self._replaying:
            return doc
        if len(stream.writer) >= self.flush_rows or stream.writer.nbytes >= self.flush_bytes:
            self._block_due = True
        return doc

    def _asset(self, kind: str, run: _Run | None, doc: dict) -> dict:
        if run is None:
            raise StoreError(
                f"{kind} document {doc.get('uid', doc.get('datum_id'))!r} for no open run"
            )
        self._assets.add(kind, doc, run.row)
        if not self._replaying and len(self._assets) >= self.flush_rows:
            self._block_due = True
        return doc

    def stop(self, doc):
        run = self._runs.pop(doc["run_start"], None)
        if run is None:
            return doc
        self._runs_table.stage(run.row, stop=doc)
        for uid in [u for u, s in self._streams.items() if s.run is run]:
            del self._streams[uid]
        for uid in [u for u, r in self._resource_run.items() if r is run]:
            del self._resource_run[uid]
        return doc

    def _after(self, name: str, doc: Mapping[str, Any]) -> None:
        self._pending += 1
        if name == "start" and doc.get("sdl_role") == "campaign":
            self._block_due = True  # readers see the campaign run at once
        elif name == "stop":
            if self._bulk_bytes:
                self._block_due = True  # array data are not in the log: none at risk after a stop
            elif self.sync_to_disk and not self._in_campaign():
                self._sync()  # the run's documents are on disk
        elif name == "event" and self.sync_to_disk:
            stream = self._streams.get(doc["descriptor"])
            if stream is not None and stream.ledger and doc["data"].get("status") in _SETTLED:
                # an experiment settled: it and its run are on disk before the next starts
                self._sync()
        if self._pending:
            self._arm_timer(self.flush_interval if self._bulk_bytes else self.log_flush_interval)

    def _sync(self) -> None:
        """Wait until the log is on disk (``fdatasync``)."""
        try:
            self._wal.sync()
        except OSError as err:
            raise StoreError(
                f"{self.path}: the store's log could not be put on disk (fdatasync: {err}); "
                f"the last settled experiment or run may not survive a crash of the machine "
                f"(a process crash loses nothing); check the disk, then 'sdl resume'"
            ) from err

    def _in_campaign(self) -> bool:
        return any(run.start.get("sdl_role") == "campaign" for run in self._runs.values())

    # -- blocks --------------------------------------------------------------------------------

    def _flush_block(self) -> None:
        """Take a block and write it now (the caller holds the intake lock, or is alone)."""
        block = self._take_block()
        if block is not None:
            self._write_block(*block)

    def _take_block(self):
        """Under the intake lock: cut the log and hand over what the block writes."""
        closed = self._wal.rotate()
        if not closed and not self._pending and not self._bulk_bytes:
            return None
        writes = [self._assets.take()]  # first: events may point at these
        tables = dict(self._tables)
        writes += [writer.take() for writer in tables.values()]
        writes.append(self._runs_table.take())  # before the table: its run uids name these runs
        if self._table is not None:
            writes.append(self._table.take())
        through = self._wal.next_n - 1
        n_runs = self._runs_table.n_rows
        open_runs = {
            uid: {"row": run.row, "descriptors": [d["uid"] for d in run.descriptors]}
            for uid, run in self._runs.items()
        }
        self._pending = 0
        self._bulk_bytes = 0
        return closed, writes, tables, through, n_runs, open_runs

    def _write_block(self, closed, writes, tables, through, n_runs, open_runs) -> None:
        """Write a block taken by :meth:`_take_block` into Zarr, then mark it and trim the
        log. Documents go on arriving meanwhile (into the next block)."""
        started = time.monotonic()
        try:
            for write in writes:
                write()
            lengths = dict(self._mark["lengths"])
            lengths.update(self._assets.lengths())
            lengths[L.RUNS] = n_runs
            for table, writer in tables.items():
                lengths[f"{L.STREAMS}/{table}"] = writer.n_rows
            if self.sync_to_disk:
                sync_filesystem(self.path)  # the block is on disk before the log is trimmed
            self._mark = {"through": through, "lengths": lengths}
            self._wal.mark_applied(through, lengths, open_runs, sync=self.sync_to_disk)
            self._wal.trim(closed)
            # (benchmarks/loop_overhead.py times what blocks cost a running loop from these)
            logger.debug(
                "%s: block through log record %d written in %.3f s (started at monotonic %.6f)",
                self.path, through, time.monotonic() - started, started,
            )  # fmt: skip
        except BaseException as err:
            # the block's documents are in the log, which is no longer trimmed: the next
            # open of the store writes them (later blocks would put rows out of order)
            self._block_error = err
            raise

    def _arm_timer(self, wait: float) -> None:
        """A block at most ``wait`` seconds from now (an earlier timer stands)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # fed outside an event loop: blocks happen at the limits
            return
        due = loop.time() + wait
        timer, timer_loop = self._timer, self._timer_loop
        if timer is not None and timer_loop is not None:
            if timer_loop is loop:
                if timer.when() <= due + _TIMER_SLACK:
                    return
                timer.cancel()  # array data came after logged documents: block sooner
            elif timer_loop.is_running() and not timer_loop.is_closed():
                # on another RunEngine's loop (a lab): loop times are both monotonic
                if timer.when() <= due + _TIMER_SLACK:
                    return
                # cancelled there; if it fires first, it writes a block early, never late
                try:
                    timer_loop.call_soon_threadsafe(timer.cancel)
                except RuntimeError:  # that loop closed meanwhile: its timer never fires
                    pass
            # (a timer on a loop that no longer runs would never fire: replaced)
        self._timer_token += 1
        self._timer = loop.call_at(due, self._on_timer, self._timer_token)
        self._timer_loop = loop

    def _on_timer(self, token: int) -> None:
        if token == self._timer_token:  # (not a replaced timer that fired before its cancel)
            self._timer = None
        # in the writer's own thread: the RunEngine's event loop goes on meanwhile
        with self._lock:
            if not self.lock.held:  # closed
                return
            if self._flusher is None:
                self._flusher = ThreadPoolExecutor(1, thread_name_prefix="sdl-store-block")
            self._flusher.submit(self._flush_in_background)

    def _flush_in_background(self) -> None:
        try:
            self.flush()
        except Exception:  # reported to the RunEngine at the next document
            logger.exception("%s: writing a block of the store failed", self.path)

    def flush(self) -> None:
        """Write everything waiting into Zarr (one block) and trim the log.

        Documents may go on arriving (from any thread) while the block is written; they
        wait in the log and in memory for the next block."""
        with self._block_lock:
            with self._lock:
                if not self.lock.held or self._block_error is not None:
                    return
                block = self._take_block()
            if block is not None:
                self._write_block(*block)

    def close(self, *, release_lock: bool = True) -> None:
        """Write what is waiting and release the store's writer lock (idempotent).

        Another writer may now open the store. The lock is released also when the last
        block fails; then (and when an earlier block failed) the first close raises
        :class:`~sdl.errors.StoreError` or what the block raised.
        """
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.shutdown(wait=True)
        with self._block_lock, self._lock:
            was_held = self.lock.held
            try:
                if was_held:
                    try:
                        if self._block_error is None:
                            self._flush_block()
                    finally:
                        self._wal.close()
            finally:
                if release_lock:
                    self.lock.release()
            if was_held and self._block_error is not None:
                err = self._block_error
                raise StoreError(
                    f"{self.path}: writing a block of the store failed "
                    f"({type(err).__name__}: {err}); the documents since the last block are "
                    f"in its log, and are written into Zarr when the store is opened again"
                ) from err

    def __enter__(self) -> ZarrWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_operator_action(self, action: str, *, who: str = "", detail: str = "") -> None:
        """Append ``{time, action, who, detail}`` to the store's ``operator_log`` attribute."""
        with self._lock:
            entry = {"time": time.time(), "action": action, "who": who, "detail": detail}
            log = list(self.root.attrs.get("operator_log", []))
            log.append(entry)
            self.root.attrs["operator_log"] = log

    def on_state_change(self, new_state: str, old_state: str) -> None:
        """A RunEngine ``state_hook``: write a block at a pause and when idle, and log the
        operator-visible change.

        Never raises: bluesky calls it inside its own state changes, where an exception
        makes ``RE.stop()`` (or resume, abort) fail, and in one test left the RunEngine
        where a later ``RE.halt()`` waited for good. A block that fails is logged and
        raised at the next document or by :meth:`close`, as a block written in the
        background is; a failure to log the change is logged."""
        try:
            if new_state == "paused" or new_state == "idle":
                self.flush()
        except Exception:
            logger.exception("%s: writing a block of the store failed", self.path)
        try:
            if new_state == "paused":
                self.log_operator_action("running -> paused", who="RunEngine")
            elif old_state == "paused":
                self.log_operator_action(f"paused -> {new_state}", who="RunEngine")
        except Exception:
            logger.exception("%s: logging the RunEngine's %s failed", self.path, new_state)


def _existing_version(path: Path) -> int | None:
    try:
        meta = json.loads((path / "zarr.json").read_text())
        return int(meta["attributes"][L.ROOT_ATTR]["format_version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
