"""A simulated alignment stage: n motors and an intensity detector."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ._detector import SimDetector
from ._faults import NO_FAULTS, Faults, InjectedFault, collect_injected
from ._motor import SimMotor

__all__ = ["AlignmentStage", "GaussianPeak", "HartmannIntensity"]

#: Where the default Gaussian peak sits, as fractions of each axis range (off
#: centre, so a search cannot win by guessing the middle of the box).
DEFAULT_CENTER_FRACTIONS = (0.62, 0.37, 0.55, 0.41, 0.68, 0.33)

Truth = str | Callable[[np.ndarray], float]


class GaussianPeak:
    """Intensity of a Gaussian peak: ``background + amplitude * exp(-|(x-c)/w|^2 / 2)``.

    Args:
        center: Peak position per axis, motor units.
        width: Standard deviation per axis, motor units.
        amplitude: Peak height above background, counts.
        background: Constant background, counts.
    """

    def __init__(
        self,
        center: Sequence[float],
        width: Sequence[float],
        amplitude: float = 1.0,
        background: float = 0.0,
    ) -> None:
        self.center = np.asarray(center, dtype=float)
        self.width = np.asarray(width, dtype=float)
        if self.center.shape != self.width.shape or np.any(self.width <= 0):
            raise ValueError("center and width need one entry per axis; width > 0")
        self.amplitude = float(amplitude)
        self.background = float(background)

    def __call__(self, x: np.ndarray) -> float:
        """Noise-free intensity at positions ``x`` (one per axis)."""
        z = (np.asarray(x, dtype=float) - self.center) / self.width
        return float(self.background + self.amplitude * np.exp(-0.5 * np.dot(z, z)))

    @property
    def optimum(self) -> tuple[np.ndarray, float]:
        """``(best positions, best intensity)``."""
        return self.center.copy(), self.background + self.amplitude


class HartmannIntensity:
    """Negated BoTorch Hartmann function (≥ 0, maximized) mapped onto motor ranges.

    Args:
        lows: Lower limit per axis (maps to 0 of the unit cube).
        highs: Upper limit per axis (maps to 1).
        dim: 3 or 6 (the dimensions with a known optimum).
    """

    def __init__(self, lows: Sequence[float], highs: Sequence[float], dim: int = 6) -> None:
        from botorch.test_functions import Hartmann  # heavy import (torch): lazy

        if dim not in (3, 6):
            raise ValueError(f"Hartmann intensity needs 3 or 6 axes, got {dim}")
        self.lows = np.asarray(lows, dtype=float)
        self.highs = np.asarray(highs, dtype=float)
        self._fn = Hartmann(dim=dim, negate=True).to(dtype=_torch().float64)

    def __call__(self, x: np.ndarray) -> float:
        """Noise-free intensity at positions ``x`` (motor units)."""
        torch = _torch()
        u = (np.asarray(x, dtype=float) - self.lows) / (self.highs - self.lows)
        with torch.no_grad():
            return float(self._fn(torch.as_tensor(u, dtype=torch.float64), noise=False))

    @property
    def optimum(self) -> tuple[np.ndarray, float]:
        """``(best positions in motor units, best intensity)``."""
        u = self._fn.optimizers[0].numpy()
        return self.lows + u * (self.highs - self.lows), float(self._fn.optimal_value)


def _torch():
    import torch

    return torch


class AlignmentStage:
    """A simulated alignment stage (a container of ophyd devices).

    ``n_axes`` :class:`SimMotor` axes move a sample through a beam; a
    :class:`SimDetector` measures the noisy ``intensity`` at the current positions.

    Devices: motors ``f"{name}_{axis}"`` (axis names default to ``m0``, ``m1``...)
    with data keys equal to their names, and the detector ``f"{name}_det"`` with
    data key ``f"{name}_det_intensity"``.

    Truths:
        ``"gaussian"``: a peak of height ``amplitude`` above ``background`` at
        ``center`` (default: fractions :data:`DEFAULT_CENTER_FRACTIONS` of each
        range) with ``width`` (default: 15 % of each range).
        ``"hartmann6"`` / ``"hartmann3"``: negated BoTorch Hartmann (max 3.32237 /
        3.86278), unit cube mapped onto the motor limits; ``n_axes`` must match.
        A callable ``f(x) -> float`` with ``x`` the positions (motor units, in axis
        order); its optimum is unknown (``optimum`` is ``None``).

    Args:
        name: Prefix of the device names.
        n_axes: Number of motors, 1 to 6 (2 by default).
        truth: ``"gaussian"``, ``"hartmann6"``, ``"hartmann3"`` or a callable.
        limits: ``(low, high)`` for every axis, or one pair per axis (``egu``).
        axis_names: Axis names (default ``m0``...), used in the motor names.
        center: Gaussian peak centre per axis (``egu``).
        width: Gaussian width per axis (``egu``), a scalar or one per axis.
        amplitude: Gaussian peak height (counts).
        background: Gaussian background (counts).
        noise: Standard deviation of the intensity noise (counts).
        settle_time: Motor settle time, simulated seconds.
        velocity: Motor speed, ``egu`` per simulated second (``None``: none).
        exposure_time: Detector exposure, simulated seconds.
        egu: Motor units.
        time_scale: Real seconds per simulated second (0: instant).
        faults: Fault probabilities for every device (a :class:`Faults` or a
            mapping of its fields); each device draws its own faults, logged in
            :attr:`injected_faults`.
        seed: Seed of every device's random streams.

    Raises:
        ValueError: On inconsistent axis counts, limits or truth.
    """

    def __init__(
        self,
        name: str = "stage",
        *,
        n_axes: int = 2,
        truth: Truth = "gaussian",
        limits: Sequence[float] | Sequence[Sequence[float]] = (-10.0, 10.0),
        axis_names: Sequence[str] | None = None,
        center: Sequence[float] | None = None,
        width: float | Sequence[float] | None = None,
        amplitude: float = 1.0,
        background: float = 0.0,
        noise: float = 0.01,
        settle_time: float = 0.1,
        velocity: float | None = None,
        exposure_time: float = 0.1,
        egu: str = "mm",
        time_scale: float = 0.0,
        faults: Faults | Mapping[str, Any] | None = NO_FAULTS,
        seed: int | None = None,
    ) -> None:
        if not 1 <= n_axes <= 6:
            raise ValueError(f"n_axes={n_axes} must be between 1 and 6")
        axis_names = list(axis_names) if axis_names else [f"m{i}" for i in range(n_axes)]
        if len(axis_names) != n_axes:
            raise ValueError(f"{len(axis_names)} axis_names for {n_axes} axes")
        if np.ndim(limits) == 1:
            limits = [tuple(limits)] * n_axes
        lim = np.asarray(limits, dtype=float)
        if lim.shape != (n_axes, 2) or np.any(lim[:, 0] >= lim[:, 1]):
            raise ValueError(f"limits must be (low, high) or {n_axes} such pairs, low < high")
        lows, highs = lim[:, 0], lim[:, 1]
        self.name = name
        if isinstance(truth, str):
            if truth == "gaussian":
                if center is None:
                    center = lows + np.array(DEFAULT_CENTER_FRACTIONS[:n_axes]) * (highs - lows)
                if width is None:
                    width = 0.15 * (highs - lows)
                width = np.broadcast_to(np.asarray(width, dtype=float), (n_axes,))
                self.truth: Callable[[np.ndarray], float] = GaussianPeak(
                    center, width, amplitude, background
                )
            elif truth in ("hartmann6", "hartmann3"):
                dim = int(truth[-1])
                if n_axes != dim:
                    raise ValueError(f"truth={truth!r} needs n_axes={dim}, got {n_axes}")
                self.truth = HartmannIntensity(lows, highs, dim)
            else:
                raise ValueError(
                    f"unknown truth {truth!r}: use 'gaussian', 'hartmann6', "
                    "'hartmann3' or a callable f(positions) -> intensity"
                )
        elif callable(truth):
            self.truth = truth
        else:
            raise ValueError(f"truth must be a name or a callable, got {truth!r}")
        common: dict[str, Any] = {"time_scale": time_scale, "faults": faults, "seed": seed}
        initial = (lows + highs) / 2
        self.motors: list[SimMotor] = [
            SimMotor(
                f"{name}_{axis}",
                limits=(lows[i], highs[i]),
                settle_time=settle_time,
                velocity=velocity,
                initial=float(initial[i]),
                egu=egu,
                **common,
            )
            for i, axis in enumerate(axis_names)
        ]
        order = [m.name for m in self.motors]
        truth_fn = self.truth

        def physics(positions: dict[str, float]) -> dict[str, float]:
            x = np.array([positions[k] for k in order])
            return {"intensity": float(truth_fn(x))}

        self.detector = SimDetector(
            f"{name}_det",
            physics=physics,
            inputs=self.motors,
            noise=noise,
            exposure_time=exposure_time,
            **common,
        )

    @property
    def devices(self) -> dict[str, Any]:
        """``{device name: ophyd device}`` for every motor and the detector."""
        return {d.name: d for d in [*self.motors, self.detector]}

    @property
    def injected_faults(self) -> tuple[InjectedFault, ...]:
        """Every fault injected into the motors and the detector, in time order."""
        return collect_injected(self.devices.values())

    @property
    def optimum(self) -> tuple[dict[str, float], float] | None:
        """``({motor name: best position}, best noise-free intensity)``, or ``None``
        for a callable truth without an ``optimum`` attribute."""
        opt = getattr(self.truth, "optimum", None)
        if opt is None:
            return None
        x, value = opt
        return {m.name: float(v) for m, v in zip(self.motors, x)}, float(value)

    def __repr__(self) -> str:
        return f"AlignmentStage(name={self.name!r}, axes={[m.name for m in self.motors]})"
