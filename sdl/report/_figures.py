"""Static matplotlib figures of a campaign (for reports), drawn without pyplot."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sdl.plots import best_so_far, pareto_mask

from ._snapshot import Snapshot

__all__ = ["convergence_figure", "parameters_figure", "pareto_figure", "failures_figure"]

STATUS_COLORS = {
    "done": "C0",
    "failed": "red",
    "interrupted": "orange",
    "running": "C2",
    "planned": "0.6",
}


def _numeric(series: pd.Series, spec: dict[str, Any]) -> np.ndarray:
    if spec.get("choices"):
        order = [str(c) for c in spec["choices"]]
        return np.array(
            [order.index(str(v)) if str(v) in order else np.nan for v in series], dtype=float
        )
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)


def convergence_figure(snap: Snapshot) -> Figure:
    """Each objective per experiment, its best so far, and failed experiments marked."""
    objectives = snap.objectives
    fig = Figure(figsize=(7, 2.6 * max(1, len(objectives))), layout="constrained")
    axes = np.atleast_1d(fig.subplots(max(1, len(objectives)), 1, squeeze=False)[:, 0])
    df = snap.table
    finished = df[df["status"].isin(["done", "failed"])]
    for ax, obj in zip(axes, objectives):
        name, minimize = obj["name"], obj.get("goal", "minimize") == "minimize"
        done = finished[finished["status"] == "done"]
        ax.plot(done.index, done[name].astype(float), "o", color="C0", label=name)
        y = np.where(finished["status"] == "done", finished[name].astype(float), np.nan)
        ax.plot(
            finished.index,
            best_so_far(y, minimize),
            "-",
            drawstyle="steps-post",
            color="C1",
            label=f"best so far ({obj.get('goal', 'minimize')})",
        )
        failed = finished[finished["status"] == "failed"]
        if len(failed):
            floor = np.nanmin(done[name].astype(float)) if len(done) else 0.0
            ax.plot(
                failed.index,
                np.full(len(failed), floor),
                "x",
                color="red",
                markersize=8,
                label="failed",
            )
        ax.set_xlabel("experiment")
        ax.set_ylabel(name)
        ax.legend(loc="best", fontsize="small")
    axes[0].set_title("Convergence")
    return fig


def parameters_figure(snap: Snapshot) -> Figure:
    """Every parameter against the first objective (done experiments; failures on the axis)."""
    params = snap.campaign.get("parameters", [])
    obj = snap.objectives[0]["name"] if snap.objectives else None
    n = max(1, len(params))
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(4 * cols, 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    df = snap.table
    done = df[df["status"] == "done"]
    failed = df[df["status"] == "failed"]
    for ax, spec in zip(axes, params):
        name = spec["name"]
        if obj is not None:
            y = done[obj].astype(float)
            sc = ax.scatter(_numeric(done[name], spec), y, c=done.index, cmap="viridis", s=25)
            if len(failed):
                floor = np.nanmin(y) if len(y) else 0.0
                ax.plot(_numeric(failed[name], spec), np.full(len(failed), floor), "x", color="red")
            ax.set_ylabel(obj)
        if spec.get("choices"):
            ax.set_xticks(range(len(spec["choices"])), [str(c) for c in spec["choices"]])
        ax.set_xlabel(name)
    for ax in axes[len(params) :]:
        ax.set_visible(False)
    if params and obj is not None:
        fig.colorbar(sc, ax=list(axes[: len(params)]), label="experiment")
    fig.suptitle(f"Parameters vs {obj}")
    return fig


def pareto_figure(snap: Snapshot) -> Figure:
    """The first two objectives against each other, the non-dominated points joined."""
    o0, o1 = snap.objectives[:2]
    done = snap.table[snap.table["status"] == "done"]
    Y = done[[o0["name"], o1["name"]]].to_numpy(dtype=float).reshape(-1, 2)
    mask = pareto_mask(Y, [o.get("goal", "minimize") == "minimize" for o in (o0, o1)])
    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(Y[~mask, 0], Y[~mask, 1], "o", color="0.65", label="dominated")
    front = Y[mask]
    front = front[np.argsort(front[:, 0])]
    ax.plot(front[:, 0], front[:, 1], "o-", color="C3", label="Pareto front")
    ax.set_xlabel(f"{o0['name']} ({o0.get('goal', 'minimize')})")
    ax.set_ylabel(f"{o1['name']} ({o1.get('goal', 'minimize')})")
    ax.legend(loc="best")
    ax.set_title("Pareto front")
    return fig


def failures_figure(snap: Snapshot) -> Figure:
    """Status of every experiment over time, and how often each failure cause occurred."""
    df = snap.table
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    ax_t, ax_c = fig.subplots(1, 2, width_ratios=[3, 2])
    t0 = np.nanmin(df["t_planned"].astype(float)) if len(df) else 0.0
    for status, color in STATUS_COLORS.items():
        sub = df[df["status"] == status]
        if len(sub):
            t = np.where(
                np.isfinite(sub["t_finished"]), sub["t_finished"], sub["t_planned"]
            ).astype(float)
            ax_t.plot(
                t - t0,
                sub.index,
                "o" if status != "failed" else "x",
                color=color,
                label=f"{status} ({len(sub)})",
            )
    ax_t.set_xlabel("time since the first experiment was planned (s)")
    ax_t.set_ylabel("experiment")
    ax_t.set_title("Experiments over time")
    if len(df):
        ax_t.legend(loc="best", fontsize="small")
    causes = Counter(
        _short(c) for c in df.loc[df["status"].isin(["failed", "interrupted"]), "cause"]
    )
    if causes:
        labels, counts = zip(*causes.most_common(8))
        ax_c.barh(range(len(labels)), counts, color="red")
        ax_c.set_yticks(range(len(labels)), labels, fontsize="small")
        ax_c.invert_yaxis()
        ax_c.set_xlabel("experiments")
    else:
        ax_c.text(0.5, 0.5, "no failures", ha="center", va="center", transform=ax_c.transAxes)
        ax_c.set_axis_off()
    ax_c.set_title("Failure causes")
    return fig


def _short(cause: Any, n: int = 45) -> str:
    text = str(cause) or "(no cause recorded)"
    return text if len(text) <= n else text[: n - 1] + "…"
