"""Turn bluesky documents into JSON-safe attributes."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

__all__ = ["jsonable"]


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
