"""A stirred reactor over EPICS: heater controller, stirrer and spectrometer by PV prefix."""

from __future__ import annotations

from typing import Any

from ._epics_base import DEFAULT_CONNECTION_TIMEOUT, connect_all
from ._epics_controller import EpicsSetpointController
from ._epics_detector import EpicsDetector
from ._epics_positioner import EpicsPositioner
from ._epics_safety import safe_state_plan

__all__ = ["EpicsReactor"]


class EpicsReactor:
    """The three devices of a reactor IOC (such as :mod:`sdl.devices._iocs.reactor`).

    PVs are ``<prefix>T:SP``/``T:RBV`` (temperature), ``STIR:SP``/``STIR:RBV``/
    ``STIR:DMOV``/``STIR:STOP`` (stirrer) and ``SPEC:ACQ``/``SPEC:YIELD``/``SPEC:ABS``/
    ``SPEC:SPECTRUM``/``SPEC:EXPOSURE`` (spectrometer).

    Devices (in :attr:`devices`): ``<name>_temperature``
    (:class:`EpicsSetpointController`, degC), ``<name>_stirrer``
    (:class:`EpicsPositioner`, rpm) and ``<name>_spectrometer``
    (:class:`EpicsDetector`; data keys ``<name>_spectrometer_yield`` (%),
    ``..._absorbance`` and ``..._spectrum`` (64 points)).

    Args:
        name: prefix of the device names.
        prefix: PV prefix of the IOC, e.g. ``"R1:"``.
        temperature_limits: software limits of the setpoint (degC).
        stir_limits: software limits of the stir rate (rpm).
        tolerance: temperature tolerance (degC) for "settled".
        dwell: seconds within tolerance before the temperature counts as settled.
        settle_timeout: seconds after which an unsettled temperature fails.
        safe_temperature: setpoint of the safe state (heater idle), degC.
        safe_stir_rate: stir rate of the safe state, rpm.
        spectrum: whether to read the spectrum array too.
        connection_timeout: seconds to wait for the PVs to connect.
    """

    def __init__(
        self,
        name: str,
        *,
        prefix: str,
        temperature_limits: tuple[float, float] = (20.0, 120.0),
        stir_limits: tuple[float, float] = (0.0, 1500.0),
        tolerance: float = 0.2,
        dwell: float = 0.5,
        settle_timeout: float = 600.0,
        safe_temperature: float | None = 25.0,
        safe_stir_rate: float | None = 0.0,
        spectrum: bool = True,
        connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT,
    ) -> None:
        self.name = name
        self.prefix = prefix
        self.temperature = EpicsSetpointController(
            f"{name}_temperature",
            setpoint_pv=f"{prefix}T:SP",
            readback_pv=f"{prefix}T:RBV",
            tolerance=tolerance,
            dwell=dwell,
            timeout=settle_timeout,
            limits=temperature_limits,
            safe_value=safe_temperature,
            egu="degC",
            connection_timeout=connection_timeout,
        )
        self.stirrer = EpicsPositioner(
            f"{name}_stirrer",
            setpoint_pv=f"{prefix}STIR:SP",
            readback_pv=f"{prefix}STIR:RBV",
            done_pv=f"{prefix}STIR:DMOV",
            stop_pv=f"{prefix}STIR:STOP",
            limits=stir_limits,
            safe_value=safe_stir_rate,
            egu="rpm",
            connection_timeout=connection_timeout,
        )
        self.spectrometer = EpicsDetector(
            f"{name}_spectrometer",
            trigger_pv=f"{prefix}SPEC:ACQ",
            read_pvs={"yield": f"{prefix}SPEC:YIELD", "absorbance": f"{prefix}SPEC:ABS"},
            array_pv=f"{prefix}SPEC:SPECTRUM" if spectrum else None,
            array_key="spectrum",
            config_pvs={"exposure": f"{prefix}SPEC:EXPOSURE"},
            connection_timeout=connection_timeout,
        )
        self.connection_timeout = connection_timeout

    @property
    def devices(self) -> dict[str, Any]:
        """Device name -> device."""
        return {d.name: d for d in (self.temperature, self.stirrer, self.spectrometer)}

    def connect(self, timeout: float | None = None) -> None:
        """Connect all three devices together (see :func:`connect_all`)."""
        connect_all(self.devices.values(), timeout)

    def safe_state(self):
        """A plan: stirrer and heater to their safe values, spectrometer stopped."""
        return (yield from safe_state_plan(self.devices.values()))
