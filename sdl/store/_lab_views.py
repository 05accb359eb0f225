"""Per-station views of a lab campaign, read from its campaign runs' streams.

A lab campaign's runs (``sdl_role: "campaign"``, one per start or resume) record, besides
the experiment table, a ``steps`` stream (one event per step transition: queued, started,
done, failed, cancelled; and lab-wide ``stalled`` records), a ``stations`` stream (one
event per change of a station's service) and the ``planner`` stream (one event per ask,
at its end, with ``ask_seconds``). From them:

* :func:`read_steps` and :func:`read_station_log`: the events of every campaign run;
* :func:`step_attempts` and :func:`step_intervals`: one row per attempt of a step
  (queued, started, finished);
* :func:`step_table_columns`: the per-step columns of the experiment table;
* :func:`utilization` and :func:`station_overview`: busy and idle time of each station,
  idle time split by its cause, and what each station does now.

A one-instrument campaign has none of these streams: every function then returns an
empty table with its columns.
"""

from __future__ import annotations

import fnmatch
import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "IDLE_CAUSES",
    "INTERVAL_COLUMNS",
    "STATION_COLUMNS",
    "STEP_COLUMNS",
    "LabTimeline",
    "read_station_log",
    "read_steps",
    "station_overview",
    "station_time",
    "step_attempts",
    "step_intervals",
    "step_table_columns",
    "utilization",
]

STEP_STREAM = "steps"
STATION_STREAM = "stations"
PLANNER_STREAM = "planner"

STEP_COLUMNS = [
    "time", "experiment_id", "step", "index", "status", "station", "lane", "resources",
    "run_uids", "cause", "correlation",
]  # fmt: skip
STATION_COLUMNS = ["time", "station", "in_service", "cause", "who"]
INTERVAL_COLUMNS = [
    "experiment_id", "step", "index", "station", "lane", "resources", "queued", "started",
    "finished", "status",
]  # fmt: skip
#: Idle time of a station by cause, in the order a moment of idleness is attributed.
IDLE_CAUSES = (
    "idle_out_of_service",
    "idle_waiting_lease",
    "idle_waiting_robot",
    "idle_waiting_planner",
    "idle_no_work",
)
UTILIZATION_COLUMNS = [
    "capacity", "steps_done", "steps_failed", "busy_s", "wall_s", "utilization", "idle_s",
    *IDLE_CAUSES,
]  # fmt: skip
#: The per-step columns of the experiment table, ``<step>_<suffix>``.
STEP_TABLE_SUFFIXES = ("station", "queued", "started", "finished")

_ENDED = ("done", "failed", "cancelled")

Interval = tuple[float, float]


# -- reading the streams --------------------------------------------------------------------
@dataclass
class _RunStreams:
    """The lab streams of one campaign run; ``end``: when it ended (None: still running)."""

    uid: str
    end: float | None
    steps: pd.DataFrame
    stations: pd.DataFrame
    planner: pd.DataFrame


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def _stream(run: Any, name: str, columns: Sequence[str]) -> pd.DataFrame:
    """``name`` of ``run`` (its ``columns`` and ``seq_num``) in emission order; empty if absent."""
    try:
        if name not in run.streams:
            return _empty([*columns, "seq_num"])
        df = run.to_dataframe(name)
    except (KeyError, ValueError, OSError):  # being written right now: read it next time
        return _empty([*columns, "seq_num"])
    for c in columns:
        if c not in df:
            df[c] = (
                "" if c in ("cause", "who", "station", "step", "status", "correlation") else np.nan
            )
    df = df[[*columns, *(["seq_num"] if "seq_num" in df else [])]]
    return df.sort_values("seq_num" if "seq_num" in df else "time", kind="stable")


def _json_list(text: Any) -> list:
    try:
        value = json.loads(str(text)) if text not in (None, "") else []
    except ValueError:
        return []
    return list(value) if isinstance(value, list) else []


def _campaign_streams(store: Any, steps_only: bool = False) -> list[_RunStreams]:
    """The lab streams of every campaign run, oldest first (one consistent read);
    ``steps_only``: the ``stations`` and ``planner`` streams are left empty."""
    if store.format_version >= 2:
        live = store._live()
        known = set(live.uids())
        views = {uid: live.run(uid) for uid in store.campaign_runs if uid in known}
    else:
        views = {}
        for uid in store.campaign_runs:
            try:
                views[uid] = store.run(uid)
            except KeyError:
                continue
    out = []
    for uid, run in views.items():
        steps = _stream(run, STEP_STREAM, STEP_COLUMNS)
        if len(steps):
            steps = steps.assign(
                experiment_id=steps["experiment_id"].astype("int64"),
                index=steps["index"].astype("int64"),
                lane=steps["lane"].astype("int64"),
                resources=[_json_list(v) for v in steps["resources"]],
                run_uids=[_json_list(v) for v in steps["run_uids"]],
                **{
                    c: steps[c].astype(str)
                    for c in ("step", "status", "station", "cause", "correlation")
                },
            )
        stations = _empty(STATION_COLUMNS)
        planner = _empty(["time", "ask_seconds"])
        if not steps_only:
            stations = _stream(run, STATION_STREAM, STATION_COLUMNS)
            if len(stations):
                stations = stations.assign(in_service=stations["in_service"].astype("int64"))
            planner = _stream(run, PLANNER_STREAM, ["time", "ask_seconds"])
        try:
            stop = run.stop
        except (KeyError, ValueError):
            stop = None
        end = float(stop["time"]) if stop and "time" in stop else None
        out.append(_RunStreams(uid, end, steps, stations, planner))
    # a run that a later one resumed ended, whether or not it wrote its stop (a crash)
    for earlier in out[:-1]:
        if earlier.end is None:
            times = [*earlier.steps["time"], *earlier.stations["time"], *earlier.planner["time"]]
            earlier.end = float(max(times)) if times else 0.0
    return out


def _concat(frames: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    frames = [f[list(columns)] for f in frames if len(f)]
    if not frames:
        return _empty(columns)
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values("time", kind="stable").reset_index(drop=True)


def step_attempts(store: Any) -> pd.DataFrame:
    """One row per attempt of a step, queued ones too (reads only the ``steps`` streams):
    the columns of :func:`step_intervals` with ``status`` also ``queued``, and ``cause``
    and ``run_uids``."""
    return _attempts(_campaign_streams(store, steps_only=True))


def read_steps(store: Any) -> pd.DataFrame:
    """Every ``steps`` event of every campaign run, sorted by time.

    Columns: ``time`` (seconds since the epoch), ``experiment_id`` (-1 for a lab-wide
    ``stalled`` record), ``step``, ``index``, ``status`` (``queued``, ``started``,
    ``done``, ``failed``, ``cancelled`` or ``stalled``), ``station`` ("" while queued),
    ``lane``, ``resources`` and ``run_uids`` (lists), ``cause``, ``correlation`` (the
    step's correlation uid on ``started``; "" in stores written before it was recorded).
    """
    return _concat([r.steps for r in _campaign_streams(store, steps_only=True)], STEP_COLUMNS)


def read_station_log(store: Any) -> pd.DataFrame:
    """Every ``stations`` event: ``time``, ``station``, ``in_service`` (0 or 1), ``cause``, ``who``."""
    return _concat([r.stations for r in _campaign_streams(store)], STATION_COLUMNS)


# -- step attempts ------------------------------------------------------------------------------
def _new_attempt(ev: Any) -> dict[str, Any]:
    return {
        "experiment_id": int(ev.experiment_id), "step": ev.step, "index": int(ev.index),
        "station": "", "lane": -1, "resources": [], "queued": math.nan, "started": math.nan,
        "finished": math.nan, "status": "queued", "cause": "", "run_uids": [],
    }  # fmt: skip


def _attempts(runs: list[_RunStreams]) -> pd.DataFrame:
    """One row per attempt of a step: queued (``queued``), then started (``running``),
    then ended (``done``, ``failed``, ``cancelled``); an attempt its campaign run left
    open is cancelled when the run ended, unless the run is still going."""
    rows: list[dict[str, Any]] = []
    for k, run in enumerate(runs):
        live = k == len(runs) - 1 and run.end is None
        open_: dict[tuple[int, int], dict[str, Any]] = {}  # (experiment, step index) -> attempt
        ended: set[tuple[int, int]] = set()  # steps whose last attempt has ended
        for ev in run.steps.itertuples(index=False):
            if ev.experiment_id < 0:
                continue  # a lab-wide record (stalled)
            key = (int(ev.experiment_id), int(ev.index))
            if ev.status in _ENDED and key not in open_ and key in ended:
                continue  # an end recorded again after a stop cut its record (docs/architecture.md)
            ended.discard(key)
            if ev.status == "queued" or key not in open_:
                open_[key] = _new_attempt(ev)
                rows.append(open_[key])
            att = open_[key]
            if ev.status == "queued":
                att["queued"] = float(ev.time)
                continue
            where = {"station": ev.station, "lane": int(ev.lane), "resources": list(ev.resources)}
            if ev.status == "started":
                att.update(where, started=float(ev.time), status="running")
            elif ev.status in _ENDED:
                del open_[key]
                ended.add(key)
                att.update(finished=float(ev.time), status=ev.status, cause=ev.cause)
                att.update(run_uids=list(ev.run_uids), **({} if att["station"] else where))
        if not live:  # the run ended: what it left open ended with it
            for att in open_.values():
                att.update(finished=run.end, status="cancelled", cause="campaign run ended")
    cols = [*INTERVAL_COLUMNS, "cause", "run_uids"]
    if not rows:
        return _empty(cols)
    df = pd.DataFrame(rows, columns=cols)
    return df.astype({"experiment_id": "int64", "index": "int64", "lane": "int64"})


def step_intervals(store: Any) -> pd.DataFrame:
    """One row per step that started, in order of start.

    Columns: ``experiment_id``, ``step``, ``index``, ``station``, ``lane``, ``resources``,
    ``queued``, ``started``, ``finished`` (seconds since the epoch; ``finished`` is NaN
    while the step runs) and ``status`` (``done``, ``failed``, ``cancelled`` or
    ``running``). A step its campaign run left running (a crash) reads as cancelled when
    the run ended.
    """
    return LabTimeline(store).intervals


def step_table_columns(
    attempts: pd.DataFrame, steps: Iterable[str], index: pd.Index
) -> pd.DataFrame:
    """The per-step columns of the experiment table, one row per experiment of ``index``.

    For each step name: ``<step>_station``, ``<step>_queued``, ``<step>_started``,
    ``<step>_finished``, from the last attempt of that step of that experiment ("" and
    NaN where it has none).
    """
    steps = list(steps)
    out = pd.DataFrame(index=index)
    last = (
        attempts.drop_duplicates(["experiment_id", "step"], keep="last").set_index(
            ["step", "experiment_id"]
        )
        if len(attempts)
        else None
    )
    for name in steps:
        part = None
        if last is not None and name in last.index.get_level_values(0):
            part = last.loc[name].reindex(index)
        for suffix in STEP_TABLE_SUFFIXES:
            col = f"{name}_{suffix}"
            if suffix == "station":
                values = part["station"].fillna("") if part is not None else ""
                out[col] = pd.Series(values, index=index, dtype=object)
            else:
                values = part[suffix].astype(float) if part is not None else math.nan
                out[col] = pd.Series(values, index=index, dtype=float)
    return out


# -- intervals ------------------------------------------------------------------------------------
def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, disjoint union of ``intervals`` (empty ones dropped)."""
    out: list[list[float]] = []
    for a, b in sorted((float(a), float(b)) for a, b in intervals if b > a):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _intersect(xs: list[Interval], ys: list[Interval]) -> list[Interval]:
    """Intersection of two merged interval lists."""
    out, i, j = [], 0, 0
    while i < len(xs) and j < len(ys):
        a, b = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        if b > a:
            out.append((a, b))
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return out


def _subtract(xs: list[Interval], ys: list[Interval]) -> list[Interval]:
    """``xs`` less ``ys`` (both merged)."""
    if not xs:
        return []
    lo, hi = xs[0][0], xs[-1][1]
    gaps, t = [], lo
    for a, b in ys:
        if a > t:
            gaps.append((t, min(a, hi)))
        t = max(t, b)
    if t < hi:
        gaps.append((t, hi))
    return _intersect(xs, _merge(gaps))


def _length(xs: list[Interval]) -> float:
    return float(sum(b - a for a, b in xs))


def _pool(pattern: str, stations: Sequence[str]) -> set[str]:
    """Stations a workflow step's station field selects: a name, a glob, or a
    comma-separated list (as ``Workflow.describe`` writes a list)."""
    parts = [p for p in str(pattern).split(",") if p]
    return {s for s in stations if any(fnmatch.fnmatchcase(s, p) for p in parts)}


def is_robot(name: str) -> bool:
    """Whether a station or resource moves samples: its name has ``robot`` in it."""
    return "robot" in name.lower()


def _waiting(attempts: pd.DataFrame, steps: set[str], t1: float) -> list[Interval]:
    """When a step among ``steps`` was queued and not started."""
    out = []
    for a in attempts.itertuples(index=False):
        if a.step not in steps or a.queued != a.queued:
            continue
        end = a.started if a.started == a.started else a.finished
        out.append((a.queued, end if end == end else t1))
    return _merge(out)


def _moving(attempts: pd.DataFrame, steps: set[str], t1: float) -> list[Interval]:
    """When a step among ``steps`` was queued or running (a sample on its way)."""
    out = []
    for a in attempts.itertuples(index=False):
        if a.step not in steps or a.queued != a.queued:
            continue
        out.append((a.queued, a.finished if a.finished == a.finished else t1))
    return _merge(out)


def station_time(
    attempts: pd.DataFrame,
    capacities: dict[str, int],
    pools: dict[str, set[str]],
    order: Sequence[str],
    out_of_service: dict[str, list[Interval]],
    asks: list[Interval],
    window: tuple[float, float] | None,
) -> pd.DataFrame:
    """Busy and idle time of each station, idle time by cause (see :func:`utilization`).

    Pure interval arithmetic on step attempts, shared by the store's views and the
    digital twin (:mod:`sdl.twin`), so a forecast and a measurement mean the same thing.

    Args:
        attempts: one row per step attempt (:data:`INTERVAL_COLUMNS`; ``started`` NaN
            while queued, ``finished`` NaN while running).
        capacities: station -> capacity.
        pools: workflow step name -> the stations it may run on.
        order: the workflow's step names, in order.
        out_of_service: station -> merged intervals it was out of service.
        asks: merged intervals the planner was asking.
        window: the wall time ``(t0, t1)``; None: nothing started.
    """
    att = attempts[attempts["started"].notna()] if len(attempts) else attempts
    t1 = window[1] if window is not None else 0.0
    asks = _merge(asks)
    # a sample bound for station S is "with the robot" while a step on a robot, followed
    # in the workflow by a step that may run on S, is queued or runs
    robot_steps = {
        name: order[k + 1]
        for k, name in enumerate(order[:-1])
        if any(is_robot(s) for s in pools.get(name, ()))
    }
    rows = {}
    for station, cap in capacities.items():
        mine = att[att["station"] == station]
        row: dict[str, Any] = {
            "capacity": cap,
            "steps_done": int((mine["status"] == "done").sum()),
            "steps_failed": int((mine["status"] == "failed").sum()),
        }
        if window is None:
            row.update(dict.fromkeys(UTILIZATION_COLUMNS[3:], 0.0))
            row["utilization"] = math.nan
            rows[station] = row
            continue
        t0, t1 = window
        whole = [(t0, t1)] if t1 > t0 else []
        mine_steps = {name for name, pool in pools.items() if station in pool}
        feeding = {name for name, nxt in robot_steps.items() if nxt in mine_steps}
        why = (
            _intersect(whole, _merge(out_of_service.get(station, []))),
            _intersect(whole, _waiting(attempts, mine_steps, t1)),
            _intersect(whole, _moving(attempts, feeding, t1)),
            _intersect(whole, asks),
        )
        busy = 0.0
        causes = dict.fromkeys(IDLE_CAUSES, 0.0)
        for lane in range(cap):
            on_lane = mine[mine["lane"] == lane]
            ends = on_lane["finished"].astype(float).fillna(t1)
            spans = _intersect(whole, _merge(zip(on_lane["started"].astype(float), ends)))
            busy += _length(spans)
            idle = _subtract(whole, spans)
            for cause, when in zip(IDLE_CAUSES[:-1], why):
                part = _intersect(idle, when)
                causes[cause] += _length(part)
                idle = _subtract(idle, part)
            causes["idle_no_work"] += _length(idle)
        wall = t1 - t0
        row.update(
            busy_s=busy / cap,
            wall_s=wall,
            utilization=(busy / cap) / wall if wall > 0 else math.nan,
            idle_s=wall - busy / cap,
            **{c: v / cap for c, v in causes.items()},
        )
        rows[station] = row
    df = pd.DataFrame.from_dict(rows, orient="index", columns=UTILIZATION_COLUMNS)
    df.index.name = "station"
    return df


# -- the timeline -----------------------------------------------------------------------------------
@dataclass
class LabTimeline:
    """A lab campaign's streams read once, and the per-station views derived from them.

    Args:
        store: the :class:`~sdl.store.CampaignStore`.
        now: the time to take as now (default: the clock) for a campaign still running.
    """

    store: Any
    now: float | None = None
    runs: list[_RunStreams] = field(init=False)
    attempts: pd.DataFrame = field(init=False)

    def __post_init__(self) -> None:
        self.runs = _campaign_streams(self.store)
        self.attempts = _attempts(self.runs)
        if self.now is None:
            self.now = time.time()

    @property
    def live(self) -> bool:
        """Whether the last campaign run is still going (no stop document)."""
        return bool(self.runs) and self.runs[-1].end is None

    @property
    def lab(self) -> dict[str, Any]:
        return dict(self.store.campaign.get("lab") or {})

    @property
    def capacities(self) -> dict[str, int]:
        """Station name -> capacity, from the campaign's lab description."""
        return {s["name"]: int(s.get("capacity", 1)) for s in self.lab.get("stations", [])}

    @property
    def intervals(self) -> pd.DataFrame:
        """The attempts that started (see :func:`step_intervals`)."""
        started = self.attempts[self.attempts["started"].notna()]
        started = started.sort_values("started", kind="stable")
        return started[INTERVAL_COLUMNS].reset_index(drop=True)

    def window(self) -> tuple[float, float] | None:
        """The campaign's wall time: first step start to last step end (now while a step
        runs, or while the campaign run is live); None before any step started."""
        iv = self.intervals
        if iv.empty:
            return None
        t0 = float(iv["started"].min())
        ends = iv["finished"].fillna(self.now).astype(float)
        t1 = float(ends.max())
        if self.live:
            t1 = max(t1, float(self.now))
        return t0, t1

    def _out_of_service(self, station: str, t1: float) -> list[Interval]:
        """When ``station`` was out of service (a campaign run starts with every station in)."""
        out = []
        for run in self.runs:
            end = run.end if run.end is not None else t1
            since = None
            log = run.stations[run.stations["station"] == station]
            for ev in log.itertuples(index=False):
                if not ev.in_service and since is None:
                    since = float(ev.time)
                elif ev.in_service and since is not None:
                    out.append((since, float(ev.time)))
                    since = None
            if since is not None:
                out.append((since, end))
        return _merge(out)

    def _asks(self) -> list[Interval]:
        out = []
        for run in self.runs:
            for ev in run.planner.itertuples(index=False):
                seconds = float(ev.ask_seconds) if ev.ask_seconds == ev.ask_seconds else 0.0
                out.append((float(ev.time) - seconds, float(ev.time)))
        return _merge(out)

    def _pools(self) -> dict[str, set[str]]:
        """Workflow step name -> the stations its ``station`` field selects."""
        names = list(self.capacities)
        return {
            w["name"]: _pool(w.get("station", ""), names)
            for w in self.store.campaign.get("workflow", [])
        }

    def utilization(self) -> pd.DataFrame:
        """See :func:`utilization`."""
        window = self.window()
        t1 = window[1] if window is not None else float(self.now)
        caps = self.capacities
        return station_time(
            self.attempts,
            caps,
            self._pools(),
            [w["name"] for w in self.store.campaign.get("workflow", [])],
            {s: self._out_of_service(s, t1) for s in caps},
            self._asks(),
            window,
        )

    def in_service(self) -> dict[str, bool]:
        """Station -> whether it is in service now (per the last campaign run's log)."""
        state = dict.fromkeys(self.capacities, True)
        if self.runs:
            for ev in self.runs[-1].stations.itertuples(index=False):
                state[ev.station] = bool(ev.in_service)
        return state

    def doing(self) -> dict[str, str]:
        """Station -> what it does now: ``exp 12 anneal`` (lanes joined by ``; ``),
        ``idle`` or ``out of service``."""
        iv = self.intervals
        running = iv[iv["status"] == "running"].sort_values("lane")
        out = {}
        for station, ok in self.in_service().items():
            here = running[running["station"] == station]
            busy = [f"exp {int(r.experiment_id)} {r.step}" for r in here.itertuples()]
            if busy:
                out[station] = "; ".join(busy) + ("" if ok else " (out of service)")
            else:
                out[station] = "idle" if ok else "out of service"
        return out

    def overview(self) -> pd.DataFrame:
        """See :func:`station_overview`."""
        df = self.utilization()
        in_service = self.in_service()
        doing = self.doing()
        df.insert(0, "now", [doing.get(s, "idle") for s in df.index])
        df.insert(1, "in_service", [in_service.get(s, True) for s in df.index])
        return df


def utilization(store: Any, now: float | None = None) -> pd.DataFrame:
    """How each station of a lab campaign spent the campaign's wall time.

    The wall time is the campaign's: from the first step's start to the last step's end
    (to ``now`` while a step runs or the campaign run is live). Each station lane's time
    is busy (a step runs on it) or idle; a moment of idleness is attributed to the first
    of these causes that holds:

    * ``idle_out_of_service``: the station was out of service (``stations`` stream:
      from being taken out to being put back, or to the end of its campaign run);
    * ``idle_waiting_lease``: a step that may run on this station (its workflow step's
      station pool selects it) was queued and not started: it waited for another lease
      (the robot, a resource, an older experiment's reservation);
    * ``idle_waiting_robot``: a sample bound for this station was with the robot: a step
      on a robot (a station whose name has ``robot`` in it), followed in the workflow by
      a step that may run here, was queued or running;
    * ``idle_waiting_planner``: no step waited for it and the planner was asking (the
      ``planner`` stream: ``[time - ask_seconds, time]``);
    * ``idle_no_work``: the rest (upstream steps not done yet, the budget spent).

    Times are capacity-normalized: summed over the station's lanes and divided by its
    capacity, so ``busy_s + idle_s == wall_s`` and the five causes sum to ``idle_s``.

    Args:
        store: a :class:`~sdl.store.CampaignStore`.
        now: the time to take as now for a running campaign (default: the clock).

    Returns:
        One row per station (index ``station``): ``capacity``, ``steps_done``,
        ``steps_failed``, ``busy_s``, ``wall_s``, ``utilization`` (``busy_s / wall_s``,
        NaN before any step started), ``idle_s`` and the five causes, in seconds. Empty
        for a campaign without a lab.
    """
    return LabTimeline(store, now).utilization()


def station_overview(store: Any, now: float | None = None) -> pd.DataFrame:
    """:func:`utilization` with what each station does now: ``now`` (``exp 12 anneal``,
    ``idle`` or ``out of service``) and ``in_service``."""
    return LabTimeline(store, now).overview()
