"""Calibrate the twin's timing model from a lab campaign's store (``sdl twin calibrate``).

:func:`calibrate` reads what a real (or simulated) lab campaign recorded, through the
store's lab views (:mod:`sdl.store._lab_views`), and fits the timing model of
:class:`~sdl.twin._timing.TwinTiming`; :func:`write_timing` writes it as a YAML timing
file.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from sdl.errors import ConfigError, StoreError
from sdl.store import CampaignStore, open_store
from sdl.store._lab_views import LabTimeline, read_station_log

from ._timing import TwinTiming

__all__ = ["calibrate", "write_timing"]

logger = logging.getLogger(__name__)

#: A station's own duration of a step is kept when its mean differs from the lab-wide
#: mean by more than this (relative) ...
STATION_DEVIATION = 0.20
#: ... over at least this many done attempts.
STATION_MIN_SAMPLES = 3
#: Asks needed to fit the planner's time per observation.
PLANNER_MIN_ASKS = 5
#: The percentile of the gaps between an experiment's consecutive steps taken as handoff.
HANDOFF_PERCENTILE = 25

_DISTS = ("normal", "lognormal", "gamma", "exponential", "uniform", "fixed")


def _sig(x: float, digits: int = 4) -> float:
    """``x`` rounded to ``digits`` significant digits (a plain float)."""
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.{digits - 1}e}")


def _distribution(durations: np.ndarray, dist: str) -> dict[str, Any]:
    """The distribution of ``dist`` fitted to ``durations`` (seconds, at least one)."""
    d = np.clip(np.asarray(durations, dtype=float), 0.0, None)
    mean = _sig(d.mean())
    sd = _sig(d.std(ddof=1)) if len(d) > 1 else 0.0
    if dist == "uniform":
        return {"dist": "uniform", "low": _sig(d.min()), "high": _sig(d.max())}
    if mean == 0:
        sd = 0.0  # lognormal and gamma need it; the others are instant anyway
    return {"dist": dist, "mean": mean, "sd": sd}


def _store_of(store: Any) -> Any:
    if isinstance(store, (str, os.PathLike)):
        return open_store(store)
    return store


def _no_steps(store: Any) -> StoreError:
    where = getattr(store, "path", store)
    return StoreError(
        f"{where} has no recorded steps: calibrate from a lab campaign's store (one with a "
        f"lab: and a workflow)"
    )


def calibrate(
    store: CampaignStore | str | os.PathLike, *, dist: str = "lognormal"
) -> dict[str, Any]:
    """Fit a twin timing model from a lab campaign store's recorded step timings.

    The result is a plain dict, valid for ``TwinTiming.model_validate`` (and for
    :func:`write_timing`); it holds ``steps``, ``stations``, ``planner`` and ``handoff``
    (``shifts``, ``days`` and ``replications`` keep their defaults). Every number is in
    seconds of the recorded campaign, rounded to 4 significant digits. Fitting rules:

    * ``steps``: for each workflow step, the mean and sd (``ddof=1``; 0 with one sample)
      of ``finished - started`` over its attempts that ended ``done``, as
      ``{"dist": dist, "mean": m, "sd": s}`` (``uniform``: ``low`` and ``high``, the
      shortest and longest). A step with no done attempt is left out, with a warning
      logged (``sdl.twin._calibrate``).
    * ``stations``: a station is listed only when it has something to say:

      - ``steps``: its own distribution of a step whose mean on it differs from the
        lab-wide mean by more than 20 % (relative), over at least 3 done attempts on it;
      - ``failure_probability``: its failed attempts / (done + failed) attempts, when > 0;
      - ``mttr``: when the station log shows it taken out of service by sdl (``who ==
        "sdl"``, after failures), the mean time from out to back in service over the
        completed pairs (none completed: the default is kept);
      - ``mtbf``: with at least 2 such out-of-service events, the campaign's wall time
        (first step start to last step end) / their number.
    * ``planner``: a least-squares line of the ``planner`` stream's ``ask_seconds``
      against its ``n_observations`` (each campaign run's first ask left out: its
      warm-up comes before any step starts; kept when no run has a second) (the results the planner held when asked):
      ``ask_seconds`` its intercept (clipped at 0), ``per_observation`` its slope, when
      the slope is positive over at least 5 asks; else the median ask and 0; ``spread``
      the residuals' standard deviation over the mean fitted ask. No asks recorded: 0.
    * ``handoff``: the 25th percentile of ``started[k+1] - finished[k]`` over consecutive
      steps of the same experiment (the next step's attempt that started after step
      ``k`` ended ``done``), clipped at 0; 0 when there is none.

    Args:
        store: a :class:`~sdl.store.CampaignStore` (or its path).
        dist: the shape of every step's distribution (``normal``, ``lognormal``,
            ``gamma``, ``exponential``, ``uniform`` or ``fixed``).

    Raises:
        StoreError: the store holds no step of a lab campaign (a one-instrument campaign,
            or a lab campaign that started none).
        ConfigError: ``dist`` is not a known distribution.
    """
    if dist not in _DISTS:
        raise ConfigError(f"dist: unknown distribution {dist!r}; one of {', '.join(_DISTS)}")
    store = _store_of(store)
    timeline = LabTimeline(store)
    iv = timeline.intervals
    if iv.empty:
        raise _no_steps(store)
    iv = iv.assign(duration=iv["finished"].astype(float) - iv["started"].astype(float))
    done = iv[(iv["status"] == "done") & iv["duration"].notna()]

    workflow = [w["name"] for w in store.campaign.get("workflow", [])]
    names = workflow + sorted(set(iv["step"]) - set(workflow))

    steps: dict[str, dict[str, Any]] = {}
    lab_mean: dict[str, float] = {}
    for name in names:
        d = done.loc[done["step"] == name, "duration"].to_numpy(dtype=float)
        if len(d) == 0:
            logger.warning(
                "calibrate: step %r has no done attempt in %s; left out of the timing model "
                "(the twin takes it as instant unless you give its duration)",
                name,
                getattr(store, "path", store),
            )
            continue
        steps[name] = _distribution(d, dist)
        lab_mean[name] = float(np.clip(d, 0, None).mean())

    window = timeline.window()
    wall = (window[1] - window[0]) if window is not None else 0.0
    stations = _stations(iv, done, lab_mean, read_station_log(store), wall, dist)

    return {
        "steps": steps,
        "stations": stations,
        "planner": _planner(_store_of(store)),
        "handoff": _handoff(iv),
    }


def _stations(
    iv: pd.DataFrame,
    done: pd.DataFrame,
    lab_mean: dict[str, float],
    log: pd.DataFrame,
    wall: float,
    dist: str,
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    named = [s for s in iv["station"].unique() if s]
    logged = [s for s in log["station"].unique() if s and s not in named] if len(log) else []
    for station in [*named, *logged]:
        entry: dict[str, Any] = {}
        own = {}
        mine = done[done["station"] == station]
        for name, group in mine.groupby("step", sort=False):
            d = group["duration"].to_numpy(dtype=float)
            ref = lab_mean.get(name)
            if len(d) < STATION_MIN_SAMPLES or not ref:
                continue
            if abs(np.clip(d, 0, None).mean() - ref) / ref > STATION_DEVIATION:
                own[name] = _distribution(d, dist)
        if own:
            entry["steps"] = own
        ended = iv[(iv["station"] == station) & iv["status"].isin(["done", "failed"])]
        failed = int((ended["status"] == "failed").sum())
        if failed:
            entry["failure_probability"] = _sig(failed / len(ended))
        events, repairs = _service(log[log["station"] == station] if len(log) else log)
        if repairs:
            entry["mttr"] = _sig(float(np.mean(repairs)))
        if events >= 2 and wall > 0:
            entry["mtbf"] = _sig(wall / events)
        if entry:
            out[str(station)] = entry
    return out


def _service(log: pd.DataFrame) -> tuple[int, list[float]]:
    """From one station's log: how many times sdl took it out of service (a repeat while
    it is out, as a resumed campaign writes, is not a new event), and the times from each
    of those to its being put back in service (completed pairs only)."""
    events, repairs = 0, []
    out_since: float | None = None
    by_sdl = False
    for ev in log.sort_values("time", kind="stable").itertuples(index=False):
        if not int(ev.in_service):
            if out_since is None:
                out_since, by_sdl = float(ev.time), str(ev.who) == "sdl"
                events += by_sdl
        elif out_since is not None:
            if by_sdl:
                repairs.append(max(float(ev.time) - out_since, 0.0))
            out_since = None
    return events, repairs


def _planner_asks(store: Any) -> pd.DataFrame:
    """Every ask of every campaign run but its first: ``ask_seconds`` and
    ``n_observations``. A run's first ask pays the planner's warm-up (imports, building
    it) before any step has started, outside the window the twin forecasts; one such
    1.6 s ask among 5 ms ones once made a spread of 86 and drew asks of seconds."""
    from sdl.store._lab_views import _stream

    if store.format_version >= 2:
        live = store._live()
        known = set(live.uids())
        views = [live.run(uid) for uid in store.campaign_runs if uid in known]
    else:
        views = []
        for uid in store.campaign_runs:
            try:
                views.append(store.run(uid))
            except KeyError:
                continue
    columns = ["time", "ask_seconds", "n_observations"]
    frames = [_stream(v, "planner", columns)[columns] for v in views]
    frames = [f.iloc[1:] for f in frames if len(f) > 1] or [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    return pd.concat(frames, ignore_index=True).astype(float)


def _planner(store: Any) -> dict[str, Any]:
    asks = _planner_asks(store).dropna(subset=["ask_seconds"])
    seconds = np.clip(asks["ask_seconds"].to_numpy(), 0.0, None)
    if len(seconds) == 0:
        return {"ask_seconds": 0.0, "per_observation": 0.0, "spread": 0.0}
    observations = asks["n_observations"].fillna(0).to_numpy()
    if len(seconds) >= PLANNER_MIN_ASKS and np.ptp(observations) > 0:
        slope, intercept = np.polyfit(observations, seconds, 1)
        if slope > 0:
            fitted = np.clip(intercept + slope * observations, 0.0, None)
            return {
                "ask_seconds": _sig(max(float(intercept), 0.0)),
                "per_observation": _sig(float(slope)),
                "spread": _spread(seconds, fitted),
            }
    median = float(np.median(seconds))
    return {
        "ask_seconds": _sig(median),
        "per_observation": 0.0,
        "spread": _spread(seconds, np.full_like(seconds, median)),
    }


def _spread(seconds: np.ndarray, fitted: np.ndarray) -> float:
    """Coefficient of variation of the asks around the fitted line."""
    mean = float(np.mean(fitted))
    if len(seconds) < 2 or mean <= 0:
        return 0.0
    return _sig(float(np.std(seconds - fitted, ddof=1)) / mean)


def _handoff(iv: pd.DataFrame) -> float:
    gaps = []
    done = iv[iv["status"] == "done"].drop_duplicates(["experiment_id", "index"], keep="last")
    ended = done.set_index(["experiment_id", "index"])["finished"]
    for row in iv.itertuples(index=False):
        before = ended.get((int(row.experiment_id), int(row.index) - 1))
        if before is None or row.started != row.started or row.started < before:
            continue
        gaps.append(float(row.started) - float(before))
    if not gaps:
        return 0.0
    return _sig(max(float(np.percentile(gaps, HANDOFF_PERCENTILE)), 0.0))


def write_timing(
    timing: dict[str, Any],
    path: str | os.PathLike,
    *,
    store: CampaignStore | str | os.PathLike | None = None,
) -> None:
    """Write ``timing`` (as :func:`calibrate` returns it) as a YAML timing file.

    A header comment says where it came from (``store``, when given) and when; the file
    reads back with ``yaml.safe_load`` into ``TwinTiming.model_validate``.

    Raises:
        ConfigError: ``timing`` is not a valid timing model (nothing is written).
    """
    try:
        TwinTiming.model_validate(timing)
    except ValueError as err:
        raise ConfigError(f"not a valid twin timing model: {err}") from err
    when = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    source = getattr(store, "path", store)
    header = [
        "# sdl twin timing model (seconds), fitted by sdl.twin.calibrate",
        f"# from the store {source}" if source is not None else "# from a lab campaign's store",
        f"# on {when}",
    ]
    text = yaml.safe_dump(timing, sort_keys=False, default_flow_style=False)
    path = Path(path)
    path.write_text("\n".join(header) + "\n" + text, encoding="utf-8")
