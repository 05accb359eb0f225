"""sdl's own devices pass the conformance suite plugin authors use."""

from __future__ import annotations

import pytest
from bluesky.protocols import Movable, Readable, Stoppable, Triggerable

from sdl.devices import (
    EpicsDetector,
    EpicsPositioner,
    EpicsSetpointController,
    SimDetector,
    SimMotor,
)
from sdl.testing import DeviceTests, IocProcess, loopback_ca

# what these suites check is the devices' protocols, not how fast a PV connects: once, at
# the end of the whole suite on a loaded machine, one PV of three took over the default 3 s
CONNECT_S = 15.0


@pytest.fixture(scope="module")
def ioc():
    loopback_ca()
    with IocProcess(args=["--tau", "0.05", "--noise", "0.02", "--seed", "1"]) as proc:
        yield proc


class TestSimMotor(DeviceTests):
    protocols = (Readable, Movable, Stoppable)
    position_tolerance = 1e-9

    @pytest.fixture
    def device(self):
        return SimMotor("m", limits=(-5, 5), velocity=10.0, time_scale=1.0)

    @pytest.fixture
    def valid_value(self):
        return 0.5

    @pytest.fixture
    def invalid_value(self):
        return 7.0

    @pytest.fixture
    def far_value(self):
        return -5.0


class TestSimDetector(DeviceTests):
    protocols = (Readable, Triggerable, Stoppable)

    @pytest.fixture
    def device(self):
        m = SimMotor("x")
        return SimDetector("det", physics=lambda p: {"I": 1.0 + p["x"]}, inputs=[m], seed=0)


class TestEpicsPositioner(DeviceTests):
    protocols = (Readable, Movable, Stoppable)
    position_tolerance = 1e-6

    @pytest.fixture
    def device(self, ioc):
        p = ioc.prefix
        dev = EpicsPositioner(
            "stir",
            setpoint_pv=f"{p}STIR:SP",
            readback_pv=f"{p}STIR:RBV",
            done_pv=f"{p}STIR:DMOV",
            stop_pv=f"{p}STIR:STOP",
            limits=(0, 1500),
            egu="rpm",
        )
        dev.connect(timeout=CONNECT_S)
        yield dev
        dev.destroy()

    @pytest.fixture
    def valid_value(self):
        return 200.0

    @pytest.fixture
    def invalid_value(self):
        return 2000.0

    @pytest.fixture
    def far_value(self):
        return 1500.0


class TestEpicsSetpointController(DeviceTests):
    protocols = (Readable, Movable, Stoppable)
    position_tolerance = 0.1

    @pytest.fixture
    def device(self, ioc):
        p = ioc.prefix
        dev = EpicsSetpointController(
            "T",
            setpoint_pv=f"{p}T:SP",
            readback_pv=f"{p}T:RBV",
            tolerance=0.1,
            dwell=0.05,
            limits=(20, 120),
            safe_value=25.0,
            egu="degC",
        )
        dev.connect(timeout=CONNECT_S)
        yield dev
        dev.destroy()

    @pytest.fixture
    def valid_value(self):
        return 30.0

    @pytest.fixture
    def invalid_value(self):
        return 130.0

    @pytest.fixture
    def far_value(self):
        return 110.0


class TestEpicsDetector(DeviceTests):
    protocols = (Readable, Triggerable, Stoppable)

    @pytest.fixture
    def device(self, ioc):
        p = ioc.prefix
        dev = EpicsDetector(
            "spec",
            trigger_pv=f"{p}SPEC:ACQ",
            read_pvs=[f"{p}SPEC:YIELD", f"{p}SPEC:ABS"],
            array_pv=f"{p}SPEC:SPECTRUM",
            array_key="spectrum",
            array_shape=[8, 8],
            config_pvs={"exposure": f"{p}SPEC:EXPOSURE"},
        )
        dev.connect(timeout=CONNECT_S)
        yield dev
        dev.destroy()
