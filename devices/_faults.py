"""Fault injection for simulated instruments.

A :class:`Faults` value says how often an operation (``set`` or ``trigger``) of a
simulated device goes wrong; a :class:`FaultInjector` (one per device, with its own
seeded random generator) draws the fault for each operation and fails the status.
Every fault it injects is logged as an :class:`InjectedFault` (``injector.injected``),
so a test can match each failed experiment to the fault that caused it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sdl.errors import DeviceFaultError, SdlError

__all__ = [
    "NO_FAULTS",
    "Faults",
    "FaultInjector",
    "InjectedFault",
    "collect_injected",
    "DeviceTimeoutError",
    "FaultKind",
    "make_rng",
]

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

    Example:
        >>> Faults.coerce({"timeout": 0.05, "nan": 0.1})  # as written in YAML
        Faults(timeout=0.05, exception=0.0, nan=0.1, seed=None, timeout_s=10.0)
    """

    timeout: float = 0.0
    exception: float = 0.0
    nan: float = 0.0
    seed: int | None = None
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        probs = {"timeout": self.timeout, "exception": self.exception, "nan": self.nan}
        for key, p in probs.items():
            try:
                ok = not isinstance(p, bool) and 0.0 <= float(p) <= 1.0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"Faults.{key}={p!r} must be a probability in [0, 1]")
        if sum(probs.values()) > 1.0 + 1e-12:
            raise ValueError(f"Faults probabilities sum to {sum(probs.values())} > 1")
        if self.timeout_s < 0:
            raise ValueError(f"Faults.timeout_s={self.timeout_s!r} must be >= 0 seconds")

    @property
    def any(self) -> bool:
        """Whether any fault can happen at all."""
        return (self.timeout + self.exception + self.nan) > 0.0

    @classmethod
    def coerce(cls, value: Faults | Mapping[str, Any] | None) -> Faults:
        """A :class:`Faults` from itself, a mapping of its fields (YAML), or ``None``.

        Args:
            value: ``Faults``, ``{"timeout": p, "exception": p, "nan": p, "seed": s,
                "timeout_s": t}`` (every key optional), or ``None`` (no faults).

        Returns:
            The ``Faults`` value.

        Raises:
            ValueError: On an unknown key or a value out of range.
            TypeError: If ``value`` is neither a ``Faults`` nor a mapping.
        """
        if value is None:
            return NO_FAULTS
        if isinstance(value, Faults):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(
                f"faults must be a Faults or a mapping like {{timeout: 0.05}}, got {value!r}"
            )
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(str(k) for k in value if k not in names)
        if unknown:
            raise ValueError(f"faults: unknown key(s) {unknown}; known keys: {', '.join(names)}")
        return cls(**value)


@dataclass(frozen=True)
class InjectedFault:
    """One fault that a :class:`FaultInjector` injected.

    Attributes:
        device: Name of the device.
        operation: ``"set"`` or ``"trigger"``.
        kind: ``"timeout"``, ``"exception"`` or ``"nan"``.
        time: Wall-clock time of the operation (``time.time()``, seconds since the
            epoch), for matching the fault with the experiment that ran then.
        error: Name of the exception type the status fails with
            (``"DeviceTimeoutError"``, ``"DeviceFaultError"``), ``""`` for a NaN.
        message: The exact text of that exception; for a NaN, a description (the
            status succeeds and the readings are NaN).
    """

    device: str
    operation: str
    kind: FaultKind
    time: float
    error: str
    message: str

    @property
    def text(self) -> str:
        """``"<error>: <message>"`` as a failure cause shows it (the message for a NaN)."""
        return f"{self.error}: {self.message}" if self.error else self.message


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
        faults: The fault probabilities: a :class:`Faults`, a mapping of its fields,
            or ``None`` (no faults).
        name: Device name (used in messages and to seed the stream).
        seed: The device's seed, used when ``faults.seed`` is ``None``.
    """

    def __init__(
        self, faults: Faults | Mapping[str, Any] | None, name: str, seed: int | None
    ) -> None:
        faults = Faults.coerce(faults)
        self.faults = faults
        self.name = name
        fault_seed = faults.seed if faults.seed is not None else seed
        self._rng = make_rng(fault_seed, name, "faults")
        self._lock = threading.Lock()
        self._injected: list[InjectedFault] = []

    @property
    def injected(self) -> tuple[InjectedFault, ...]:
        """Every fault injected so far, oldest first (a snapshot; read-only)."""
        with self._lock:
            return tuple(self._injected)

    def _error(self, kind: FaultKind, operation: str) -> Exception | None:
        """The exception a status fails with for ``kind`` (``None`` for a NaN)."""
        if kind == "exception":
            return DeviceFaultError(f"{self.name}: simulated fault during {operation}")
        if kind == "timeout":
            return DeviceTimeoutError(
                f"{self.name}: simulated timeout during {operation} "
                f"(no completion within {self.faults.timeout_s} s)"
            )
        return None

    def draw(self, operation: str, *, can_nan: bool = False) -> FaultKind | None:
        """Decide the fault of one operation.

        Args:
            operation: ``"set"`` or ``"trigger"`` (for messages only).
            can_nan: Whether a NaN reading is possible for this operation.

        Returns:
            ``"timeout"``, ``"exception"``, ``"nan"`` or ``None`` (no fault). A fault
            is logged in :attr:`injected`; the caller must then apply it (``fail``
            for a timeout or an exception, NaN readings for a NaN).
        """
        f = self.faults
        if not f.any:
            return None
        u = float(self._rng.random())
        kind: FaultKind | None = None
        if u < f.timeout:
            kind = "timeout"
        elif u < f.timeout + f.exception:
            kind = "exception"
        elif can_nan and u < f.timeout + f.exception + f.nan:
            kind = "nan"
        if kind is not None:
            exc = self._error(kind, operation)
            error, message = (
                (type(exc).__name__, str(exc))
                if exc is not None
                else ("", f"{self.name}: simulated NaN reading during {operation}")
            )
            record = InjectedFault(self.name, operation, kind, time.time(), error, message)
            with self._lock:
                self._injected.append(record)
        return kind

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
        exc = self._error(kind, operation)
        if exc is None:
            raise ValueError(f"{self.name}: a {kind!r} fault does not fail a status")
        if kind == "exception":
            status.set_exception(exc)
            return None
        delay = self.faults.timeout_s * time_scale
        return call_later(delay, lambda: _safe_fail(status, exc))


def collect_injected(devices: Iterable[Any]) -> tuple[InjectedFault, ...]:
    """The faults injected into several devices, in the order they were drawn.

    Args:
        devices: Devices; those without an ``injected_faults`` attribute are skipped.

    Returns:
        Every :class:`InjectedFault`, sorted by ``time``.
    """
    out = [f for d in devices for f in getattr(d, "injected_faults", ())]
    return tuple(sorted(out, key=lambda f: f.time))


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
