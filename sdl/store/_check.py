"""Does the campaign table agree with the event log it is derived from?

The ``experiments/`` table is derived data. The source of truth is the event log: the
``experiments`` stream of every campaign run (one event per life-cycle transition), which
the writer appends *before* it updates the table. :func:`check_store` replays that log
through :meth:`CampaignTable.apply <sdl.store._table.CampaignTable.apply>` into a table in
memory and compares it with the stored one, array by array and row by row, so a deleted,
truncated or stale piece of the table is named instead of being read as a shorter
campaign.

A crash between the log's append and the table's update leaves the table one transition
behind the log: the last logged event's row still has its previous status (the commit mark
of a row). That is not damage; :func:`require_intact` (run by every resume) completes it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
import zarr.storage

from sdl.errors import StoreError

from . import _layout as L
from ._init import store_version
from ._lock import lock_holder
from ._reader import CampaignStore
from ._table import CampaignTable
from ._wal import LEDGER, WAL, read_applied, read_records

__all__ = ["StoreDamagedError", "StoreProblem", "check_store", "require_intact"]

LEDGER_STREAM = "experiments"  # the campaign run's stream of transitions (sdl._ledger)
_SHOWN = 3  # rows quoted per damaged array


@dataclass(frozen=True)
class StoreProblem:
    """One thing wrong with a store.

    Attributes:
        where: what is damaged: a path inside the store (``experiments/status``,
            ``experiments/status/c/0``, ``runs/<uid>``) or ``experiment N``.
        what: what is wrong with it.
        kind: ``"table"`` (``sdl repair`` rebuilds it from the event log), ``"log"`` (the
            event log itself is damaged or lacks experiments that ran: repair cannot help)
            or ``"runs"`` (an experiment's run is missing from ``runs/``).
    """

    where: str
    what: str
    kind: str = "table"

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


class StoreDamagedError(StoreError):
    """The store's table disagrees with its event log (see :func:`check_store`).

    Attributes:
        problems: the :class:`StoreProblem` list.
    """

    def __init__(self, message: str, problems: list[StoreProblem]):
        super().__init__(message)
        self.problems = problems


# -- the event log ---------------------------------------------------------------------------


@dataclass
class _Event:
    values: dict[str, Any]
    time: float
    where: str  # its campaign run


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def read_log(root: zarr.Group) -> tuple[list[_Event], list[StoreProblem]]:
    """Every logged transition in order (campaign runs in order, events by ``seq_num``).

    Format 2: the ``experiments`` rows of the stream tables up to the last block's mark,
    then the transitions the write-ahead log holds beyond it (``where`` = ``_wal``).
    """
    if store_version(root) >= 2:
        return _read_log_v2(root)
    events: list[_Event] = []
    problems: list[StoreProblem] = []
    runs = root[L.RUNS] if L.RUNS in root else None
    for uid in root.attrs.get("campaign_runs", []):
        where = f"runs/{uid}/{LEDGER_STREAM}"
        if runs is None or uid not in runs:
            problems.append(StoreProblem(f"runs/{uid}", "this campaign run is missing", "log"))
            continue
        if LEDGER_STREAM not in runs[uid]:
            continue  # it ended before its first transition
        try:
            stream = runs[uid][LEDGER_STREAM]
            if L.STREAM_TIME not in stream:
                continue  # a crash before its first event was committed (time is the mark)
            times = stream[L.STREAM_TIME][:]
            cut = np.flatnonzero(np.isnan(times))  # rows cut by a crash mid-append
            n = int(cut[0]) if len(cut) else len(times)
            if n == 0:
                continue
            columns = {key: arr[:n] for key, arr in stream[L.STREAM_DATA].arrays()}
        except Exception as err:  # any decoding error: the log cannot be read
            problems.append(StoreProblem(where, f"unreadable ({type(err).__name__}: {err})", "log"))
            continue
        short = sorted(k for k, v in columns.items() if len(v) < n)
        if short or "experiment_id" not in columns or "status" not in columns:
            problems.append(
                StoreProblem(
                    where, f"{n} events but data keys {short or ['status']} are short", "log"
                )
            )
            continue
        for i in range(n):
            values = {key: _plain(v[i]) for key, v in columns.items()}
            events.append(_Event(values, float(times[i]), where))
    return events, problems


def _read_log_v2(root: zarr.Group) -> tuple[list[_Event], list[StoreProblem]]:
    """The log as of one block mark, read again if a live writer finished a block meanwhile."""
    path = Path(root.store.root)
    for _ in range(100):
        mark = read_applied(path / WAL)
        try:
            tail = list(read_records(path / WAL, after=int(mark.get("through", -1))))
            result = _read_log_v2_at(root, mark, tail)
        except FileNotFoundError:  # a segment trimmed after a block: read again
            time.sleep(0.002)
            continue
        except (OSError, ValueError) as err:  # e.g. a record damaged in the middle
            return [], [StoreProblem(WAL, f"unreadable ({type(err).__name__}: {err})", "log")]
        if read_applied(path / WAL).get("through") == mark.get("through"):
            return result
    return [], [StoreProblem(WAL, "changed faster than it could be read", "log")]


def _read_log_v2_at(
    root: zarr.Group, mark: dict[str, Any], tail: list
) -> tuple[list[_Event], list[StoreProblem]]:
    events: list[_Event] = []
    problems: list[StoreProblem] = []
    logged_starts = {doc["uid"] for _, name, doc, _ in tail if name == "start"}
    try:
        uids = root[L.RUNS]["uid"][:]
    except Exception as err:
        return [], [
            StoreProblem(f"{L.RUNS}/uid", f"unreadable ({type(err).__name__}: {err})", "log")
        ]
    rows = {str(u): i for i, u in enumerate(uids) if u}
    for uid in root.attrs.get("campaign_runs", []):
        row = rows.get(uid)
        if row is None:
            if uid not in logged_starts:  # (else: in the log, not yet in a block)
                problems.append(
                    StoreProblem(f"{L.RUNS}/uid", f"campaign run {uid} is missing", "log")
                )
            continue
        try:
            table = json.loads(str(root[L.RUNS]["streams"][row]) or "{}").get(LEDGER_STREAM)
        except Exception as err:
            problems.append(
                StoreProblem(
                    f"{L.RUNS}/streams", f"unreadable ({type(err).__name__}: {err})", "log"
                )
            )
            continue
        if table is None:
            continue  # it ended before its first transition
        where = f"{L.STREAMS}/{table}"
        try:
            g = root[L.STREAMS][table]
            n = int(mark.get("lengths", {}).get(where, 0))
            if L.STREAM_TIME not in g or n == 0:
                # no block committed a row (time is the mark; a crash may cut the first
                # block after its data arrays): every row is still in the log
                continue
            times = g[L.STREAM_TIME][:n]
            n = len(times)
            mine = np.flatnonzero(g[L.RUN_ROW][:n] == row)
            seq = g[L.STREAM_SEQ][:n][mine]
            mine = mine[np.argsort(seq, kind="stable")]
            columns = {key: arr[:n][mine] for key, arr in g[L.STREAM_DATA].arrays()}
        except Exception as err:  # any decoding error: the log cannot be read
            problems.append(StoreProblem(where, f"unreadable ({type(err).__name__}: {err})", "log"))
            continue
        if "experiment_id" not in columns or "status" not in columns:
            problems.append(
                StoreProblem(where, "the data keys experiment_id, status are missing", "log")
            )
            continue
        for i, r in enumerate(mine):
            values = {key: _plain(v[i]) for key, v in columns.items()}
            events.append(_Event(values, float(times[r]), where))
    logged = [
        _Event(dict(doc["data"]), float(doc["time"]), WAL)
        for _, name, doc, flags in tail
        if flags & LEDGER
    ]
    return events + logged, problems


def _spec(root: zarr.Group) -> dict[str, Any]:
    spec = dict(root.attrs.get("campaign", {}))
    if not spec:  # the root lost it: the first campaign run's start document has it
        for uid in root.attrs.get("campaign_runs", []):
            try:
                if store_version(root) >= 2:
                    spec = dict(
                        CampaignStore(root.store.root).run(uid).start.get("sdl_campaign", {})
                    )
                else:
                    spec = dict(root[L.RUNS][uid].attrs["start"].get("sdl_campaign", {}))
                break
            except KeyError:
                continue
    return spec


def new_table(root: zarr.Group, spec: dict[str, Any]) -> CampaignTable:
    """An (empty or existing) table under ``root`` with the campaign's columns."""
    return CampaignTable(
        root,
        spec.get("parameters", []),
        [o["name"] for o in spec.get("objectives", [])],
        [m["name"] for m in spec.get("measurements", [])],
    )


def _arrays(table: CampaignTable) -> Iterator[tuple[str, zarr.Array]]:
    """(path inside ``experiments/``, array) of every column."""
    yield from table.columns.items()
    for group, arrays in (
        (L.TABLE_PARAMETERS, table.parameters),
        (L.TABLE_OBJECTIVES, table.objectives),
        (L.TABLE_MEASUREMENTS, table.measurements),
    ):
        for name, arr in arrays.items():
            yield f"{group}/{name}", arr


def replay(events: list[_Event], spec: dict[str, Any]) -> dict[str, np.ndarray]:
    """The table the log describes, built in memory by the writer's own ``apply``."""
    root = zarr.open_group(zarr.storage.MemoryStore(), mode="w", zarr_format=3)
    table = new_table(root, spec)
    for event in events:
        table.apply(event.values, event.time)
    return {rel: arr[:] for rel, arr in _arrays(table)}


# -- the stored table ------------------------------------------------------------------------


@dataclass
class _Column:
    values: np.ndarray | None  # None: missing or unreadable metadata
    problem: StoreProblem | None = None
    bad_rows: tuple[range, ...] = ()  # rows of unreadable chunks
    missing_chunks: tuple[tuple[range, str], ...] = ()  # rows, chunk path (no file)


def _read_column(path: Path, rel: str) -> _Column:
    where = f"{L.TABLE}/{rel}"
    meta = path / where / "zarr.json"
    if not meta.exists():
        return _Column(None)
    try:
        arr = zarr.open_array(store=str(path), path=where, mode="r", zarr_format=3)
    except Exception as err:
        return _Column(
            None, StoreProblem(f"{where}/zarr.json", f"unreadable ({type(err).__name__}: {err})")
        )
    n, chunk = arr.shape[0], arr.chunks[0]
    values = np.full(n, arr.fill_value, dtype=object)
    bad, missing = [], []
    encode = arr.metadata.chunk_key_encoding.encode_chunk_key
    for i in range(0, n, chunk):
        rows = range(i, min(i + chunk, n))
        key = encode((i // chunk,))
        if not (path / where / key).exists():
            missing.append((rows, f"{where}/{key}"))  # reads as the fill value
            continue
        try:
            values[rows.start : rows.stop] = arr[rows.start : rows.stop]
        except Exception as err:
            bad.append(rows)
            return _Column(
                values,
                StoreProblem(f"{where}/{key}", f"unreadable chunk ({type(err).__name__}: {err})"),
                tuple(bad),
                tuple(missing),
            )
    return _Column(values, None, tuple(bad), tuple(missing))


def _fill(ref: np.ndarray) -> Any:
    if ref.dtype.kind in "OUT":
        return ""
    return -1 if ref.dtype.kind in "iu" else np.nan


def _equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if b.dtype.kind == "f":
        a = np.asarray(a, dtype=float)
        return (a == b) | (np.isnan(a) & np.isnan(b))
    if b.dtype.kind in "OUT":
        return np.asarray([str(x) for x in a]) == np.asarray([str(x) for x in b])
    return np.asarray(a) == b


def _quote(v: Any) -> str:
    return repr(_plain(v))


# -- the check -------------------------------------------------------------------------------


def _run_starts(path: Path) -> dict[str, dict[str, Any]]:
    store = CampaignStore(path)
    if store.format_version >= 2:
        try:
            return {uid: start for uid, (start, _) in store.run_documents().items()}
        except (KeyError, ValueError):
            return {}
    runs = path / L.RUNS
    out = {}
    for child in sorted(runs.iterdir()) if runs.is_dir() else []:
        try:
            meta = json.loads((child / "zarr.json").read_text())
            out[child.name] = dict(meta.get("attributes", {}).get("start", {}))
        except (OSError, ValueError):
            out[child.name] = {}
    return out


def _inspect(path: Path, *, live: bool) -> tuple[list[StoreProblem], list[_Event]]:
    """(problems, logged transitions the table lacks only because of a crash between the two)."""
    try:
        root = zarr.open_group(str(path), mode="r", zarr_format=3)
        spec = _spec(root)
    except Exception as err:
        return [StoreProblem("zarr.json", f"unreadable ({type(err).__name__}: {err})", "root")], []
    # the table before the log: a live writer appends the log first, so this table is
    # never ahead of the log read next
    names = [*L.TABLE_COLUMNS]
    for group, key in (
        (L.TABLE_PARAMETERS, "parameters"),
        (L.TABLE_OBJECTIVES, "objectives"),
        (L.TABLE_MEASUREMENTS, "measurements"),
    ):
        names += [f"{group}/{entry['name']}" for entry in spec.get(key, [])]
    stored = {name: _read_column(path, name) for name in names}
    groups_ok = {
        g: _readable_json(path / L.TABLE / g / "zarr.json")
        for g in ("", L.TABLE_PARAMETERS, L.TABLE_OBJECTIVES, L.TABLE_MEASUREMENTS)
    }
    starts = {} if live else _run_starts(path)

    events, problems = read_log(root)
    if problems:
        return problems, []
    ref = replay(events, spec)
    n_ref = len(ref["status"])
    if n_ref == 0:
        return [], []

    for group, ok in groups_ok.items():
        if ok is not True:
            where = "/".join(p for p in (L.TABLE, group, "zarr.json") if p)
            problems.append(StoreProblem(where, f"{ok}: the group cannot be opened"))

    # rows the table may lack without damage
    status_col = stored["status"]
    table_status = status_col.values if status_col.values is not None else np.empty(0, object)

    def status_at(row: int) -> str:
        return str(table_status[row]) if row < len(table_status) else ""

    tolerated: set[int] = set()
    pending: list[_Event] = []
    v2 = store_version(root) >= 2
    if live or v2:
        # live: the table may lag the log by any number of transitions; format 2 after a
        # crash: by those still in the write-ahead log (the next writer writes them)
        in_wal = {int(e.values["experiment_id"]) for e in events if e.where == WAL}
        logged: dict[int, set[str]] = {}
        for e in events:
            logged.setdefault(int(e.values["experiment_id"]), set()).add(str(e.values["status"]))
        for row, statuses in logged.items():
            if not live and row not in in_wal:
                continue
            if status_at(row) in statuses | {""} and status_at(row) != ref["status"][row]:
                tolerated.add(row)
    else:
        last = events[-1]
        row = int(last.values["experiment_id"])
        before = ""
        for e in events[:-1]:
            if int(e.values["experiment_id"]) == row:
                before = str(e.values["status"])
        if status_at(row) == before != str(last.values["status"]):
            tolerated.add(row)
            pending.append(last)

    for rel, col in stored.items():
        want = ref[rel]
        where = f"{L.TABLE}/{rel}"
        if col.problem is not None:
            problems.append(col.problem)
        if col.values is None:
            if col.problem is None and np.any(~_equal(np.full(n_ref, _fill(want)), want)):
                problems.append(StoreProblem(where, "missing (no zarr.json)"))
            continue
        have = col.values
        n = len(have)
        if n < n_ref and not set(range(n, n_ref)) <= tolerated:
            problems.append(
                StoreProblem(where, f"{n} rows, but the event log has {n_ref} experiments")
            )
        if rel == "status" and n > n_ref and any(str(s) for s in have[n_ref:]):
            extra = [i for i in range(n_ref, n) if str(have[i])]
            problems.append(
                StoreProblem(
                    where,
                    f"experiment(s) {extra[:_SHOWN]} are in the table but not in the event log",
                )
            )
        m = min(n, n_ref)
        differ = np.flatnonzero(~_equal(have[:m], want[:m]))
        bad = set().union(*(set(r) for r in col.bad_rows)) if col.bad_rows else set()
        differ = [int(i) for i in differ if i not in tolerated and i not in bad]
        if not differ:
            continue
        lost = [key for rows, key in col.missing_chunks if any(i in rows for i in differ)]
        if lost:
            problems.append(StoreProblem(lost[0], "chunk file missing: its rows read as empty"))
        shown = ", ".join(
            f"experiment {i}: {_quote(have[i])} in the table, {_quote(want[i])} in the log"
            for i in differ[:_SHOWN]
        )
        label = "status" if rel == "status" else "values"
        problems.append(
            StoreProblem(where, f"{len(differ)} row(s) with {label} unlike the event log ({shown})")
        )

    if not live:
        problems += _check_runs(spec, events, ref, starts)
    return problems, pending


def _readable_json(path: Path) -> bool | str:
    try:
        json.loads(path.read_text())
        return True
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError) as err:
        return f"unreadable ({type(err).__name__})"


def _check_runs(
    spec: dict[str, Any],
    events: list[_Event],
    ref: dict[str, np.ndarray],
    starts: dict[str, dict[str, Any]],
) -> list[StoreProblem]:
    problems = []
    referenced = {str(e.values.get("run_uid", "")) for e in events} - {""}
    uid = spec.get("uid")
    n_ref = len(ref["status"])
    for run, start in starts.items():
        if start.get("sdl_campaign_uid") != uid or "sdl_experiment_id" not in start:
            continue
        if run in referenced:
            continue
        exp = int(start["sdl_experiment_id"])
        status = str(ref["status"][exp]) if exp < n_ref else ""
        # cut by a crash (resume attaches or interrupts it): not referenced yet, not damage
        if status in ("planned", "running", "interrupted"):
            continue
        if "sdl_step" in start and status:
            continue  # a lab experiment's earlier steps: the table names its last run only
        what = (
            f"experiment {exp} ran here, but the event log has no experiment {exp}"
            if not status
            else f"experiment {exp} ran here, but the log gives it run "
            f"{_quote(ref['run_uid'][exp])} ({status})"
        )
        problems.append(StoreProblem(f"{L.RUNS}/{run}", what, "log"))
    for run in sorted(referenced - set(starts)):
        problems.append(
            StoreProblem(f"{L.RUNS}/{run}", "referenced by the event log, missing", "runs")
        )
    return problems


def check_store(store: str | os.PathLike) -> list[StoreProblem]:
    """Compare the store's campaign table with its event log; return what is damaged.

    Detects missing, short or unreadable table arrays (and names the chunk file), rows
    whose values or status differ from the last logged transition, experiment runs under
    ``runs/`` the log does not account for, and a damaged log. While another process
    writes the store (it holds the writer lock) the table may lag the log by any number
    of transitions, and that is not reported. An empty list: the store is intact.

    Example:
        >>> for problem in sdl.store.check_store("runs/color.zarr"):  # doctest: +SKIP
        ...     print(problem)
    """
    path = Path(store)
    if not (path / "zarr.json").exists():
        raise StoreError(f"no campaign store at {path} (no zarr.json there)")
    return _inspect(path, live=lock_holder(path) is not None)[0]


def damage_message(store: str | os.PathLike, problems: list[StoreProblem]) -> str:
    """One message naming the damage and what to do about it."""
    listed = "; ".join(str(p) for p in problems[:8])
    more = f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""
    if any(p.kind in ("log", "root") for p in problems):
        advice = (
            "the event log (runs/<uid>/experiments) or the store's zarr.json is damaged too, "
            "so the table cannot be rebuilt from it: restore the store from a backup"
        )
    else:
        advice = (
            f"the event log is intact: rebuild the table from it with 'sdl repair {store}' "
            f"(sdl.store.repair_store), which keeps the damaged table aside"
        )
    return f"store {store} is damaged: {listed}{more}. {advice}"


def require_intact(root: zarr.Group) -> None:
    """Refuse a damaged store; complete a transition a crash left logged but not in the table.

    For the holder of the store's writer lock (resume, repair).

    Raises:
        StoreDamagedError: the table disagrees with the event log (see :func:`check_store`).
    """
    path = Path(root.store.root)  # a local store (the writer's)
    problems, pending = _inspect(path, live=False)
    blocking = [p for p in problems if p.kind != "runs"]
    if blocking:
        raise StoreDamagedError(damage_message(path, problems), problems)
    if pending:
        table = new_table(root, _spec(root))
        for event in pending:
            table.apply(event.values, event.time)
