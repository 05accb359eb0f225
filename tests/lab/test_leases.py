"""The lease policy on its own: all or none, oldest first with reservations, out of service."""

from __future__ import annotations

import random

import pytest

from sdl.lab import Lab, LeaseBook, LeaseRequest, Resource, Station, Step, Workflow


def _book(**capacity):
    stations = [n for n in capacity if not n.startswith("r")]
    return LeaseBook(dict(capacity), stations)


def test_all_or_none_never_holds_part_of_what_a_step_needs():
    book = _book(a=1, r1=1, r2=1)
    book.acquire("a")  # station a is busy
    granted = book.schedule([LeaseRequest((0,), ("a",), (("r1",), ("r2",)), token="x")])
    assert granted == []
    assert book.free("r1") == 1 and book.free("r2") == 1  # nothing taken while it waits


def test_oldest_waiting_step_reserves_what_is_free_so_younger_ones_cannot_starve_it():
    book = _book(a=1, b=1, r1=1, r2=1)
    hold_r1 = book.acquire("a", ["r1"])
    hold_r2 = book.acquire("b", ["r2"])
    old = LeaseRequest((0, 0), ("a", "b"), (("r1",), ("r2",)), token="old")

    def young(i, resource):
        return LeaseRequest((1, i), ("a", "b"), ((resource,),), token=f"young{i}")

    book.release(hold_r1)  # r1 and station a free; r2 still held
    assert book.schedule([old, young(1, "r1")]) == []  # r1 and a stay reserved for the old one
    book.release(hold_r2)
    granted = book.schedule([old, young(1, "r1"), young(2, "r2")])
    assert [req.token for req, _ in granted] == ["old"]
    grant = granted[0][1]
    assert sorted(grant.resources) == ["r1", "r2"]


def test_without_the_oldest_in_the_way_younger_steps_use_what_it_does_not_need():
    book = _book(a=1, b=1, r1=1, r2=1)
    book.acquire("a", ["r1"])
    old = LeaseRequest((0,), ("a",), (("r1",),), token="old")  # waits for a and r1
    other = LeaseRequest((1,), ("b",), (("r2",),), token="other")
    assert [r.token for r, _ in book.schedule([other, old])] == ["other"]


def test_out_of_service_stations_are_never_granted_and_capacity_gives_lanes():
    book = _book(furnace=2, s1=1, s2=1)
    book.out_of_service.add("s1")
    granted = book.schedule(
        [LeaseRequest((i,), ("s1", "s2"), token=i) for i in range(3)]
        + [LeaseRequest((9, i), ("furnace",), token=f"f{i}") for i in range(3)]
    )
    assert [(r.token, g.station) for r, g in granted if g.station.startswith("s")] == [(0, "s2")]
    lanes = sorted(g.lane for _, g in granted if g.station == "furnace")
    assert lanes == [0, 1]


def test_random_workflows_always_make_progress():
    """Whatever waits, whenever nothing runs, something is granted (no deadlock); and
    every request is granted in the end, however the releases are ordered."""
    rng = random.Random(7)
    names = ["s1", "s2", "s3", "r1", "r2"]
    for _trial in range(200):
        book = _book(s1=1, s2=2, s3=1, r1=1, r2=1)
        waiting = []
        for i in range(rng.randint(1, 8)):
            stations = tuple(rng.sample(["s1", "s2", "s3"], rng.randint(1, 3)))
            uses = tuple((r,) for r in rng.sample(["r1", "r2", "s1", "s3"], rng.randint(0, 2)))
            req = LeaseRequest((i,), stations, uses, token=i)
            if book.feasible(req):  # (an infeasible one is refused by Lab.check)
                waiting.append(req)
        running = []
        done = set()
        while waiting or running:
            granted = book.schedule(waiting)
            for req, grant in granted:
                waiting.remove(req)
                running.append((req, grant))
            assert running, f"deadlock: {waiting} wait with nothing running"
            req, grant = running.pop(rng.randrange(len(running)))
            book.release(grant)
            done.add(req.token)
        assert all(book.held[n] == 0 for n in names)


def test_lab_and_workflow_errors_name_the_field():
    lab = Lab([Station("a"), Station("b", capacity=2)], [Resource("robot")])
    step = Step("x", lambda p, c, md=None: iter(()), "c-*")
    with pytest.raises(
        ValueError, match=r"workflow.steps\[0\] \('x'\).station: 'c-\*' matches no station"
    ):
        lab.check(Workflow([step]))
    step = Step("x", lambda p, c, md=None: iter(()), "a", uses=["arm"])
    with pytest.raises(
        ValueError, match=r"workflow.steps\[0\] \('x'\).uses\[0\]: 'arm' matches no resource"
    ):
        lab.check(Workflow([step]))
    with pytest.raises(ValueError, match="capacity must be an integer >= 1"):
        Station("z", capacity=0)
    with pytest.raises(ValueError, match="used twice"):
        Lab([Station("a"), Station("a")])
    with pytest.raises(ValueError, match="used twice"):
        Lab([Station("a")], [Resource("a")])


def test_a_step_that_could_never_hold_all_it_needs_is_refused_before_the_campaign():
    lab = Lab([Station("a"), Station("b")], [Resource("robot")])
    step = Step("x", lambda p, c, md=None: iter(()), "a", uses=["a"])
    with pytest.raises(ValueError, match=r"steps\[0\] \('x'\): its station and the resources"):
        lab.check(Workflow([step]))
    # a pool whose other station is free is fine: s picks b while it uses a
    ok = Step("y", lambda p, c, md=None: iter(()), ["a", "b"], uses=["a"])
    assert lab.check(Workflow([ok]))
