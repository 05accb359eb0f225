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

    EPICS (Channel Access, through pyepics): :class:`EpicsPositioner`,
    :class:`EpicsSetpointController`, :class:`EpicsDetector`, :class:`EpicsReactor`;
    :func:`connect_all` and :func:`connect_together` (one error for every PV that did
    not connect), :class:`PVDisconnectedError`, :class:`PutFailedError`; and the safe
    state helpers :func:`safe_state_plan` and :func:`make_safe`. See ``docs/epics.md``.
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
from ._epics_base import (
    DEFAULT_CONNECTION_TIMEOUT,
    EpicsDeviceBase,
    PutFailedError,
    PVDisconnectedError,
    connect_all,
)
from ._epics_controller import EpicsSetpointController
from ._epics_detector import EpicsDetector
from ._epics_positioner import EpicsPositioner
from ._epics_reactor import EpicsReactor
from ._epics_safety import connect_together, make_safe, safe_state_plan
from ._faults import DeviceTimeoutError, Faults
from ._film import FILM_OPTIMUM, SimProcess, film_figure_of_merit, make_spectrometer
from ._motor import SimMotor
from ._registry import ENTRY_POINT_GROUP, available_devices, make_device, register_device

__all__ = [
    "AlignmentStage",
    "ColorMixPhysics",
    "ColorMixingStation",
    "DYE_ABSORBANCE",
    "DEFAULT_CONNECTION_TIMEOUT",
    "DeviceTimeoutError",
    "ENTRY_POINT_GROUP",
    "EpicsDetector",
    "EpicsDeviceBase",
    "EpicsPositioner",
    "EpicsReactor",
    "EpicsSetpointController",
    "PVDisconnectedError",
    "PutFailedError",
    "FILM_OPTIMUM",
    "Faults",
    "SimProcess",
    "film_figure_of_merit",
    "make_spectrometer",
    "GaussianPeak",
    "HartmannIntensity",
    "SimColorSensor",
    "SimDetector",
    "SimDispenser",
    "SimMixer",
    "SimMotor",
    "Well",
    "available_devices",
    "connect_all",
    "connect_together",
    "make_safe",
    "safe_state_plan",
    "make_device",
    "register_device",
]
