"""The asking rule the campaign's coordinator and the twin share (pure functions)."""

from __future__ import annotations

import re

import pytest

from sdl.lab import LabOptions
from sdl.lab._asking import ask_size, final_in_flight, next_ask_due, until_soon


def _size(
    room=10, free_slots=0, until=(), lookahead=1, fresh=0, in_flight=0, max_in_flight=None,
    pipeline=0, final=None,
):  # fmt: skip
    return ask_size(
        room=room, free_slots=free_slots, until=list(until), lookahead=lookahead,
        fresh=fresh, in_flight=in_flight, max_in_flight=max_in_flight, pipeline=pipeline,
        final=final,
    )  # fmt: skip


def test_until_soon_is_empty_until_a_first_step_has_ended():
    assert until_soon([0.0, 1.0], None, 0.5, now=0.2) == []
    assert until_soon([0.0, 1.0], 2.0, 0.5, now=0.2) == [1.3, 2.3]


def test_free_lanes_and_lanes_freeing_soon_are_asked_for_with_the_lookahead():
    assert _size(free_slots=2) == 3
    assert _size(free_slots=2, until=[-0.1, 0.0, 0.4]) == 5  # two lanes free soon
    assert _size(free_slots=2, fresh=2) == 1  # new experiments already waiting
    assert _size(free_slots=4, room=2) == 2  # never past the budget


def test_lookahead_0_asks_only_for_free_lanes():
    assert _size(lookahead=0, free_slots=1, until=[-1.0, -1.0]) == 1
    assert _size(lookahead=0, until=[-1.0]) == 0
    assert next_ask_due([0.3, 0.1], lookahead=0) is None


def test_a_campaigns_max_in_flight_caps_the_asks_at_what_may_start():
    assert _size(free_slots=4, max_in_flight=2, in_flight=1) == 2  # 2 + lookahead - 1
    assert _size(free_slots=4, max_in_flight=2, in_flight=3) <= 0


def test_the_next_ask_is_due_when_the_first_lane_starts_freeing_soon():
    assert next_ask_due([0.3, -0.2, 0.1], lookahead=1) == 0.1
    assert next_ask_due([-0.2], lookahead=1) is None


def test_the_final_experiments_of_a_budget_are_asked_for_with_fewer_in_flight():
    # a pipeline of 8 and lookahead 1: the last 9 experiments of the budget are final
    common = {"free_slots": 2, "pipeline": 8, "final": 4}
    assert _size(room=10, in_flight=6, **common) == 3  # not yet: every free lane, + 1
    assert _size(room=9, in_flight=6, **common) <= 0  # final: waits for results
    assert _size(room=9, in_flight=3, **common) == 2  # up to 4 in flight, + lookahead
    assert _size(room=9, in_flight=3, **{**common, "final": None}) == 3  # no such limit
    assert _size(room=2, in_flight=0, **common) == 2  # never past the budget


def test_final_in_flight_defaults_to_half_the_pipeline_and_a_sample_per_first_lane():
    assert final_in_flight(None, 8, lanes=4) == 4  # the film lab, 4 coaters
    assert final_in_flight(None, 5, lanes=1) == 2
    assert final_in_flight(None, 3, lanes=2) == 2  # 2 coaters + a characterizer
    assert final_in_flight(None, 1, lanes=1) == 1
    assert final_in_flight(6, 8, lanes=4) == 6


@pytest.mark.parametrize(
    "options, words",
    [
        ({"max_in_flight": 0}, "max_in_flight must be an integer >= 1 or None, got 0"),
        ({"lookahead": -1}, "lookahead must be an integer >= 0, got -1"),
        ({"lookahead": None}, "lookahead must be an integer >= 0, got None"),
        ({"final_in_flight": True}, "final_in_flight must be an integer >= 1 or None, got True"),
        ({"max_in_flight": 2.0}, "max_in_flight must be an integer >= 1 or None, got 2.0"),
    ],
)
def test_bad_lab_options_are_refused_by_name(options, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        LabOptions(**options)
    assert LabOptions(max_in_flight=3, lookahead=0, final_in_flight=2).final_in_flight == 2
