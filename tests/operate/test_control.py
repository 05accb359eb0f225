"""The control channel within and across processes, the watcher, and approval."""

import subprocess
import sys
import textwrap
import time

import pytest

from sdl import open_store
from sdl.cli import main
from sdl.control import (
    ApprovalDecision,
    ControlChannel,
    ControlWatcher,
    approve_in_terminal,
    decision_from_request,
    validate_point,
)
from sdl.report import read_snapshot

PARAMS = [
    {"name": "x", "kind": "real", "low": -10, "high": 10},
    {"name": "n", "kind": "integer", "low": 1, "high": 5},
    {"name": "dye", "kind": "categorical", "choices": ["red", "blue"]},
]


def test_request_acknowledge_first_answer_wins(tmp_path):
    ch = ControlChannel(tmp_path)
    a = ch.request("pause", who="ada")
    b = ch.request("add", who="bob", points=[{"x": 1}])
    assert [r.id for r in ch.pending()] == [a, b]
    assert ch.pending()[1].args == {"points": [{"x": 1}]} and ch.pending()[0].who == "ada"
    assert ch.acknowledge(a, "pause requested")
    assert not ch.withdraw(a)  # too late: the campaign answered first
    assert ch.response(a).ok and ch.response(a).result == "pause requested"
    assert [r.id for r in ch.pending()] == [b]
    expired = ch.request("stop", expires_in=-1)
    assert expired not in [r.id for r in ch.pending()] and not ch.response(expired).ok
    with pytest.raises(ValueError, match="unknown control action"):
        ch.request("explode")
    ch.set_state("paused", proposals=[{"x": 1.0}])
    assert ch.state()["state"] == "paused" and ch.state()["proposals"] == [{"x": 1.0}]


class FakeRE:
    def __init__(self, state="running"):
        self.state = state
        self.pauses = []

    def request_pause(self, defer=False):
        self.pauses.append(defer)


def test_watcher_pauses_refuses_bad_tokens_and_queues_for_the_loop(tmp_path):
    ch, RE = ControlChannel(tmp_path, token="s3cret"), FakeRE()
    with ControlWatcher(ch, RE, poll=0.05, token="s3cret") as watcher:
        pause = ch.request("pause")
        forged = ControlChannel(tmp_path, token="wrong").request("abort")
        approve = ch.request("approve", rejected=[0])
        assert ch.wait(pause, 3).ok and RE.pauses == [True]
        assert not ch.wait(forged, 3).ok and "control token" in ch.response(forged).result
        assert [r.id for r in watcher.take(["approve"], timeout=3)] == [approve]
        resume = ch.request("resume")  # the RE is running, not paused
        assert not ch.wait(resume, 3).ok
    assert not watcher.abort_requested.is_set()


CAMPAIGN_CHILD = textwrap.dedent("""
    import sys
    from bluesky import RunEngine
    from sdl import Campaign
    from sdl.devices import AlignmentStage
    from sdl.planners import Objective, Real, SobolPlanner
    from sdl.protocols import set_settle_measure

    store = sys.argv[1]
    stage = AlignmentStage("stage", n_axes=2, seed=1, time_scale=0.5)  # ~0.1 s per experiment
    objs = [Objective("intensity", goal="maximize", key="stage_det_intensity")]
    planner = SobolPlanner([Real("x", -10, 10), Real("y", -10, 10)], objs, seed=0)
    proto = lambda p, md: set_settle_measure(
        p, movables=dict(zip("xy", stage.motors)), detectors=[stage.detector], md=md)
    campaign = Campaign(objectives=objs, planner=planner, protocol=proto, budget=400)
    campaign.run(RunEngine({}, context_managers=[]), store=store, control=True)
""")


def test_pause_resume_stop_a_campaign_in_another_process(tmp_path):
    store = tmp_path / "bg.zarr"
    child = subprocess.Popen(
        [sys.executable, "-c", CAMPAIGN_CHILD, str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ch = ControlChannel(store)
    try:
        deadline = time.monotonic() + 60
        while read_snapshot(store).counts.get("done", 0) < 3:
            assert child.poll() is None and time.monotonic() < deadline, child.stdout.read()
            time.sleep(0.2)
        ack = ch.wait(ch.request("pause", who="test"), timeout=10)
        assert ack is not None and ack.ok, ack
        deadline = time.monotonic() + 10
        while ch.state().get("state") != "paused":
            assert time.monotonic() < deadline, ch.state()
            time.sleep(0.1)
        assert read_snapshot(store).status == "paused"
        n = len(read_snapshot(store).table)
        time.sleep(0.8)
        assert len(read_snapshot(store).table) == n  # nothing runs while paused
        assert ch.wait(ch.request("resume", who="ada"), timeout=10).result == "resumed"
        time.sleep(0.5)
        ack = ch.wait(ch.request("stop", who="bob"), timeout=10)
        assert ack.ok and "after the current experiment" in ack.result
        assert child.wait(30) == 0
    finally:
        child.kill()
        child.wait()
    snap = read_snapshot(store)
    assert snap.status == "stopped", (snap.status, snap.detail)
    assert ch.state()["state"] == "finished"
    # a stop lets the current experiment finish; what was planned but not run is interrupted
    assert set(snap.table["status"]) <= {"done", "interrupted"}
    cut = snap.table[snap.table["status"] == "interrupted"]
    assert all(cause == "campaign stopped before it ran" for cause in cut["cause"])
    # the store's audit trail: who asked for what, in order, between the RunEngine's changes
    log = [(e["action"], e["who"]) for e in open_store(store).operator_log]
    asked = [entry for entry in log if entry[1] != "RunEngine"]
    assert asked == [("pause", "test"), ("resume", "ada"), ("stop", "bob")], log
    assert log.index(("pause", "test")) < log.index(("running -> paused", "RunEngine"))


def test_sdl_pause_without_a_running_campaign_exits_1(finished_store, capsys):
    code = main(["pause", str(finished_store), "--timeout", "0.5"])
    err = capsys.readouterr().err
    assert code == 1 and "is the campaign running?" in err
    assert ControlChannel(finished_store).pending() == []  # withdrawn, not left behind


def test_validate_point_names_the_parameter():
    assert validate_point({"x": "1.5", "n": "2", "dye": "red"}, PARAMS) == {
        "x": 1.5,
        "n": 2,
        "dye": "red",
    }
    for bad, match in (
        ({"x": 11, "n": 1, "dye": "red"}, r"x=11 is outside \[-10, 10\]"),
        ({"x": 0, "n": 1.5, "dye": "red"}, "must be an integer"),
        ({"x": 0, "n": 1, "dye": "green"}, "not one of"),
        ({"x": 0, "n": 1}, "'dye' is missing"),
        ({"x": 0, "n": 1, "dye": "red", "z": 1}, "unknown parameter"),
    ):
        with pytest.raises(ValueError, match=match):
            validate_point(bad, PARAMS)


def test_approve_in_terminal_edit_reject_add(monkeypatch):
    monkeypatch.setenv("SDL_OPERATOR", "grace")
    points = [
        {"x": 1.0, "n": 1, "dye": "red"},
        {"x": 2.0, "n": 2, "dye": "blue"},
        {"x": 3.0, "n": 3, "dye": "red"},
    ]
    lines = iter(["e 0 x=20", "e 0 x=-4.5", "r 1", "a x=0 n=5 dye=blue", ""])
    shown = []
    decision = approve_in_terminal(
        points,
        parameters=PARAMS,
        input=lambda _: next(lines),
        print=lambda *a, **k: shown.append(" ".join(map(str, a))),
    )
    assert isinstance(decision, ApprovalDecision) and decision.who == "grace"
    assert decision.accepted == [{"x": -4.5, "n": 1, "dye": "red"}, points[2]]
    assert decision.rejected == [points[1]]
    assert decision.added == [{"x": 0.0, "n": 5, "dye": "blue"}]
    assert decision.edited == [(points[0], {"x": -4.5, "n": 1, "dye": "red"})]
    assert any("outside" in s for s in shown)  # the invalid edit was refused, visibly
    with pytest.raises(AttributeError):
        decision.who = "someone else"  # frozen


def test_decision_from_a_dashboard_request():
    points = [{"x": 1.0, "n": 1, "dye": "red"}, {"x": 2.0, "n": 2, "dye": "blue"}]
    d = decision_from_request(points, {"rejected": [1], "edited": {"0": {"x": "5"}}}, "ada", PARAMS)
    assert d.accepted == [{"x": 5.0, "n": 1, "dye": "red"}] and d.rejected == [points[1]]
    with pytest.raises(ValueError):
        decision_from_request(points, {"rejected": [7]}, "ada", PARAMS)
