"""A failed move must not poison later experiments, nor a late failure end the campaign.

Moves here take real time (ophyd's ``SynAxis`` with a delay, statuses failed by a timer),
because at time scale 0 every status is finished inside ``set()`` and none of this shows.
"""

import functools
import logging
import threading
import time

import bluesky.plan_stubs as bps
import pytest
from bluesky.utils import RunEngineInterrupted
from ophyd.sim import SynAxis, SynGauss
from ophyd.status import Status

from sdl import Campaign, open_store
from sdl.planners import Objective, Real, SobolPlanner
from sdl.protocols import set_settle_measure
from sdl.testing import pause_before

OBJ = [Objective("gauss", goal="maximize")]


class _DisconnectedOnce(SynAxis):
    """Like an EPICS positioner whose IOC is down for its first ``n_bad`` moves: ``set()``
    returns a status that has already failed."""

    def __init__(self, *args, n_bad=1, **kwargs):
        super().__init__(*args, **kwargs)
        self.n_bad = n_bad

    def set(self, value):
        if self.n_bad > 0:
            self.n_bad -= 1
            st = Status(obj=self)
            st.set_exception(ConnectionError(f"{self.name}: not connected"))
            return st
        return super().set(value)


class _FailsLater(SynAxis):
    """Its first ``n_bad`` moves fail ``after`` seconds after they start (a stall)."""

    status_class = Status

    def __init__(self, *args, after=0.3, n_bad=1, **kwargs):
        super().__init__(*args, **kwargs)
        self.after, self.n_bad = after, n_bad

    def set(self, value):
        if self.n_bad > 0:
            self.n_bad -= 1
            st = self.status_class(obj=self)
            timer = threading.Timer(
                self.after, lambda: st.set_exception(RuntimeError(f"{self.name} stalled"))
            )
            timer.daemon = True
            timer.start()
            return st
        return super().set(value)


class _SlowFailureHandling(Status):
    """Like ophyd's ``MoveStatus``, whose failure handling stops the motor: ophyd marks a
    status done, then runs that handling, then its callbacks (the RunEngine's among them).
    Here the handling takes 0.2 s, so for that long the status is done and the RunEngine
    does not know it failed."""

    def _handle_failure(self):
        time.sleep(0.2)


class _FailsLaterSlowStop(_FailsLater):
    """A move that stalls ``after`` seconds after it starts, whose stop then takes 0.2 s."""

    status_class = _SlowFailureHandling


def _campaign(movables, budget, detector, **kw):
    planner = SobolPlanner([Real("x", -1, 1), Real("y", -1, 1)], OBJ, seed=4)
    protocol = functools.partial(set_settle_measure, movables=movables, detectors=[detector])
    return Campaign(objectives=OBJ, planner=planner, protocol=protocol, budget=budget, **kw)


def test_an_already_failed_move_does_not_poison_the_next_experiments(RE, store_path):
    # y moves for 0.1 s; x's IOC is down for the first experiment only
    x = _DisconnectedOnce(name="x")
    y = SynAxis(name="y", delay=0.1)
    gauss = SynGauss("gauss", y, "y", center=0.0, Imax=1.0, sigma=1.0)
    result = _campaign({"x": x, "y": y}, 6, gauss, pause_on_disconnect=False).run(
        RE, store=store_path
    )
    df = open_store(store_path).to_dataframe()
    assert df.loc[0, "status"] == "failed" and "not connected" in df.loc[0, "cause"]
    assert df.loc[0, "failure_kind"] == "instrument"
    # every later experiment succeeded, and measured where its motors had arrived
    assert (df.loc[1:, "status"] == "done").all() and result.n_done == len(df) - 1
    store = open_store(store_path)
    for exp_id, row in df.loc[1:].iterrows():
        event = store.run(row["run_uid"]).to_dataframe().iloc[0]
        assert event["y"] == pytest.approx(row["y"]), exp_id
        assert event["x"] == pytest.approx(row["x"]), exp_id


@pytest.mark.parametrize(
    "x_class, after, y_delay",
    [(_FailsLater, 0.3, 0.0), (_FailsLaterSlowStop, 0.1, 0.1)],
    ids=["stall", "stall whose stop takes 0.2 s"],
)
def test_a_move_that_fails_after_the_protocol_ended_fails_its_experiment_only(
    RE, store_path, x_class, after, y_delay
):
    """x starts moving and stalls ``after`` s later; y fails at once, ending the protocol
    first. With a slow stop, x's status is done for 0.2 s before its callbacks run and the
    RunEngine hears of the failure: the drain waits for the callbacks, not for ``done``.
    Before it did, the failure reached the loop's next message (the campaign ended with
    FailedStatus: seen once in CI, in the real-time fault tier, as a timed-out move) or,
    here, the next experiment's protocol (y's later moves take 0.1 s), which failed."""
    x = x_class(name="x", after=after)
    y = _DisconnectedOnce(name="y", delay=y_delay)
    gauss = SynGauss("gauss", x, "x", center=0.0, Imax=1.0, sigma=1.0)
    result = _campaign({"x": x, "y": y}, 4, gauss, pause_on_disconnect=False).run(
        RE, store=store_path
    )
    df = open_store(store_path).to_dataframe()
    first = df.loc[0]
    assert first["status"] == "failed"
    # the cause names both: the immediate failure and the stall that came after it
    assert "y: not connected" in first["cause"] and "x stalled" in first["cause"]
    assert (df.loc[1:, "status"] == "done").all()
    assert result.n_done == 4  # the budget was spent on points, not on the fault


def test_an_operation_abandoned_after_status_timeout_cannot_end_the_campaign(
    RE, store_path, caplog
):
    # x stalls 0.4 s after its first move began, long after the loop stopped waiting (0.05 s);
    # y's moves take 0.1 s, so the campaign is still running when the stall comes
    x = _FailsLater(name="x", after=0.4)
    y = _DisconnectedOnce(name="y", delay=0.1)
    gauss = SynGauss("gauss", y, "y", center=0.0, Imax=1.0, sigma=1.0)
    campaign = _campaign({"x": x, "y": y}, 8, gauss, pause_on_disconnect=False, status_timeout=0.05)
    with caplog.at_level(logging.WARNING, logger="sdl"):
        campaign.run(RE, store=store_path)  # returns: the late failure did not end it
    df = open_store(store_path).to_dataframe()
    assert "still not finished 0.05 s after the protocol ended" in df.loc[0, "cause"]
    # the stall surfaced later, was logged, and never reached the loop's own messages
    assert "abandoned by experiment 0" in caplog.text and "x stalled" in caplog.text
    # an experiment it hit, if any, failed as an instrument fault and its point was re-run
    for exp_id, row in df[df["cause"].str.contains("left running by experiment 0")].iterrows():
        assert row["failure_kind"] == "instrument" and (df["rerun_of"] == exp_id).any()
    # the whole budget was spent: each point counted once
    rerun = df.index.isin(df["rerun_of"])
    assert (df["status"] == "done").sum() + ((df["status"] == "failed") & ~rerun).sum() == 8


def test_halting_a_paused_campaign_skips_clean_up_and_resume_completes_it(RE, store_path):
    # RE.halt() throws bluesky's PlanHalt (a GeneratorExit): by bluesky's definition no
    # clean-up runs, so nothing may yield messages ("generator ignored GeneratorExit")
    safe = []

    def safe_state():
        safe.append("ran")
        yield from bps.null()

    def campaign(protocol):
        x, y = SynAxis(name="x"), SynAxis(name="y")
        gauss = SynGauss("gauss", x, "x", center=0.0, Imax=1.0, sigma=1.0)
        planner = SobolPlanner([Real("x", -1, 1), Real("y", -1, 1)], OBJ, seed=4)
        protocol = protocol(
            functools.partial(set_settle_measure, movables={"x": x, "y": y}, detectors=[gauss])
        )
        return Campaign(
            objectives=OBJ, planner=planner, protocol=protocol, budget=4, safe_state=safe_state
        )

    with pytest.raises(RunEngineInterrupted):
        campaign(lambda p: pause_before(p, 2)).run(RE, store=store_path)
    RE.halt()
    assert RE.state == "idle" and safe == []
    # left as after a crash: the experiment in progress is still "running" ...
    assert open_store(store_path).to_dataframe()["status"].tolist() == ["done", "done", "running"]
    # ... and resume interrupts it and measures its point again
    campaign(lambda p: p).resume(RE, store=store_path)
    df = open_store(store_path).to_dataframe()
    assert df["status"].tolist() == ["done", "done", "interrupted", "done", "done"]
    assert df.loc[3, "rerun_of"] == 2 and df.loc[3, "x"] == df.loc[2, "x"]


def test_a_failure_thrown_at_an_unstage_leaves_no_device_staged(RE, store_path):
    """A move that stalls while the protocol unstages: bluesky throws the failure in place
    of the unstage's response; the other devices must still be unstaged, or every later
    experiment fails with RedundantStaging (seen in the real-time fault tier)."""
    import bluesky.plan_stubs as bps
    import bluesky.preprocessors as bpp
    from bluesky.utils import Msg

    class SlowUnstage(_FailsLater):
        def unstage(self):
            time.sleep(0.15)  # the stall (0.05 s after the move began) comes meanwhile
            return super().unstage()

    x = SlowUnstage(name="x", after=0.05)
    gauss = SynGauss("gauss", x, "x", center=0.0, Imax=1.0, sigma=1.0)

    def protocol(point, md=None):
        @bpp.run_decorator(md=md)
        @bpp.stage_decorator([gauss, x])  # unstaged in reverse: x (slow), then gauss
        def inner():
            yield from bps.trigger_and_read([gauss])
            yield Msg("set", x, point["x"])  # not waited for: it fails during x's unstage

        return (yield from inner())

    planner = SobolPlanner([Real("x", -1, 1)], OBJ, seed=4)
    campaign = Campaign(objectives=OBJ, planner=planner, protocol=protocol, budget=3)
    campaign.run(RE, store=store_path)
    df = open_store(store_path).to_dataframe()
    assert df.loc[0, "status"] == "failed" and "x stalled" in df.loc[0, "cause"]
    assert "RedundantStaging" not in " ".join(df["cause"])
    assert (df.loc[1:, "status"] == "done").all() and (df["status"] == "done").sum() == 3
