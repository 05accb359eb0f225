"""The closed loop is a plain bluesky plan: it runs under any RunEngine with any ophyd device."""

import contextlib
import functools
import math

import numpy as np
import pytest
import zarr
from bluesky.utils import RunEngineInterrupted
from ophyd.sim import SynAxis, SynGauss, det, motor
from ophyd.status import Status

from sdl import Campaign, open_store
from sdl.errors import ConfigError
from sdl.lab import Lab, Step, Workflow
from sdl.planners import Categorical, Integer, Objective, Real, SobolPlanner
from sdl.protocols import set_settle_measure
from sdl.store import ZarrWriter
from sdl.testing import pause_before


def _campaign(budget=6, batch_size=1, movables=None, detectors=(det,), protocol=None, **kw):
    objectives = [Objective("det", goal="maximize")]
    planner = SobolPlanner([Real("x", -3.0, 3.0)], objectives, seed=1)
    protocol = protocol or functools.partial(
        set_settle_measure, movables=movables or {"x": motor}, detectors=list(detectors)
    )
    return Campaign(
        objectives=objectives,
        protocol=protocol,
        planner=planner,
        budget=budget,
        batch_size=batch_size,
        **kw,
    )


def test_loop_plan_under_a_plain_run_engine_with_ophyd_sim(RE, store_path):
    docs = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    RE.subscribe(ZarrWriter(store_path))
    campaign = _campaign(budget=5, batch_size=2)
    uids = RE(campaign.plan())
    starts = [d for n, d in docs if n == "start"]
    # one campaign run + one run per experiment, each tagged with the campaign uid
    assert len(uids) == len(starts) == 6
    assert starts[0]["sdl_role"] == "campaign"
    exp_starts = starts[1:]
    assert [s["sdl_experiment_id"] for s in exp_starts] == list(range(5))
    assert {s["sdl_campaign_uid"] for s in exp_starts} == {campaign.uid}
    assert [s["sdl_batch"] for s in exp_starts] == [0, 0, 1, 1, 2]

    df = open_store(store_path).to_dataframe()
    assert len(df) == 5 and (df["status"] == "done").all()
    # objective values are the detector readings of each experiment's own run
    for _, row in df.iterrows():
        run = open_store(store_path).run(row["run_uid"]).to_dataframe()
        assert run["det"].iloc[0] == pytest.approx(row["det"])
        assert run["motor"].iloc[0] == pytest.approx(row["x"])
    # the planner was told every result
    assert len(campaign.planner.observations) == 5


def test_user_devices_work_unchanged(RE, store_path):
    axis = SynAxis(name="axis")
    gauss = SynGauss("gauss", axis, "axis", center=0.5, Imax=2.0, sigma=0.7)
    objectives = [Objective("gauss", goal="maximize")]
    campaign = Campaign(
        objectives=objectives,
        planner=SobolPlanner([Real("pos", -2, 2)], objectives, seed=0),
        protocol=functools.partial(set_settle_measure, movables={"pos": axis}, detectors=[gauss]),
        budget=4,
    )
    result = campaign.run(RE, store=store_path)
    assert result.n_done == 4
    df = open_store(store_path).to_dataframe()
    expected = 2.0 * np.exp(-((df["pos"] - 0.5) ** 2) / (2 * 0.7**2))
    np.testing.assert_allclose(df["gauss"], expected, rtol=1e-6)


class _FaultyAxis(SynAxis):
    """A real ophyd axis that refuses x > 1 and stalls for x < -1."""

    def set(self, value):
        if value > 1:
            raise ValueError(f"{value} is beyond the soft limit 1")
        if value < -1:
            st = Status()
            st.set_exception(RuntimeError("motor stalled"))
            return st
        return super().set(value)


def test_failed_experiments_are_recorded_with_cause_and_the_loop_goes_on(RE, store_path):
    faulty = _FaultyAxis(name="faulty")
    campaign = _campaign(budget=10, movables={"x": faulty})
    result = campaign.run(RE, store=store_path)
    df = open_store(store_path).to_dataframe()
    failed = df[df["status"] == "failed"]
    assert len(failed) > 0 and set(failed["x"].abs() > 1) == {True}
    for _, row in failed.iterrows():
        assert ("beyond the soft limit" in row["cause"]) == (row["x"] > 1)
        assert ("motor stalled" in row["cause"]) == (row["x"] < -1)
        assert math.isnan(row["det"]) and row["run_uid"]  # the failed run is linked
        # a device's fault, not the point's: an instrument failure
        assert row["failure_kind"] == "instrument"
    # each point failed by its instrument was measured once more (and failed again here)
    originals = failed[failed["rerun_of"] == -1]
    reruns = df[df["rerun_of"] >= 0]
    assert sorted(reruns["rerun_of"]) == sorted(originals.index)
    for exp_id, row in reruns.iterrows():
        assert row["x"] == df.loc[row["rerun_of"], "x"] and exp_id > row["rerun_of"]
        assert "measured again as experiment" in df.loc[row["rerun_of"], "cause"]
    # the budget counts each point once: done ones plus the re-runs that failed again
    assert len(df) == 10 + len(originals)
    assert result.n_done == (df["status"] == "done").sum() == 10 - len(originals)
    # the planner learnt nothing from an instrument's fault
    assert not [o for o in campaign.planner.observations if o.failed]
    assert len(campaign.planner.observations) == result.n_done


@pytest.mark.parametrize("where", ["loop", "one-station lab"])
@pytest.mark.parametrize("wrong", ["a plan", "None"])
def test_a_protocol_that_yields_no_message_fails_its_experiment_with_the_fix(
    RE, store_path, wrong, where
):
    """The usual slip, 'yield bps.mv(...)' for 'yield from bps.mv(...)', mid-run after a
    move that takes real time: the experiment fails saying what to write, its run is
    closed as failed (the error is thrown into the protocol, so its wrappers clean up), and
    the campaign goes on. Before, the loop's own code raised AttributeError on the object
    ('... has no attribute run'), or the whole campaign ended."""
    import bluesky.plan_stubs as bps
    import bluesky.preprocessors as bpp

    slow = SynAxis(name="slow", delay=0.05)  # each move takes 50 ms
    calls = []

    def protocol(point, md=None):
        calls.append(point)

        @bpp.run_decorator(md=md)
        def inner():
            yield from bps.mv(slow, point["x"])
            if len(calls) == 2:  # the second experiment, and its re-run
                yield bps.mv(slow, 0) if wrong == "a plan" else None
            yield from bps.trigger_and_read([det, slow])

        return (yield from inner())

    # in a lab the protocol runs on a station's own RunEngine, through capture()
    campaign = _campaign(
        budget=4,
        protocol=protocol,
        instrument_reruns=0,
        lab=Lab.single([slow, det]) if where == "one-station lab" else None,
    )
    with (
        pytest.warns(RuntimeWarning, match="never iterated")
        if wrong == "a plan"
        else contextlib.nullcontext()
    ):
        result = campaign.run(RE, store=store_path)
    store = open_store(store_path)
    df = store.to_dataframe()
    assert list(df["status"]) == ["done", "failed", "done", "done"]
    cause = df.loc[1, "cause"]
    if wrong == "a plan":
        assert "yielded a plan, not a message" in cause and "yield from bps.mv" in cause
    else:
        assert "yielded None, not a bluesky message" in cause
    # its run was opened by the protocol and closed as failed, with the reason
    stop = store.run(df.loc[1, "run_uid"]).stop
    assert stop["exit_status"] == "fail" and "not a" in stop["reason"]
    assert result.n_done == 3 and slow.position == df.loc[3, "x"]


@pytest.mark.parametrize("where", ["loop", "one-station lab"])
@pytest.mark.parametrize("returns", ["a list of messages", "None"])
def test_a_protocol_is_whatever_the_run_engine_runs(RE, store_path, returns, where):
    """A RunEngine runs any iterable of messages (``ensure_generator``): a protocol that
    returns a list of them runs too, its move taking real time. One that returns None (a
    plain function that forgot to return its plan) fails each experiment saying what a
    protocol is. Before, both failed every experiment with "... has no attribute 'send'"."""
    from bluesky.utils import Msg

    slow = SynAxis(name="slow", delay=0.05)

    def protocol(point, md=None):
        if returns == "None":
            return None
        return [
            Msg("open_run", **md),
            Msg("set", slow, point["x"], group="move"),
            Msg("wait", None, group="move"),
            Msg("create", name="primary"),
            Msg("read", det),
            Msg("read", slow),
            Msg("save"),
            Msg("close_run"),
        ]

    campaign = _campaign(
        budget=3,
        protocol=protocol,
        instrument_reruns=0,
        lab=Lab.single([slow, det]) if where == "one-station lab" else None,
    )
    result = campaign.run(RE, store=store_path)
    df = open_store(store_path).to_dataframe()
    if returns == "None":
        assert list(df["status"]) == ["failed"] * 3
        assert df["cause"].str.contains("the protocol returned None, not a plan").all()
        return
    assert result.n_done == 3 and list(df["status"]) == ["done"] * 3
    store = open_store(store_path)
    for _, row in df.iterrows():  # each objective is its own run's reading, at its point
        data = store.run(row["run_uid"]).data("primary")
        assert data["det"][0] == row["det"] and data["slow"][0] == pytest.approx(row["x"])


@pytest.mark.parametrize("ending", ["returns", "raises"])
def test_a_run_the_protocol_left_open_is_closed_before_the_experiment_settles(
    RE, store_path, ending, caplog
):
    """A protocol with a bare ``open_run`` and no ``close_run`` (or one that raises before
    it): its run is closed when the protocol ends, before the next experiment starts, with
    the experiment's outcome and a warning that says how to write it. Before, the runs
    stayed open until the whole campaign ended (a crash meanwhile left every one of them
    looking cut), and each experiment settled before its own run's stop."""
    import bluesky.plan_stubs as bps

    slow = SynAxis(name="slow", delay=0.05)

    def protocol(point, md=None):
        yield from bps.open_run(md=md)
        yield from bps.mv(slow, point["x"])
        yield from bps.trigger_and_read([det, slow])
        if ending == "raises":
            raise RuntimeError("the sample holder jammed")

    campaign = _campaign(
        budget=3,
        protocol=protocol,
        instrument_reruns=0,
    )
    campaign.run(RE, store=store_path)
    store = open_store(store_path)
    df = store.to_dataframe()
    assert list(df["status"]) == ["done" if ending == "returns" else "failed"] * 3
    runs = [store.run(uid) for uid in df["run_uid"]]
    for exp_id, run in enumerate(runs):
        if ending == "returns":
            assert run.stop["exit_status"] == "success"
            assert "the protocol ended with its run open" in run.stop["reason"]
        else:
            assert run.stop["exit_status"] == "fail"
            assert "the sample holder jammed" in run.stop["reason"]
        assert run.stop["time"] <= df.loc[exp_id, "t_finished"]  # stopped, then settled
        if exp_id + 1 < len(runs):  # and before the next experiment's run started
            assert run.stop["time"] < runs[exp_id + 1].start["time"]
    assert "the protocol ended with its run" in caplog.text and "run_decorator" in caplog.text


@pytest.mark.parametrize("where", ["loop", "one-station lab"])
def test_a_protocol_that_drops_md_still_gets_it_in_its_runs(RE, store_path, where):
    """The md the campaign passes a protocol (campaign uid, experiment id, point) is how
    live plots (sdl.experiment_runs), resume and sdl check find an experiment's run. A
    protocol that opens its run without it (run_decorator() with no md), after a move that
    takes real time: sdl adds it to the open_run, with a warning. Before, those runs were
    anonymous: live plots skipped them, and resume could not tell which run a crash cut."""
    import bluesky.plan_stubs as bps
    import bluesky.preprocessors as bpp

    slow = SynAxis(name="slow", delay=0.05)

    def protocol(point, md=None):
        @bpp.run_decorator(md={"operator_note": "mine"})  # md dropped
        def inner():
            yield from bps.mv(slow, point["x"])
            yield from bps.trigger_and_read([det, slow])

        return (yield from inner())

    campaign = _campaign(
        budget=3,
        protocol=protocol,
        lab=Lab.single([slow, det]) if where == "one-station lab" else None,
    )
    with pytest.warns(UserWarning, match="opened a run without the md the campaign passed"):
        campaign.run(RE, store=store_path)
    store = open_store(store_path)
    df = store.to_dataframe()
    assert list(df["status"]) == ["done"] * 3
    for exp_id, row in df.iterrows():
        start = store.run(row["run_uid"]).start
        assert start["sdl_experiment_id"] == exp_id
        assert start["sdl_campaign_uid"] == campaign.uid
        assert start["sdl_point"] == {"x": row["x"]}
        assert start["operator_note"] == "mine"  # the protocol's own md is kept


def test_nan_objective_is_a_failure(RE, store_path):
    objectives = [Objective("det", function=lambda r: float("nan"))]
    campaign = Campaign(
        objectives=objectives,
        planner=SobolPlanner([Real("x", 0, 1)], objectives),
        protocol=functools.partial(set_settle_measure, movables={"x": motor}, detectors=[det]),
        budget=2,
    )
    campaign.run(RE, store=store_path)
    df = open_store(store_path).to_dataframe()
    assert (df["status"] == "failed").all() and len(df) == 2
    assert df["cause"].str.contains("objective 'det'").all()
    # a NaN outcome is the sample's: told to the planner as infeasible, never re-run
    assert (df["failure_kind"] == "sample").all() and (df["rerun_of"] == -1).all()
    assert [o.failed for o in campaign.planner.observations] == [True, True]


def test_integer_and_categorical_parameters_round_trip(RE, store_path):
    objectives = [Objective("det", goal="maximize")]
    space = [Real("x", -1, 1), Integer("n", 1, 4), Categorical("mode", ("fast", "slow", 7))]
    campaign = Campaign(
        objectives=objectives,
        planner=SobolPlanner(space, objectives, seed=3),
        protocol=functools.partial(
            set_settle_measure, movables={"x": motor}, detectors=[det], record_only=["n", "mode"]
        ),
        budget=6,
    )
    campaign.run(RE, store=store_path)
    df = open_store(store_path).to_dataframe()
    told = [o.point for o in campaign.planner.observations]
    assert df["n"].tolist() == [p["n"] for p in told]
    assert df["mode"].tolist() == [p["mode"] for p in told]
    assert (
        zarr.open_group(str(store_path), mode="r")["experiments/parameters/mode"].dtype.kind
        in "OTU"
    )


def test_existing_store_is_not_overwritten_by_accident(RE, store_path):
    _campaign(budget=1).run(RE, store=store_path)
    with pytest.raises(OSError, match="already holds a campaign"):
        _campaign(budget=1).run(RE, store=store_path)
    assert len(open_store(store_path).to_dataframe()) == 1
    _campaign(budget=2).run(RE, store=store_path, overwrite=True)
    assert len(open_store(store_path).to_dataframe()) == 2


def _pausing_campaign(budget=4):
    objectives = [Objective("det", goal="maximize")]
    return Campaign(
        objectives=objectives,
        planner=SobolPlanner([Real("x", -1, 1)], objectives),
        protocol=pause_before(
            functools.partial(set_settle_measure, movables={"x": motor}, detectors=[det]), 2
        ),
        budget=budget,
    )


def test_pause_and_resume_with_the_run_engine(RE, store_path):
    RE.subscribe(ZarrWriter(store_path))
    with pytest.raises(RunEngineInterrupted):
        RE(_pausing_campaign().plan())
    assert RE.state == "paused"
    assert open_store(store_path).to_dataframe()["status"].tolist() == ["done", "done", "running"]
    RE.resume()
    df = open_store(store_path).to_dataframe()
    assert df["status"].tolist() == ["done"] * 4
    assert df["run_uid"].nunique() == 4


def test_abort_marks_the_running_experiment_interrupted(RE, store_path):
    RE.subscribe(ZarrWriter(store_path))
    with pytest.raises(RunEngineInterrupted):
        RE(_pausing_campaign().plan())
    RE.abort("operator said so")
    assert RE.state == "idle"
    store = open_store(store_path)
    df = store.to_dataframe()
    assert df["status"].tolist() == ["done", "done", "interrupted"]
    assert df["cause"].iloc[2] == "campaign aborted"
    campaign_run = store.run(store.campaign_runs[0])
    assert campaign_run.stop["exit_status"] == "abort"


def test_a_parameter_no_device_sets_is_refused_before_anything_runs(RE, store_path):
    objectives = [Objective("det", goal="maximize")]
    planner = SobolPlanner([Real("x", -1, 1), Real("y", -1, 1)], objectives)
    with pytest.raises(ConfigError, match=r"parameters \['y'\] have no device"):
        Campaign(
            objectives=objectives,
            planner=planner,
            protocol=functools.partial(set_settle_measure, movables={"x": motor}, detectors=[det]),
        )
    with pytest.raises(ConfigError, match=r"movables \['z'\] name no parameter"):
        Campaign(
            objectives=objectives,
            planner=planner,
            protocol=functools.partial(
                set_settle_measure, movables={"x": motor, "y": motor, "z": motor}, detectors=[det]
            ),
        )
    assert not store_path.exists()
    # and a protocol wrapped otherwise fails its experiment when it runs, never "done"
    with pytest.raises(ConfigError, match="have no device"):
        list(set_settle_measure({"x": 0.1, "y": 0.2}, movables={"x": motor}, detectors=[det]))


def test_a_protocol_that_cannot_take_md_is_refused_before_anything_runs(RE, store_path):
    # the loop calls protocol(point, md=...) for every experiment: a protocol without md
    # failed each experiment alike (a TypeError counted as an instrument failure and
    # measured again), through the whole budget
    objectives = [Objective("det", goal="maximize")]
    planner = SobolPlanner([Real("x", -1, 1)], objectives)
    plan = functools.partial(set_settle_measure, movables={"x": motor}, detectors=[det])

    def no_md(point):
        return plan(point)

    for bad in (no_md, lambda point: plan(point), lambda *, point, md: plan(point, md=md)):
        with pytest.raises(ConfigError, match=r"protocol\(point, md=\.\.\.\).*md=None"):
            Campaign(objectives=objectives, planner=planner, protocol=bad, budget=2)
        # and as a one-station lab's one-step workflow
        with pytest.raises(ConfigError, match=r"protocol\(point, md=\.\.\.\)"):
            Campaign(
                objectives=objectives,
                planner=planner,
                protocol=bad,
                lab=Lab.single([motor, det]),
                budget=2,
            )
    # a workflow's step plans, likewise: the lab calls plan(point, context, md=...)
    lab = Lab.single([motor, det])
    for bad in (lambda point, md=None: plan(point, md=md), lambda point, context: plan(point)):
        with pytest.raises(ConfigError, match=r"step 'measure'.*plan\(point, context, md="):
            Campaign(
                objectives=objectives,
                planner=planner,
                lab=lab,
                workflow=Workflow([Step("measure", bad, "station")]),
                budget=2,
            )
    assert not store_path.exists()
    # what the loop can call passes, and runs
    accepted = [
        plan,
        lambda point, md=None: plan(point, md=md),
        lambda point, **kw: plan(point, **kw),
        lambda *args, **kw: plan(*args, **kw),
    ]
    for i, good in enumerate(accepted):
        campaign = Campaign(objectives=objectives, planner=planner, protocol=good, budget=1)
        result = campaign.run(RE, store=store_path.with_name(f"ok-{i}.zarr"))
        assert result.n_done == 1


def test_an_objective_no_experiment_could_give_is_refused_before_anything_runs(RE, store_path):
    # a misspelt data key failed every experiment alike: a sample failure the planner
    # learnt from ("data key 'dett' was not read"), through the whole budget
    sobol = {"parameters": [Real("x", -1, 1)], "planner": "sobol"}
    plan = functools.partial(set_settle_measure, movables={"x": motor}, detectors=[det])
    with pytest.raises(ConfigError, match=r"objectives.dett .*did you mean 'det'\?"):
        Campaign(objectives=[Objective("dett", goal="maximize")], protocol=plan, **sobol)
    with pytest.raises(ConfigError, match=r"measurements.m.key: no device produces data key 'x'"):
        Campaign(
            objectives=[Objective("det")],
            measurements=[Objective("m", key="x")],
            protocol=plan,
            **sobol,
        )
    with pytest.raises(ConfigError, match=r"objectives.det.function.*nowhere_such_module"):
        Campaign(
            objectives=[Objective("det", function="nowhere_such_module:f")],
            protocol=plan,
            **sobol,
        )
    assert not store_path.exists()
    # a protocol of one's own reads what it reads: its keys are learnt when it runs
    own = Campaign(
        objectives=[Objective("dett")],
        protocol=lambda point, md=None: plan(point, md=md),
        **sobol,
        budget=1,
    )
    result = own.run(RE, store=store_path)
    assert result.n_failed == 1
    assert "data key 'dett' was not read" in open_store(store_path).to_dataframe()["cause"][0]


def test_a_planner_that_disagrees_with_the_campaign_is_refused(RE, store_path):
    plan = functools.partial(set_settle_measure, movables={"x": motor}, detectors=[det])
    det_max = [Objective("det", goal="maximize")]
    # the same names, another range: the planner proposed in its own (x = -4.7 where the
    # campaign declared -1..1, a range that often bounds what the hardware may be sent)
    with pytest.raises(ValueError, match=r"low=-1, high=1.*the planner's: .*low=-5, high=5"):
        Campaign(
            parameters=[Real("x", -1, 1)],
            objectives=det_max,
            protocol=plan,
            planner=SobolPlanner([Real("x", -5, 5)], det_max),
        )
    # another goal, or objectives the planner does not know: it would optimize other than
    # what the campaign reports as best
    for campaign_objectives in (
        [Objective("det", goal="minimize")],
        [*det_max, Objective("motor")],
        [Objective("det", goal="maximize", threshold=0.5)],
    ):
        with pytest.raises(ValueError, match=r"differ from the planner's \[\('det', 'maximize'"):
            Campaign(
                objectives=campaign_objectives,
                protocol=plan,
                planner=SobolPlanner([Real("x", -5, 5)], det_max),
            )
    assert not store_path.exists()
    # agreeing, it runs; the parameters may be given to both, or only to the planner
    for parameters in ([Real("x", -5.0, 5.0)], None):
        campaign = Campaign(
            parameters=parameters,
            objectives=[Objective("det", goal="maximize", key="det")],  # (a key: not the aim)
            protocol=plan,
            planner=SobolPlanner([Real("x", -5, 5)], det_max),
            budget=1,
        )
        assert (
            campaign.run(RE, store=store_path.with_name(f"{parameters is None}.zarr")).n_done == 1
        )


def test_a_campaign_runs_once(RE, tmp_path):
    campaign = _campaign(budget=2)
    campaign.run(RE, store=tmp_path / "first.zarr")
    for again in (
        lambda: campaign.run(RE, store=tmp_path / "second.zarr"),
        lambda: campaign.resume(RE, store=tmp_path / "first.zarr"),
        lambda: RE(campaign.plan()),
    ):
        with pytest.raises(RuntimeError, match="has already run"):
            again()
    # nothing was created or changed: one store, two experiments
    assert not (tmp_path / "second.zarr").exists()
    assert len(open_store(tmp_path / "first.zarr").to_dataframe()) == 2


def test_loop_options_are_checked_by_name_and_range():
    with pytest.raises(TypeError, match=r"unknown campaign option\(s\) \['retry'\]"):
        _campaign(retry=1)
    with pytest.raises(ValueError, match="instrument_reruns must be an integer >= 0"):
        _campaign(instrument_reruns=-1)
    with pytest.raises(ValueError, match="status_timeout must be > 0"):
        _campaign(status_timeout=0)
    campaign = _campaign(retries=2, instrument_reruns=0, pause_after_failures=3)
    # one place: what the campaign records is every option of the loop's policy
    described = campaign.describe()
    assert {k: described[k] for k in ("retries", "instrument_reruns", "pause_after_failures")} == {
        "retries": 2,
        "instrument_reruns": 0,
        "pause_after_failures": 3,
    }
    # and the YAML model offers every one of them under the same name
    from sdl import CampaignConfig, LoopOptions

    assert set(LoopOptions.POLICY) <= set(CampaignConfig.model_fields)


def test_an_objective_function_given_as_a_partial_is_described(RE, store_path):
    def scaled(readings, factor):
        return factor * float(readings["det"])

    objectives = [Objective("det2", goal="maximize", function=functools.partial(scaled, factor=2))]
    campaign = Campaign(
        objectives=objectives,
        planner=SobolPlanner([Real("x", -1, 1)], objectives),
        protocol=functools.partial(set_settle_measure, movables={"x": motor}, detectors=[det]),
        budget=2,
    )
    assert campaign.describe()["objectives"][0]["function"].endswith("scaled (partial)")
    assert campaign.run(RE, store=store_path).n_done == 2


class _ThreadNoting(SobolPlanner):
    """Sobol, noting the thread of each ask; ``quick`` as declared."""

    def __init__(self, *args, quick=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.quick_asks, self.threads = quick, []

    def ask(self, n, **kwargs):
        import threading

        self.threads.append(threading.current_thread().name)
        return super().ask(n, **kwargs)


@pytest.mark.parametrize("quick", [True, False])
def test_only_planners_with_quick_asks_are_asked_in_the_run_engines_thread(RE, store_path, quick):
    """A planner whose first asks are quick but later ones are not (BoTorch's initial
    design, then its model) must be asked in the worker: only a declared quick_asks moves
    the ask into the RunEngine's thread."""
    objectives = [Objective("det", goal="maximize")]
    planner = _ThreadNoting([Real("x", -2, 2)], objectives, seed=0, quick=quick)
    Campaign(
        objectives=objectives,
        planner=planner,
        # moves take real time: the next ask (made ahead) overlaps a moving motor
        protocol=functools.partial(
            set_settle_measure, movables={"x": SynAxis(name="x", delay=0.05)}, detectors=[det]
        ),
        budget=4,
    ).run(RE, store=store_path)
    in_worker = [name.startswith("sdl-planner") for name in planner.threads]
    assert in_worker == [not quick] * 4
    assert open_store(store_path).to_dataframe()["status"].tolist() == ["done"] * 4


def test_botorch_asks_in_the_worker_even_after_quick_initial_asks():
    from sdl.planners import BoTorchPlanner, SkoptPlanner

    assert SobolPlanner.quick_asks
    assert not BoTorchPlanner.quick_asks and not SkoptPlanner.quick_asks
