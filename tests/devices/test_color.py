import numpy as np
import pytest
from bluesky import plan_stubs as bps
from bluesky import protocols
from bluesky.utils import FailedStatus

from sdl.devices import ColorMixingStation, ColorMixPhysics, Faults
from sdl.errors import DeviceFaultError, LimitError


def test_default_optimum_is_interior_and_near_zero():
    phys = ColorMixPhysics()
    best, dist = phys.optimum
    assert best == pytest.approx({"cyan": 30.0, "magenta": 55.0, "yellow": 70.0})
    assert dist < 1e-9
    rng = np.random.default_rng(0)
    for _ in range(20):
        random_point = dict(zip(phys.dyes, rng.uniform(0, 100, 3)))
        assert phys.distance(random_point) > 10 * max(dist, 1e-3)


def test_unreachable_target_uses_bounded_optimizer():
    phys = ColorMixPhysics(target=(0.05, 0.9, 0.9))
    best, dist = phys.optimum
    assert all(0 <= v <= 100 for v in best.values())
    assert dist <= phys.distance(dict.fromkeys(phys.dyes, 0.0)) + 1e-9


def test_station_devices_and_protocols():
    st = ColorMixingStation("cs")
    assert set(st.devices) == {"cs_cyan", "cs_magenta", "cs_yellow", "cs_mixer", "cs_sensor"}
    for disp in st.dispensers.values():
        assert isinstance(disp, protocols.Movable) and isinstance(disp, protocols.Readable)
        assert disp.limits == (0.0, 100.0) and disp.egu == "µL"
    assert isinstance(st.mixer, protocols.Triggerable)
    assert isinstance(st.sensor, protocols.Readable)
    assert isinstance(st.sensor, protocols.Triggerable)
    expected = ["cs_sensor_r", "cs_sensor_g", "cs_sensor_b", "cs_sensor_distance"]
    assert list(st.sensor.describe()) == expected


def test_dispenser_limits_and_error():
    st = ColorMixingStation(dispense_cv=0.05, seed=1)
    with pytest.raises(LimitError):
        st.dispensers["cyan"].set(150.0)
    assert st.well.volumes["cyan"] == 0.0
    st.dispensers["cyan"].set(50.0)
    r = st.dispensers["cyan"].read()
    assert r["station_cyan_setpoint"]["value"] == 50.0
    assert r["station_cyan"]["value"] != 50.0
    assert r["station_cyan"]["value"] == pytest.approx(50.0, rel=0.3)
    assert st.well.volumes["cyan"] == r["station_cyan"]["value"]
    assert not st.well.mixed
    st.reset()
    assert st.well.volumes["cyan"] == 0.0


def measure(st, volumes):
    for dye, v in volumes.items():
        st.dispensers[dye].set(v).wait(1)
    st.mixer.trigger().wait(1)
    st.sensor.trigger().wait(1)
    return {k: v["value"] for k, v in st.sensor.read().items()}


def test_measured_distance_small_at_optimum_large_elsewhere():
    st = ColorMixingStation(seed=0)
    best, _ = st.optimum
    at_best = measure(st, best)["station_sensor_distance"]
    far = {"cyan": 90.0, "magenta": 5.0, "yellow": 10.0}
    elsewhere = measure(st, far)["station_sensor_distance"]
    assert at_best < 0.05
    assert elsewhere > 10 * at_best


def test_same_seed_same_readings():
    point = {"cyan": 20.0, "magenta": 40.0, "yellow": 60.0}
    assert measure(ColorMixingStation(seed=5), point) == measure(ColorMixingStation(seed=5), point)
    assert measure(ColorMixingStation(seed=5), point) != measure(ColorMixingStation(seed=6), point)


def test_unmixed_well_is_noisier():
    def spread(mix):
        st = ColorMixingStation(seed=2)
        vals = []
        for _ in range(30):
            st.dispensers["cyan"].set(30.0)
            if mix:
                st.mixer.trigger()
            st.sensor.trigger()
            vals.append(st.sensor.read()["station_sensor_r"]["value"])
        return np.std(vals)

    assert spread(False) > 3 * spread(True)


def experiment(station, volumes):
    for dye, v in volumes.items():
        yield from bps.abs_set(station.dispensers[dye], v, group="dispense")
    yield from bps.wait(group="dispense")
    yield from bps.trigger(station.mixer, wait=True)
    yield from bps.trigger_and_read([station.sensor, *station.dispensers.values()])


def test_run_engine_plan_documents(RE, collect):
    cb, docs = collect
    st = ColorMixingStation(seed=0)
    best, _ = st.optimum

    def plan():
        yield from bps.open_run()
        yield from experiment(st, best)
        yield from experiment(st, {"cyan": 10.0, "magenta": 10.0, "yellow": 10.0})
        yield from bps.close_run()

    RE(plan(), cb)
    keys = docs["descriptor"][0]["data_keys"]
    expected = {f"station_sensor_{c}" for c in ("r", "g", "b", "distance")}
    dyes = ("cyan", "magenta", "yellow")
    expected |= {f"station_{d}{s}" for d in dyes for s in ("", "_setpoint")}
    assert set(keys) == expected
    assert all(keys[k]["shape"] == [] for k in keys)
    first, second = (e["data"] for e in docs["event"])
    assert first["station_sensor_distance"] < second["station_sensor_distance"]


def test_station_fault_propagates_from_run_engine(RE):
    st = ColorMixingStation(faults=Faults(exception=1.0), seed=0)
    with pytest.raises(FailedStatus) as info:
        RE(bps.mv(st.dispensers["cyan"], 10.0))
    assert isinstance(info.value.__cause__, DeviceFaultError)
