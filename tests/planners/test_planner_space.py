"""The parameter space and its unit-cube and index encodings, as planners use them."""

from __future__ import annotations

import numpy as np
import pytest

from sdl.planners import Categorical, Integer, Real, Space


def test_unit_round_trip(mixed_space):
    point = {"temperature": 35.0, "concentration": 0.01, "cycles": 2, "solvent": "toluene"}
    U = mixed_space.to_unit([point])
    assert U.shape == (1, 4) and np.all((U >= 0) & (U <= 1))
    np.testing.assert_allclose(U[0], [0.25, 1 / 3, 1 / 3, 1.0])
    back = mixed_space.from_unit(U)[0]
    assert back["cycles"] == 2 and type(back["cycles"]) is int
    assert back["solvent"] == "toluene"
    assert back["concentration"] == pytest.approx(0.01)


def test_index_encoding_keeps_choice_numbers(mixed_space):
    points = [
        {"temperature": 20.0, "concentration": 1.0, "cycles": 4, "solvent": "ethanol"},
        {"temperature": 80.0, "concentration": 1e-3, "cycles": 1, "solvent": "water"},
    ]
    X = mixed_space.to_index(points)
    assert list(X[:, 3]) == [1.0, 0.0]
    assert mixed_space.from_index(X) == points


def test_out_of_range_values_are_clipped_and_rounded():
    space = Space([Real("x", 0, 10), Integer("n", 0, 2), Categorical("c", ("a", "b", "c"))])
    assert space.from_unit(np.array([[1.2, 0.74, -0.3]])) == [{"x": 10.0, "n": 1, "c": "a"}]


def test_validate_names_the_parameter(mixed_space):
    point = {"temperature": 90.0, "concentration": 0.1, "cycles": 2, "solvent": "water"}
    with pytest.raises(ValueError, match="temperature"):
        mixed_space.validate(point)
    with pytest.raises(ValueError, match="solvent"):
        mixed_space.validate({**point, "temperature": 30.0, "solvent": "acetone"})


def test_invalid_spaces_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        Space([Real("x", 0, 1), Integer("x", 0, 3)])
    with pytest.raises(ValueError, match="low > 0"):
        Real("c", 0.0, 1.0, log=True)
    # NaN was refused with a misleading "less than"; an infinite bound was accepted
    with pytest.raises(ValueError, match="'t'.*finite numbers.*high=nan"):
        Real("t", 0.0, float("nan"))
    with pytest.raises(ValueError, match="finite numbers"):
        Real("t", 0.0, float("inf"))
    with pytest.raises(ValueError, match="two choices"):
        Categorical("c", ("only",))
