"""The fault injector's log: every injected fault, with the text its status fails with."""

import dataclasses
import math
import time

import pytest

from sdl.devices import AlignmentStage, ColorMixingStation, Faults, SimDetector, SimMotor
from sdl.devices._faults import FaultInjector, InjectedFault


def _outcome(status, timeout=2.0):
    """``"ok"`` or ``"<ExceptionType>: <text>"`` of a finished status."""
    try:
        status.wait(timeout)
    except Exception:
        exc = status.exception()
        return f"{type(exc).__name__}: {exc}"
    return "ok"


@pytest.mark.parametrize("time_scale", [0.0, 0.01])
def test_every_failed_move_is_one_logged_fault_with_its_exact_text(time_scale):
    m = SimMotor(
        "m",
        faults=Faults(timeout=0.15, exception=0.15, timeout_s=1.0),
        seed=4,
        time_scale=time_scale,
        settle_time=0.5,
    )
    outcomes = []
    for i in range(60):
        before = time.time()
        outcomes.append((before, _outcome(m.set(float(i % 7)))))
    failed = [(t, o) for t, o in outcomes if o != "ok"]
    log = m.injected_faults
    assert 10 <= len(log) == len(failed) < 40  # ~30 % of 60
    for (t, text), fault in zip(failed, log, strict=True):
        assert fault.device == "m" and fault.operation == "set"
        assert fault.kind in ("timeout", "exception")
        assert fault.text == text  # the very exception the status failed with
        assert (
            fault.error
            == {"timeout": "DeviceTimeoutError", "exception": "DeviceFaultError"}[fault.kind]
        )
        assert t <= fault.time <= time.time()
    assert {f.kind for f in log} == {"timeout", "exception"}


def test_nan_faults_are_logged_and_only_they_read_nan():
    motor = SimMotor("x")
    det = SimDetector(
        "det", physics=lambda p: {"I": 1.0 + p["x"]}, inputs=[motor], faults=Faults(nan=0.3), seed=2
    )
    nan_at = []
    for i in range(40):
        assert _outcome(det.trigger()) == "ok"  # a NaN fault does not fail the status
        if math.isnan(det.read()["det_I"]["value"]):
            nan_at.append(i)
    log = det.injected_faults
    assert len(log) == len(nan_at) >= 5
    for fault in log:
        assert (fault.device, fault.operation, fault.kind, fault.error) == (
            "det",
            "trigger",
            "nan",
            "",
        )
        assert fault.text == fault.message == "det: simulated NaN reading during trigger"


def test_no_faults_no_log():
    m = SimMotor("m", seed=1)
    for v in (1.0, 2.0, 3.0):
        assert _outcome(m.set(v)) == "ok"
    assert m.injected_faults == ()


def test_the_log_is_read_only():
    inj = FaultInjector(Faults(exception=1.0), "dev", seed=0)
    assert inj.draw("set") == "exception"
    log = inj.injected
    assert isinstance(log, tuple) and isinstance(log[0], InjectedFault)
    with pytest.raises(dataclasses.FrozenInstanceError):
        log[0].kind = "nan"
    with pytest.raises(AttributeError):
        inj.injected = ()
    assert inj.draw("set") == "exception"
    assert len(log) == 1 and len(inj.injected) == 2  # a snapshot, not a live view


def test_containers_merge_their_devices_logs_in_time_order():
    stage = AlignmentStage("stage", faults={"exception": 0.3, "nan": 0.2}, seed=0)
    for i in range(20):
        for m in stage.motors:
            _outcome(m.set(float(i % 5)))
        _outcome(stage.detector.trigger())
    merged = stage.injected_faults
    assert len(merged) == sum(len(d.injected_faults) for d in stage.devices.values()) > 5
    assert [f.time for f in merged] == sorted(f.time for f in merged)
    assert {f.device for f in merged} <= set(stage.devices)

    station = ColorMixingStation(faults=Faults(exception=1.0), seed=0)
    assert _outcome(station.mixer.trigger()).startswith("DeviceFaultError: station_mixer")
    assert [f.device for f in station.injected_faults] == ["station_mixer"]


def test_faults_from_a_mapping_as_yaml_gives_them():
    assert Faults.coerce({"timeout": 0.1, "seed": 3}) == Faults(timeout=0.1, seed=3)
    assert Faults.coerce(None) == Faults()
    f = Faults(nan=0.5)
    assert Faults.coerce(f) is f
    with pytest.raises(ValueError, match="unknown key.*'timout'"):
        Faults.coerce({"timout": 0.1})
    with pytest.raises(ValueError, match="must be a probability"):
        Faults.coerce({"exception": "often"})
    with pytest.raises(TypeError, match="mapping"):
        Faults.coerce([0.1])
    # every simulated device takes the mapping directly
    m = SimMotor("m", faults={"exception": 1.0})
    assert _outcome(m.set(1.0)) == "DeviceFaultError: m: simulated fault during set"
