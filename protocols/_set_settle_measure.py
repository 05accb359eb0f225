"""The generic experiment: set every parameter's device, settle, then measure."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp

from sdl.errors import ConfigError

__all__ = ["set_settle_measure", "check_movables"]


def check_movables(
    parameters: Collection[str], movables: Mapping[str, Any], record_only: Collection[str] = ()
) -> None:
    """Refuse parameters that no device sets and devices mapped to no parameter.

    Raises:
        ConfigError: naming the unmapped parameters or the unknown movables, and the fix.
    """
    unmapped = sorted(set(parameters) - set(movables) - set(record_only))
    unknown = sorted(set(movables) - set(parameters))
    if unmapped:
        raise ConfigError(
            f"set_settle_measure: parameters {unmapped} have no device in movables "
            f"{sorted(movables)}; map each to the device that sets it, or list it in "
            f"record_only=[...] if no device should set it (it is then only recorded)"
        )
    if unknown:
        raise ConfigError(
            f"set_settle_measure: movables {unknown} name no parameter (the parameters are "
            f"{sorted(parameters)}); fix the names"
        )


def set_settle_measure(
    point: Mapping[str, Any],
    *,
    movables: Mapping[str, Any],
    detectors: Sequence[Any],
    settle_time: float = 0.0,
    md: Mapping[str, Any] | None = None,
    record_only: Collection[str] = (),
):
    """Move to ``point``, wait ``settle_time`` seconds, trigger and read the detectors.

    One bluesky run per call, with a single event in the ``primary`` stream holding the
    detectors' readings and the movables' positions.

    Args:
        point: parameter name -> set-point (user units).
        movables: parameter name -> device that the parameter sets (``bluesky.protocols.Movable``),
            one for every parameter in ``point`` except those in ``record_only``.
        detectors: devices to trigger and read (``Readable``; ``Triggerable`` optional).
        settle_time: seconds to wait after every motion has finished.
        md: extra metadata for the run's start document.
        record_only: parameters that no device sets (recorded in the metadata only).

    Raises:
        ConfigError: a parameter without a device (not in ``record_only``), or a movable
            that names no parameter: a silently unset parameter would be recorded as if set.

    Returns:
        The uid of the run.
    """
    check_movables(point, movables, record_only)
    moved = dict(movables)
    _md = {
        "plan_name": "set_settle_measure",
        "plan_args": {
            "point": dict(point),
            "movables": {p: getattr(d, "name", repr(d)) for p, d in moved.items()},
            "detectors": [getattr(d, "name", repr(d)) for d in detectors],
            "settle_time": settle_time,
        },
        "detectors": [getattr(d, "name", repr(d)) for d in detectors],
        "motors": [getattr(d, "name", repr(d)) for d in moved.values()],
        **dict(md or {}),
    }
    devices = list(detectors) + [d for d in moved.values() if d not in detectors]

    @bpp.stage_decorator(devices)
    @bpp.run_decorator(md=_md)
    def _inner():
        # a group of its own: a status that failed here must never be waited on again by a
        # later experiment (the RunEngine keeps unwaited statuses in their group)
        group = f"sdl-set-{uuid.uuid4()}"
        for param, dev in moved.items():
            yield from bps.abs_set(dev, point[param], group=group)
        yield from bps.wait(group=group)
        if settle_time > 0:
            yield from bps.sleep(settle_time)
        yield from bps.trigger_and_read(devices)

    return (yield from _inner())
