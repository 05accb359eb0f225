"""The color-mixing campaign of color_mixing.yaml, written with the Python API.

Run:  python examples/color_mixing.py [--budget N] [--store PATH]
"""

from __future__ import annotations

import argparse
import functools

from bluesky import RunEngine

from sdl import Campaign
from sdl.devices import ColorMixingStation
from sdl.planners import BoTorchPlanner, Objective, Real
from sdl.protocols import mix_color


def build(
    budget: int = 15, time_scale: float = 0.02, seed: int = 0
) -> tuple[Campaign, ColorMixingStation]:
    """The campaign and its simulated station."""
    station = ColorMixingStation("station", time_scale=time_scale, seed=1)
    parameters = [Real(dye, 0.0, station.physics.max_volume) for dye in station.dispensers]
    objectives = [Objective("distance", goal="minimize", key="station_sensor_distance")]
    planner = BoTorchPlanner(
        parameters, objectives, seed=seed, n_initial=6, num_restarts=4, raw_samples=256
    )
    protocol = functools.partial(
        mix_color, dispensers=station.dispensers, mixer=station.mixer, sensor=station.sensor
    )
    campaign = Campaign(
        objectives=objectives,
        planner=planner,
        protocol=protocol,
        devices=station.devices,
        budget=budget,
        name="color-mixing",
    )
    return campaign, station


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=int, default=15)
    parser.add_argument("--store", default="runs/color-mixing-python.zarr")
    args = parser.parse_args()
    campaign, station = build(args.budget)
    result = campaign.run(RunEngine({}), store=args.store, overwrite=True, progress=True)
    print(result.summary())
    print(f"true optimum: {station.optimum}")


if __name__ == "__main__":
    main()
