"""The asking rule the campaign's coordinator and the twin share (pure functions)."""

from __future__ import annotations

from sdl.lab._asking import ask_size, next_ask_due, until_soon


def _size(room=10, free_slots=0, until=(), lookahead=1, fresh=0, in_flight=0, max_in_flight=None):
    return ask_size(
        room=room, free_slots=free_slots, until=list(until), lookahead=lookahead,
        fresh=fresh, in_flight=in_flight, max_in_flight=max_in_flight,
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
