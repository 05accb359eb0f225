"""Turn bluesky documents into JSON-safe attributes."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

__all__ = ["jsonable", "dumps"]


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return repr(obj)


def _fix_floats(obj: Any) -> Any:
    # JSON has no NaN/inf; zarr attributes are JSON. Keep them readable as strings.
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _fix_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fix_floats(v) for v in obj]
    return obj


def jsonable(obj: Any) -> Any:
    """A deep copy of ``obj`` made of JSON types only (numpy scalars and arrays unpacked)."""
    return _fix_floats(json.loads(json.dumps(obj, default=_default)))


def dumps(obj: Any) -> str:
    """``json.dumps(jsonable(obj))``, in one pass when ``obj`` holds no NaN or infinity
    (the run table stores three documents per experiment this way)."""
    try:
        return json.dumps(obj, default=_default, allow_nan=False)
    except ValueError:  # a non-finite float: written as a string, as jsonable does
        return json.dumps(jsonable(obj))
