"""Campaign options: retries, failure pauses, plan-ahead, fixed parameters, approval,
safe state, warm start, measured quantities and the Pareto front."""

import functools
import json
import threading
import time

import bluesky.plan_stubs as bps
import numpy as np
import pytest
from bluesky.utils import RunEngineInterrupted
from ophyd.sim import SynAxis, det, motor
from ophyd.status import Status

from sdl import Campaign, open_store
from sdl.control import ControlChannel
from sdl.errors import LimitError
from sdl.planners import BoTorchPlanner, Categorical, Objective, Real, SobolPlanner
from sdl.protocols import set_settle_measure

OBJ = [Objective("det", goal="maximize")]


def _protocol(movable=motor, detectors=(det,), record_only=()):
    return functools.partial(
        set_settle_measure,
        movables={"x": movable},
        detectors=list(detectors),
        record_only=list(record_only),
    )


class _FlakyAxis(SynAxis):
    """Fails the first move to every new set-point; refuses |x| > 0.9 (a limit)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tried = set()

    def set(self, value):
        if abs(value) > 0.9:
            raise LimitError(f"{value} outside the limits (-0.9, 0.9)")
        if value not in self.tried:
            self.tried.add(value)
            st = Status()
            st.set_exception(RuntimeError("transient fault"))
            return st
        return super().set(value)


def test_retries_measure_a_failed_point_again_but_never_a_limit_error(RE, store_path):
    axis = _FlakyAxis(name="axis")
    campaign = Campaign(
        objectives=OBJ,
        planner=SobolPlanner([Real("x", -1, 1)], OBJ, seed=5),
        protocol=_protocol(axis),
        budget=10,
        retries=1,
        instrument_reruns=0,  # the retries policy alone (instrument re-runs: test_loop.py)
    )
    campaign.run(RE, store=store_path)
    df = open_store(store_path).to_dataframe()
    assert len(df) == 10
    for exp_id, row in df[df["status"] == "failed"].iterrows():
        if "transient" in row["cause"] and exp_id == len(df) - 1:
            assert "retried" not in row["cause"]  # no budget left for another attempt
        elif "transient" in row["cause"]:
            assert "retried (1 of 1)" in row["cause"]
            retry = df.loc[exp_id + 1]
            assert retry["x"] == row["x"] and retry["status"] == "done"
        else:
            assert "outside the limits" in row["cause"] and "retried" not in row["cause"]
            assert exp_id + 1 not in df.index or df.loc[exp_id + 1, "x"] != row["x"]


class _DeadAxis(SynAxis):
    def set(self, value):
        st = Status()
        st.set_exception(RuntimeError("amplifier off"))
        return st


def test_pause_after_repeated_failures(RE, store_path):
    campaign = Campaign(
        objectives=OBJ,
        planner=SobolPlanner([Real("x", -1, 1)], OBJ),
        protocol=_protocol(_DeadAxis(name="dead")),
        budget=10,
        pause_after_failures=3,
    )
    with pytest.raises(RunEngineInterrupted):
        campaign.run(RE, store=store_path)
    df = open_store(store_path).to_dataframe()
    assert df["status"].tolist() == ["failed"] * 3
    RE.stop()
    assert RE.state == "idle"


class _SlowSobol(SobolPlanner):
    """Sobol that takes 0.3 s per ask and remembers when each ask started."""

    starts: list

    def _propose(self, n, pending, seed, **kw):
        self.starts.append((time.time(), [dict(p) for p in pending]))
        time.sleep(0.3)
        return super()._propose(n, pending, seed, **kw)


def _slow_measurement(point, md):
    yield from bps.sleep(0.3)
    return (yield from set_settle_measure(point, movables={"x": motor}, detectors=[det], md=md))


def test_plan_ahead_asks_while_the_instrument_measures(RE, store_path):
    planner = _SlowSobol([Real("x", -1, 1)], OBJ)
    planner.starts = []
    campaign = Campaign(
        objectives=OBJ, planner=planner, protocol=_slow_measurement, budget=4, plan_ahead=True
    )
    campaign.run(RE, store=store_path)
    df = open_store(store_path).to_dataframe()
    assert (df["status"] == "done").all()
    # every ask after the first started before the previous experiment finished,
    # with that experiment's point passed as pending
    for k in range(1, 4):
        started, pending = planner.starts[k]
        assert started < df.loc[k - 1, "t_finished"]
        assert pending == [{"x": df.loc[k - 1, "x"]}]
    log = (
        open_store(store_path).run(open_store(store_path).campaign_runs[0]).to_dataframe("planner")
    )
    assert log["n_observations"].tolist() == [0, 0, 1, 2]


def test_fixed_parameters_hold_for_every_batch(RE, store_path):
    space = [Real("x", -1, 1), Categorical("oven", ("low", "high"))]
    campaign = Campaign(
        objectives=OBJ,
        planner=SobolPlanner(space, OBJ),
        protocol=_protocol(record_only=["oven"]),  # no device sets the oven here
        budget=6,
        batch_size=2,
        fixed=lambda batch: {"oven": "high" if batch % 2 else "low"},
    )
    campaign.run(RE, store=store_path)
    df = open_store(store_path).to_dataframe()
    assert [("high" if b % 2 else "low") for b in df["batch"]] == df["oven"].tolist()


def test_store_options_reach_the_writer(RE, store_path, monkeypatch):
    import sdl.store._writer as writer_module
    from sdl.errors import ConfigError

    synced = []
    real_sync = writer_module.sync_filesystem

    def spy(path):  # the real syncfs, counted
        synced.append(path)
        real_sync(path)

    monkeypatch.setattr(writer_module, "sync_filesystem", spy)
    space = [Real("x", -1, 1)]

    def campaign():
        return Campaign(
            objectives=OBJ, planner=SobolPlanner(space, OBJ), protocol=_protocol(), budget=2
        )

    with pytest.raises(ConfigError, match="flush_rows"):
        campaign().run(RE, store=store_path, store_options={"flush_row": 10})
    campaign().run(RE, store=store_path, store_options={"sync_to_disk": False})
    assert synced == [] and len(open_store(store_path).to_dataframe()) == 2
    campaign().resume(RE, store=store_path, budget=3)  # default: every run stop syncs
    assert len(synced) >= 2 and set(synced) == {store_path}


def test_approval_from_the_dashboard_channel_is_applied_and_recorded(RE, store_path):
    campaign = Campaign(
        objectives=OBJ,
        planner=SobolPlanner([Real("x", -1, 1)], OBJ, seed=1),
        protocol=_protocol(),
        budget=2,
        batch_size=2,
        approval="dashboard",
        operator="ada",
    )
    channel = ControlChannel(store_path)
    stop = threading.Event()

    def operator():  # batch 0: reject the first point, set the second to x=0.25; then
        seen = set()  # batch 1 (one point: the budget has one left): set it to x=0.25
        while not stop.is_set():
            state = channel.state()
            if state.get("state") == "waiting-approval" and state.get("time") not in seen:
                seen.add(state.get("time"))
                if len(seen) == 1:
                    channel.request("approve", "ada", rejected=[0], edited={"1": {"x": 0.25}})
                else:
                    channel.request("approve", "ada", edited={"0": {"x": 0.25}})
            time.sleep(0.05)

    thread = threading.Thread(target=operator, daemon=True)
    thread.start()
    try:
        campaign.run(RE, store=store_path)
    finally:
        stop.set()
        thread.join()
    store = open_store(store_path)
    df = store.to_dataframe()
    # a rejection is not a failure: its own status, not told to the planner, not counted
    assert df["status"].tolist() == ["rejected", "done", "done"]
    assert df.loc[0, "cause"] == "rejected by ada"
    assert df.loc[df["status"] == "done", "x"].tolist() == [0.25] * 2
    assert [o.failed for o in campaign.planner.observations] == [False] * 2
    approvals = store.run(store.campaign_runs[0]).to_dataframe("approvals")
    assert approvals["who"].tolist() == ["ada", "ada"]
    decision = json.loads(approvals["decision"].iloc[0])
    assert decision["accepted"] == [{"x": 0.25}] and len(decision["rejected"]) == 1


def test_safe_state_runs_when_the_campaign_ends_in_error(RE, store_path):
    ran = []

    def safe_state():
        ran.append("safe")
        yield from bps.null()

    class Broken(SobolPlanner):
        def _propose(self, n, pending, seed, **kw):
            if self.n_asks > 2:
                raise RuntimeError("planner bug")
            return super()._propose(n, pending, seed, **kw)

    campaign = Campaign(
        objectives=OBJ,
        planner=Broken([Real("x", -1, 1)], OBJ),
        protocol=_protocol(),
        budget=5,
        safe_state=safe_state,
    )
    with pytest.raises(RuntimeError, match="planner bug"):
        campaign.run(RE, store=store_path)
    assert ran == ["safe"]
    assert open_store(store_path).to_dataframe()["status"].tolist() == ["done"] * 2


def test_warm_start_from_another_store_changes_the_first_proposal(RE, tmp_path):
    fast = {"n_initial": 3, "num_restarts": 2, "raw_samples": 32, "maxiter": 30}
    prior = tmp_path / "prior.zarr"
    Campaign(
        objectives=OBJ,
        planner=SobolPlanner([Real("x", -2, 2)], OBJ, seed=3),
        protocol=_protocol(),
        budget=6,
    ).run(RE, store=prior)

    def first_point(**kw):
        c = Campaign(
            objectives=OBJ,
            planner=BoTorchPlanner([Real("x", -2, 2)], OBJ, seed=0, **fast),
            protocol=_protocol(),
            budget=1,
            **kw,
        )
        path = tmp_path / f"run{len(list(tmp_path.iterdir()))}.zarr"
        c.run(RE, store=path)
        return c, open_store(path).to_dataframe()["x"].iloc[0]

    cold_campaign, cold = first_point()
    warm_campaign, warm = first_point(warm_start=prior)
    assert cold != warm
    assert abs(warm) < 0.6  # the prior data show the peak of det at x = 0
    assert warm_campaign.describe()["warm_start"].startswith("6 rows from sdl store")


def _two_peaks(readings):
    return float(readings["motor"]) ** 2


def test_measured_quantities_constraints_and_pareto_front(RE, store_path):
    """A constrained quantity is measured, stored and told; the front is in the result."""
    objectives = [Objective("det", goal="maximize"), Objective("cost", function=_two_peaks)]
    planner = BoTorchPlanner(
        [Real("x", -2, 2)],
        objectives,
        seed=2,
        outcome_constraints=["setpoint <= 1.5"],
        n_initial=4,
        num_restarts=2,
        raw_samples=32,
        maxiter=30,
    )
    campaign = Campaign(
        objectives=objectives,
        planner=planner,
        protocol=_protocol(),
        budget=8,
        measurements=[Objective("setpoint", key="motor_setpoint")],
    )
    result = campaign.run(RE, store=store_path)
    df = open_store(store_path).to_dataframe()
    np.testing.assert_allclose(df["setpoint"], df["x"])
    assert [o.measured["setpoint"] for o in planner.observations] == pytest.approx(df["x"].tolist())
    # both objectives improve toward x = 0: the front is the single best point there
    front = open_store(store_path).pareto_front()
    best = df["x"].abs().idxmin()
    assert front.index.tolist() == [best]
    assert result.pareto_front[0][0] == {"x": df.loc[best, "x"]}


def test_an_operator_adds_points_to_a_running_campaign(RE, store_path):
    # the dashboard's "add an experiment": an add request to an autonomous campaign
    campaign = Campaign(
        objectives=OBJ,
        planner=SobolPlanner([Real("x", -1, 1)], OBJ, seed=2),
        protocol=_slow_measurement,  # 0.3 s per experiment
        budget=5,
    )
    channel = ControlChannel(store_path)
    answers = {}

    def operator():
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30 and channel.state().get("state") != "running":
            time.sleep(0.05)
        good = channel.request("add", "bob", points=[{"x": 0.125}, {"x": -0.5}])
        bad = channel.request("add", "eve", points=[{"x": 7.0}])  # outside the space
        answers["good"] = channel.wait(good, timeout=30)
        answers["bad"] = channel.wait(bad, timeout=30)

    thread = threading.Thread(target=operator, daemon=True)
    thread.start()
    campaign.run(RE, store=store_path, control=True)
    thread.join()
    assert answers["good"].ok and "2 point(s) added" in answers["good"].result
    assert not answers["bad"].ok and "add refused" in answers["bad"].result
    store = open_store(store_path)
    df = store.to_dataframe()
    # measured, within the budget, and recorded as bob's decision
    assert len(df) == 5 and (df["status"] == "done").all()
    assert {0.125, -0.5} <= set(df["x"]) and 7.0 not in set(df["x"])
    approvals = store.run(store.campaign_runs[0]).to_dataframe("approvals")
    added = [json.loads(d)["added"] for d in approvals["decision"]]
    assert approvals["who"].tolist() == ["bob"] and added == [[{"x": 0.125}, {"x": -0.5}]]
