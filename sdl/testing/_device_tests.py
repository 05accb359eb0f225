"""``DeviceTests``: what every sdl device must do, as a pytest class to subclass."""

from __future__ import annotations

import math
import numbers
import time
from typing import Any

import numpy as np
import pytest
from bluesky.protocols import Configurable, Movable, Readable, Stoppable, Triggerable

__all__ = ["DeviceTests"]

_DTYPES = {"number", "integer", "array", "string", "boolean"}


def _check_value(key: str, value: Any, desc: dict[str, Any]) -> None:
    assert desc.get("dtype") in _DTYPES, f"{key}: dtype {desc.get('dtype')!r} not in {_DTYPES}"
    assert "source" in desc, f"{key}: describe() has no 'source'"
    shape = list(desc.get("shape", []))
    assert shape == list(np.shape(value)), f"{key}: shape {shape} but value has {np.shape(value)}"
    dtype = desc["dtype"]
    if dtype == "array":
        assert np.ndim(value) > 0, f"{key}: described as array but value is scalar {value!r}"
    elif dtype == "number":
        assert isinstance(value, numbers.Real) and not isinstance(value, bool), (
            f"{key}: described as number but value is {type(value).__name__}"
        )
    elif dtype == "integer":
        assert isinstance(value, numbers.Integral) and not isinstance(value, bool), (
            f"{key}: described as integer but value is {type(value).__name__}"
        )
    elif dtype == "string":
        assert isinstance(value, str), f"{key}: described as string but value is {value!r}"
    elif dtype == "boolean":
        assert isinstance(value, (bool, np.bool_)), f"{key}: described as boolean: {value!r}"


def _check_consistent(readings: dict[str, Any], descs: dict[str, Any]) -> None:
    assert list(readings) == list(descs) or set(readings) == set(descs), (
        f"read() keys {sorted(readings)} != describe() keys {sorted(descs)}"
    )
    for key, reading in readings.items():
        assert set(reading) >= {"value", "timestamp"}, f"{key}: reading lacks value/timestamp"
        assert isinstance(reading["timestamp"], float), f"{key}: timestamp must be a float"
        _check_value(key, reading["value"], descs[key])


class _Missing:
    """The value of a fixture a subclass did not provide."""

    def __repr__(self) -> str:
        return "<not provided>"


MISSING: Any = _Missing()


def _require(name: str, value: Any, why: str) -> Any:
    """``value``, or skip the test naming the fixture it needs (as zarr's ``StoreTests``)."""
    if value is MISSING:
        pytest.skip(f"fixture {name!r} not provided: {why}")
    if value is None:
        pytest.skip(f"fixture {name!r} is None: {why}")
    return value


class DeviceTests:
    """Conformance suite for a device: subclass it and provide the fixtures.

    Fixtures to provide:
        ``device``: a fresh, connected device (required).
        ``valid_value``: a target inside the limits (movable devices).
        ``invalid_value``: a target outside the software limits, or ``None``.
        ``far_value``: a target whose move takes long enough for :meth:`stop` to
            interrupt it, or ``None`` to check only that ``stop()`` is harmless.

    Class attributes:
        ``protocols``: the ``bluesky.protocols`` the device must satisfy.
        ``timeout``: seconds any status may take to finish.
        ``position_tolerance``: allowed ``|position - target|`` after a move, in the
            device's units (``None``: the position reached is not checked).

    A check that needs a fixture the subclass did not provide (or set to ``None``), or
    that does not apply to the device (a move for a detector), is reported as skipped
    with the reason, never passed silently: ``pytest -rs`` lists what was not checked.
    """

    protocols: tuple[type, ...] = (Readable,)
    timeout: float = 10.0
    position_tolerance: float | None = None

    @pytest.fixture
    def device(self):
        pytest.skip("fixture 'device' not provided: subclass DeviceTests and define it")

    @pytest.fixture
    def valid_value(self):
        return MISSING

    @pytest.fixture
    def invalid_value(self):
        return MISSING

    @pytest.fixture
    def far_value(self):
        return MISSING

    # -- helpers ------------------------------------------------------------------------
    def _position(self, device: Any) -> Any:
        if hasattr(device, "position"):
            return device.position
        reading = device.read()
        return next(iter(reading.values()))["value"] if reading else None

    def _wait(self, status: Any) -> None:
        assert hasattr(status, "add_callback") and hasattr(status, "done"), (
            f"expected a bluesky Status, got {status!r}"
        )
        status.wait(self.timeout)
        assert status.done and status.success

    @staticmethod
    def _needs(device: Any, protocol: type) -> None:
        if not isinstance(device, protocol):
            pytest.skip(f"{device.name} is not {protocol.__name__}: check does not apply")

    def _check_reached(self, device: Any, target: Any) -> None:
        if self.position_tolerance is None:
            return
        reached = self._position(device)
        assert abs(reached - target) <= self.position_tolerance, (
            f"{device.name}: at {reached!r} after a move to {target!r}, "
            f"more than position_tolerance={self.position_tolerance} away"
        )

    # -- checks -------------------------------------------------------------------------
    def test_satisfies_protocols(self, device):
        assert isinstance(device.name, str) and device.name
        for proto in self.protocols:
            assert isinstance(device, proto), f"{device.name} is not {proto.__name__}"
        if hasattr(device, "set"):
            assert isinstance(device, Movable)

    def test_read_matches_describe(self, device):
        if isinstance(device, Triggerable):
            self._wait(device.trigger())
        _check_consistent(device.read(), device.describe())

    def test_configuration_matches_its_description(self, device):
        self._needs(device, Configurable)
        _check_consistent(device.read_configuration(), device.describe_configuration())

    def test_hints_name_read_keys(self, device):
        fields = getattr(device, "hints", {}).get("fields", [])
        assert set(fields) <= set(device.describe()), f"hints {fields} are not data keys"

    def test_set_finishes_within_timeout(self, device, valid_value):
        self._needs(device, Movable)
        target = _require("valid_value", valid_value, "a target inside the limits")
        t0 = time.monotonic()
        self._wait(device.set(target))
        assert time.monotonic() - t0 <= self.timeout

    def test_set_reaches_its_target(self, device, valid_value):
        self._needs(device, Movable)
        target = _require("valid_value", valid_value, "a target inside the limits")
        if self.position_tolerance is None:
            pytest.skip("class attribute 'position_tolerance' is None: position not checked")
        self._wait(device.set(target))
        self._check_reached(device, target)

    def test_trigger_finishes_within_timeout(self, device):
        self._needs(device, Triggerable)
        self._wait(device.trigger())

    def test_limits_raise_before_motion(self, device, invalid_value, valid_value):
        self._needs(device, Movable)
        target = _require("invalid_value", invalid_value, "a target outside the limits")
        if valid_value is not MISSING and valid_value is not None:
            self._wait(device.set(valid_value))
        before = self._position(device)
        with pytest.raises(ValueError):
            device.set(target)
        time.sleep(0.05)
        after = self._position(device)
        if isinstance(before, float) and self.position_tolerance is not None:
            assert math.isclose(before, after, abs_tol=self.position_tolerance)
        if hasattr(device, "check_value"):
            with pytest.raises(ValueError):
                device.check_value(target)

    def test_stop_when_idle_is_harmless(self, device):
        self._needs(device, Stoppable)
        device.stop()
        if isinstance(device, Triggerable):  # still usable
            self._wait(device.trigger())

    def test_stop_interrupts_a_move(self, device, far_value, valid_value):
        self._needs(device, Stoppable)
        self._needs(device, Movable)
        far = _require("far_value", far_value, "a target far enough for stop() to interrupt")
        status = device.set(far)
        device.stop()
        deadline = time.monotonic() + self.timeout
        while not status.done and time.monotonic() < deadline:
            time.sleep(0.01)
        assert status.done, f"{device.name}: stop() did not end the move within {self.timeout} s"
        if valid_value is not MISSING and valid_value is not None:  # usable after a stop
            self._wait(device.set(valid_value))
            self._check_reached(device, valid_value)
