"""Forecasts: replications of the twin, summed up as experiments per day, utilization,
idle time by cause and the bottleneck; what-ifs side by side."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sdl.errors import ConfigError
from sdl.store._lab_views import IDLE_CAUSES, station_time

from ._sim import Replication, simulate
from ._spec import TwinSpec
from ._whatif import apply_what_if

__all__ = ["CAUSES", "Forecast", "TwinDeadlock", "forecast", "forecast_what_ifs"]

DAY = 86400.0

#: Idle causes as the twin names them (the store's columns, in the same order).
CAUSES = dict(zip(IDLE_CAUSES, ("repair", "lease", "robot", "planner", "empty queue"), strict=True))


class TwinDeadlock(ConfigError):
    """The declared lab never completes an experiment; the message says why."""


def _ci(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and its 95 % confidence interval (Student's t); the mean twice for one value."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, mean, mean
    from scipy import stats

    half = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


@dataclass
class Forecast:
    """A forecast of one lab (one scenario).

    Attributes:
        label: ``baseline`` or the what-if.
        spec: the lab simulated.
        days: days forecast.
        replications: each replication's record.
        per_day: experiments done per day: ``(mean, ci_low, ci_high)``.
        failed_per_day: experiments failed per day (mean).
        stations: per station (index): ``utilization`` and the idle causes (columns named
            as :data:`CAUSES`), fractions of the wall time, means over replications.
        resources: resource -> utilization (time held over wall time and capacity).
        bottleneck: the station or resource with the highest utilization (a step's pool
            of interchangeable stations, e.g. ``synth-*``, by their mean).
        seconds: wall-clock seconds the forecast took.
    """

    label: str
    spec: TwinSpec
    days: float
    replications: list[Replication]
    per_day: tuple[float, float, float]
    failed_per_day: float
    stations: pd.DataFrame
    resources: dict[str, float]
    bottleneck: str
    seconds: float
    stalled: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        mean, lo, hi = self.per_day
        return {
            "label": self.label,
            "days": self.days,
            "replications": len(self.replications),
            "experiments_per_day": {"mean": mean, "ci_low": lo, "ci_high": hi},
            "failed_per_day": self.failed_per_day,
            "bottleneck": self.bottleneck,
            "stations": {
                name: {k: float(v) for k, v in row.items()}
                for name, row in self.stations.to_dict(orient="index").items()
            },
            "resources": self.resources,
            "stalled": self.stalled,
            "seconds": self.seconds,
        }


def station_frame(
    spec: TwinSpec, pools: list, rep: Replication, window: tuple[float, float] | None = None
) -> pd.DataFrame:
    """Per station: ``utilization`` and the idle causes (:data:`CAUSES`), as fractions of
    the wall time ``window`` (default: the whole replication)."""
    pool_of = {s.name: set(p[0]) for s, p in zip(spec.steps, pools)}
    if window is None:
        window = (0.0, rep.end) if rep.end > 0 else None
    df = station_time(
        rep.attempts,
        spec.stations,
        pool_of,
        [s.name for s in spec.steps],
        rep.out_of_service,
        rep.asks,
        window,
    )
    wall = df["wall_s"].replace(0, np.nan)
    out = pd.DataFrame(index=df.index)
    out["utilization"] = df["utilization"]
    for col, name in CAUSES.items():
        out[name] = df[col] / wall
    return out


def _bottleneck(
    spec: TwinSpec, pools: list, utilization: dict[str, float], resources: dict[str, float]
) -> str:
    """The busiest station or resource; interchangeable stations (a step's pool, e.g.
    ``synth-*``) count as one, by their mean utilization: which coater of a pool gets the
    work is the lease book's choice (the first free), so one of them can be busy all the
    time while the pool has room to spare."""
    load = dict(resources)
    grouped: set[str] = set()
    for step, pool in sorted(zip(spec.steps, pools), key=lambda sp: -len(sp[1][0])):
        members = [m for m in pool[0] if m in utilization and m not in grouped]
        if len(members) > 1:
            name = step.station if isinstance(step.station, str) else "|".join(members)
            load[name] = float(np.mean([utilization[m] for m in members]))
            grouped.update(members)
    load.update({k: v for k, v in utilization.items() if k not in grouped})
    return max(load, key=lambda k: load[k])


def _real_planner(spec: TwinSpec, seed: int):
    """The campaign's planner and an outcome function for it (the film lab's ground
    truth with its noise; elsewhere a random value: the twin needs the ask's time, not
    its wisdom)."""
    from sdl.config._load import _parameter
    from sdl.planners import Objective, make_planner

    config = spec.config
    if config is None:
        raise ConfigError("twin.planner.real: needs a campaign file (its planner: section)")
    params = [_parameter(p) for p in config.parameters]
    objectives = [Objective(o.name, o.goal, key=o.key) for o in config.objectives]
    planner = make_planner(
        config.planner.name, params, objectives, seed=seed, **config.planner.options
    )
    names = [o.name for o in config.objectives]
    if spec.film is not None:
        from sdl.devices import film_figure_of_merit

        noise = getattr(config.lab, "noise", 0.01)

        def outcome(point, rng):
            return {names[0]: film_figure_of_merit(point) + float(rng.normal(0, noise))}

    else:

        def outcome(point, rng):
            return {n: float(rng.random()) for n in names}

    return planner, outcome


def forecast(
    spec: TwinSpec,
    *,
    days: float | None = None,
    replications: int | None = None,
    seed: int = 0,
    label: str = "baseline",
) -> Forecast:
    """Run ``replications`` independent simulations of ``days`` of ``spec``'s lab.

    Raises:
        ConfigError: the lab or its timing is invalid (the field named).
        TwinDeadlock: no replication completed an experiment (with the reason).
    """
    t_start = time.perf_counter()
    pools = spec.check()
    days = float(days if days is not None else spec.timing.days)
    if not days > 0:
        raise ConfigError(f"--days: must be > 0, got {days}")
    n = int(replications if replications is not None else spec.timing.replications)
    if n < 1:
        raise ConfigError(f"--replications: must be >= 1, got {n}")
    reps = []
    for k in range(n):
        planner = outcome = None
        if spec.timing.planner.real:
            planner, outcome = _real_planner(spec, seed + k)
        reps.append(
            simulate(
                spec,
                seed=seed + k,
                horizon=days * DAY,
                planner=planner,
                outcome=outcome,
                pools=pools,
            )  # fmt: skip
        )
    if all(r.done == 0 for r in reps):
        why = next((r.stalled for r in reps if r.stalled), None)
        failed = sum(r.failed for r in reps)
        if why is None and failed:
            top = reps[0].failures.most_common(1)
            why = f"every experiment failed ({failed} in all; most often: {top[0][0]})"
        elif why is None:
            why = "no experiment finished within the forecast (steps longer than --days?)"
        raise TwinDeadlock(f"lab {spec.name!r} never completes an experiment: {why}")
    frames = [station_frame(spec, pools, r) for r in reps]
    stations = sum(frames[1:], frames[0]) / len(frames)
    resources = {
        name: float(np.mean([r.resource_busy.get(name, 0.0) / (cap * r.end) for r in reps]))
        for name, cap in spec.resources.items()
    }
    bottleneck = _bottleneck(spec, pools, stations["utilization"].to_dict(), resources)
    per_day = _ci([r.done / (r.end / DAY) for r in reps])
    failed = float(np.mean([r.failed / (r.end / DAY) for r in reps]))
    stalled = [f"replication {k} (seed {r.seed}) stopped at day {r.end / DAY:.2f}: {r.stalled}"
               for k, r in enumerate(reps) if r.stalled]  # fmt: skip
    return Forecast(
        label, spec, days, reps, per_day, failed, stations, resources, bottleneck,
        time.perf_counter() - t_start, stalled,
    )  # fmt: skip


def forecast_what_ifs(
    spec: TwinSpec,
    what_ifs: Sequence[str] = (),
    **kw: Any,
) -> list[Forecast]:
    """The baseline and each what-if (all checked before any runs), same seeds."""
    specs = [("baseline", spec)] + [(w, apply_what_if(spec, w)) for w in what_ifs]
    for _, s in specs:
        s.check()
    return [forecast(s, label=label, **kw) for label, s in specs]


def format_table(forecasts: Sequence[Forecast]) -> str:
    """The forecasts side by side, as a terminal table."""
    base = forecasts[0]
    head = (
        f"{base.spec.name} lab twin: {base.days:g} days, {len(base.replications)} "
        f"replication(s); experiments/day with a 95 % confidence interval"
    )
    labels = [f.label for f in forecasts]
    width = max(12, *(len(x) for x in labels))
    rows: list[tuple[str, list[str]]] = []
    rows.append(
        (
            "experiments/day",
            [f"{f.per_day[0]:.1f} [{f.per_day[1]:.1f}, {f.per_day[2]:.1f}]" for f in forecasts],
        )
    )
    rows.append(("failed/day", [f"{f.failed_per_day:.1f}" for f in forecasts]))
    rows.append(("bottleneck", [f.bottleneck for f in forecasts]))
    names = list(dict.fromkeys(n for f in forecasts for n in [*f.stations.index, *f.resources]))
    rows.append(("utilization", [""] * len(forecasts)))
    for name in names:
        vals = []
        for f in forecasts:
            if name in f.stations.index:
                vals.append(f"{100 * f.stations.loc[name, 'utilization']:.1f} %")
            elif name in f.resources:
                vals.append(f"{100 * f.resources[name]:.1f} %")
            else:
                vals.append("-")
        rows.append((f"  {name}", vals))
    rows.append(("seconds to forecast", [f"{f.seconds:.1f}" for f in forecasts]))
    first = max(len(r[0]) for r in rows)
    lines = [head, "", " " * first + "  " + "  ".join(x.ljust(width) for x in labels)]
    for name, vals in rows:
        lines.append(name.ljust(first) + "  " + "  ".join(v.ljust(width) for v in vals))
    for f in forecasts:
        lines.append("")
        lines.append(f"idle time by cause, % of wall time ({f.label}):")
        table = (100 * f.stations[list(CAUSES.values())]).round(1)
        lines.append(table.to_string())
        for note in f.stalled:
            lines.append(f"note: {note}")
    return "\n".join(lines)
