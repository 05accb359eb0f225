"""One Pareto front: every caller agrees, on ties too (duplicates, equal values)."""

import functools
import math

import numpy as np
import pandas as pd
from ophyd.sim import det, motor

from sdl import Campaign, open_store
from sdl.planners import Objective, Real, SobolPlanner, hypervolume, pareto_front
from sdl.plots import pareto_mask
from sdl.protocols import set_settle_measure

OBJS = [Objective("cost", "minimize"), Objective("yield", "maximize")]
DATA = [
    ({"x": 0}, {"cost": 1.0, "yield": 1.0}),
    ({"x": 0}, {"cost": 1.0, "yield": 1.0}),  # the same point measured twice
    ({"x": 1}, {"cost": 2.0, "yield": 3.0}),
    ({"x": 2}, {"cost": 2.0, "yield": 3.0}),  # another point, equal objective values
    ({"x": 3}, {"cost": 2.0, "yield": 2.0}),  # ties x=1 on cost, worse yield: dominated
    ({"x": 4}, {"cost": 0.5, "yield": 1.0}),  # ties x=0 on yield, cheaper: beats x=0
    ({"x": 5}, {"cost": math.nan, "yield": 9.0}),  # failed
]


def test_ties_give_one_front_through_every_caller():
    expected = [2, 3, 5]  # indices into DATA
    assert [p["x"] for p, _ in pareto_front(DATA, OBJS)] == [1, 2, 4]
    Y = np.array([[o["cost"], o["yield"]] for _, o in DATA])
    assert np.flatnonzero(pareto_mask(Y, [True, False])).tolist() == expected
    df = pd.DataFrame([{**p, **o, "status": "done"} for p, o in DATA])
    assert [int(r["x"]) for r, _ in pareto_front(df, OBJS)] == [1, 2, 4]
    # duplicates of a front point are all on it, or all off it
    twice = DATA[:2] + [({"x": 9}, {"cost": 9.0, "yield": 0.0})]
    assert [p["x"] for p, _ in pareto_front(twice, OBJS)] == [0, 0]
    Y2 = np.array([[o["cost"], o["yield"]] for _, o in twice])
    assert pareto_mask(Y2, [True, False]).tolist() == [True, True, False]
    assert hypervolume([o for _, o in DATA], OBJS, {"cost": 3.0, "yield": 0.0}) == (2.5 * 1 + 1 * 2)


def _level(readings):
    return math.floor((float(readings["motor_setpoint"]) + 1) * 2)  # 0..3: many ties


def _a(readings):
    return float(_level(readings))


def _b(readings):
    return (_level(readings) - 1.5) ** 2


def test_the_store_the_result_and_the_plots_agree_on_ties(RE, store_path):
    objectives = [
        Objective("a", function=_a),
        Objective("b", function=_b),
    ]
    campaign = Campaign(
        objectives=objectives,
        planner=SobolPlanner([Real("x", -0.99, 0.99)], objectives, seed=3),
        protocol=functools.partial(set_settle_measure, movables={"x": motor}, detectors=[det]),
        budget=12,
    )
    result = campaign.run(RE, store=store_path)
    store = open_store(store_path)
    df = store.to_dataframe()
    assert (df["status"] == "done").all() and df["a"].duplicated().any()
    # on the front: every experiment with a in {0, 1}; a = 2 ties a = 1 on b but loses on a
    expected = df.index[df["a"] <= 1].tolist()
    assert len(expected) >= 3 and df.loc[expected, ["a", "b"]].duplicated().any()
    assert store.pareto_front().index.tolist() == expected
    mask = pareto_mask(df[["a", "b"]].to_numpy(), [True, True])
    assert df.index[mask].tolist() == expected
    pairs = [({"x": r.x}, {"a": r.a, "b": r.b}) for r in df.itertuples()]
    assert [p["x"] for p, _ in pareto_front(pairs, objectives)] == df.loc[expected, "x"].tolist()
    assert [p["x"] for p, _ in result.pareto_front] == df.loc[expected, "x"].tolist()
    assert len(pareto_front(campaign.planner, objectives)) == len(expected)
