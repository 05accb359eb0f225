"""Simulated (and, later, real) instruments as plain ophyd devices.

Every device satisfies the matching ``bluesky.protocols`` (``Movable``,
``Readable``, ``Triggerable``, ``Stoppable``, ``Configurable``, ``Checkable``), so a
user's own ophyd devices work alongside them unchanged. Simulated devices take
their physics by injection, a ``time_scale`` (0 in tests: nothing ever sleeps), a
``seed`` (same seed, same readings) and :class:`Faults` to inject failures.

Public names:
    :class:`SimMotor`, :class:`SimDetector`, :class:`Faults`,
    :class:`ColorMixingStation` (with :class:`ColorMixPhysics`,
    :class:`SimDispenser`, :class:`SimMixer`, :class:`SimColorSensor`,
    :class:`Well`), :class:`AlignmentStage`, and the registry
    (:func:`make_device`, :func:`register_device`, :func:`available_devices`).
"""

from ._alignment import AlignmentStage, GaussianPeak, HartmannIntensity
from ._color import (
    DYE_ABSORBANCE,
    ColorMixingStation,
    ColorMixPhysics,
    SimColorSensor,
    SimDispenser,
    SimMixer,
    Well,
)
from ._detector import SimDetector
from ._faults import DeviceTimeoutError, Faults
from ._motor import SimMotor
from ._registry import ENTRY_POINT_GROUP, available_devices, make_device, register_device

__all__ = [
    "AlignmentStage",
    "ColorMixPhysics",
    "ColorMixingStation",
    "DYE_ABSORBANCE",
    "DeviceTimeoutError",
    "ENTRY_POINT_GROUP",
    "Faults",
    "GaussianPeak",
    "HartmannIntensity",
    "SimColorSensor",
    "SimDetector",
    "SimDispenser",
    "SimMixer",
    "SimMotor",
    "Well",
    "available_devices",
    "make_device",
    "register_device",
]
