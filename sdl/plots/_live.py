"""A live matplotlib view of a campaign, fed by the campaign run's ``experiments`` stream."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import event_model
import numpy as np

from ._math import best_so_far, pareto_mask

__all__ = ["LivePlot", "make_live_plot"]

logger = logging.getLogger(__name__)

PENDING = ("planned", "running")


def _names_goals(objectives: Sequence[Any]) -> tuple[list[str], list[bool]]:
    names, minimize = [], []
    for o in objectives:
        if isinstance(o, str):
            names.append(o)
            minimize.append(True)
        elif isinstance(o, Mapping):
            names.append(o["name"])
            minimize.append(o.get("goal", "minimize") == "minimize")
        else:  # sdl.planners.Objective
            names.append(o.name)
            minimize.append(o.goal == "minimize")
    return names, minimize


def _param_specs(parameters: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for p in parameters:
        if isinstance(p, str):
            out.append({"name": p})
        elif isinstance(p, Mapping):
            out.append(dict(p))
        else:  # Real / Integer / Categorical
            out.append({"name": p.name, "choices": list(getattr(p, "choices", []) or [])})
    return out


class LivePlot(event_model.DocumentRouter):
    """Plots a campaign as its experiments finish: a bluesky callback (RunEngine subscriber).

    Panels: the first objective per experiment with the best so far and failures marked;
    the parameters (first two against each other, or the one against the objective)
    coloured by the first objective, with the pending proposals hollow; and the Pareto front
    of the first two objectives when there are several.

    It listens only to campaign runs (start document ``sdl_role == "campaign"``) and their
    ``experiments`` stream. Drawing is throttled: at most one redraw per ``min_interval``
    seconds and one at the end of each campaign run, so a fast campaign is never slowed by
    its plot. It never raises into the RunEngine: errors are logged.

    Args:
        objectives: names, dicts with ``name``/``goal`` or ``Objective``s; None: from the
            campaign run's start document (``sdl_campaign["objectives"]``).
        parameters: names, dicts (``store.campaign["parameters"]``) or ``Real``/...; None:
            from the start document.
        fig: the matplotlib figure to draw in (default: a new one; without pyplot when the
            backend is non-interactive, e.g. Agg).
        min_interval: seconds between redraws.
        use_teleporter: hand documents to the main thread's Qt loop (default: when the
            backend is Qt), as bluesky's ``QtAwareCallback`` does.

    Attributes:
        artists: the matplotlib artists by role (``objective``, ``best``, ``failed``,
            ``params``, ``params_failed``, ``proposals``, ``pareto_all``, ``pareto_front``).
        n_draws: how many times the figure was drawn.
    """

    def __init__(
        self,
        objectives: Sequence[Any] | None = None,
        parameters: Sequence[Any] | None = None,
        *,
        fig: Any = None,
        min_interval: float = 0.5,
        use_teleporter: bool | None = None,
    ):
        super().__init__()
        self.min_interval = float(min_interval)
        self.fig = fig
        self.artists: dict[str, Any] = {}
        self.axes: dict[str, Any] = {}
        self.n_draws = 0
        self._experiments: dict[int, dict[str, Any]] = {}
        self._campaign_runs: set[str] = set()
        self._ledger: set[str] = set()
        self._last_draw = 0.0
        self._dirty = False
        self._lock = threading.RLock()
        self._objectives, self._minimize = _names_goals(objectives) if objectives else ([], [])
        self._parameters = _param_specs(parameters) if parameters else []
        self._teleporter = None
        if use_teleporter is None:
            import matplotlib

            use_teleporter = "qt" in matplotlib.get_backend().lower()
        if use_teleporter:
            from bluesky.callbacks.mpl_plotting import _get_teleporter

            self._teleporter = _get_teleporter()
        if self._objectives:
            self._build()

    # -- documents ------------------------------------------------------------------------
    def __call__(self, name: str, doc: dict, *, escape: bool = False) -> Any:
        if self._teleporter is not None and not escape:
            self._teleporter.name_doc_escape.emit(name, doc, self)
            return None
        try:
            return super().__call__(name, doc)
        except Exception:  # a plot must never stop a campaign
            logger.exception("LivePlot: could not handle a %s document", name)
            return None

    def start(self, doc):
        if doc.get("sdl_role") != "campaign":
            return
        self._campaign_runs.add(doc["uid"])
        desc = doc.get("sdl_campaign") or {}
        if not self._objectives and desc.get("objectives"):
            self._objectives, self._minimize = _names_goals(desc["objectives"])
        if not self._parameters and desc.get("parameters"):
            self._parameters = _param_specs(desc["parameters"])
        if self._objectives and not self.artists:
            self._build()

    def descriptor(self, doc):
        if doc.get("run_start") in self._campaign_runs and doc.get("name") == "experiments":
            self._ledger.add(doc["uid"])

    def event(self, doc):
        if doc.get("descriptor") not in self._ledger:
            return
        data = doc["data"]
        eid = int(data["experiment_id"])
        with self._lock:
            self._experiments[eid] = {
                "status": data.get("status", ""),
                "cause": data.get("cause", ""),
                "params": {p["name"]: data.get(f"param_{p['name']}") for p in self._parameters},
                "objectives": {
                    o: float(data.get(f"objective_{o}", math.nan)) for o in self._objectives
                },
            }
            self._dirty = True
        self._maybe_draw()

    def event_page(self, doc):
        for event in event_model.unpack_event_page(doc):
            self.event(event)

    def stop(self, doc):
        if doc.get("run_start") in self._campaign_runs:
            self.redraw()

    # -- drawing --------------------------------------------------------------------------
    def _maybe_draw(self) -> None:
        if time.monotonic() - self._last_draw >= self.min_interval:
            self.redraw()

    def redraw(self) -> None:
        """Update every artist from the experiments seen so far and draw (not throttled)."""
        if not self.artists:
            return
        with self._lock:
            self._update()
            self._dirty = False
        canvas = self.fig.canvas
        canvas.draw_idle()
        try:
            canvas.flush_events()
        except NotImplementedError:  # some non-interactive canvases
            pass
        self._last_draw = time.monotonic()
        self.n_draws += 1

    def save(self, path: Any, **kwargs: Any) -> None:
        """Draw what has arrived and save the figure (PNG by the file's suffix)."""
        self.redraw()
        self.fig.savefig(path, **kwargs)

    def _build(self) -> None:
        if self.fig is None:
            import matplotlib

            if matplotlib.get_backend().lower() in ("agg", "pdf", "svg", "ps", "cairo", "template"):
                from matplotlib.figure import Figure

                self.fig = Figure(figsize=(12, 4), layout="constrained")
            else:
                import matplotlib.pyplot as plt

                self.fig = plt.figure(figsize=(12, 4), layout="constrained")
                self.fig.show()
        n_panels = 3 if len(self._objectives) >= 2 else 2
        axes = self.fig.subplots(1, n_panels)
        obj = self._objectives[0]
        goal = "min" if self._minimize[0] else "max"
        ax = self.axes["convergence"] = axes[0]
        (self.artists["objective"],) = ax.plot([], [], "o", color="C0", label=obj)
        (self.artists["best"],) = ax.plot(
            [], [], "-", drawstyle="steps-post", color="C1", label=f"best so far ({goal})"
        )
        (self.artists["failed"],) = ax.plot([], [], "x", color="red", markersize=8, label="failed")
        ax.set_xlabel("experiment")
        ax.set_ylabel(obj)
        ax.legend(loc="best", fontsize="small")
        ax.set_title("convergence")
        ax = self.axes["parameters"] = axes[1]
        names = [p["name"] for p in self._parameters]
        self.artists["params"] = ax.scatter(
            [], [], c=[], cmap="viridis_r" if self._minimize[0] else "viridis"
        )
        (self.artists["params_failed"],) = ax.plot([], [], "x", color="red", markersize=8)
        (self.artists["proposals"],) = ax.plot(
            [], [], "o", mfc="none", mec="black", markersize=9, label="proposed"
        )
        ax.set_xlabel(names[0] if names else "")
        ax.set_ylabel(names[1] if len(names) >= 2 else obj)
        ax.set_title(f"parameters (colour: {obj})")
        self.fig.colorbar(self.artists["params"], ax=ax, label=obj)
        if n_panels == 3:
            ax = self.axes["pareto"] = axes[2]
            (self.artists["pareto_all"],) = ax.plot([], [], "o", color="0.7", label="done")
            (self.artists["pareto_front"],) = ax.plot(
                [], [], "o-", color="C3", label="Pareto front"
            )
            ax.set_xlabel(self._objectives[0])
            ax.set_ylabel(self._objectives[1])
            ax.legend(loc="best", fontsize="small")
            ax.set_title("Pareto front")

    def _coord(self, spec: dict[str, Any], value: Any) -> float:
        if value is None:
            return math.nan
        if isinstance(value, str) or spec.get("choices"):
            choices = [str(c) for c in spec.get("choices") or []]
            if str(value) not in choices:
                spec.setdefault("choices", []).append(value)
                choices.append(str(value))
            return float(choices.index(str(value)))
        return float(value)

    def _update(self) -> None:
        ids = sorted(self._experiments)
        exps = [self._experiments[i] for i in ids]
        obj = self._objectives[0]
        done = [(i, e) for i, e in zip(ids, exps) if e["status"] == "done"]
        failed = [(i, e) for i, e in zip(ids, exps) if e["status"] == "failed"]
        pending = [(i, e) for i, e in zip(ids, exps) if e["status"] in PENDING]
        x_done = np.array([i for i, _ in done], dtype=float)
        y_done = np.array([e["objectives"][obj] for _, e in done], dtype=float)
        self.artists["objective"].set_data(x_done, y_done)
        # best so far over every finished experiment, drawn at each one
        finished = [(i, e) for i, e in zip(ids, exps) if e["status"] in ("done", "failed")]
        xs = np.array([i for i, _ in finished], dtype=float)
        ys = np.array(
            [e["objectives"][obj] if e["status"] == "done" else math.nan for _, e in finished]
        )
        self.artists["best"].set_data(xs, best_so_far(ys, self._minimize[0]))
        floor = np.nanmin(y_done) if np.isfinite(y_done).any() else 0.0
        self.artists["failed"].set_data([i for i, _ in failed], [floor] * len(failed))

        specs = self._parameters

        def coords(items):  # noqa: E306
            if len(specs) >= 2:
                return (
                    np.array(
                        [self._coord(specs[0], e["params"].get(specs[0]["name"])) for _, e in items]
                    ),
                    np.array(
                        [self._coord(specs[1], e["params"].get(specs[1]["name"])) for _, e in items]
                    ),
                )
            if len(specs) == 1:
                return (
                    np.array(
                        [self._coord(specs[0], e["params"].get(specs[0]["name"])) for _, e in items]
                    ),
                    np.array([e["objectives"][obj] for _, e in items], dtype=float),
                )
            return np.array([i for i, _ in items], dtype=float), np.zeros(len(items))

        px, py = coords(done)
        scatter = self.artists["params"]
        scatter.set_offsets(np.column_stack([px, py]) if len(px) else np.empty((0, 2)))
        scatter.set_array(y_done)
        if np.isfinite(y_done).any():
            scatter.set_clim(np.nanmin(y_done), np.nanmax(y_done))
        fx, fy = coords(failed)
        if len(specs) == 1:
            fy = np.full(len(failed), floor)
        self.artists["params_failed"].set_data(fx, fy)
        qx, qy = coords(pending)
        if len(specs) == 1:
            qy = np.full(len(pending), floor)
        self.artists["proposals"].set_data(qx, qy)

        if "pareto" in self.axes:
            o0, o1 = self._objectives[:2]
            Y = np.array(
                [[e["objectives"][o0], e["objectives"][o1]] for _, e in done], dtype=float
            ).reshape(-1, 2)
            self.artists["pareto_all"].set_data(Y[:, 0], Y[:, 1])
            front = Y[pareto_mask(Y, self._minimize[:2])]
            front = front[np.argsort(front[:, 0])] if len(front) else front.reshape(0, 2)
            self.artists["pareto_front"].set_data(front[:, 0], front[:, 1])
        for role, ax in self.axes.items():
            ax.relim()  # lines only: add the scatter's points by hand
            if role == "parameters" and len(px):
                pts = np.column_stack([px, py])
                ax.update_datalim(pts[np.isfinite(pts).all(axis=1)])
            ax.autoscale_view()


def make_live_plot(
    campaign_description: Mapping[str, Any] | None = None, backend: str | None = None
) -> LivePlot:
    """A :class:`LivePlot` for a campaign (``Campaign.describe()`` or ``store.campaign``).

    Args:
        campaign_description: gives the objectives (with goals) and parameters; None: they
            are read from the campaign run's start document.
        backend: a matplotlib backend to switch to first (e.g. ``"Agg"`` headless,
            ``"QtAgg"``); None keeps the current one.

    Example:
        >>> plot = make_live_plot(campaign.describe())  # doctest: +SKIP
        >>> campaign.run(RE, store="runs/demo.zarr", callbacks=[plot])  # doctest: +SKIP
        >>> plot.save("demo.png")  # doctest: +SKIP
    """
    if backend is not None:
        import matplotlib

        if matplotlib.get_backend().lower() != backend.lower():
            import matplotlib.pyplot as plt

            plt.switch_backend(backend)
    desc = dict(campaign_description or {})
    return LivePlot(desc.get("objectives"), desc.get("parameters"))
