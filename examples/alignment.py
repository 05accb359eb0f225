"""The alignment campaign of alignment.yaml, written with the Python API.

Run:  python examples/alignment.py [--budget N] [--store PATH]
"""

from __future__ import annotations

import argparse
import functools

from bluesky import RunEngine

from sdl import Campaign
from sdl.devices import AlignmentStage
from sdl.planners import BoTorchPlanner, Objective, Real
from sdl.protocols import set_settle_measure


def build(
    budget: int = 20, time_scale: float = 0.0, seed: int = 0
) -> tuple[Campaign, AlignmentStage]:
    """The campaign and its simulated stage."""
    stage = AlignmentStage("stage", n_axes=2, truth="gaussian", time_scale=time_scale, seed=2)
    parameters = [Real(axis, -10.0, 10.0) for axis in ("x", "y")]
    objectives = [Objective("intensity", goal="maximize", key="stage_det_intensity")]
    planner = BoTorchPlanner(
        parameters, objectives, seed=seed, n_initial=6, num_restarts=4, raw_samples=256
    )
    protocol = functools.partial(
        set_settle_measure,
        movables=dict(zip(("x", "y"), stage.motors)),
        detectors=[stage.detector],
    )
    campaign = Campaign(
        objectives=objectives,
        planner=planner,
        protocol=protocol,
        devices=stage.devices,
        budget=budget,
        name="alignment",
    )
    return campaign, stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--store", default="runs/alignment-python.zarr")
    args = parser.parse_args()
    campaign, stage = build(args.budget)
    result = campaign.run(RunEngine({}), store=args.store, overwrite=True, progress=True)
    print(result.summary())
    print(f"true optimum: {stage.optimum}")


if __name__ == "__main__":
    main()
