"""A set-point controller over EPICS PVs that counts as settled after a dwell in tolerance."""

from __future__ import annotations

import time
from typing import Any

from ophyd import Component as Cpt
from ophyd import DeviceStatus, Signal

from sdl.errors import ConfigError

from ._epics_base import DEFAULT_CONNECTION_TIMEOUT, EpicsDeviceBase, _fail

__all__ = ["EpicsSetpointController"]


class EpicsSetpointController(EpicsDeviceBase):
    """A temperature (pressure, flow, ...) controller: write a setpoint, wait to settle.

    ``set(value)`` checks the software limits (raising
    :class:`~sdl.errors.LimitError` before anything is sent), writes ``setpoint_pv``
    and returns a status that finishes once ``|readback - value| <= tolerance`` has
    held for ``dwell`` seconds without interruption. It fails with
    :class:`~sdl.devices.DeviceTimeoutError` after ``timeout`` seconds (naming the last
    readback), :class:`~sdl.devices.PVDisconnectedError` on a disconnect and
    :class:`~sdl.devices.PutFailedError` if the write is refused.

    :meth:`stop` abandons the wait (the status fails) and sends nothing: a heater keeps
    its setpoint. :meth:`safe_state` writes ``safe_value`` (heater to idle) without
    waiting for the process to follow.

    Data keys: ``<name>`` (readback, hinted), ``<name>_setpoint``; configuration
    ``<name>_tolerance``, ``<name>_dwell``, ``<name>_timeout``.

    Args:
        name: device name.
        setpoint_pv: PV written with the target.
        readback_pv: PV of the measured value (not ``setpoint_pv``:
            :class:`~sdl.errors.ConfigError`).
        tolerance: allowed ``|readback - target|``, in ``egu``.
        dwell: seconds the readback must stay within tolerance.
        timeout: seconds after which an unsettled ``set`` fails; ``None``: never.
        limits: ``(low, high)`` software limits, in ``egu``.
        safe_value: setpoint written by :meth:`safe_state` / :meth:`go_safe`.
        egu: engineering units, e.g. ``"degC"``.
        connection_timeout: seconds to wait for the PVs to connect.
        **kwargs: passed to :class:`ophyd.Device`.

    Example:
        >>> T = EpicsSetpointController("T", setpoint_pv="R:T:SP", readback_pv="R:T:RBV",
        ...                             tolerance=0.1, dwell=2.0, limits=(20, 120),
        ...                             safe_value=25.0, egu="degC")
        >>> T.connect(); T.set(60).wait(600)
    """

    tolerance = Cpt(Signal, value=0.0, kind="config")
    dwell = Cpt(Signal, value=0.0, kind="config")
    timeout = Cpt(Signal, value=0.0, kind="config")

    def __init__(
        self,
        name: str,
        *,
        setpoint_pv: str,
        readback_pv: str,
        tolerance: float,
        dwell: float = 0.0,
        timeout: float | None = 600.0,
        limits: tuple[float, float] | None = None,
        safe_value: float | None = None,
        egu: str = "",
        connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            name,
            connection_timeout=connection_timeout,
            limits=limits,
            safe_value=safe_value,
            egu=egu,
            **kwargs,
        )
        if tolerance < 0 or dwell < 0 or (timeout is not None and timeout <= 0):
            raise ValueError(f"{name}: tolerance, dwell >= 0 and timeout > 0 are required")
        if readback_pv == setpoint_pv:
            raise ConfigError(
                f"controller {name!r}: readback_pv is the setpoint_pv {setpoint_pv!r}: the "
                f"set-point is within tolerance of itself at once, so every set would count "
                f"as settled before the process moved. Give the PV of the measured value"
            )
        self._timeout = None if timeout is None else float(timeout)
        self.tolerance.put(float(tolerance))
        self.dwell.put(float(dwell))
        self.timeout.put(float(timeout or 0.0))
        self._add_pv("readback", readback_pv, kind="hinted", key=self.name)
        self._add_pv("setpoint", setpoint_pv, writable=True, kind="normal")
        self._target: float | None = None

    @property
    def position(self) -> float:
        """The readback, in ``egu``."""
        return self._epics["readback"].get()

    @property
    def setpoint(self):
        """The setpoint's EPICS signal."""
        return self._epics["setpoint"]

    def set(self, value: float) -> DeviceStatus:
        """Write the setpoint and wait until settled (see the class docstring).

        Raises:
            LimitError: before anything is sent, if ``value`` is outside the limits.
        """
        self.check_value(value)
        target = float(value)
        status = self._new_status()
        try:
            self._require_connected(f"set {target} {self.egu}")
        except Exception as err:
            _fail(status, err)
            return status
        since: list[float | None] = [None]

        def settled() -> bool:
            if abs(self.position - target) > self.tolerance.get():
                since[0] = None
                return False
            if since[0] is None:
                since[0] = time.monotonic()
            return time.monotonic() - since[0] >= self.dwell.get()

        def progress() -> str:
            return (
                f"setpoint {target} {self.egu}, readback {self.position} {self.egu}, "
                f"tolerance {self.tolerance.get()} {self.egu}"
            )

        self._target = target
        try:
            self._put("setpoint", target, f"set {target} {self.egu}")
        except Exception as err:
            _fail(status, err)
            return status
        self._watch(
            status, settled, timeout=self._timeout, what=f"settling at {target}", progress=progress
        )
        return status

    def stop(self, *, success: bool = False) -> None:
        """Abandon waiting for the setpoint; its status fails. Nothing is sent."""
        self._fail_current(f"settling at {self._target} {self.egu} stopped")

    def safe_state(self):
        """A plan: stop waiting, then write ``safe_value`` (if any) to the setpoint PV,
        waiting only for the write, not for the process to follow."""
        import bluesky.plan_stubs as bps

        yield from bps.stop(self)
        if self.safe_value is not None:
            yield from bps.abs_set(self.setpoint, float(self.safe_value), wait=True)

    def go_safe(self) -> DeviceStatus:
        """:meth:`safe_state` without a RunEngine; the status finishes after the write."""
        self.stop()
        st = DeviceStatus(self)
        try:
            if self.safe_value is not None:
                self._put("setpoint", float(self.safe_value), "go to the safe state")
        except Exception as err:
            st.set_exception(err)
            return st
        st.set_finished()
        return st
