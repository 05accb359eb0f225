"""Real-time behaviour of the EPICS devices against the caproto bench IOC on 127.0.0.1.

A move takes real time (the bench motor runs at a set velocity) and a measurement PV is
updated by a scan loop every 0.3 s, so a device that reports "done" too early or reads a
value from before the move is caught by its timestamps.
"""

from __future__ import annotations

import threading
import time

import pytest
from ophyd.signal import EpicsSignalRO

from sdl.devices import (
    DeviceTimeoutError,
    EpicsDetector,
    EpicsPositioner,
    EpicsSetpointController,
    make_device,
)
from sdl.errors import ConfigError
from sdl.testing import IocProcess, loopback_ca

VELOCITY = 10.0  # mm/s: a 3 mm move takes 0.3 s
PERIOD = 0.3  # s between two updates of SLOW


@pytest.fixture(scope="module")
def bench():
    loopback_ca()
    with IocProcess(
        "sdl.devices._iocs.bench", ["--velocity", str(VELOCITY), "--period", str(PERIOD)]
    ) as proc:
        yield proc


@pytest.fixture
def rbv(bench):
    """The motor's position, read from the IOC by a signal of its own (not the device's)."""
    sig = EpicsSignalRO(f"{bench.prefix}M:RBV", name="rbv", auto_monitor=False)
    sig.wait_for_connection(timeout=5)
    yield sig
    sig.destroy()


def _done_at(status, rbv) -> dict:
    """Record the motor's position the moment ``status`` finishes."""
    seen: dict = {}
    event = threading.Event()

    def cb(st):
        seen["rbv"] = rbv.get()
        seen["t"] = time.monotonic()
        event.set()

    status.add_callback(cb)
    event.wait(10)
    return seen


@pytest.mark.parametrize("readback", [False, True], ids=["setpoint-only", "with-readback"])
def test_a_positioner_without_a_done_pv_is_done_only_when_the_motor_arrived(bench, rbv, readback):
    """Only a set-point PV (and maybe a readback), no done PV, no tolerance: put-completion."""
    m = EpicsPositioner(
        "m",
        setpoint_pv=f"{bench.prefix}M:VAL",
        readback_pv=f"{bench.prefix}M:RBV" if readback else None,
        timeout=10,
    )
    m.connect()
    try:
        for target in (3.0, 0.5):
            start = rbv.get()
            t0 = time.monotonic()
            status = m.set(target)
            seen = _done_at(status, rbv)
            status.wait(10)
            # the motor had reached the target when the status said done...
            assert seen["rbv"] == pytest.approx(target, abs=1e-6), (seen, start)
            # ...which took the time the move takes at VELOCITY
            assert seen["t"] - t0 >= 0.9 * abs(target - start) / VELOCITY
    finally:
        m.destroy()


def test_a_positioner_that_cannot_know_when_a_move_ends_is_refused(bench):
    with pytest.raises(ConfigError, match=r"'m'.*done_pv.*tolerance.*put_complete"):
        EpicsPositioner("m", setpoint_pv=f"{bench.prefix}M:SP", put_complete=False)
    # a tolerance on the set-point PV itself tells nothing either
    with pytest.raises(ConfigError, match="readback_pv"):
        EpicsPositioner("m", setpoint_pv=f"{bench.prefix}M:SP", tolerance=0.01, put_complete=False)
    # a controller whose readback is its set-point would count as settled at once
    with pytest.raises(ConfigError, match=r"'T'.*readback_pv.*setpoint_pv"):
        EpicsSetpointController(
            "T", setpoint_pv=f"{bench.prefix}M:SP", readback_pv=f"{bench.prefix}M:SP", tolerance=1
        )
    # the registry (YAML) path refuses it the same way, before connecting
    with pytest.raises(ConfigError, match="put_complete"):
        make_device("epics_positioner", "m", setpoint_pv="SDLNOPE:m", put_complete=False)


def test_a_readback_tolerance_waits_for_the_motor_not_the_put(bench, rbv):
    """``M:SP`` completes its put at once; the tolerance on the readback is what waits."""
    m = EpicsPositioner(
        "m",
        setpoint_pv=f"{bench.prefix}M:SP",
        readback_pv=f"{bench.prefix}M:RBV",
        tolerance=0.001,
        timeout=10,
    )
    m.connect()
    try:
        status = m.set(2.0)
        seen = _done_at(status, rbv)
        status.wait(10)
        assert seen["rbv"] == pytest.approx(2.0, abs=0.001)
        m.set(0.0).wait(10)
    finally:
        m.destroy()


def test_a_slow_pv_is_never_read_stale_after_a_move(bench):
    """Each reading after a trigger was produced after the trigger (the move's end)."""
    m = EpicsPositioner("m", setpoint_pv=f"{bench.prefix}M:VAL", timeout=10)
    det = EpicsDetector("det", read_pvs={"slow": f"{bench.prefix}SLOW"}, timeout=5)
    m.connect()
    det.connect()
    try:
        previous = None
        for i in range(6):
            m.set(0.5 * (i % 2)).wait(10)  # 50 ms moves, shorter than the PV's period
            t_trigger = time.time()
            det.trigger().wait(5)
            reading = det.read()["det_slow"]
            assert reading["timestamp"] > t_trigger, (i, t_trigger - reading["timestamp"])
            assert reading["value"] != previous  # a new update each time
            previous = reading["value"]
    finally:
        m.destroy()
        det.destroy()


def test_a_pv_that_never_updates_fails_the_trigger_naming_it(bench):
    det = EpicsDetector("det", read_pvs={"frozen": f"{bench.prefix}FROZEN"}, timeout=0.5)
    det.connect()
    try:
        t0 = time.monotonic()
        status = det.trigger()
        with pytest.raises(
            DeviceTimeoutError, match=rf"newer than the trigger.*'{bench.prefix}FROZEN'"
        ):
            status.wait(5)
        assert time.monotonic() - t0 < 2.0
    finally:
        det.destroy()


def test_fresh_false_reads_at_once(bench):
    """The explicit opt-out: the current value, whatever its age."""
    det = EpicsDetector(
        "det", read_pvs={"frozen": f"{bench.prefix}FROZEN"}, fresh=False, timeout=0.5
    )
    det.connect()
    try:
        det.trigger().wait(1)
        assert det.read()["det_frozen"]["value"] == 1.0
    finally:
        det.destroy()
