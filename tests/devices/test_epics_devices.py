"""EPICS devices against a real caproto IOC on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import threading
import time

import bluesky.plan_stubs as bps
import pytest

from sdl.devices import (
    DeviceTimeoutError,
    EpicsDetector,
    EpicsPositioner,
    EpicsReactor,
    EpicsSetpointController,
    PutFailedError,
    PVDisconnectedError,
    connect_all,
    connect_together,
    make_device,
    make_safe,
    safe_state_plan,
)
from sdl.devices._iocs.reactor import reactor_yield
from sdl.errors import DeviceFaultError, LimitError, NotConnectedError
from sdl.testing import IocProcess, loopback_ca

IOC_ARGS = ["--tau", "0.1", "--noise", "0.02", "--seed", "0"]


@pytest.fixture(scope="module")
def ioc():
    loopback_ca()
    with IocProcess(args=IOC_ARGS) as proc:
        yield proc


@pytest.fixture
def reactor(ioc):
    r = EpicsReactor("r", prefix=ioc.prefix, tolerance=0.1, dwell=0.05, settle_timeout=10)
    r.connect()
    yield r
    for dev in r.devices.values():
        dev.destroy()


def test_missing_pvs_of_several_devices_are_reported_together_within_the_timeout(ioc):
    a = EpicsPositioner("a", setpoint_pv="SDLNOPE:a:SP", readback_pv="SDLNOPE:a:RBV")
    b = EpicsDetector("b", read_pvs=["SDLNOPE:b:VAL"])
    good = EpicsSetpointController(
        "good", setpoint_pv=f"{ioc.prefix}T:SP", readback_pv=f"{ioc.prefix}T:RBV", tolerance=1
    )
    t0 = time.monotonic()
    with pytest.raises(NotConnectedError) as info:
        connect_all([a, b, good], timeout=1.0)
    assert time.monotonic() - t0 < 3.0
    msg = str(info.value)
    for text in (
        "'SDLNOPE:a:SP'",
        "'SDLNOPE:a:RBV'",
        "'SDLNOPE:b:VAL'",
        "device 'a'",
        "device 'b'",
        "IOC running",
        "EPICS_CA_ADDR_LIST",
    ):
        assert text in msg, msg
    assert "good" not in info.value.failures
    assert isinstance(info.value, ConnectionError)


def test_the_registry_connects_and_names_the_device(ioc):
    t0 = time.monotonic()
    with pytest.raises(NotConnectedError, match=r"device 'pump'.*'SDLNOPE:pump'"):
        make_device("epics_positioner", "pump", setpoint_pv="SDLNOPE:pump", connection_timeout=0.5)
    with pytest.raises(NotConnectedError) as info:
        with connect_together(timeout=0.5):
            make_device("epics_detector", "d1", read_pvs=["SDLNOPE:d1"])
            make_device("epics_detector", "d2", read_pvs=["SDLNOPE:d2"])
    assert set(info.value.failures) == {"d1", "d2"}
    assert time.monotonic() - t0 < 4.0
    made = make_device("epics_reactor", "rx", prefix=ioc.prefix)
    assert set(made.devices) == {"rx_temperature", "rx_stirrer", "rx_spectrometer"}
    assert all(d.connected for d in made.devices.values())


def test_limits_are_checked_before_anything_is_sent(reactor):
    T = reactor.temperature
    before = T.setpoint.get()
    with pytest.raises(LimitError, match="outside the software limits"):
        T.set(500.0)
    with pytest.raises(LimitError):
        reactor.stirrer.set(float("nan"))
    time.sleep(0.1)
    assert T.setpoint.get() == before


def test_controller_settles_and_positioner_moves(reactor):
    T, S = reactor.temperature, reactor.stirrer
    T.set(40.0).wait(10)
    assert abs(T.position - 40.0) <= 0.1
    S.set(600.0).wait(10)
    assert S.position == 600.0
    reactor.spectrometer.trigger().wait(10)
    reading = reactor.spectrometer.read()
    expected = reactor_yield(T.position, S.position)
    assert reading["r_spectrometer_yield"]["value"] == pytest.approx(expected, abs=0.5)
    assert reading["r_spectrometer_spectrum"]["value"].shape == (64,)


def test_a_settle_timeout_fails_the_status_with_the_readback(reactor):
    T = reactor.temperature
    T._timeout = 0.2  # too short to heat by 60 degC
    status = T.set(100.0)
    with pytest.raises(DeviceTimeoutError, match="within 0.2 s.*readback"):
        status.wait(5)
    T._timeout = 10
    T.set(30.0).wait(10)


def test_stop_ends_a_move(reactor):
    S = reactor.stirrer
    S.set(0.0).wait(10)
    status = S.set(1500.0)  # 0.75 s at 2000 rpm/s
    time.sleep(0.1)
    S.stop()
    with pytest.raises(Exception, match="stopped"):
        status.wait(5)
    time.sleep(0.2)
    assert S.position < 1500.0


def test_a_refused_write_fails_the_status(ioc):
    ro = EpicsPositioner("ro", setpoint_pv=f"{ioc.prefix}T:RBV", tolerance=1.0)
    ro.connect()
    status = ro.set(30.0)
    with pytest.raises(PutFailedError, match=r"ro: .*T:RBV"):
        status.wait(5)


def test_a_disconnect_fails_the_status_with_its_cause(RE):
    loopback_ca()
    with IocProcess(args=["--tau", "50"]) as own:
        T = EpicsSetpointController(
            "T", setpoint_pv=f"{own.prefix}T:SP", readback_pv=f"{own.prefix}T:RBV", tolerance=0.1
        )
        T.connect()
        status = T.set(90.0)  # takes minutes with tau = 50 s
        own.stop()
        with pytest.raises(PVDisconnectedError, match="disconnected.*IOC running"):
            status.wait(10)
        later = T.set(50.0)  # fails fast (within the connection timeout), no hang
        with pytest.raises(PVDisconnectedError):
            later.wait(10)


@pytest.mark.parametrize("ioc_stops", [True, False])
def test_an_error_as_the_ioc_stops_is_reported_as_the_disconnect(RE, ioc_stops):
    """A stopping IOC's last update can make a read raise (an INVALID alarm, seen once in a
    full run) just before Channel Access reports the disconnect: the status names the
    disconnect. The error is injected into the watched condition, then the IOC stops; with
    the IOC running on, the same error is the device's fault."""
    from ophyd import DeviceStatus

    loopback_ca()
    with IocProcess(args=["--tau", "50"]) as own:
        T = EpicsSetpointController(
            "T", setpoint_pv=f"{own.prefix}T:SP", readback_pv=f"{own.prefix}T:RBV", tolerance=0.1
        )
        T.connect()
        failing, raised = threading.Event(), threading.Event()

        def done():
            if failing.is_set():
                raised.set()
                raise RuntimeError("INVALID alarm")
            return False

        status = DeviceStatus(T)
        T._watch(status, done, timeout=None, what="settling")
        failing.set()
        assert raised.wait(5)
        if ioc_stops:  # after the error, as Channel Access reports the disconnect after it
            own.stop()
            with pytest.raises(PVDisconnectedError, match="disconnected.*INVALID.*IOC running"):
                status.wait(10)
        else:
            with pytest.raises(DeviceFaultError, match="T: during settling: .*INVALID alarm"):
                status.wait(10)


def test_safe_state_as_a_plan_and_directly(RE, reactor):
    T, S = reactor.temperature, reactor.stirrer
    RE(bps.mv(T, 35.0, S, 300.0))
    RE(safe_state_plan([T, S, reactor.spectrometer]))
    assert T.setpoint.get() == 25.0
    assert S.position == 0.0
    T.set(35.0).wait(10)
    assert make_safe(reactor.devices.values()) == ["r_temperature", "r_stirrer", "r_spectrometer"]
    assert T.setpoint.get() == 25.0
    RE(reactor.safe_state())


def test_a_limit_violation_in_a_plan_raises_before_motion(RE, reactor):
    with pytest.raises(LimitError):
        RE(bps.mv(reactor.stirrer, 5000.0))
