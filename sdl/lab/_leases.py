"""Leases: which step gets which station lane and resources, and when.

The policy (docs/lab.md):

* **All or none.** A step is granted its station (one free lane of one station of its
  pool) and every resource it uses at once, or nothing. No step ever holds a part of
  what it needs while it waits for the rest, so no set of steps can wait on each other
  (no deadlock, whatever the workflows and however many robots).
* **Oldest first, with reservations.** Waiting steps are considered in order of their
  experiment's first start (experiments already in progress before new ones, then by
  experiment id). When the oldest waiting step cannot have everything, what it needs
  that is free now is reserved for it: younger steps may use only what it does not
  need. So a step waiting for two things cannot be overtaken forever by younger steps
  that each need one of them (no starvation), at the price of a reserved station
  waiting idle until the rest frees up.
* Stations out of service are never granted.

Pure bookkeeping: no threads, no RunEngine; the coordinator calls it from one thread.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Grant", "LeaseBook", "LeaseRequest"]


@dataclass(frozen=True)
class LeaseRequest:
    """What one waiting step needs.

    Attributes:
        key: its priority (smaller first).
        stations: its station pool (any one, by name).
        uses: for each resource it uses, the names that would do (any one).
        token: the caller's object, handed back with the grant.
    """

    key: tuple
    stations: tuple[str, ...]
    uses: tuple[tuple[str, ...], ...] = ()
    token: Any = None


@dataclass(frozen=True)
class Grant:
    """What a step holds while it runs."""

    station: str
    lane: int
    resources: tuple[str, ...] = ()


class LeaseBook:
    """Capacities, what is held, and what is out of service.

    Args:
        capacities: station or resource name -> capacity.
        stations: which of the names are stations (they have lanes).
    """

    def __init__(self, capacities: dict[str, int], stations: Iterable[str]):
        self.capacity = dict(capacities)
        self.stations = set(stations)
        self.held: Counter[str] = Counter()
        self.lanes: dict[str, set[int]] = {s: set() for s in self.stations}
        self.out_of_service: set[str] = set()

    def free(self, name: str) -> int:
        """Places of ``name`` free now (0 while out of service)."""
        if name in self.out_of_service:
            return 0
        return self.capacity[name] - self.held[name]

    def in_service(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if n not in self.out_of_service]

    def _pick(
        self, names: Sequence[str], taken: Counter[str], reserved: Counter[str]
    ) -> str | None:
        best, best_free = None, 0
        for n in names:
            room = self.free(n) - taken[n] - reserved[n]
            if room > best_free:  # the emptiest, first by name on ties: spreads the work
                best, best_free = n, room
        return best

    def _search(
        self, demands: Sequence[Sequence[str]], taken: Counter[str], reserved: Counter[str]
    ) -> list[str] | None:
        """One name per demand, each with room left (the emptiest first), or None."""
        if not demands:
            return []
        options = [n for n in demands[0] if self.free(n) - taken[n] - reserved[n] > 0]
        options.sort(key=lambda n: -(self.free(n) - taken[n] - reserved[n]))
        for name in options:  # backtracking: a station of the pool may also be a resource
            taken[name] += 1
            rest = self._search(demands[1:], taken, reserved)
            if rest is not None:
                return [name, *rest]
            taken[name] -= 1
        return None

    def _choose(
        self, req: LeaseRequest, reserved: Counter[str]
    ) -> tuple[str, tuple[str, ...]] | None:
        found = self._search([req.stations, *req.uses], Counter(), reserved)
        if found is None:
            return None
        return found[0], tuple(found[1:])

    def feasible(self, req: LeaseRequest) -> bool:
        """Whether ``req`` could be granted in an empty lab with every station in service."""
        book = LeaseBook(self.capacity, self.stations)
        return book._choose(req, Counter()) is not None

    def _reserve(self, req: LeaseRequest, reserved: Counter[str]) -> None:
        taken: Counter[str] = Counter()
        for options in (req.stations, *req.uses):
            name = self._pick(options, taken, reserved)
            if name is not None:
                taken[name] += 1
        reserved.update(taken)

    def acquire(self, station: str, resources: Sequence[str] = ()) -> Grant:
        """Take a lane of ``station`` and ``resources`` (the caller checked they are free)."""
        busy = self.lanes[station]
        lane = next(i for i in range(self.capacity[station]) if i not in busy)
        grant = Grant(station, lane, tuple(resources))
        self.hold(grant)
        return grant

    def hold(self, grant: Grant) -> None:
        """Take exactly what ``grant`` names (a step found running on that lane when a
        campaign resumed)."""
        if grant.lane in self.lanes[grant.station]:
            raise RuntimeError(f"lane {grant.lane} of {grant.station!r} is already held")
        self.lanes[grant.station].add(grant.lane)
        for name in (grant.station, *grant.resources):
            self.held[name] += 1

    def schedule(self, requests: Iterable[LeaseRequest]) -> list[tuple[LeaseRequest, Grant]]:
        """Grant what can be granted now, oldest first (see the module's policy)."""
        reserved: Counter[str] = Counter()
        out = []
        for req in sorted(requests, key=lambda r: r.key):
            choice = self._choose(req, reserved)
            if choice is None:
                self._reserve(req, reserved)
                continue
            out.append((req, self.acquire(*choice)))
        return out

    def release(self, grant: Grant) -> None:
        """Give back what ``grant`` held."""
        self.lanes[grant.station].discard(grant.lane)
        for name in (grant.station, *grant.resources):
            self.held[name] -= 1
            if self.held[name] < 0:
                raise RuntimeError(f"lease of {name!r} released twice")
