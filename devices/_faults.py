"""Fault injection for simulated instruments.

A :class:`Faults` value says how often an operation (``set`` or ``trigger``) of a
simulated device goes wrong; a :class:`FaultInjector` (one per device, with its own
seeded random generator) draws the fault for each operation and fails the status.
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sdl.errors import DeviceFaultError, SdlError

__all__ = ["NO_FAULTS", "Faults", "FaultInjector", "DeviceTimeoutError", "FaultKind", "make_rng"]

FaultKind = Literal["timeout", "exception", "nan"]


class DeviceTimeoutError(SdlError, TimeoutError):
    """A (simulated) device operation did not complete in time.

    ophyd reserves ``StatusTimeoutError`` for its own status timeouts and refuses it
    in ``set_exception``, so simulated timeouts use this plain ``TimeoutError``.
    """


@dataclass(frozen=True)
class Faults:
    """Probabilities of simulated faults, per operation.

    For every ``set`` (motors, dispensers) or ``trigger`` (detectors, mixers) one
    uniform number is drawn and compared with the cumulative probabilities
    ``timeout``, ``exception``, ``nan`` (in that order), so at most one fault happens
    per operation.

    Args:
        timeout: Probability that the operation hangs and its status fails with
            :class:`DeviceTimeoutError` after ``timeout_s * time_scale`` seconds.
        exception: Probability that the status fails with
            :class:`sdl.errors.DeviceFaultError`.
        nan: Probability that the reading produced by a ``trigger`` is NaN
            (detectors only; the status succeeds). Ignored by movable devices.
        seed: Seed of the fault stream. ``None`` uses the device's own seed; either
            way the stream is mixed with the device name, so two devices sharing a
            seed draw independent faults.
        timeout_s: Simulated time (seconds, before ``time_scale``) after which a
            hung operation reports its timeout.

    Raises:
        ValueError: If a probability is outside [0, 1] or they sum above 1.
    """

    timeout: float = 0.0
    exception: float = 0.0
    nan: float = 0.0
    seed: int | None = None
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        probs = {"timeout": self.timeout, "exception": self.exception, "nan": self.nan}
        for key, p in probs.items():
            if not 0.0 <= float(p) <= 1.0:
                raise ValueError(f"Faults.{key}={p!r} must be a probability in [0, 1]")
        if sum(probs.values()) > 1.0 + 1e-12:
            raise ValueError(f"Faults probabilities sum to {sum(probs.values())} > 1")
        if self.timeout_s < 0:
            raise ValueError(f"Faults.timeout_s={self.timeout_s!r} must be >= 0 seconds")

    @property
    def any(self) -> bool:
        """Whether any fault can happen at all."""
        return (self.timeout + self.exception + self.nan) > 0.0


#: The default: no faults at all.
NO_FAULTS = Faults()


def make_rng(seed: int | None, name: str, stream: str) -> np.random.Generator:
    """A random generator for one device and one purpose.

    Args:
        seed: User seed; ``None`` gives fresh OS entropy.
        name: Device name, mixed in so equal seeds on different devices differ.
        stream: Purpose (``"noise"``, ``"faults"``, ...), mixed in likewise.

    Returns:
        A ``numpy.random.Generator``.
    """
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng(
        [int(seed), zlib.crc32(name.encode()), zlib.crc32(stream.encode())]
    )


class FaultInjector:
    """Draws and applies faults for one device.

    Args:
        faults: The fault probabilities.
        name: Device name (used in messages and to seed the stream).
        seed: The device's seed, used when ``faults.seed`` is ``None``.
    """

    def __init__(self, faults: Faults, name: str, seed: int | None) -> None:
        self.faults = faults
        self.name = name
        fault_seed = faults.seed if faults.seed is not None else seed
        self._rng = make_rng(fault_seed, name, "faults")

    def draw(self, operation: str, *, can_nan: bool = False) -> FaultKind | None:
        """Decide the fault of one operation.

        Args:
            operation: ``"set"`` or ``"trigger"`` (for messages only).
            can_nan: Whether a NaN reading is possible for this operation.

        Returns:
            ``"timeout"``, ``"exception"``, ``"nan"`` or ``None`` (no fault).
        """
        f = self.faults
        if not f.any:
            return None
        u = float(self._rng.random())
        if u < f.timeout:
            return "timeout"
        if u < f.timeout + f.exception:
            return "exception"
        if can_nan and u < f.timeout + f.exception + f.nan:
            return "nan"
        return None

    def fail(
        self, status, kind: FaultKind, operation: str, time_scale: float
    ) -> threading.Timer | None:
        """Fail ``status`` with the given fault.

        Args:
            status: An ophyd status not yet finished.
            kind: ``"timeout"`` or ``"exception"``.
            operation: ``"set"`` or ``"trigger"``.
            time_scale: Real seconds per simulated second.

        Returns:
            The timer that will fail a timed-out status, or ``None`` if the
            status was failed immediately.
        """
        if kind == "exception":
            status.set_exception(
                DeviceFaultError(f"{self.name}: simulated fault during {operation}")
            )
            return None
        delay = self.faults.timeout_s * time_scale
        exc = DeviceTimeoutError(
            f"{self.name}: simulated timeout during {operation} "
            f"(no completion within {self.faults.timeout_s} s)"
        )
        return call_later(delay, lambda: _safe_fail(status, exc))


def _safe_fail(status, exc: Exception) -> None:
    if not status.done:
        try:
            status.set_exception(exc)
        except Exception:  # already completed by stop(); nothing to report
            pass


def call_later(delay: float, func) -> threading.Timer | None:
    """Run ``func`` after ``delay`` seconds on a daemon timer, or now if 0.

    Args:
        delay: Seconds; ``<= 0`` runs ``func`` synchronously in the caller.
        func: Zero-argument callable.

    Returns:
        The started timer, or ``None`` when ``func`` already ran.
    """
    if delay <= 0:
        func()
        return None
    timer = threading.Timer(delay, func)
    timer.daemon = True
    timer.start()
    return timer
