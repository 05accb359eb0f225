import time

import pytest
from bluesky import plans as bp
from bluesky import protocols
from bluesky.simulators import check_limits
from ophyd.sim import SynAxis

from sdl.devices import DeviceTimeoutError, Faults, SimMotor
from sdl.errors import DeviceFaultError, LimitError


@pytest.mark.parametrize(
    "proto",
    [
        protocols.Movable,
        protocols.Readable,
        protocols.Triggerable,
        protocols.Stoppable,
        protocols.Configurable,
        protocols.Checkable,
        protocols.HasHints,
    ],
)
def test_protocols(proto):
    assert isinstance(SimMotor("m"), proto)


def test_read_describe_configuration():
    m = SimMotor("temp", limits=(20.0, 80.0), initial=25.0, egu="degC", settle_time=2.0)
    assert m.read()["temp"]["value"] == 25.0
    assert set(m.read()) == {"temp", "temp_setpoint"}
    assert m.describe()["temp"]["units"] == "degC"
    assert m.hints == {"fields": ["temp"]}
    config = m.read_configuration()
    assert config["temp_low_limit_travel"]["value"] == 20.0
    assert config["temp_high_limit_travel"]["value"] == 80.0
    assert config["temp_settle_time"]["value"] == 2.0
    assert config["temp_velocity"]["value"] == 0.0
    assert m.limits == (20.0, 80.0)


def test_limits_raise_before_motion():
    m = SimMotor("m", limits=(-1.0, 1.0), initial=0.5)
    with pytest.raises(LimitError, match=r"m: set-point 2.0 mm .*\[-1.0, 1.0\]"):
        m.set(2.0)
    assert m.position == 0.5
    assert m.setpoint.get() == 0.5
    with pytest.raises(LimitError):
        m.set(float("nan"))
    with pytest.raises(LimitError):
        SimMotor("bad", limits=(0, 1), initial=5)


def test_check_limits_dry_run(RE):
    m = SimMotor("m", limits=(-1.0, 1.0))
    check_limits(bp.scan([], m, -1, 1, 3))
    with pytest.raises(LimitError):
        check_limits(bp.scan([], m, -1, 3, 3))


def test_time_scale_zero_is_instant():
    m = SimMotor("m", settle_time=100.0, velocity=0.001)
    st = m.set(5.0)
    assert st.done and st.success
    assert m.position == 5.0


def test_time_scale_delays_completion():
    m = SimMotor("m", settle_time=1.0, time_scale=0.1)
    t0 = time.monotonic()
    st = m.set(3.0)
    assert time.monotonic() - t0 < 0.05  # the caller never sleeps
    assert not st.done
    assert m.position == 0.0 and m.setpoint.get() == 3.0
    st.wait(2)
    assert time.monotonic() - t0 >= 0.09
    assert m.position == 3.0


def test_velocity_adds_travel_time():
    m = SimMotor("m", settle_time=0.5, velocity=2.0)
    assert m.move_time(0.0, 4.0) == pytest.approx(2.5)


def test_stop_fails_move():
    m = SimMotor("m", settle_time=10.0, time_scale=1.0)
    st = m.set(1.0)
    m.stop()
    with pytest.raises(DeviceFaultError, match="stopped"):
        st.wait(1)
    assert m.position == 0.0


def test_exception_fault():
    m = SimMotor("m", faults=Faults(exception=1.0), seed=1)
    st = m.set(1.0)
    with pytest.raises(DeviceFaultError, match="m: simulated fault during set"):
        st.wait(1)
    assert m.position == 0.0


def test_timeout_fault_instant_and_scaled():
    m = SimMotor("m", faults=Faults(timeout=1.0, timeout_s=1.0))
    st = m.set(1.0)
    assert st.done and not st.success
    assert isinstance(st.exception(), DeviceTimeoutError)
    assert isinstance(st.exception(), TimeoutError)

    slow = SimMotor("slow", faults=Faults(timeout=1.0, timeout_s=1.0), time_scale=0.05)
    st = slow.set(1.0)
    assert not st.done
    with pytest.raises(DeviceTimeoutError):
        st.wait(2)


def test_faults_validate():
    with pytest.raises(ValueError):
        Faults(exception=1.5)
    with pytest.raises(ValueError):
        Faults(exception=0.6, timeout=0.6)


def test_fault_stream_is_seeded():
    def outcomes(seed):
        m = SimMotor("m", faults=Faults(exception=0.5), seed=seed)
        return [m.set(0.1 * i).success for i in range(20)]

    assert outcomes(3) == outcomes(3)
    assert 0 < sum(outcomes(3)) < 20


def test_user_ophyd_device_unaffected(RE):
    ax = SynAxis(name="ax")
    RE(bp.scan([], ax, 0, 1, 2))
    assert ax.position == 1
