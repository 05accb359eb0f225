import math
import time

import numpy as np
import pytest
from bluesky import plans as bp
from bluesky import protocols
from bluesky.utils import FailedStatus

from sdl.devices import DeviceTimeoutError, Faults, SimDetector, SimMotor
from sdl.errors import DeviceFaultError


def spectrum_physics(p):
    x = p["x"]
    return {
        "peak": math.exp(-(x**2)),
        "spectrum": np.linspace(0, 1, 5) * x,
        "image": np.ones((2, 3)),
    }


def make(**kw):
    m = SimMotor("x", limits=(-5, 5))
    return m, SimDetector("det", physics=spectrum_physics, inputs=[m], **kw)


@pytest.mark.parametrize(
    "proto",
    [protocols.Readable, protocols.Triggerable, protocols.Stoppable, protocols.Configurable],
)
def test_protocols(proto):
    assert isinstance(make()[1], proto)


def test_keys_shapes_and_dtypes():
    _, det = make()
    desc = det.describe()
    assert list(desc) == ["det_peak", "det_spectrum", "det_image"]
    assert desc["det_peak"]["dtype"] == "number" and desc["det_peak"]["shape"] == []
    assert desc["det_spectrum"]["dtype"] == "array" and desc["det_spectrum"]["shape"] == [5]
    assert desc["det_image"]["shape"] == [2, 3]
    assert det.hints == {"fields": ["det_peak"]}
    assert set(det.read_configuration()) == {"det_exposure_time", "det_noise", "det_noise_mode"}


def test_float_physics_uses_device_name_and_mapping_inputs():
    m = SimMotor("x")
    det = SimDetector("sig", physics=lambda p: 2 * p["pos"], inputs={"pos": m})
    m.set(1.5)
    det.trigger().wait(1)
    assert det.read()["sig"]["value"] == 3.0
    assert list(det.describe()) == ["sig"]


def test_trigger_reads_current_positions():
    m, det = make()
    m.set(1.0)
    det.trigger().wait(1)
    assert det.read()["det_peak"]["value"] == pytest.approx(math.exp(-1))
    np.testing.assert_allclose(det.read()["det_spectrum"]["value"], np.linspace(0, 1, 5))


def test_same_seed_same_readings_and_noise_present():
    def readings(seed):
        m, det = make(noise=0.1, seed=seed)
        out = []
        for x in (0.0, 1.0, 2.0):
            m.set(x)
            det.trigger().wait(1)
            out.append(det.read()["det_peak"]["value"])
        return out

    assert readings(7) == readings(7)
    assert readings(7) != readings(8)
    assert readings(7)[0] != 1.0


def test_relative_noise_scales_with_value():
    m = SimMotor("x")
    det = SimDetector(
        "d", physics=lambda p: 1000.0, inputs=[m], noise=0.01, relative_noise=True, seed=0
    )
    vals = []
    for _ in range(200):
        det.trigger()
        vals.append(det.read()["d"]["value"])
    assert 5 < np.std(vals) < 15


def test_exposure_time_scaled():
    _, det = make(exposure_time=1.0, time_scale=0.1)
    t0 = time.monotonic()
    st = det.trigger()
    assert not st.done
    st.wait(2)
    assert time.monotonic() - t0 >= 0.09
    _, fast = make(exposure_time=100.0)
    assert fast.trigger().done


def test_nan_fault():
    _, det = make(faults=Faults(nan=1.0))
    st = det.trigger()
    st.wait(1)
    assert st.success
    r = det.read()
    assert math.isnan(r["det_peak"]["value"])
    assert np.isnan(r["det_spectrum"]["value"]).all()
    assert r["det_spectrum"]["value"].shape == (5,)


def test_exception_and_timeout_faults():
    _, det = make(faults=Faults(exception=1.0))
    with pytest.raises(DeviceFaultError, match="det: simulated fault during trigger"):
        det.trigger().wait(1)
    _, det = make(faults=Faults(timeout=1.0))
    st = det.trigger()
    assert st.done and isinstance(st.exception(), DeviceTimeoutError)


def test_fault_propagates_from_run_engine(RE):
    _, det = make(faults=Faults(exception=1.0))
    with pytest.raises(FailedStatus) as info:
        RE(bp.count([det]))
    assert isinstance(info.value.__cause__, DeviceFaultError)


def test_physics_changing_channels_fails_status():
    m = SimMotor("x")
    det = SimDetector("d", physics=lambda p: {"a": 1.0} if p["x"] == 0 else {"b": 1.0}, inputs=[m])
    m.set(1.0)
    with pytest.raises(DeviceFaultError, match="channels"):
        det.trigger().wait(1)


def test_scan_documents_keep_array_shapes(RE, collect):
    cb, docs = collect
    m, det = make(noise=0.01, seed=0)
    RE(bp.scan([det], m, -1, 1, 3), cb)
    keys = docs["descriptor"][0]["data_keys"]
    assert keys["det_spectrum"]["shape"] == [5]
    assert keys["det_image"]["shape"] == [2, 3]
    assert {"x", "x_setpoint", "det_peak"} <= set(keys)
    assert len(docs["event"]) == 3
    assert np.shape(docs["event"][0]["data"]["det_image"]) == (2, 3)
