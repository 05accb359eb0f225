"""A multi-step liquid-handling experiment: dispense → mix → wait → measure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp

__all__ = ["mix_color"]


def mix_color(
    point: Mapping[str, Any],
    *,
    dispensers: Mapping[str, Any],
    mixer: Any,
    sensor: Any,
    wait_time: float = 0.0,
    prepare: Sequence[Any] = (),
    md: Mapping[str, Any] | None = None,
):
    """Dispense each dye, mix, wait for the color to develop, and read the sensor.

    The run has two event streams: ``dispensed`` (what each dispenser reports after
    dispensing, including its actual volume) and ``primary`` (the sensor reading).

    Args:
        point: parameter name -> volume to dispense (µL), one parameter per dye.
        dispensers: parameter name -> dispenser device (``Movable``), dispensed in order.
        mixer: a ``Triggerable`` device; triggering it mixes the well.
        sensor: a ``Readable`` and ``Triggerable`` color sensor.
        wait_time: seconds between the end of mixing and the measurement.
        prepare: ``Triggerable`` devices triggered first (e.g. a fresh-well loader).
        md: extra metadata for the run's start document.

    Returns:
        The uid of the run.
    """
    names = {p: getattr(d, "name", repr(d)) for p, d in dispensers.items()}
    _md = {
        "plan_name": "mix_color",
        "plan_args": {
            "point": dict(point),
            "dispensers": names,
            "mixer": mixer.name,
            "sensor": sensor.name,
            "wait_time": wait_time,
        },
        "detectors": [sensor.name],
        "motors": list(names.values()),
        **dict(md or {}),
    }
    devices = [*prepare, *dispensers.values(), mixer, sensor]

    @bpp.stage_decorator(devices)
    @bpp.run_decorator(md=_md)
    def _inner():
        for dev in prepare:
            yield from bps.trigger(dev, wait=True)
        for param, dev in dispensers.items():
            yield from bps.mv(dev, point[param])
        yield from bps.trigger_and_read(list(dispensers.values()), name="dispensed")
        yield from bps.trigger(mixer, wait=True)
        if wait_time > 0:
            yield from bps.sleep(wait_time)
        yield from bps.trigger_and_read([sensor])

    return (yield from _inner())
