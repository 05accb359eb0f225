"""The experiment life cycle allows exactly the documented transitions."""

import pytest

from sdl._lifecycle import TRANSITIONS, Experiment, IllegalTransition, Status


def test_happy_path_and_failure_path():
    exp = Experiment(id=0, batch=0, point={"x": 1.0})
    running = exp.advance(Status.RUNNING)
    assert running.advance(Status.DONE, objectives={"y": 1.0}).objectives == {"y": 1.0}
    assert running.advance(Status.FAILED, cause="boom").cause == "boom"
    assert exp.advance(Status.INTERRUPTED).status is Status.INTERRUPTED


@pytest.mark.parametrize("final", [Status.DONE, Status.FAILED, Status.INTERRUPTED])
def test_final_states_are_final(final):
    exp = Experiment(id=0, batch=0, point={}).advance(Status.RUNNING).advance(final)
    assert final.final and TRANSITIONS[final] == frozenset()
    for nxt in Status:
        with pytest.raises(IllegalTransition):
            exp.advance(nxt)


def test_planned_cannot_skip_to_done():
    with pytest.raises(IllegalTransition, match="planned -> done"):
        Experiment(id=3, batch=0, point={}).advance(Status.DONE)
