"""The film lab's simulated instruments: process stations with drawn durations, a
spectrometer whose figure of merit depends on the sample's whole recipe.

A :class:`SimProcess` is a :class:`SimMotor` whose every move takes a duration drawn
from a normal distribution (``duration=(mean, sd)`` simulated seconds, at least 0,
seeded), times ``time_scale``: a spin coater spinning at a speed, a furnace slot at an
annealing temperature, a robot arm moving to a place. :func:`film_figure_of_merit` is
the ground truth of the films; :func:`make_spectrometer` measures it (with noise) from
the recipe the characterization plan loads into its ``recipe`` signal.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ophyd import Signal

from ._detector import SimDetector
from ._faults import NO_FAULTS, Faults, make_rng
from ._motor import SimMotor

__all__ = ["FILM_OPTIMUM", "SimProcess", "film_figure_of_merit", "make_spectrometer"]

#: The recipe of the best film (figure of merit 1.0).
FILM_OPTIMUM = {"speed": 3000.0, "temperature": 80.0, "fraction_a": 0.35, "anneal": 250.0}


class SimProcess(SimMotor):
    """A process step as a movable: ``set(value)`` runs for a drawn duration.

    Args:
        name: device name (data key of its readback).
        duration: ``(mean, sd)`` of the duration of one ``set``, in simulated seconds.
        time_scale: real seconds per simulated second (0: instant).
        faults: fault probabilities per ``set`` (:class:`Faults`, a mapping, or None).
        seed: seed of its durations and faults.
        **kwargs: as for :class:`SimMotor` (``limits``, ``egu``, ``initial``).
    """

    def __init__(
        self,
        name: str,
        *,
        duration: tuple[float, float] = (1.0, 0.0),
        time_scale: float = 0.0,
        faults: Faults | Mapping[str, Any] | None = NO_FAULTS,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        mean, sd = (float(v) for v in duration)
        if mean < 0 or sd < 0:
            raise ValueError(f"{name}: duration (mean, sd) must be >= 0, got {duration!r}")
        kwargs.setdefault("limits", (-1e9, 1e9))
        super().__init__(name, time_scale=time_scale, faults=faults, seed=seed, **kwargs)
        self.duration = (mean, sd)
        self._durations = make_rng(seed, name, "duration")

    def move_time(self, start: float, target: float) -> float:
        mean, sd = self.duration
        return max(0.0, float(self._durations.normal(mean, sd))) if sd else mean


def film_figure_of_merit(recipe: Mapping[str, Any]) -> float:
    """Ground truth: how good a film made by ``recipe`` is, in [0, 1] (1 at
    :data:`FILM_OPTIMUM`). ``recipe`` holds ``speed`` (rpm), ``temperature`` (degC),
    ``fraction_a`` (the other precursor is ``1 - fraction_a``) and ``anneal`` (degC)."""
    o = FILM_OPTIMUM
    speed = math.log(max(float(recipe["speed"]), 1.0) / o["speed"]) / 0.45
    temp = (float(recipe["temperature"]) - o["temperature"]) / 45.0
    frac = (float(recipe["fraction_a"]) - o["fraction_a"]) / 0.25
    anneal = (float(recipe["anneal"]) - o["anneal"]) / 90.0
    # the precursors and the annealing interact: a richer film wants a hotter anneal
    coupled = anneal - 0.5 * frac
    return float(math.exp(-(speed**2 + temp**2 + frac**2 + coupled**2) / 2))


def make_spectrometer(
    name: str,
    *,
    noise: float = 0.01,
    time_scale: float = 0.0,
    exposure_time: float = 0.0,
    faults: Faults | Mapping[str, Any] | None = NO_FAULTS,
    seed: int | None = None,
) -> tuple[SimDetector, Signal]:
    """A spectrometer giving the film's figure of merit (data key ``<name>``) with noise.

    Returns:
        ``(spectrometer, recipe)``: the plan puts the sample's recipe (JSON text) into
        ``recipe`` before it triggers the spectrometer.
    """
    recipe = Signal(name=f"{name}_recipe", value=json.dumps(FILM_OPTIMUM), kind="omitted")

    def physics(inputs: Mapping[str, Any]) -> float:
        return film_figure_of_merit(json.loads(inputs["recipe"]))

    det = SimDetector(
        name,
        physics=physics,
        inputs={"recipe": recipe},
        noise=noise,
        exposure_time=exposure_time,
        time_scale=time_scale,
        faults=faults,
        seed=seed,
    )
    return det, recipe
