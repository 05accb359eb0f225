"""A simulated motor (or any set-point quantity) as a plain ophyd device."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, DeviceStatus, Signal

from sdl.errors import DeviceFaultError, LimitError

from ._faults import NO_FAULTS, FaultInjector, Faults, InjectedFault, call_later

__all__ = ["SimMotor"]


class SimMotor(Device):
    """A simulated axis: position, temperature, or any quantity with a set-point.

    The motor checks its software limits before anything moves, then completes its
    move after ``settle_time`` (plus ``|distance| / velocity`` when a velocity is
    given) simulated seconds, multiplied by ``time_scale``. Completion runs on a
    ``threading.Timer``; the caller never sleeps, and at ``time_scale=0`` the move
    finishes before :meth:`set` returns.

    Data keys: ``<name>`` (readback, hinted) and ``<name>_setpoint``; configuration
    keys ``<name>_low_limit_travel``, ``<name>_high_limit_travel``,
    ``<name>_settle_time`` and ``<name>_velocity`` (0 means no travel time).

    Args:
        name: Device name; also the data key of the readback.
        limits: ``(low, high)`` software limits, in ``egu``.
        settle_time: Time to settle after each move, in simulated seconds.
        velocity: Travel speed in ``egu`` per simulated second; ``None`` means
            moves take only ``settle_time``.
        time_scale: Real seconds per simulated second; 0 (for tests and CI) makes
            every operation complete immediately.
        faults: Probabilities of simulated faults per ``set``: a :class:`Faults` or
            a mapping of its fields (``{"timeout": 0.05}``); ``None`` for none. Every
            injected fault is logged in :attr:`injected_faults`.
        seed: Seed of the device's random streams (faults); ``None`` is random.
        initial: Initial position, in ``egu``; must lie within ``limits``.
        egu: Engineering units, e.g. ``"mm"``, ``"deg"``, ``"degC"``.
        **kwargs: Passed to :class:`ophyd.Device` (``labels``, ``parent``...).

    Raises:
        LimitError: If ``initial`` is outside ``limits``.
        ValueError: If ``limits`` are not ordered or times are negative.

    Example:
        >>> m = SimMotor("x", limits=(-5.0, 5.0))
        >>> m.set(1.5).wait(1); m.position
        1.5
    """

    readback = Cpt(Signal, value=0.0, kind="hinted")
    setpoint = Cpt(Signal, value=0.0, kind="normal")
    low_limit_travel = Cpt(Signal, value=0.0, kind="config")
    high_limit_travel = Cpt(Signal, value=0.0, kind="config")
    settle_time = Cpt(Signal, value=0.0, kind="config")
    velocity = Cpt(Signal, value=0.0, kind="config")

    def __init__(
        self,
        name: str,
        *,
        limits: tuple[float, float] = (-10.0, 10.0),
        settle_time: float = 0.0,
        velocity: float | None = None,
        time_scale: float = 0.0,
        faults: Faults | Mapping[str, Any] | None = NO_FAULTS,
        seed: int | None = None,
        initial: float = 0.0,
        egu: str = "mm",
        **kwargs,
    ) -> None:
        super().__init__(name=name, **kwargs)
        low, high = (float(v) for v in limits)
        if not low <= high:
            raise ValueError(f"{name}: limits {limits!r} must be (low, high) with low <= high")
        if settle_time < 0 or time_scale < 0:
            raise ValueError(f"{name}: settle_time and time_scale must be >= 0 seconds")
        if velocity is not None and velocity <= 0:
            raise ValueError(f"{name}: velocity must be > 0 {egu}/s or None")
        self.readback.name = self.name
        self.egu = egu
        self.time_scale = float(time_scale)
        self.seed = seed
        self.low_limit_travel.put(low)
        self.high_limit_travel.put(high)
        self.settle_time.put(float(settle_time))
        self.velocity.put(float(velocity or 0.0))
        self._faults = FaultInjector(faults, self.name, seed)
        self._lock = threading.RLock()
        self._status: DeviceStatus | None = None
        self._timer: threading.Timer | None = None
        self._motion: tuple[float, float, float, float] | None = None
        self.check_value(initial)
        self.setpoint.put(float(initial))
        self.readback.put(float(initial))

    @property
    def injected_faults(self) -> tuple[InjectedFault, ...]:
        """Every fault injected into this motor's moves so far, oldest first."""
        return self._faults.injected

    # -- limits ---------------------------------------------------------------
    @property
    def limits(self) -> tuple[float, float]:
        """Software limits ``(low, high)``, in ``egu``."""
        return (self.low_limit_travel.get(), self.high_limit_travel.get())

    @property
    def low_limit(self) -> float:
        """Lower software limit, in ``egu``."""
        return self.limits[0]

    @property
    def high_limit(self) -> float:
        """Upper software limit, in ``egu``."""
        return self.limits[1]

    def check_value(self, value: float) -> None:
        """Raise if ``value`` is not an allowed set-point (bluesky ``Checkable``).

        Args:
            value: Requested position, in ``egu``.

        Raises:
            LimitError: If ``value`` is not finite or lies outside the limits.
        """
        low, high = self.limits
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise LimitError(f"{self.name}: set-point {value!r} is not a number") from None
        if not (math.isfinite(v) and low <= v <= high):
            raise LimitError(
                f"{self.name}: set-point {value!r} {self.egu} is outside the software "
                f"limits [{low}, {high}] {self.egu}; nothing was moved"
            )

    # -- motion ---------------------------------------------------------------
    @property
    def position(self) -> float:
        """Current readback, in ``egu``."""
        return self.readback.get()

    @property
    def moving(self) -> bool:
        """Whether a move is in progress."""
        st = self._status
        return st is not None and not st.done

    def move_time(self, start: float, target: float) -> float:
        """Simulated duration of a move, in seconds (before ``time_scale``)."""
        duration = self.settle_time.get()
        velocity = self.velocity.get()
        if velocity > 0:
            duration += abs(target - start) / velocity
        return duration

    def _arrival_value(self, target: float) -> float:
        """Readback reached when a move to ``target`` completes (hook for subclasses)."""
        return target

    def set(self, value: float) -> DeviceStatus:
        """Move to ``value``.

        Args:
            value: Target, in ``egu``.

        Returns:
            A status that finishes when the move (and settling) is complete, or
            fails with a simulated fault.

        Raises:
            LimitError: Synchronously, before anything moves, if ``value`` is
                outside the software limits.
        """
        self.check_value(value)
        target = float(value)
        with self._lock:
            if self.moving:
                self._halt("superseded by a new set-point")
            start = self.position
            self.setpoint.put(target)
            status = DeviceStatus(self, call_stop_on_failure=False)
            self._status = status
            fault = self._faults.draw("set")
            if fault is not None:
                self._motion = None
                self._timer = self._faults.fail(status, fault, "set", self.time_scale)
                return status
            arrival = self._arrival_value(target)
            duration = self.move_time(start, target) * self.time_scale
            self._motion = (time.monotonic(), start, arrival, duration)

            def finish() -> None:
                with self._lock:
                    if self._status is not status or status.done:
                        return
                    self._status = self._timer = self._motion = None
                    self.readback.put(arrival)
                status.set_finished()

            self._timer = call_later(duration, finish)
        return status

    def _halt(self, reason: str) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            status, motion = self._status, self._motion
            self._status = self._timer = self._motion = None
            if status is None or status.done:
                return
            if motion is not None:
                t0, start, arrival, duration = motion
                frac = 1.0 if duration <= 0 else min(1.0, (time.monotonic() - t0) / duration)
                if self.velocity.get() > 0:
                    self.readback.put(start + (arrival - start) * frac)
        status.set_exception(
            DeviceFaultError(f"{self.name}: move {reason} at {self.position} {self.egu}")
        )

    def stop(self, *, success: bool = False) -> None:
        """Stop any move in progress; its status fails. With a velocity the
        readback stays where the motor had travelled to, otherwise unchanged.

        Args:
            success: Accepted for ophyd/bluesky compatibility; ignored.
        """
        self._halt("stopped")

    # -- description ----------------------------------------------------------
    def describe(self):
        """Describe readings, adding units and limits to the readback keys."""
        desc = super().describe()
        low, high = self.limits
        for key in (self.readback.name, self.setpoint.name):
            if key in desc:
                desc[key].update(units=self.egu, limits={"control": {"low": low, "high": high}})
        return desc
