"""A forecast's report: utilization and idle causes per station, a Gantt chart of the
first hours, and an HTML page with the table (``sdl twin ... --report DIR``)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ._forecast import CAUSES, Forecast, format_table

__all__ = ["gantt_figure", "utilization_figure", "write_report"]

_COLORS = {
    "busy": "C0",
    "repair": "red",
    "lease": "C1",
    "robot": "C2",
    "planner": "C4",
    "empty queue": "0.8",
}


def utilization_figure(forecasts: Sequence[Forecast]) -> Figure:
    """Each scenario's stations: busy, then idle by cause, as fractions of wall time."""
    fig = Figure(figsize=(10, 1.2 + 2.6 * len(forecasts)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(forecasts), 1))
    for ax, f in zip(axes, forecasts):
        df = f.stations
        left = np.zeros(len(df))
        parts = [("busy", df["utilization"].to_numpy())] + [
            (name, df[name].to_numpy()) for name in CAUSES.values()
        ]
        for name, values in parts:
            ax.barh(df.index, values, left=left, color=_COLORS[name], label=name)
            left += np.nan_to_num(values)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        mean, lo, hi = f.per_day
        ax.set_title(f"{f.label}: {mean:.1f} experiments/day [{lo:.1f}, {hi:.1f}]")
    axes[-1].set_xlabel("fraction of wall time")
    fig.legend(
        handles=[Patch(color=c, label=n) for n, c in _COLORS.items()],
        loc="outside lower center",
        ncols=len(_COLORS),
    )
    return fig


def gantt_figure(f: Forecast, hours: float = 8.0) -> Figure:
    """The first ``hours`` of the first replication: a row per station lane, a bar per step."""
    rep = f.replications[0]
    lanes = [(s, k) for s, cap in f.spec.stations.items() for k in range(cap)]
    row_of = {key: i for i, key in enumerate(lanes)}
    colors = {s.name: f"C{i % 10}" for i, s in enumerate(f.spec.steps)}
    fig = Figure(figsize=(10, 0.45 * max(len(lanes), 2) + 1.6), layout="constrained")
    ax = fig.subplots()
    end = hours * 3600.0
    scale, unit = (60.0, "min") if end <= 4 * 3600 else (3600.0, "h")
    att = rep.attempts[rep.attempts["started"] < end]
    for r in att.itertuples(index=False):
        y = row_of.get((r.station, int(r.lane)))
        if y is None:
            continue
        stop = r.finished if r.finished == r.finished else end
        ax.broken_barh(
            [(r.started / scale, max(min(stop, end) - r.started, 0.0) / scale)],
            (y - 0.4, 0.8),
            facecolors=colors.get(r.step, "C9"),
            edgecolors="red" if r.status == "failed" else "white",
            hatch="//" if r.status == "failed" else None,
        )
    for station, spans in rep.out_of_service.items():
        for a, b in spans:
            if a < end:
                for k in range(f.spec.stations[station]):
                    y = row_of[(station, k)]
                    ax.broken_barh(
                        [(a / scale, (min(b, end) - a) / scale)], (y - 0.45, 0.9),
                        facecolors="none", edgecolors="red", hatch="xx",
                    )  # fmt: skip
    ax.set_yticks(
        range(len(lanes)), [f"{s} [{k}]" if f.spec.stations[s] > 1 else s for s, k in lanes]
    )
    ax.invert_yaxis()
    ax.set_xlim(0, end / scale)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_title(f"{f.label}: the first {hours:g} h (replication 0; red hatching: out of service)")
    ax.legend(
        handles=[Patch(color=c, label=n) for n, c in colors.items()],
        loc="upper right",
        fontsize="small",
    )
    return fig


def write_report(forecasts: Sequence[Forecast], out: str | Path, hours: float = 8.0) -> Path:
    """Write ``utilization.png``, ``gantt.png``, ``forecast.json`` and ``index.html``
    into ``out``; return the HTML page's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    utilization_figure(forecasts).savefig(out / "utilization.png", dpi=110)
    gantt_figure(forecasts[0], hours).savefig(out / "gantt.png", dpi=110)
    (out / "forecast.json").write_text(json.dumps([f.to_dict() for f in forecasts], indent=2))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(forecasts[0].spec.name)} lab twin</title></head>
<body>
<h1>{html.escape(forecasts[0].spec.name)} lab: forecast</h1>
<pre>{html.escape(format_table(forecasts))}</pre>
<h2>Utilization and idle time by cause</h2>
<img src="utilization.png" alt="utilization per station">
<h2>The first {hours:g} hours</h2>
<img src="gantt.png" alt="Gantt chart of the first hours">
</body></html>
"""
    path = out / "index.html"
    path.write_text(page)
    return path
