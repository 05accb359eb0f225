"""The twin against reality: a campaign's store, and the twin's forecast of that campaign.

The twin is given the campaign's lab, its budget, and the timing calibrated from the very
store (:func:`~sdl.twin.calibrate`); it forecasts the campaign's wall time, the
experiments done within the measured wall time, and each station's utilization, which
are compared with what the store recorded (:func:`sdl.store.utilization`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sdl.store._lab_views import LabTimeline

from ._calibrate import calibrate
from ._forecast import station_frame
from ._sim import simulate
from ._spec import TwinSpec, validate_timing

__all__ = ["predicted_vs_measured"]


def _measured(store: Any) -> tuple[float, int, pd.Series]:
    timeline = LabTimeline(store)
    window = timeline.window()
    if window is None:
        raise ValueError("the store has no step that started: nothing to compare")
    table = store.to_dataframe()
    done = int((table["status"] == "done").sum())
    return window[1] - window[0], done, timeline.utilization()["utilization"]


def predicted_vs_measured(
    store: Any, spec: TwinSpec, *, replications: int = 10, seed: int = 0
) -> pd.DataFrame:
    """Rows ``wall_s``, ``experiments_done`` (within the measured wall time) and
    ``utilization <station>``; columns ``measured``, ``predicted`` (mean over
    replications), ``ratio`` (predicted / measured).

    ``spec`` is the campaign's lab (its own timing is replaced by the store's
    calibration); its budget is set to the campaign's number of experiments.
    """
    wall, done, util = _measured(store)
    table = store.to_dataframe()
    spec = spec.copy()
    spec.timing = validate_timing(calibrate(store))
    spec.budget = int(table["status"].isin(["done", "failed"]).sum())
    pools = spec.check()
    walls, dones, utils = [], [], []
    for k in range(replications):
        rep = simulate(spec, seed=seed + k, horizon=max(100 * wall, 3600.0), pools=pools)
        att = rep.attempts
        t0 = float(att["started"].min())  # the store's window: first start to last end
        t1 = float(att["finished"].max())
        walls.append(t1 - t0)
        dones.append(rep.done_by(t0 + wall))
        utils.append(station_frame(spec, pools, rep, (t0, t1))["utilization"])
    rows = {
        "wall_s": (wall, float(np.mean(walls))),
        "experiments_done": (float(done), float(np.mean(dones))),
    }
    mean_util = sum(utils[1:], utils[0]) / len(utils)
    for station in spec.stations:
        rows[f"utilization {station}"] = (
            float(util.get(station, np.nan)),
            float(mean_util[station]),
        )
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["measured", "predicted"])
    out["ratio"] = out["predicted"] / out["measured"]
    return out
