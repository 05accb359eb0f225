"""A terminal progress bar fed by the campaign run's ``experiments`` stream."""

from __future__ import annotations

import math

import event_model
from tqdm.auto import tqdm

from .store._layout import objective_key

__all__ = ["ProgressBar"]


class ProgressBar(event_model.DocumentRouter):
    """Counts finished experiments and shows the best objective so far.

    Args:
        total: the campaign's budget.
        objective: name of the objective shown, with its goal.
        minimize: whether smaller is better.
    """

    def __init__(
        self, total: int, objective: str | None = None, minimize: bool = True, **tqdm_kwargs
    ):
        super().__init__()
        self._bar = tqdm(total=total, unit="exp", **tqdm_kwargs)
        self._objective = objective
        self._minimize = minimize
        self._best = math.nan
        self._failed = 0
        self._ledger: set[str] = set()
        self._campaign_runs: set[str] = set()

    def start(self, doc):
        if doc.get("sdl_role") == "campaign":
            self._campaign_runs.add(doc["uid"])

    def descriptor(self, doc):
        if doc["run_start"] in self._campaign_runs and doc.get("name") == "experiments":
            self._ledger.add(doc["uid"])

    def event(self, doc):
        if doc["descriptor"] not in self._ledger:
            return
        status = doc["data"].get("status")
        if status not in ("done", "failed"):
            return
        if status == "failed":
            self._failed += 1
        elif self._objective:
            v = float(doc["data"].get(objective_key(self._objective), math.nan))
            if math.isfinite(v) and (
                math.isnan(self._best) or (v < self._best if self._minimize else v > self._best)
            ):
                self._best = v
        post = {"failed": self._failed}
        if self._objective and not math.isnan(self._best):
            post[f"best {self._objective}"] = f"{self._best:.4g}"
        self._bar.set_postfix(post, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()
