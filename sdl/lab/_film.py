"""The simulated film lab: spin coaters, a furnace, a robot arm and a spectrometer.

Stations: ``synth-1`` .. ``synth-N`` (spin coaters), ``furnace`` (capacity 2), ``robot``
(the arm that moves samples), ``characterizer`` (a spectrometer: the figure of merit,
with noise). An experiment: ``synthesize`` on any free ``synth-*``, ``transfer`` by the
robot, ``anneal`` in the furnace, ``transfer`` again, ``characterize``. Parameters:
spin ``speed`` (rpm), ``temperature`` (degC), ``fraction_a`` (the first precursor's
fraction; the second's is ``1 - fraction_a``: the two sum to one) and ``anneal`` (degC);
objective ``fom`` (maximize, the spectrometer's reading).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sdl.devices import SimProcess, make_spectrometer
from sdl.planners import Objective, Real, Space
from sdl.protocols import film as steps

from ._model import Lab, Station, Step, Workflow

__all__ = ["FILM_DURATIONS", "film_lab"]

#: Mean and sd of each step's duration, in simulated seconds (one experiment: ~2 s).
FILM_DURATIONS: dict[str, tuple[float, float]] = {
    "synthesize": (1.2, 0.1),
    "transfer": (0.1, 0.01),
    "anneal": (0.4, 0.04),
    "characterize": (0.2, 0.02),
}


def film_lab(
    *,
    synth_stations: int = 3,
    time_scale: float = 0.0,
    durations: Mapping[str, tuple[float, float]] | None = None,
    faults: Mapping[str, Any] | None = None,
    noise: float = 0.01,
    seed: int = 0,
) -> tuple[Lab, Workflow, Space, tuple[Objective, ...]]:
    """The film lab, its workflow, parameter space and objective.

    Args:
        synth_stations: number of spin-coating stations.
        time_scale: real seconds per simulated second (0: every step is instant).
        durations: step name -> ``(mean, sd)`` simulated seconds (default
            :data:`FILM_DURATIONS`).
        faults: station name -> fault probabilities of its process device
            (``{"synth-2": {"exception": 0.5}}``).
        noise: standard deviation of the spectrometer's noise.
        seed: seed of durations, faults and noise.

    Returns:
        ``(lab, workflow, space, objectives)``.
    """
    d = {**FILM_DURATIONS, **dict(durations or {})}
    faults = dict(faults or {})
    names = [f"synth-{i + 1}" for i in range(synth_stations)] + [
        "furnace",
        "robot",
        "characterizer",
    ]
    unknown = sorted(set(faults) - set(names))
    if unknown:
        raise ValueError(
            f"faults: no station {unknown} in the film lab; stations: {', '.join(names)}"
        )
    if synth_stations < 1:
        raise ValueError(f"synth_stations must be >= 1, got {synth_stations}")

    def process(station: str, role: str, step: str, **kw: Any) -> SimProcess:
        return SimProcess(
            f"{station.replace('-', '')}_{role}",
            duration=d[step],
            time_scale=time_scale,
            faults=faults.get(station),
            seed=seed,
            **kw,
        )

    stations = [
        Station(
            f"synth-{i + 1}",
            {"coater": process(f"synth-{i + 1}", "coater", "synthesize", egu="rpm")},
        )
        for i in range(synth_stations)
    ]
    stations.append(
        Station(
            "furnace",
            {f"slot{k}": process("furnace", f"slot{k}", "anneal", egu="degC") for k in range(2)},
            capacity=2,
        )
    )
    stations.append(Station("robot", {"arm": process("robot", "arm", "transfer", egu="place")}))
    spectrometer, recipe = make_spectrometer(
        "spectrometer", noise=noise, seed=seed, faults=faults.get("characterizer")
    )
    stations.append(
        Station(
            "characterizer",
            {
                "loader": process("characterizer", "loader", "characterize", egu="place"),
                "spectrometer": spectrometer,
                "recipe": recipe,
            },
        )
    )
    lab = Lab(stations, name="film")
    workflow = Workflow(
        [
            Step("synthesize", steps.synthesize, "synth-*"),
            Step("transfer", steps.transfer, "robot"),
            Step("anneal", steps.anneal, "furnace"),
            Step("unload", steps.transfer, "robot"),
            Step("characterize", steps.characterize, "characterizer"),
        ]
    )
    space = Space(
        [
            Real("speed", 500.0, 8000.0),
            Real("temperature", 20.0, 150.0),
            Real("fraction_a", 0.0, 1.0),
            Real("anneal", 100.0, 400.0),
        ]
    )
    return lab, workflow, space, (Objective("fom", goal="maximize", key="spectrometer"),)
