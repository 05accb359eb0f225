"""Whole campaigns on the simulated labs, checked through the store on disk."""

import numpy as np
import yaml
import zarr

from sdl import Campaign, open_store
from sdl.config import load_campaign
from sdl.devices import AlignmentStage, Faults
from sdl.planners import Objective, Real, SobolPlanner
from sdl.protocols import set_settle_measure

FAST_BOTORCH = {"n_initial": 5, "num_restarts": 2, "raw_samples": 64, "maxiter": 50}


def test_color_campaign_improves_on_its_initial_design(RE, store_path):
    config = yaml.safe_load(open("examples/color_mixing.yaml"))
    config["devices"]["station"]["options"]["time_scale"] = 0.0
    config["planner"]["options"] = FAST_BOTORCH
    campaign = load_campaign(config, budget=15)
    result = campaign.run(RE, store=store_path)

    root = zarr.open_group(str(store_path), mode="r")  # plain zarr: no sdl reader involved
    status = root["experiments/status"][:]
    distance = root["experiments/objectives/distance"][:]
    batch = root["experiments/batch"][:]
    assert len(status) == 15 and set(status) == {"done"}
    initial = distance[: FAST_BOTORCH["n_initial"]]
    assert len(set(batch[:5])) == 5  # one ask per experiment
    assert distance.min() < initial.min()
    assert result.best_objectives["distance"] == distance.min()
    # every experiment's run is in the store, with the sensor reading that became the objective
    uids = root["runs/uid"][:]
    primary = root["streams/primary"]
    run_of_row = primary["run"][:]
    for i, uid in enumerate(root["experiments/run_uid"][:]):
        (row,) = np.flatnonzero(uids == uid)
        (event,) = np.flatnonzero(run_of_row == row)
        assert primary["data/station_sensor_distance"][event] == distance[i]


def test_faulty_instruments_finish_with_failures_recorded(RE, store_path):
    stage = AlignmentStage(
        "stage",
        n_axes=2,
        faults=Faults(timeout=0.1, exception=0.15, nan=0.15, timeout_s=1.0),
        seed=5,
    )
    objectives = [Objective("intensity", goal="maximize", key="stage_det_intensity")]
    planner = SobolPlanner([Real("x", -10, 10), Real("y", -10, 10)], objectives, seed=0)
    protocol = lambda point, md: set_settle_measure(  # noqa: E731
        point, movables=dict(zip("xy", stage.motors)), detectors=[stage.detector], md=md
    )
    campaign = Campaign(objectives=objectives, planner=planner, protocol=protocol, budget=30)
    result = campaign.run(RE, store=store_path)

    df = open_store(store_path).to_dataframe()
    assert set(df["status"]) == {"done", "failed"}
    # instrument failures were measured again; the budget counts each point once
    reruns = df[df["rerun_of"] >= 0]
    assert len(df) - len(reruns) == 30 and len(reruns) >= 3
    assert (df.loc[reruns["rerun_of"], "failure_kind"] == "instrument").all()
    failed = df[df["status"] == "failed"]
    assert result.n_failed == len(failed) >= 3
    causes = " ".join(failed["cause"])
    for expected in ("simulated fault", "gave nan", "Timeout"):
        assert expected in causes, causes
    # a NaN is the sample's verdict; a fault or timeout is the instrument's
    assert (failed["cause"].str.contains("gave nan") == (failed["failure_kind"] == "sample")).all()
    assert np.isnan(failed["intensity"]).all()
    assert np.isfinite(df.loc[df["status"] == "done", "intensity"]).all()
