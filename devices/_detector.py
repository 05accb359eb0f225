"""A simulated detector whose physics is injected as a callable."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, DeviceStatus, Signal

from sdl.errors import DeviceFaultError

from ._faults import NO_FAULTS, FaultInjector, Faults, InjectedFault, call_later, make_rng

__all__ = ["SimDetector", "Physics", "read_position"]

Value = float | np.ndarray
#: ``physics(inputs) -> float | {channel: float | array}``; ``inputs`` maps each
#: input name to that device's current readback.
Physics = Callable[[dict[str, Any]], float | Mapping[str, Value]]


def read_position(device: Any) -> Any:
    """The current readback value of a device.

    Uses ``device.position`` when it exists (ophyd positioners, :class:`SimMotor`),
    otherwise the reading keyed by the device's name, otherwise its first reading.

    Args:
        device: An ophyd device or signal.

    Returns:
        The value, in the device's units.
    """
    if hasattr(device, "position"):
        return device.position
    reading = device.read()
    if device.name in reading:
        return reading[device.name]["value"]
    return next(iter(reading.values()))["value"]


class SimDetector(Device):
    """A detector computing its readings from other devices' positions.

    On :meth:`trigger` the detector snapshots the current readback of every input
    device, passes them to ``physics``, adds seeded Gaussian noise, and publishes
    the readings after ``exposure_time * time_scale`` seconds (on a timer; the
    caller never sleeps).

    Data keys: ``<name>_<channel>`` for each channel of a dict-valued physics
    (arrays keep their shape and are described as ``"array"``), or ``<name>`` when
    the physics returns a float. Scalar channels are hinted. Configuration keys:
    ``<name>_exposure_time``, ``<name>_noise``, ``<name>_noise_mode``.

    The channels are discovered by evaluating ``physics`` once (without noise) at
    construction; a later evaluation must return the same channels and shapes.

    Args:
        name: Device name.
        physics: Ground truth ``physics(inputs)``, where ``inputs`` is
            ``{input_name: readback}``; returns a float or ``{channel: value}``.
        inputs: ``{input_name: device}``, or a list of devices (named by ``.name``).
        noise: Standard deviation of the Gaussian noise added to every channel, in
            the channel's units (or as a fraction of the value when
            ``relative_noise``).
        relative_noise: If true, the noise std is ``noise * |value|``.
        exposure_time: Measurement time, in simulated seconds.
        time_scale: Real seconds per simulated second (0: instant).
        faults: Probabilities of simulated faults per ``trigger``: a :class:`Faults`
            or a mapping of its fields; ``None`` for none. Every injected fault is
            logged in :attr:`injected_faults`.
        seed: Seed of the noise and fault streams; the same seed gives the same
            readings for the same sequence of inputs. ``None`` is random.
        **kwargs: Passed to :class:`ophyd.Device`.

    Example:
        >>> m = SimMotor("x")
        >>> det = SimDetector("det", physics=lambda p: {"I": 1 - p["x"] ** 2},
        ...                   inputs=[m], seed=0)
        >>> det.trigger().wait(1); det.read()["det_I"]["value"]
        1.0
    """

    exposure_time = Cpt(Signal, value=0.0, kind="config")
    noise = Cpt(Signal, value=0.0, kind="config")
    noise_mode = Cpt(Signal, value="absolute", kind="config")

    def __init__(
        self,
        name: str,
        *,
        physics: Physics,
        inputs: Mapping[str, Any] | Iterable[Any] = (),
        noise: float = 0.0,
        relative_noise: bool = False,
        exposure_time: float = 0.0,
        time_scale: float = 0.0,
        faults: Faults | Mapping[str, Any] | None = NO_FAULTS,
        seed: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if not callable(physics):
            raise TypeError(f"{name}: physics must be callable, got {physics!r}")
        if noise < 0 or exposure_time < 0 or time_scale < 0:
            raise ValueError(f"{name}: noise, exposure_time and time_scale must be >= 0")
        self.physics = physics
        if isinstance(inputs, Mapping):
            self.inputs: dict[str, Any] = dict(inputs)
        else:
            self.inputs = {dev.name: dev for dev in inputs}
        self.exposure_time.put(float(exposure_time))
        self.noise.put(float(noise))
        self.noise_mode.put("relative" if relative_noise else "absolute")
        self.time_scale = float(time_scale)
        self.seed = seed
        self._rng = make_rng(seed, self.name, "noise")
        self._faults = FaultInjector(faults, self.name, seed)
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self._status: DeviceStatus | None = None
        first = self._derive(self._normalize(self._evaluate()))
        self._channels: dict[str | None, Signal] = {}
        for channel, value in first.items():
            key = self.name if channel is None else f"{self.name}_{channel}"
            self._channels[channel] = Signal(name=key, value=value, parent=self)
        self._shapes = {ch: np.shape(v) for ch, v in first.items()}

    @property
    def injected_faults(self) -> tuple[InjectedFault, ...]:
        """Every fault injected into this detector's triggers so far, oldest first."""
        return self._faults.injected

    # -- channels -------------------------------------------------------------
    @property
    def channels(self) -> tuple[str, ...]:
        """Data keys of the readings, in order."""
        return tuple(sig.name for sig in self._channels.values())

    def _evaluate(self) -> Any:
        positions = {key: read_position(dev) for key, dev in self.inputs.items()}
        return self.physics(positions)

    def _normalize(self, raw: Any) -> dict[str | None, Value]:
        if isinstance(raw, Mapping):
            items = raw.items()
        else:
            items = [(None, raw)]
        out: dict[str | None, Value] = {}
        for channel, value in items:
            arr = np.asarray(value, dtype=float)
            out[channel] = float(arr) if arr.ndim == 0 else arr
        return out

    def _add_noise(self, values: dict[str | None, Value]) -> dict[str | None, Value]:
        std = self.noise.get()
        if std <= 0:
            return values
        relative = self.noise_mode.get() == "relative"
        out: dict[str | None, Value] = {}
        for channel, value in values.items():
            scale = std * np.abs(value) if relative else std
            noisy = value + self._rng.normal(0.0, 1.0, np.shape(value)) * scale
            out[channel] = float(noisy) if np.ndim(noisy) == 0 else np.asarray(noisy)
        return out

    def _derive(self, values: dict[str | None, Value]) -> dict[str | None, Value]:
        """Hook: channels computed from the noisy ones (default: unchanged)."""
        return values

    def measure(self, *, nan: bool = False) -> dict[str | None, Value]:
        """Compute one set of noisy readings from the inputs' current positions.

        Args:
            nan: Replace every value with NaN (a simulated bad reading).

        Returns:
            ``{channel: value}``; the channel is ``None`` for a float physics.

        Raises:
            DeviceFaultError: If the physics fails or changes its channels/shapes.
        """
        try:
            values = self._derive(self._add_noise(self._normalize(self._evaluate())))
        except Exception as exc:
            raise DeviceFaultError(f"{self.name}: physics raised {exc!r}") from exc
        shapes = {ch: np.shape(v) for ch, v in values.items()}
        if shapes != self._shapes:
            raise DeviceFaultError(
                f"{self.name}: physics returned channels/shapes {shapes}, "
                f"expected {self._shapes} as at construction"
            )
        if nan:
            values = {
                ch: float("nan") if np.ndim(v) == 0 else np.full(np.shape(v), np.nan)
                for ch, v in values.items()
            }
        return values

    # -- bluesky interface ----------------------------------------------------
    def trigger(self) -> DeviceStatus:
        """Acquire one set of readings.

        Returns:
            A status finishing after ``exposure_time * time_scale`` seconds, or
            failing with a simulated fault or a physics error.
        """
        with self._lock:
            status = DeviceStatus(self, call_stop_on_failure=False)
            self._status = status
            fault = self._faults.draw("trigger", can_nan=True)
            if fault in ("timeout", "exception"):
                self._timer = self._faults.fail(status, fault, "trigger", self.time_scale)
                return status
            try:
                values = self.measure(nan=fault == "nan")
            except DeviceFaultError as exc:
                status.set_exception(exc)
                return status

            def finish() -> None:
                with self._lock:
                    if self._status is not status or status.done:
                        return
                    self._status = self._timer = None
                    for channel, value in values.items():
                        self._channels[channel].put(value)
                status.set_finished()

            self._timer = call_later(self.exposure_time.get() * self.time_scale, finish)
        return status

    def stop(self, *, success: bool = False) -> None:
        """Abort an acquisition in progress; its status fails."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            status, self._status, self._timer = self._status, None, None
        if status is not None and not status.done:
            status.set_exception(DeviceFaultError(f"{self.name}: acquisition stopped"))

    def read(self):
        """Readings of every channel (plus any normal-kind components)."""
        out = super().read()
        for sig in self._channels.values():
            out.update(sig.read())
        return out

    def describe(self):
        """Data keys of every channel, with shape and dtype."""
        out = super().describe()
        for sig in self._channels.values():
            out.update(sig.describe())
        return out

    @property
    def hints(self):
        """Scalar channels are hinted (for plots and tables)."""
        return {
            "fields": [sig.name for ch, sig in self._channels.items() if self._shapes[ch] == ()]
        }
