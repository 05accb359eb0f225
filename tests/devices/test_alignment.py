import numpy as np
import pytest
from bluesky import plans as bp
from bluesky import protocols

from sdl.devices import AlignmentStage, Faults
from sdl.errors import LimitError


def test_devices_names_and_protocols():
    st = AlignmentStage("stage", n_axes=3, limits=[(-1, 1), (0, 10), (-5, 5)])
    assert list(st.devices) == ["stage_m0", "stage_m1", "stage_m2", "stage_det"]
    for m in st.motors:
        assert isinstance(m, protocols.Movable) and isinstance(m, protocols.Checkable)
    assert isinstance(st.detector, protocols.Triggerable)
    assert list(st.detector.describe()) == ["stage_det_intensity"]
    assert st.motors[1].limits == (0.0, 10.0)
    named = AlignmentStage("s", axis_names=["x", "y"])
    assert list(named.devices) == ["s_x", "s_y", "s_det"]


def test_gaussian_optimum_off_centre_and_measured():
    st = AlignmentStage(noise=0.0)
    best, value = st.optimum
    assert value == 1.0
    assert best["stage_m0"] != 0.0 and best["stage_m1"] != 0.0
    for m in st.motors:
        m.set(best[m.name])
    st.detector.trigger()
    assert st.detector.read()["stage_det_intensity"]["value"] == pytest.approx(1.0)
    st.motors[0].set(-10.0)
    st.detector.trigger()
    assert st.detector.read()["stage_det_intensity"]["value"] < 0.01


def test_limits_raise_before_motion():
    st = AlignmentStage()
    with pytest.raises(LimitError):
        st.motors[0].set(11.0)
    assert st.motors[0].position == 0.0


def test_hartmann6():
    st = AlignmentStage(n_axes=6, truth="hartmann6", limits=(0.0, 2.0), noise=0.0)
    best, value = st.optimum
    assert value == pytest.approx(3.32237)
    for m in st.motors:
        m.set(best[m.name])
    st.detector.trigger()
    assert st.detector.read()["stage_det_intensity"]["value"] == pytest.approx(3.32237, abs=1e-4)
    with pytest.raises(ValueError):
        AlignmentStage(n_axes=2, truth="hartmann6")


def test_callable_truth():
    st = AlignmentStage(truth=lambda x: float(-np.sum(x**2)), noise=0.0)
    assert st.optimum is None
    st.motors[0].set(2.0)
    st.detector.trigger()
    assert st.detector.read()["stage_det_intensity"]["value"] == -4.0


def test_seeded_noise():
    def read(seed):
        st = AlignmentStage(seed=seed, noise=0.1)
        st.detector.trigger()
        return st.detector.read()["stage_det_intensity"]["value"]

    assert read(1) == read(1) != read(2)


def test_scan_with_run_engine(RE, collect):
    cb, docs = collect
    st = AlignmentStage(seed=0)
    m0, m1 = st.motors
    RE(bp.grid_scan([st.detector], m0, -5, 5, 3, m1, -5, 5, 2), cb)
    keys = docs["descriptor"][0]["data_keys"]
    assert {"stage_m0", "stage_m1", "stage_det_intensity"} <= set(keys)
    assert keys["stage_det_intensity"]["dtype"] == "number"
    assert len(docs["event"]) == 6
    assert docs["stop"][0]["exit_status"] == "success"


def test_time_scaled_scan(RE, collect):
    cb, docs = collect
    st = AlignmentStage(n_axes=1, settle_time=0.2, exposure_time=0.2, time_scale=0.1)
    RE(bp.scan([st.detector], st.motors[0], -1, 1, 2), cb)
    assert len(docs["event"]) == 2


def test_motor_fault_propagates(RE):
    from bluesky.utils import FailedStatus

    st = AlignmentStage(faults=Faults(timeout=1.0))
    with pytest.raises(FailedStatus) as info:
        RE(bp.scan([st.detector], st.motors[0], -1, 1, 2))
    assert isinstance(info.value.__cause__, TimeoutError)
