"""A small YAML-shaped campaign on the simulated alignment stage, for tests that need a
real campaign file (kill, lock and repair tests run it through the ``sdl`` command line)."""

from __future__ import annotations

from typing import Any

__all__ = ["stage_campaign_config"]


def stage_campaign_config(
    name: str,
    budget: int,
    *,
    settle_time: float,
    exposure_time: float,
    time_scale: float = 1.0,
    planner: str = "sobol",
) -> dict[str, Any]:
    """A campaign config (a dict, as ``load_campaign`` or ``yaml.safe_dump`` take it): two
    parameters ``x``, ``y`` on a 2-axis stage, maximize ``intensity``, noise-free, seeded.

    An experiment takes about ``settle_time + exposure_time`` seconds times ``time_scale``.
    """
    return {
        "name": name,
        "budget": budget,
        "seed": 0,
        "devices": {
            "stage": {
                "type": "alignment_stage",
                "options": {
                    "n_axes": 2,
                    "truth": "gaussian",
                    "noise": 0.0,
                    "time_scale": time_scale,
                    "settle_time": settle_time,
                    "exposure_time": exposure_time,
                    "seed": 2,
                },
            }
        },
        "parameters": [
            {"name": "x", "low": -10, "high": 10, "device": "stage_m0"},
            {"name": "y", "low": -10, "high": 10, "device": "stage_m1"},
        ],
        "objectives": [{"name": "intensity", "goal": "maximize", "key": "stage_det_intensity"}],
        "protocol": {"name": "set_settle_measure", "options": {"detectors": ["stage_det"]}},
        "planner": {"name": planner},
    }
