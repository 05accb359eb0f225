"""Static figures of a lab campaign's stations: a Gantt chart of its steps and utilization."""

from __future__ import annotations

from collections import Counter

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ._snapshot import Snapshot

__all__ = ["gantt_figure", "utilization_figure"]

#: Colors of the parts of a station's wall time (busy, then the idle causes).
TIME_PARTS = {
    "busy_s": ("busy", "C0"),
    "idle_out_of_service": ("out of service", "red"),
    "idle_waiting_lease": ("waiting for a lease", "C1"),
    "idle_waiting_robot": ("waiting for the robot", "C2"),
    "idle_waiting_planner": ("waiting for the planner", "C4"),
    "idle_no_work": ("no work", "0.8"),
}


def _lanes(snap: Snapshot) -> list[tuple[str, int]]:
    """(station, lane) of every row of the chart: the lab's stations in order, one row per lane."""
    rows = []
    for s in snap.campaign.get("lab", {}).get("stations", []):
        cap = int(s.get("capacity", 1))
        rows += [(s["name"], lane) for lane in range(cap)]
    return rows


def gantt_figure(snap: Snapshot) -> Figure:
    """The steps over time: one row per station lane, a bar per step colored by step,
    failed steps hatched and marked with a red cross, cancelled ones grey, running ones
    open-ended (to the time of the snapshot)."""
    iv = snap.intervals
    lanes = _lanes(snap)
    names = [w["name"] for w in snap.campaign.get("workflow", [])]
    colors = {name: f"C{i % 10}" for i, name in enumerate(names)}
    fig = Figure(figsize=(10, 0.45 * max(len(lanes), 2) + 1.6), layout="constrained")
    ax = fig.subplots()
    row_of = {key: i for i, key in enumerate(lanes)}
    t0 = float(iv["started"].min()) if len(iv) else 0.0
    for r in iv.itertuples(index=False) if len(iv) else ():
        y = row_of.get((r.station, int(r.lane)))
        if y is None:
            continue
        end = r.finished if r.finished == r.finished else snap.time
        start, width = r.started - t0, max(end - r.started, 0.0)
        color = "0.6" if r.status == "cancelled" else colors.get(r.step, "C9")
        ax.broken_barh(
            [(start, width)],
            (y - 0.4, 0.8),
            facecolors=color,
            edgecolors="red" if r.status == "failed" else "white",
            hatch="//" if r.status == "failed" else None,
            alpha=0.5 if r.status == "running" else 1.0,
            linewidth=1.0,
        )
        if r.status == "failed":
            ax.plot(start + width, y, "x", color="red", markersize=8, markeredgewidth=2)
    per_station = Counter(s for s, _ in lanes)
    labels = [s if per_station[s] == 1 else f"{s} / lane {lane}" for s, lane in lanes]
    ax.set_yticks(range(len(lanes)), labels)
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    ax.invert_yaxis()
    ax.set_xlabel("time since the first step started (s)")
    ax.set_title("Steps on the stations (Gantt chart)")
    handles = [Patch(facecolor=colors[n], label=n) for n in names]
    handles.append(Patch(facecolor="white", edgecolor="red", hatch="//", label="failed"))
    if len(iv) and (iv["status"] == "cancelled").any():
        handles.append(Patch(facecolor="0.6", label="cancelled"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return fig


def utilization_figure(snap: Snapshot) -> Figure:
    """Each station's wall time as a bar: busy, then idle split by cause (percent)."""
    df = snap.stations
    fig = Figure(figsize=(8, 0.45 * max(len(df), 2) + 1.4), layout="constrained")
    ax = fig.subplots()
    wall = df["wall_s"].astype(float).to_numpy() if len(df) else np.empty(0)
    share = np.divide(1.0, wall, out=np.zeros_like(wall), where=wall > 0) * 100
    left = np.zeros(len(df))
    y = np.arange(len(df))
    for col, (label, color) in TIME_PARTS.items():
        values = df[col].astype(float).to_numpy() * share if len(df) else left
        ax.barh(y, values, left=left, color=color, label=label, height=0.7)
        left = left + values
    for i, u in enumerate(df["utilization"].astype(float) if len(df) else []):
        if u == u:
            ax.text(1, i, f"{100 * u:.0f}% busy", va="center", ha="left", fontsize="small",
                    color="white" if u > 0.1 else "black")  # fmt: skip
    ax.set_yticks(y, [str(s) for s in df.index])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the campaign's wall time (%; capacity-normalized)")
    ax.set_title("Station utilization and idle time by cause")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return fig
