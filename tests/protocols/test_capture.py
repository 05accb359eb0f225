"""capture(): the campaign sees what a protocol read, and exceptions reach the protocol."""

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import pytest
from bluesky.utils import FailedStatus
from ophyd.sim import SynAxis, det, motor
from ophyd.status import Status

from sdl.protocols import Capture, capture, set_settle_measure


def test_capture_records_run_uid_and_readings(RE):
    sink = Capture()
    plan = set_settle_measure({"x": 0.5}, movables={"x": motor}, detectors=[det])
    (uid,) = RE(capture(plan, sink))
    assert sink.run_uid == uid
    assert sink.readings["motor"] == pytest.approx(0.5)
    assert "det" in sink.readings
    assert len(sink.events) == 1 and set(sink.events[0]) >= {"motor", "det"}


def test_capture_passes_return_value(RE):
    def plan():
        yield from bps.null()
        return 42

    sink = Capture()
    RE(capture(plan(), sink))
    assert sink.result == 42


class _Stalling(SynAxis):
    def set(self, value):
        st = Status()
        st.set_exception(RuntimeError("stalled"))
        return st


def test_failed_status_is_thrown_into_the_protocol_so_its_run_closes(RE):
    stalling = _Stalling(name="stalling")
    docs = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    sink = Capture()
    plan = set_settle_measure({"x": 1.0}, movables={"x": stalling}, detectors=[det])
    with pytest.raises(FailedStatus) as info:
        RE(capture(plan, sink))
    assert "stalled" in str(info.value.args[0].exception())
    stops = [d for n, d in docs if n == "stop"]
    assert len(stops) == 1 and stops[0]["exit_status"] == "fail"
    assert sink.run_uid == stops[0]["run_start"]


def test_capture_streams_are_separate_events(RE):
    @bpp.run_decorator()
    def two_streams():
        yield from bps.trigger_and_read([motor], name="a")
        yield from bps.trigger_and_read([det], name="b")

    sink = Capture()
    RE(capture(two_streams(), sink))
    assert [set(e) for e in sink.events] == [{"motor", "motor_setpoint"}, {"det"}]


def test_capture_sets_a_run_key_on_messages_without_one(RE):
    """One generator layer instead of bluesky's set_run_key_wrapper around capture."""
    from bluesky.utils import Msg

    seen = []
    RE.msg_hook = lambda msg: seen.append((msg.command, msg.run))

    def plan():
        yield Msg("null")
        yield Msg("null", run="own")

    try:
        RE(capture(plan(), Capture(), run_key="exp-1"))
    finally:
        RE.msg_hook = None
    assert seen == [("null", "exp-1"), ("null", "own")]
