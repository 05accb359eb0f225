"""The run table's documents as JSON: one pass when there is no NaN, the same text."""

import json
import math

import numpy as np
import pytest

from sdl.store._json import dumps, jsonable


class _Device:
    def __repr__(self):
        return "<motor1>"


@pytest.mark.parametrize(
    "doc",
    [
        {"uid": "a", "time": 1.5, "num_points": 3, "plan_args": {"x": [1, 2.25]}},
        {"point": {"x": np.float64(0.1), "k": np.int64(3), "f32": np.float32(0.5)}},
        {"shape": (2, 3), "tags": {"b"}, "array": np.arange(3), "device": _Device()},
        {1: "int key", 2.5: "float key", False: "bool key", None: "none key"},
        {"outcome": {"y": math.nan, "z": np.float64("inf"), "w": [np.float32("-inf")]}},
        {"deep": [{"a": [1, {"b": (math.nan,)}]}], "empty": {}, "none": None},
    ],
)
def test_dumps_writes_what_jsonable_then_json_would(doc):
    assert dumps(doc) == json.dumps(jsonable(doc))
    assert "NaN" not in dumps(doc) and "Infinity" not in dumps(doc)  # valid JSON
    json.loads(dumps(doc), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
