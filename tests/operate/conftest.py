"""A real campaign store shared by the operator tests, and helpers to make more."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from bluesky import RunEngine  # noqa: E402

from sdl import Campaign  # noqa: E402
from sdl.devices import AlignmentStage, Faults  # noqa: E402
from sdl.planners import Objective, Real, SobolPlanner  # noqa: E402
from sdl.protocols import set_settle_measure  # noqa: E402


def distance_from_origin(readings):
    """A second objective: how far the stage's first motor is from 0 (mm)."""
    return abs(float(readings["stage_m0"]))


def make_campaign(budget=12, faults=None, time_scale=0.0, seed=3):
    """A 2-parameter, 2-objective Sobol campaign on the simulated alignment stage."""
    stage = AlignmentStage(
        "stage", n_axes=2, faults=faults or Faults(), seed=seed, time_scale=time_scale
    )
    objectives = [
        Objective("intensity", goal="maximize", key="stage_det_intensity"),
        Objective("offset", goal="minimize", function=distance_from_origin),
    ]
    planner = SobolPlanner([Real("x", -10, 10), Real("y", -10, 10)], objectives, seed=0)

    def protocol(point, md):
        return set_settle_measure(
            point, movables=dict(zip("xy", stage.motors)), detectors=[stage.detector], md=md
        )

    return Campaign(
        objectives=objectives,
        planner=planner,
        protocol=protocol,
        budget=budget,
        name="operate-test",
    )


@pytest.fixture(scope="session")
def finished_store(tmp_path_factory):
    """A finished campaign with failures: 16 experiments, 2 objectives."""
    path = tmp_path_factory.mktemp("operate") / "finished.zarr"
    RE = RunEngine({}, context_managers=[])
    make_campaign(16, faults=Faults(exception=0.25)).run(RE, store=path)
    RE.loop.call_soon_threadsafe(RE.loop.stop)
    RE._th.join(5)
    return path
