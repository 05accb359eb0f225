"""A simulated color-mixing station: dye dispensers, a mixer and a color sensor.

The ground truth is subtractive (Beer–Lambert-like) mixing: with ``c_i`` the
relative concentration of dye ``i`` (its volume divided by ``max_volume``) and
``a_i`` its absorbance per RGB channel, the well's color is
``rgb = exp(-sum_i c_i * a_i)`` (each channel in [0, 1], 1 = white). The
objective-like channel ``distance`` is the Euclidean distance of the measured RGB
to a target color.

Defaults: dyes cyan/magenta/yellow in a 0–100 µL box; the default target is the
color of (30, 55, 70) µL, so the optimum lies inside the box, away from corners
and faces, and its noise-free distance is 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, DeviceStatus, Signal

from sdl.errors import DeviceFaultError

from ._detector import SimDetector
from ._faults import (
    NO_FAULTS,
    FaultInjector,
    Faults,
    InjectedFault,
    call_later,
    collect_injected,
    make_rng,
)
from ._motor import SimMotor

__all__ = [
    "DYE_ABSORBANCE",
    "ColorMixPhysics",
    "Well",
    "SimDispenser",
    "SimMixer",
    "SimColorSensor",
    "ColorMixingStation",
]

#: Absorbance (natural-log units per unit relative concentration) of each known
#: dye in the red, green and blue channels.
DYE_ABSORBANCE: dict[str, tuple[float, float, float]] = {
    "cyan": (2.0, 0.3, 0.1),
    "magenta": (0.2, 2.0, 0.3),
    "yellow": (0.1, 0.3, 2.0),
    "black": (1.5, 1.5, 1.5),
    "red": (0.1, 1.8, 1.6),
    "green": (1.6, 0.2, 1.6),
    "blue": (1.7, 1.5, 0.2),
}

#: Fractions of ``max_volume`` whose color is the default target (one per dye,
#: cycled when there are more dyes).
DEFAULT_OPTIMUM_FRACTIONS = (0.30, 0.55, 0.70, 0.45, 0.60, 0.35)


class ColorMixPhysics:
    """Ground truth of subtractive color mixing.

    Args:
        dyes: Dye names, or ``{dye: (a_r, a_g, a_b)}`` absorbances. Names alone
            must be keys of :data:`DYE_ABSORBANCE`.
        target: Target ``(r, g, b)`` in [0, 1]; ``None`` uses the color of
            :data:`DEFAULT_OPTIMUM_FRACTIONS` of ``max_volume`` (an interior
            optimum with distance 0).
        max_volume: Volume of each dye giving relative concentration 1, in µL
            (also the upper bound of the search box).

    Example:
        >>> phys = ColorMixPhysics()
        >>> phys.distance({"cyan": 30, "magenta": 55, "yellow": 70})
        0.0
    """

    def __init__(
        self,
        dyes: Sequence[str] | Mapping[str, Sequence[float]] = ("cyan", "magenta", "yellow"),
        target: Sequence[float] | None = None,
        max_volume: float = 100.0,
    ) -> None:
        if isinstance(dyes, Mapping):
            absorbance = {d: tuple(float(x) for x in a) for d, a in dyes.items()}
        else:
            unknown = [d for d in dyes if d not in DYE_ABSORBANCE]
            if unknown:
                raise ValueError(
                    f"unknown dyes {unknown}; known: {sorted(DYE_ABSORBANCE)} "
                    "(or pass {dye: (a_r, a_g, a_b)})"
                )
            absorbance = {d: DYE_ABSORBANCE[d] for d in dyes}
        if not absorbance or any(len(a) != 3 for a in absorbance.values()):
            raise ValueError("every dye needs three absorbances (r, g, b)")
        if max_volume <= 0:
            raise ValueError(f"max_volume={max_volume} µL must be > 0")
        self.dyes = tuple(absorbance)
        self.absorbance = absorbance
        self.max_volume = float(max_volume)
        self._A = np.array([absorbance[d] for d in self.dyes])  # n_dyes x 3
        if target is None:
            fr = [DEFAULT_OPTIMUM_FRACTIONS[i % 6] for i in range(len(self.dyes))]
            target = self.color({d: f * self.max_volume for d, f in zip(self.dyes, fr)})
        target = np.asarray(target, dtype=float)
        if target.shape != (3,) or np.any(target <= 0) or np.any(target > 1):
            raise ValueError(f"target {target.tolist()} must be (r, g, b) in (0, 1]")
        self.target = target

    def color(self, volumes: Mapping[str, float]) -> np.ndarray:
        """Noise-free RGB of a well.

        Args:
            volumes: ``{dye: volume in µL}``; missing dyes count as 0 µL.

        Returns:
            Array ``(r, g, b)``, each in (0, 1].
        """
        c = np.array([float(volumes.get(d, 0.0)) for d in self.dyes]) / self.max_volume
        return np.exp(-(c @ self._A))

    def distance(self, volumes: Mapping[str, float]) -> float:
        """Noise-free Euclidean distance of the well's RGB to the target."""
        return float(np.linalg.norm(self.color(volumes) - self.target))

    def __call__(self, volumes: Mapping[str, float]) -> dict[str, float]:
        """``{"r", "g", "b"}`` of a well (the detector physics)."""
        r, g, b = self.color(volumes)
        return {"r": float(r), "g": float(g), "b": float(b)}

    def best_volumes(self) -> dict[str, float]:
        """Volumes (µL) within ``[0, max_volume]`` minimizing the distance.

        Solves the log-linear system exactly when its solution is inside the box,
        otherwise minimizes the distance with bounded L-BFGS-B (scipy).
        """
        rhs = -np.log(self.target)
        c, *_ = np.linalg.lstsq(self._A.T, rhs, rcond=None)
        if np.all(c >= 0) and np.all(c <= 1) and np.allclose(self._A.T @ c, rhs):
            return {d: float(v * self.max_volume) for d, v in zip(self.dyes, c)}
        from scipy.optimize import minimize

        def f(x: np.ndarray) -> float:
            return self.distance(dict(zip(self.dyes, x)))

        x0 = np.clip(c, 0.0, 1.0) * self.max_volume
        res = minimize(f, x0, bounds=[(0.0, self.max_volume)] * len(self.dyes))
        return {d: float(v) for d, v in zip(self.dyes, res.x)}

    @property
    def optimum(self) -> tuple[dict[str, float], float]:
        """``(best volumes in µL, noise-free distance there)``."""
        best = self.best_volumes()
        return best, self.distance(best)


class Well:
    """The liquid in the station's current well.

    Attributes:
        volumes: ``{dye: actual dispensed volume in µL}``.
        mixed: Whether the mixer has run since the last dispense.
    """

    def __init__(self, dyes: Sequence[str]) -> None:
        self.volumes: dict[str, float] = dict.fromkeys(dyes, 0.0)
        self.mixed = True

    def reset(self) -> None:
        """Start a fresh, empty well."""
        for d in self.volumes:
            self.volumes[d] = 0.0
        self.mixed = True


class SimDispenser(SimMotor):
    """A pipette/pump that makes the well contain a given volume of one dye.

    ``set(volume)`` is absolute: afterwards the current well holds ``volume`` µL of
    this dye (requested volume = ``<name>_setpoint``, actual dispensed volume with
    its random error = ``<name>``). Dispensing un-mixes the well.

    Args:
        name: Device name.
        max_volume: Largest volume, µL (software limit; the lower limit is 0).
        dispense_cv: Relative standard deviation of the dispensed volume.
        well: Shared :class:`Well`, or ``None`` for a stand-alone dispenser.
        dye: Dye name in the well (default: ``name``).
        flow_rate: Dispensing speed, µL per simulated second (``None``: only
            ``settle_time``).
        settle_time: Time per dispense, simulated seconds.
        time_scale: Real seconds per simulated second (0: instant).
        faults: Fault probabilities per ``set``.
        seed: Seed of the dispensing-error and fault streams.
        **kwargs: Passed to :class:`ophyd.Device`.
    """

    dispense_cv = Cpt(Signal, value=0.0, kind="config")

    def __init__(
        self,
        name: str,
        *,
        max_volume: float = 100.0,
        dispense_cv: float = 0.01,
        well: Well | None = None,
        dye: str | None = None,
        flow_rate: float | None = None,
        settle_time: float = 1.0,
        time_scale: float = 0.0,
        faults: Faults | Mapping[str, Any] | None = NO_FAULTS,
        seed: int | None = None,
        **kwargs,
    ) -> None:
        if dispense_cv < 0:
            raise ValueError(f"{name}: dispense_cv must be >= 0")
        super().__init__(
            name,
            limits=(0.0, float(max_volume)),
            settle_time=settle_time,
            velocity=flow_rate,
            time_scale=time_scale,
            faults=faults,
            seed=seed,
            initial=0.0,
            egu="µL",
            **kwargs,
        )
        self.dispense_cv.put(float(dispense_cv))
        self.well = well
        self.dye = dye or name
        self._volume_rng = make_rng(seed, self.name, "dispense")
        self.readback.subscribe(self._update_well, run=False)

    def _arrival_value(self, target: float) -> float:
        error = self._volume_rng.normal(0.0, self.dispense_cv.get())
        return max(0.0, target * (1.0 + error))

    def _update_well(self, value: float, **kwargs: Any) -> None:
        if self.well is not None:
            self.well.volumes[self.dye] = float(value)
            self.well.mixed = False

    def empty(self) -> None:
        """Forget this dye's volume (fresh well) without a move; not for plans."""
        self.stop()
        self.setpoint.put(0.0)
        self.readback.put(0.0)


class SimMixer(Device):
    """Mixes the well; ``trigger()`` takes ``mix_time * time_scale`` seconds.

    Configuration key ``<name>_mix_time`` (simulated seconds). Has no readings.

    Args:
        name: Device name.
        well: The shared :class:`Well` to mix.
        mix_time: Mixing time, simulated seconds.
        time_scale: Real seconds per simulated second (0: instant).
        faults: Fault probabilities per ``trigger``.
        seed: Seed of the fault stream.
        **kwargs: Passed to :class:`ophyd.Device`.
    """

    mix_time = Cpt(Signal, value=0.0, kind="config")

    def __init__(
        self,
        name: str,
        *,
        well: Well,
        mix_time: float = 5.0,
        time_scale: float = 0.0,
        faults: Faults | Mapping[str, Any] | None = NO_FAULTS,
        seed: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.well = well
        self.mix_time.put(float(mix_time))
        self.time_scale = float(time_scale)
        self._faults = FaultInjector(faults, self.name, seed)
        self._status: DeviceStatus | None = None
        self._timer = None

    @property
    def injected_faults(self) -> tuple[InjectedFault, ...]:
        """Every fault injected into this mixer's triggers so far, oldest first."""
        return self._faults.injected

    def trigger(self) -> DeviceStatus:
        """Mix the well.

        Returns:
            A status finishing when mixing is done, or failing with a fault.
        """
        status = DeviceStatus(self, call_stop_on_failure=False)
        self._status = status
        fault = self._faults.draw("trigger")
        if fault is not None:
            self._timer = self._faults.fail(status, fault, "trigger", self.time_scale)
            return status

        def finish() -> None:
            if self._status is not status or status.done:
                return
            self.well.mixed = True
            status.set_finished()

        self._timer = call_later(self.mix_time.get() * self.time_scale, finish)
        return status

    def stop(self, *, success: bool = False) -> None:
        """Abort mixing; the well stays unmixed and the status fails."""
        if self._timer is not None:
            self._timer.cancel()
        status, self._status = self._status, None
        if status is not None and not status.done:
            status.set_exception(DeviceFaultError(f"{self.name}: mixing stopped"))


class SimColorSensor(SimDetector):
    """Color sensor reading ``r``, ``g``, ``b`` (each in [0, 1]) and ``distance``.

    Data keys ``<name>_r``, ``<name>_g``, ``<name>_b`` (noisy, clipped to [0, 1])
    and ``<name>_distance`` (Euclidean distance of the measured RGB to the
    physics' target). An unmixed well reads with ``unmixed_noise`` extra noise.

    Args:
        name: Device name.
        physics: The :class:`ColorMixPhysics` ground truth.
        well: The shared :class:`Well` being measured.
        noise: Standard deviation of each RGB channel (color units, 0–1).
        unmixed_noise: Extra standard deviation when the well is not mixed.
        exposure_time: Measurement time, simulated seconds.
        time_scale: Real seconds per simulated second.
        faults: Fault probabilities per ``trigger``.
        seed: Seed of the noise and fault streams.
        **kwargs: Passed to :class:`ophyd.Device`.
    """

    def __init__(
        self,
        name: str,
        *,
        physics: ColorMixPhysics,
        well: Well,
        noise: float = 0.005,
        unmixed_noise: float = 0.05,
        exposure_time: float = 0.5,
        time_scale: float = 0.0,
        faults: Faults | Mapping[str, Any] | None = NO_FAULTS,
        seed: int | None = None,
        **kwargs,
    ) -> None:
        self.well = well
        self.color_physics = physics
        self.unmixed_noise = float(unmixed_noise)
        super().__init__(
            name,
            physics=lambda _inputs: physics(well.volumes),
            inputs={},
            noise=noise,
            exposure_time=exposure_time,
            time_scale=time_scale,
            faults=faults,
            seed=seed,
            **kwargs,
        )

    def _add_noise(self, values):
        values = super()._add_noise(values)
        if not self.well.mixed and self.unmixed_noise > 0:
            values = {
                ch: float(v + self._rng.normal(0.0, self.unmixed_noise)) for ch, v in values.items()
            }
        return values

    def _derive(self, values):
        rgb = np.clip([values["r"], values["g"], values["b"]], 0.0, 1.0)
        out = {"r": float(rgb[0]), "g": float(rgb[1]), "b": float(rgb[2])}
        out["distance"] = float(np.linalg.norm(rgb - self.color_physics.target))
        return out


class ColorMixingStation:
    """A simulated color-mixing station (a container of ophyd devices).

    Devices: one :class:`SimDispenser` per dye named ``f"{name}_{dye}"`` (µL), a
    :class:`SimMixer` ``f"{name}_mixer"`` and a :class:`SimColorSensor`
    ``f"{name}_sensor"`` with data keys ``f"{name}_sensor_r"``, ``_g``, ``_b``,
    ``_distance``. An experiment sets every dispenser (absolute volumes in the
    current well), triggers the mixer, then triggers and reads the sensor.

    With the defaults the optimum is ``{"cyan": 30, "magenta": 55, "yellow": 70}``
    µL with noise-free distance 0 (``station.optimum``).

    Args:
        name: Prefix of the device names.
        dyes: Dye names (keys of :data:`DYE_ABSORBANCE`) or ``{dye: absorbances}``.
        target: Target ``(r, g, b)`` in (0, 1]; ``None`` for the default interior
            optimum.
        max_volume: Largest volume per dye, µL.
        dispense_cv: Relative standard deviation of dispensed volumes.
        noise: Standard deviation of each measured RGB channel.
        dispense_time: Time per dispense, simulated seconds.
        mix_time: Mixing time, simulated seconds.
        exposure_time: Sensor measurement time, simulated seconds.
        time_scale: Real seconds per simulated second (0: instant).
        faults: Fault probabilities for every device (a :class:`Faults` or a
            mapping of its fields); logged in :attr:`injected_faults`.
        seed: Seed of every device's random streams (each device's stream differs).
    """

    def __init__(
        self,
        name: str = "station",
        *,
        dyes: Sequence[str] | Mapping[str, Sequence[float]] = ("cyan", "magenta", "yellow"),
        target: Sequence[float] | None = None,
        max_volume: float = 100.0,
        dispense_cv: float = 0.01,
        noise: float = 0.005,
        dispense_time: float = 1.0,
        mix_time: float = 5.0,
        exposure_time: float = 0.5,
        time_scale: float = 0.0,
        faults: Faults | Mapping[str, Any] | None = NO_FAULTS,
        seed: int | None = None,
    ) -> None:
        self.name = name
        self.physics = ColorMixPhysics(dyes, target, max_volume)
        self.well = Well(self.physics.dyes)
        common: dict[str, Any] = {"time_scale": time_scale, "faults": faults, "seed": seed}
        self.dispensers: dict[str, SimDispenser] = {
            dye: SimDispenser(
                f"{name}_{dye}",
                max_volume=max_volume,
                dispense_cv=dispense_cv,
                well=self.well,
                dye=dye,
                settle_time=dispense_time,
                **common,
            )
            for dye in self.physics.dyes
        }
        self.mixer = SimMixer(f"{name}_mixer", well=self.well, mix_time=mix_time, **common)
        self.sensor = SimColorSensor(
            f"{name}_sensor",
            physics=self.physics,
            well=self.well,
            noise=noise,
            exposure_time=exposure_time,
            **common,
        )
        self.well.reset()

    @property
    def devices(self) -> dict[str, Any]:
        """``{device name: ophyd device}`` for every device of the station."""
        devs: list[Any] = [*self.dispensers.values(), self.mixer, self.sensor]
        return {d.name: d for d in devs}

    @property
    def injected_faults(self) -> tuple[InjectedFault, ...]:
        """Every fault injected into the station's devices, in time order."""
        return collect_injected(self.devices.values())

    @property
    def optimum(self) -> tuple[dict[str, float], float]:
        """``(best volumes in µL per dye, noise-free distance there)``."""
        return self.physics.optimum

    def reset(self) -> None:
        """Start a fresh, empty well (outside plans; plans set all dispensers)."""
        for d in self.dispensers.values():
            d.empty()
        self.well.reset()

    def __repr__(self) -> str:
        return f"ColorMixingStation(name={self.name!r}, dyes={self.physics.dyes})"
