"""Objective values come from declared keys or functions; bad values fail loudly."""

import math

import numpy as np
import pytest

from sdl.errors import ConfigError, ExperimentFailed
from sdl.planners import Objective
from sdl.protocols import extract_objectives


def brightness(readings):
    return readings["r"] + readings["g"]


def test_by_key_by_name_and_by_function():
    readings = {"det": np.float64(2.5), "r": 1.0, "g": 0.5}
    values = extract_objectives(
        [
            Objective("det"),
            Objective("signal", key="det", goal="maximize"),
            Objective("bright", function=brightness),
            Objective("bright2", function=f"{__name__}:brightness"),
        ],
        readings,
    )
    assert values == {"det": 2.5, "signal": 2.5, "bright": 1.5, "bright2": 1.5}


@pytest.mark.parametrize(
    "readings, match",
    [
        ({}, "data key 'det' was not read"),
        ({"det": math.nan}, "gave nan"),
        ({"det": np.array([1.0, 2.0])}, "not a scalar"),
        ({"det": "high"}, "not a scalar"),
    ],
)
def test_bad_readings_fail_the_experiment(readings, match):
    with pytest.raises(ExperimentFailed, match=match):
        extract_objectives([Objective("det")], readings)


def test_function_errors_name_the_objective():
    with pytest.raises(ExperimentFailed, match="objective 'bright'.*KeyError"):
        extract_objectives([Objective("bright", function=brightness)], {})
    with pytest.raises(ConfigError, match="cannot import"):
        extract_objectives([Objective("x", function="nowhere.module:f")], {})
