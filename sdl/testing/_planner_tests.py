"""``PlannerTests``: what every sdl planner must do, as a pytest class to subclass."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from sdl.planners import Categorical, Integer, Objective, Planner, Real, Space

__all__ = ["PlannerTests"]


def _outcome(point: dict[str, Any]) -> dict[str, float]:
    """A smooth made-up objective over the default space."""
    bonus = {"water": 0.0, "ethanol": 10.0, "toluene": 4.0}[point["solvent"]]
    return {
        "y": 80.0
        - 0.02 * (point["temperature"] - 50.0) ** 2
        - 5.0 * (math.log10(point["concentration"]) + 1.0) ** 2
        - 2.0 * (point["cycles"] - 3) ** 2
        + bonus
    }


class PlannerTests:
    """Conformance suite for a planner: subclass it and provide ``planner_factory``.

    Fixtures:
        ``planner_factory``: ``factory(space, objectives, seed) -> Planner`` (required).
        ``space``: the parameters (default: a linear and a log real, an integer and a
            categorical).
        ``objectives``: default one maximized objective ``"y"``.
        ``outcome``: ``outcome(point) -> {objective: value}`` over ``space``.

    Class attributes:
        ``batch``: points per ask.
        ``rounds``: ask/tell rounds in each check (the first is usually the initial
            design; use at least 2 to reach the model).
    """

    batch: int = 3
    rounds: int = 2

    @pytest.fixture
    def planner_factory(self):  # pragma: no cover - a subclass must provide it
        raise NotImplementedError("PlannerTests subclasses provide a 'planner_factory' fixture")

    @pytest.fixture
    def space(self) -> Space:
        return Space(
            [
                Real("temperature", 20.0, 80.0),
                Real("concentration", 1e-3, 1.0, log=True),
                Integer("cycles", 1, 4),
                Categorical("solvent", ("water", "ethanol", "toluene")),
            ]
        )

    @pytest.fixture
    def objectives(self) -> list[Objective]:
        return [Objective("y", goal="maximize")]

    @pytest.fixture
    def outcome(self) -> Callable[[dict[str, Any]], dict[str, float]]:
        return _outcome

    def _run(self, planner: Planner, outcome, rounds: int) -> list[dict[str, Any]]:
        proposed = []
        for _ in range(rounds):
            points = planner.ask(self.batch)
            proposed += points
            planner.tell(points, [outcome(p) for p in points])
        return proposed

    def test_is_a_planner(self, planner_factory, space, objectives):
        assert isinstance(planner_factory(space, objectives, 0), Planner)

    def test_proposals_lie_in_the_space(self, planner_factory, space, objectives, outcome):
        planner = planner_factory(space, objectives, 3)
        proposed = self._run(planner, outcome, self.rounds)
        assert len(proposed) == self.batch * self.rounds
        for point in proposed:
            space.validate(point)
            assert set(point) == {p.name for p in space.parameters}
            for p in space.parameters:
                v = point[p.name]
                if isinstance(p, Integer):
                    assert type(v) is int and p.low <= v <= p.high
                elif isinstance(p, Categorical):
                    assert v in p.choices
                elif isinstance(p, Real):
                    assert type(v) is float and p.low <= v <= p.high

    def test_same_seed_same_proposals(self, planner_factory, space, objectives, outcome):
        first = self._run(planner_factory(space, objectives, 1), outcome, self.rounds)
        again = self._run(planner_factory(space, objectives, 1), outcome, self.rounds)
        assert again == first

    def test_state_dict_round_trip(self, planner_factory, space, objectives, outcome):
        planner = planner_factory(space, objectives, 5)
        self._run(planner, outcome, 1)
        state = json.loads(json.dumps(planner.state_dict()))  # must survive JSON
        rebuilt = planner_factory(space, objectives, 0)
        rebuilt.load_state_dict(state)
        assert rebuilt.n_asks == planner.n_asks
        assert rebuilt.observations == planner.observations
        assert rebuilt.ask(2) == planner.ask(2)

    def test_tell_with_nan_is_a_failure_not_a_crash(
        self, planner_factory, space, objectives, outcome
    ):
        planner = planner_factory(space, objectives, 2)
        points = planner.ask(self.batch)
        outcomes = [outcome(p) for p in points]
        outcomes[0] = {o.name: float("nan") for o in objectives}
        planner.tell(points, outcomes)
        assert planner.observations[0].failed
        for point in self._run(planner, outcome, 1):
            space.validate(point)

    def test_pending_points_are_accepted(self, planner_factory, space, objectives, outcome):
        planner = planner_factory(space, objectives, 4)
        self._run(planner, outcome, 1)
        first = planner.ask(2)
        second = planner.ask(2, pending=first)
        assert len(second) == 2
        for point in second:
            space.validate(point)
