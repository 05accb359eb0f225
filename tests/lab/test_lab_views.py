"""Per-station views of a lab campaign: step intervals, the table's step columns,
utilization with idle time by cause, ``sdl show``, the report and the dashboard's data.

Real lab campaigns (the simulated film lab, steps that take real scaled time) are run
once per module; one hand-made timeline checks the attribution of idle time exactly.
"""

from __future__ import annotations

import fnmatch
import functools
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from sdl import Campaign, open_store  # noqa: E402
from sdl.cli import main  # noqa: E402
from sdl.lab import film_lab  # noqa: E402
from sdl.report import read_snapshot, write_report  # noqa: E402
from sdl.store import station_overview, utilization  # noqa: E402
from sdl.store._lab_views import IDLE_CAUSES, LabTimeline  # noqa: E402

STEPS = ["synthesize", "transfer", "anneal", "unload", "characterize"]


def _run_film(path, faults=None, budget=8):
    lab, workflow, space, objectives = film_lab(
        synth_stations=3, time_scale=0.08, seed=2, faults=faults
    )
    Campaign(
        parameters=space, objectives=objectives, lab=lab, workflow=workflow,
        planner="sobol", budget=budget, seed=2,
    ).run(store=path)  # fmt: skip
    return open_store(path)


@pytest.fixture(scope="module")
def lab_store(tmp_path_factory):
    """A finished film-lab campaign whose synth-2 fails now and then."""
    return _run_film(tmp_path_factory.mktemp("views") / "lab.zarr", {"synth-2": {"exception": 0.2}})


@pytest.fixture(scope="module")
def broken_store(tmp_path_factory):
    """A finished film-lab campaign whose synth-2 always fails: taken out after 3 in a row."""
    return _run_film(
        tmp_path_factory.mktemp("views") / "broken.zarr", {"synth-2": {"exception": 1.0}}
    )


# -- steps and intervals ------------------------------------------------------------------------
def test_steps_are_every_transition_sorted_by_time(lab_store):
    steps = lab_store.steps()
    assert list(steps.columns) == [
        "time", "experiment_id", "step", "index", "status", "station", "lane", "resources",
        "run_uids", "cause", "correlation",
    ]  # fmt: skip
    assert steps["time"].is_monotonic_increasing
    started = steps[steps["status"] == "started"]
    # each start has its own correlation uid, and its runs carry it
    assert started["correlation"].str.len().min() > 0 and started["correlation"].is_unique
    docs = lab_store.run_documents()
    for _, row in steps[steps["status"] == "done"].head(5).iterrows():
        (corr,) = started[
            (started["experiment_id"] == row["experiment_id"]) & (started["index"] == row["index"])
        ]["correlation"].tail(1)
        assert all(docs[uid][0]["sdl_correlation"] == corr for uid in row["run_uids"])
    assert set(steps["status"]) <= {"queued", "started", "done", "failed", "cancelled", "stalled"}
    assert all(isinstance(v, list) for v in steps["resources"])
    ended = steps[steps["status"].isin(["done", "failed"])]
    assert all(len(v) >= 1 for v in ended["run_uids"])  # each step opened a run
    assert (steps[steps["status"] == "queued"]["station"] == "").all()
    assert len(steps[steps["status"] == "started"]) == len(lab_store.step_intervals())


def test_step_intervals_agree_with_the_experiment_table(lab_store):
    iv = lab_store.step_intervals()
    table = lab_store.to_dataframe()
    assert set(iv["status"]) <= {"done", "failed"}  # a finished campaign: nothing running
    assert (iv["queued"] <= iv["started"]).all() and (iv["started"] <= iv["finished"]).all()
    synth = iv[iv["step"] == "synthesize"]
    assert all(fnmatch.fnmatchcase(s, "synth-*") for s in synth["station"])
    done = table[table["status"] == "done"]
    assert len(done) >= 1
    for eid, row in done.iterrows():
        mine = iv[iv["experiment_id"] == eid].set_index("step")
        assert list(mine.index) == STEPS and (mine["status"] == "done").all()
        # the table's step columns are the same attempts
        for step in STEPS:
            assert row[f"{step}_station"] == mine.loc[step, "station"]
            for what in ("queued", "started", "finished"):
                assert row[f"{step}_{what}"] == mine.loc[step, what]
        assert row["t_started"] <= row["synthesize_started"]
        assert row["characterize_finished"] <= row["t_finished"]
        starts = [row[f"{s}_started"] for s in STEPS]
        ends = [row[f"{s}_finished"] for s in STEPS]
        assert all(s2 >= e1 for e1, s2 in zip(ends, starts[1:]))
    # a failed synthesis: its experiment failed, and its later steps never ran
    for eid in iv.loc[iv["status"] == "failed", "experiment_id"]:
        assert table.loc[eid, "status"] == "failed"
        assert table.loc[eid, "synthesize_station"] == "synth-2"
        assert np.isnan(table.loc[eid, "transfer_started"])


def test_no_station_lane_runs_two_steps_at_once(lab_store):
    iv = lab_store.step_intervals()
    lanes = 0
    for _, spans in iv.groupby(["station", "lane"]):
        spans = spans.sort_values("started")
        assert (spans["started"].to_numpy()[1:] >= spans["finished"].to_numpy()[:-1]).all()
        lanes += 1
    assert lanes >= 4  # a synth station, a furnace lane, the robot, the characterizer


def test_a_one_instrument_campaign_keeps_its_table_and_has_no_steps(tmp_path):
    from ophyd.sim import det, motor

    from sdl.planners import Objective, Real
    from sdl.protocols import set_settle_measure

    Campaign(
        parameters=[Real("x", -5.0, 5.0)], objectives=[Objective("det", goal="maximize")],
        protocol=functools.partial(set_settle_measure, movables={"x": motor}, detectors=[det]),
        planner="sobol", budget=3,
    ).run(store=tmp_path / "one.zarr")  # fmt: skip
    store = open_store(tmp_path / "one.zarr")
    assert not [c for c in store.to_dataframe().columns if c.endswith("_station")]
    assert store.steps().empty and list(store.steps().columns)[:2] == ["time", "experiment_id"]
    assert store.step_intervals().empty and store.station_log().empty
    assert utilization(store).empty


# -- utilization ----------------------------------------------------------------------------------
def test_utilization_is_busy_time_over_wall_time_and_idle_causes_sum_up(lab_store):
    util = utilization(lab_store)
    lab = lab_store.campaign["lab"]
    assert list(util.index) == [s["name"] for s in lab["stations"]]
    iv = lab_store.step_intervals()
    wall = iv["finished"].max() - iv["started"].min()
    for name, row in util.iterrows():
        assert 0.0 <= row["utilization"] <= 1.0
        assert row["wall_s"] == pytest.approx(wall)
        mine = iv[iv["station"] == name]
        busy = (mine["finished"] - mine["started"]).sum() / row["capacity"]
        assert row["busy_s"] == pytest.approx(busy)
        assert row["utilization"] == pytest.approx(busy / wall)
        assert row["busy_s"] + row["idle_s"] == pytest.approx(wall)
        assert sum(row[c] for c in IDLE_CAUSES) == pytest.approx(row["idle_s"])
        assert all(row[c] >= 0 for c in IDLE_CAUSES)
        if name not in set(lab_store.station_log()["station"]):
            assert row["idle_out_of_service"] == 0.0  # never taken out
        assert row["steps_done"] == (mine["status"] == "done").sum()
    assert util.loc["synth-2", "steps_failed"] == (iv["status"] == "failed").sum()


def test_an_out_of_service_station_is_idle_for_that_cause_and_says_so(broken_store):
    log = broken_store.station_log()
    assert list(log["station"]) == ["synth-2"] and list(log["in_service"]) == [0]
    view = station_overview(broken_store)
    row = view.loc["synth-2"]
    assert row["now"] == "out of service" and not row["in_service"]
    assert row["steps_failed"] == 3 and row["steps_done"] == 0
    iv = broken_store.step_intervals()
    end = iv["finished"].max()
    assert row["idle_out_of_service"] == pytest.approx(end - log["time"].iloc[0], abs=1e-6)
    assert row["idle_out_of_service"] > 0
    others = view.drop(index="synth-2")
    assert (others["idle_out_of_service"] == 0).all()
    assert set(others["now"]) == {"idle"} and others["in_service"].all()


def _fake_store(events, stations, asks, stopped=True):
    """A store-like object whose one campaign run holds the given lab streams."""

    class Run:
        streams = ["steps", "stations", "planner"]
        stop = {"time": 10.0} if stopped else None

        def to_dataframe(self, name):
            cols = {
                "steps": ["time", "experiment_id", "step", "index", "status", "station", "lane"],
                "stations": ["time", "station", "in_service"],
                "planner": ["time", "ask_seconds"],
            }[name]
            rows = {"steps": events, "stations": stations, "planner": asks}[name]
            df = pd.DataFrame(rows, columns=cols)
            if name == "steps":
                df["resources"] = df["run_uids"] = "[]"
                df["cause"] = ""
            if name == "stations":
                df["cause"] = df["who"] = ""
            return df.assign(seq_num=range(1, len(df) + 1))

    class Store:
        format_version = 1
        campaign_runs = ["run-1"]
        campaign = {
            "lab": {
                "name": "toy",
                "stations": [{"name": "s1", "capacity": 1}, {"name": "s2", "capacity": 1}],
            },
            "workflow": [{"name": "a", "station": "s*", "uses": []}],
        }

        def run(self, uid):
            return Run()

    return Store()


def test_idle_time_goes_to_the_first_cause_that_holds():
    # s1 runs experiment 0 from 0 to 10; experiment 1 waits from 0, runs on s2 from 4 to 6;
    # s2 is out of service from 6 to 8; the planner asks from 7 to 9
    events = [
        (0.0, 0, "a", 0, "queued", "", -1),
        (0.0, 1, "a", 0, "queued", "", -1),
        (0.0, 0, "a", 0, "started", "s1", 0),
        (4.0, 1, "a", 0, "started", "s2", 0),
        (6.0, 1, "a", 0, "done", "s2", 0),
        (10.0, 0, "a", 0, "done", "s1", 0),
    ]
    store = _fake_store(events, [(6.0, "s2", 0), (8.0, "s2", 1)], [(9.0, 2.0)])
    util = LabTimeline(store).utilization()
    s2 = util.loc["s2"]
    assert s2["wall_s"] == 10.0 and s2["busy_s"] == 2.0 and s2["utilization"] == 0.2
    assert s2["idle_waiting_lease"] == 4.0  # 0-4: a step for it waited (s1 was busy)
    assert s2["idle_out_of_service"] == 2.0  # 6-8, although the planner asked from 7
    assert s2["idle_waiting_planner"] == 1.0  # 8-9
    assert s2["idle_no_work"] == 1.0  # 9-10
    assert util.loc["s1", "busy_s"] == 10.0 and util.loc["s1", "idle_s"] == 0.0


def test_an_end_recorded_again_after_a_stop_is_one_attempt():
    # a stop that cut a step's "done" record has it recorded again (docs/architecture.md);
    # a stop that cut a "started" record has the step recorded cancelled, never started
    events = [
        (0.0, 0, "a", 0, "queued", "", -1),
        (1.0, 0, "a", 0, "started", "s1", 0),
        (3.0, 0, "a", 0, "done", "s1", 0),
        (3.5, 0, "a", 0, "done", "s1", 0),  # again, after the stop
        (0.0, 1, "a", 0, "queued", "", -1),
        (3.6, 1, "a", 0, "cancelled", "s2", 0),  # its start was cut: never submitted
    ]
    timeline = LabTimeline(_fake_store(events, [], []))
    attempts = timeline.attempts.sort_values("experiment_id")
    assert list(attempts["experiment_id"]) == [0, 1]
    assert list(attempts["status"]) == ["done", "cancelled"]
    assert attempts["finished"].tolist() == [3.0, 3.6]
    assert np.isnan(attempts["started"].iloc[1])
    assert list(timeline.intervals["experiment_id"]) == [0]  # only what started
    assert timeline.utilization().loc["s1", "busy_s"] == 2.0


def test_a_running_step_is_what_its_station_does_now():
    events = [(0.0, 3, "a", 0, "queued", "", -1), (1.0, 3, "a", 0, "started", "s2", 0)]
    store = _fake_store(events, [], [], stopped=False)
    timeline = LabTimeline(store, now=5.0)
    assert timeline.doing() == {"s1": "idle", "s2": "exp 3 a"}
    iv = timeline.intervals
    assert list(iv["status"]) == ["running"] and np.isnan(iv["finished"].iloc[0])
    util = timeline.utilization()
    assert util.loc["s2", "busy_s"] == 4.0 and util.loc["s2", "wall_s"] == 4.0


# -- what operators see ---------------------------------------------------------------------------
def test_sdl_show_prints_the_stations(broken_store, capsys):
    assert main(["show", str(broken_store.path)]) == 0
    out = capsys.readouterr().out
    head, _, table = out.partition("stations of lab 'film'")
    assert table, out
    for col in ("now", "done", "failed", "utilization", "out of service", "waiting lease",
                "waiting planner", "no work"):  # fmt: skip
        assert col in table
    rows = {line.split()[0]: line for line in table.splitlines()[1:] if line.strip()}
    util = utilization(broken_store)
    for name in util.index:
        assert re.search(rf"{int(round(100 * util.loc[name, 'utilization']))}%", rows[name])
    assert "out of service" in rows["synth-2"]
    assert re.search(r"out of service\s+0\s+3\s", rows["synth-2"])  # now, done, failed
    assert "idle" in rows["synth-1"]


def test_the_report_has_a_gantt_chart_and_utilization(broken_store, tmp_path):
    index = write_report(broken_store.path, tmp_path / "report")
    page = index.read_text()
    images = set(re.findall(r'<img src="([^"]+)"', page))
    assert {"gantt.png", "utilization.png"} <= images
    for name in ("gantt.png", "utilization.png"):
        assert (index.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<h2>Stations</h2>" in page
    station_rows = re.findall(r"<tr( data-out-of-service)?><td class=\"text\">([^<]+)</td>", page)
    assert [name for _, name in station_rows] == list(utilization(broken_store).index)
    assert [name for flag, name in station_rows if flag] == ["synth-2"]


def test_the_dashboard_gets_the_stations(broken_store):
    from types import SimpleNamespace

    from bokeh.document import Document

    from sdl.dashboard._app import DashboardSession

    snap = read_snapshot(broken_store.path)
    rows = {r["station"]: r for r in snap.station_rows()}
    assert list(rows) == list(utilization(broken_store).index)
    assert rows["synth-2"]["now"] == "out of service" and rows["synth-2"]["in_service"] is False
    assert rows["synth-2"]["idle_out_of_service"] > 0
    assert len(snap.intervals) == len(broken_store.step_intervals())
    doc = Document()
    poller = SimpleNamespace(store_path=snap.path, snapshot=snap, version=1)
    DashboardSession(doc, poller)
    data = doc.get_model_by_name("stations").data
    assert data["station"] == list(rows)
    i = data["station"].index("synth-2")
    assert data["in_service"][i] == "OUT OF SERVICE" and data["now"][i] == "out of service"
    assert doc.get_model_by_name("stations_table") is not None


def test_the_dashboard_takes_a_station_out_of_service_and_puts_it_back(broken_store):
    """The buttons send the same signed ``station`` request as ``sdl station``; the
    campaign's side is tested live in test_lab_config.py."""
    from types import SimpleNamespace

    from bokeh.document import Document

    from sdl.control import ControlChannel
    from sdl.dashboard._app import DashboardSession

    snap = read_snapshot(broken_store.path)
    poller = SimpleNamespace(store_path=snap.path, snapshot=snap, version=1)
    readonly = DashboardSession(Document(), poller)
    doc = Document()
    session = DashboardSession(doc, poller, control_token="s3cret")
    assert readonly.station_select.options == [s["name"] for s in snap.campaign["lab"]["stations"]]
    assert doc.get_model_by_name("btn_station_disable").disabled is False
    channel = ControlChannel(snap.path, token="s3cret")
    before = {r.id for r in channel.pending()}
    session.token_input.value = "wrong"
    session.on_station(False)
    assert {r.id for r in channel.pending()} == before  # refused: nothing sent
    session.token_input.value = "s3cret"
    session.station_select.value = "synth-3"
    session.on_station(False)
    session.on_station(True)
    sent = [r for r in channel.pending() if r.id not in before]
    assert [(r.action, r.args) for r in sent] == [
        ("station", {"name": "synth-3", "enable": False}),
        ("station", {"name": "synth-3", "enable": True}),
    ]
    for r in sent:
        channel.withdraw(r.id)


def test_a_station_waiting_for_the_robot_to_bring_its_sample_says_so(lab_store):
    # the film lab: the furnace's samples come by the robot (transfer on "robot"), and the
    # characterizer's too (unload); the coaters' never do
    util = utilization(lab_store)
    iv = lab_store.step_intervals()
    assert util.loc["furnace", "idle_waiting_robot"] > 0
    assert util.loc["characterizer", "idle_waiting_robot"] > 0
    for name in ("synth-1", "synth-2", "robot"):
        assert util.loc[name, "idle_waiting_robot"] == 0.0
    # never more than the time the robot spent moving samples to the furnace
    moves = iv[iv["step"] == "transfer"]
    assert util.loc["furnace", "idle_waiting_robot"] <= (moves["finished"] - moves["queued"]).sum()


def test_idle_time_waiting_for_the_robot_comes_after_a_lease_and_before_the_planner():
    # experiment 0: "move" on robot-1 from 1 to 3, then "heat" on oven from 3 to 5; the
    # planner asks from 0 to 2. The campaign's wall time is 1-6; the oven is idle 1-3
    # (the robot brings its sample, although the planner also asked until 2) and 5-6
    # (no work)
    events = [
        (1.0, 0, "move", 0, "queued", "", -1),
        (1.0, 0, "move", 0, "started", "robot-1", 0),
        (3.0, 0, "move", 0, "done", "robot-1", 0),
        (3.0, 0, "heat", 1, "queued", "", -1),
        (3.0, 0, "heat", 1, "started", "oven", 0),
        (5.0, 0, "heat", 1, "done", "oven", 0),
        (6.0, 1, "move", 0, "queued", "", -1),
        (6.0, 1, "move", 0, "started", "robot-1", 0),
        (6.0, 1, "move", 0, "cancelled", "robot-1", 0),
    ]
    store = _fake_store(events, [], [(2.0, 2.0)])
    store.campaign = {
        "lab": {"name": "toy", "stations": [{"name": "robot-1"}, {"name": "oven"}]},
        "workflow": [{"name": "move", "station": "robot-1"}, {"name": "heat", "station": "oven"}],
    }
    oven = LabTimeline(store).utilization().loc["oven"]
    assert oven["busy_s"] == 2.0 and oven["wall_s"] == 5.0  # window 1-6
    assert oven["idle_waiting_robot"] == 2.0  # 1-3
    assert oven["idle_waiting_planner"] == 0.0
    assert oven["idle_no_work"] == 1.0
