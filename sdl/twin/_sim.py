"""One replication of the twin: the lab campaign on a SimPy clock.

The coordinator's policy, on simulated time (see ``docs/twin.md`` for why the
coordinator's plan itself does not run here):

* leases come from the campaign's own :class:`~sdl.lab.LeaseBook` (all or none, oldest
  experiment first, with reservations); SimPy's ``Resource`` would grant piecemeal;
* asks are just in time by the campaign's own rule (:mod:`sdl.lab._asking`): as many
  points as first-step lanes are free or free within ``ASK_HORIZON`` asks, plus
  ``lookahead``, less the new experiments already waiting; one ask at a time, every
  experiment in flight pending; ``max_in_flight`` gates new experiments;
* a step holds its lease for a duration drawn from its distribution; it fails with its
  station's ``failure_probability``; ``max_failures`` failures in a row, or a breakdown
  (``mtbf``, a SimPy interrupt of the steps it runs), take the station out of service
  until it is repaired (``mttr`` of attended time, during ``shifts``).

Everything it records has the shape of the store's views (step attempts, out-of-service
intervals, asks), so :func:`sdl.store.station_time` computes its utilization.
"""

from __future__ import annotations

import itertools
import math
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import simpy

from sdl.lab._asking import ASK_HORIZON, ask_size, final_in_flight, next_ask_due, until_soon
from sdl.lab._leases import Grant, LeaseBook, LeaseRequest

from ._spec import TwinSpec

__all__ = ["Replication", "simulate"]

Interval = tuple[float, float]


@dataclass
class _Job:
    id: int
    point: dict[str, Any]
    index: int = 0
    order: int | None = None
    queued: float = 0.0
    reruns: int = 0  # instrument failures of this point measured again so far

    @property
    def key(self) -> tuple:
        return (0, self.order, 0) if self.order is not None else (1, 0, self.id)


@dataclass
class Replication:
    """What one simulated campaign did.

    Attributes:
        seed: its seed.
        end: simulated seconds it covered (the horizon, or when the budget was done).
        attempts: one row per step attempt (the columns of ``sdl.store.step_intervals``,
            times in simulated seconds from the start).
        out_of_service: station -> intervals it was out of service.
        asks: intervals the planner was asking.
        resource_busy: resource -> seconds held (summed over its capacity).
        done_times: when each experiment that succeeded settled.
        failed: experiments that failed.
        stalled: why it stopped early (None: it did not).
        ask_wall: real seconds the planner spent (real planner only).
    """

    seed: int
    end: float
    attempts: pd.DataFrame
    out_of_service: dict[str, list[Interval]]
    asks: list[Interval]
    resource_busy: dict[str, float]
    done_times: list[float]
    failed: int
    stalled: str | None = None
    ask_wall: float = 0.0
    failures: Counter = field(default_factory=Counter)

    @property
    def done(self) -> int:
        return len(self.done_times)

    def done_by(self, t: float) -> int:
        return int(np.searchsorted(np.asarray(self.done_times), t, side="right"))


class _Run:
    def __init__(
        self,
        spec: TwinSpec,
        pools: list,
        seed: int,
        horizon: float,
        planner: Any = None,
        outcome: Callable[[dict[str, Any], np.random.Generator], dict[str, float]] | None = None,
    ):
        self.spec = spec
        self.pools = pools
        self.timing = spec.timing
        self.seed = seed
        self._rngs: dict[str, np.random.Generator] = {}
        self.env = simpy.Environment()
        self.horizon = horizon
        self.budget = spec.budget if spec.budget is not None else math.inf
        self.planner = planner
        self.outcome = outcome
        caps = {**spec.stations, **spec.resources}
        self.book = LeaseBook(caps, spec.stations)
        used = sorted({s for stations, _ in pools for s in stations})
        self.max_in_flight = spec.max_in_flight or sum(spec.stations[s] for s in used)
        self.lookahead = spec.lookahead
        self.final_in_flight = final_in_flight(
            spec.final_in_flight, self.max_in_flight, sum(spec.stations[s] for s in pools[0][0])
        )
        self.batch = self.timing.planner.batch
        self.n_steps = len(spec.steps)
        self.jobs: dict[int, _Job] = {}
        self.waiting: list[_Job] = []
        self.running: dict[int, tuple[Any, Grant, dict[str, Any]]] = {}
        self.on_station: dict[str, set[int]] = {s: set() for s in spec.stations}
        self.ids = itertools.count()
        self.starts = itertools.count()
        self.step_mean: dict[int, float] = {}
        self.ask_mean = 0.0
        self.asking = False
        self.wake_at: float | None = None
        self.completed = 0
        self.told = 0
        self.untold: list[tuple[dict[str, Any], dict[str, float]]] = []
        self.station_failures: Counter[str] = Counter()
        self.rows: list[dict[str, Any]] = []
        self.oos: dict[str, list[Interval]] = {s: [] for s in spec.stations}
        self.oos_since: dict[str, float] = {}
        self.repairing: set[str] = set()
        self.asks: list[Interval] = []
        self.held: Counter[str] = Counter()
        self.done_times: list[float] = []
        self.failed = 0
        self.failures: Counter[str] = Counter()
        self.handoffs = 0
        self.ask_wall = 0.0
        self.stalled: str | None = None
        self.finished = self.env.event()
        self._in_round = False
        self._again = False

    def rng(self, purpose: str) -> np.random.Generator:
        """A random stream per purpose and station (common random numbers: a what-if
        that changes one station leaves the others' draws as they were)."""
        if purpose not in self._rngs:
            key = [self.seed, zlib.crc32(purpose.encode())]
            self._rngs[purpose] = np.random.default_rng(key)
        return self._rngs[purpose]

    # -- the coordinator's round -----------------------------------------------------------
    def round(self) -> None:
        if self._in_round:
            self._again = True
            return
        self._in_round = True
        try:
            self._again = True
            while self._again:
                self._again = False
                self._maybe_ask()
                self._schedule()
            self._plan_wake()
            self._check_end()
        finally:
            self._in_round = False

    def _until_soon(self) -> list[float]:
        starts = [
            row["started"]
            for job_id, (_, _, row) in self.running.items()
            if self.jobs[job_id].index == 0
        ]
        return until_soon(starts, self.step_mean.get(0), ASK_HORIZON * self.ask_mean, self.env.now)

    def _maybe_ask(self) -> None:
        if self.asking:
            return
        room = self.budget - self.completed - len(self.jobs)
        first = self.book.in_service(self.pools[0][0])
        n = ask_size(
            room=room,
            free_slots=sum(self.book.free(s) for s in first),
            until=self._until_soon(),
            lookahead=self.lookahead,
            fresh=sum(1 for job in self.waiting if job.order is None),
            in_flight=len(self.jobs),
            max_in_flight=self.spec.max_in_flight,
            pipeline=self.max_in_flight,
            final=self.final_in_flight,
        )
        if n <= 0 or not first:
            return
        n = int(min(room, max(n, self.batch)))
        self.asking = True
        self.env.process(self._ask(n))

    def _ask(self, n: int):
        t0 = self.env.now
        pending = [dict(job.point) for job in self.jobs.values()]
        if self.planner is not None:
            if self.untold:
                points, outcomes = zip(*self.untold)
                self.untold = []
                self.planner.tell(list(points), list(outcomes))
            w0 = time.perf_counter()
            points = self.planner.ask(n, pending=pending)
            seconds = time.perf_counter() - w0
            self.ask_wall += seconds
        else:
            points = [{} for _ in range(n)]
            seconds = self.timing.planner.seconds(self.told, self.rng("planner"))
        if seconds > 0:
            yield self.env.timeout(seconds)
            self.asks.append((t0, self.env.now))
        self.ask_mean = max(seconds, 0.5 * (self.ask_mean + seconds))
        self.asking = False
        for point in points:
            job = _Job(next(self.ids), dict(point))
            self.jobs[job.id] = job
            self._enqueue(job)
        self.round()

    def _enqueue(self, job: _Job) -> None:
        job.queued = self.env.now
        self.waiting.append(job)

    def _schedule(self) -> None:
        requests = []
        started = sum(1 for job in self.jobs.values() if job.order is not None)
        for job in self.waiting:
            if job.order is None and started >= self.max_in_flight:
                continue
            stations, uses = self.pools[job.index]
            requests.append(LeaseRequest(job.key, stations, uses, token=job))
        if not requests:
            return
        for req, grant in self.book.schedule(requests):
            job = req.token
            self.waiting.remove(job)
            self._start(job, grant)

    def _start(self, job: _Job, grant: Grant) -> None:
        if job.order is None:
            job.order = next(self.starts)
        row = {
            "experiment_id": job.id,
            "step": self.spec.steps[job.index].name,
            "index": job.index,
            "station": grant.station,
            "lane": grant.lane,
            "resources": list(grant.resources),
            "queued": job.queued,
            "started": self.env.now,
            "finished": math.nan,
            "status": "running",
        }
        self.rows.append(row)
        proc = self.env.process(self._step(job, grant, row))
        self.running[job.id] = (proc, grant, row)
        self.on_station[grant.station].add(job.id)

    def _step(self, job: _Job, grant: Grant, row: dict[str, Any]):
        step = self.spec.steps[job.index]
        duration = self.spec.duration(step.name, grant.station).sample(
            self.rng(f"duration:{grant.station}")
        )
        cause = None
        try:
            yield self.env.timeout(duration)
            if self.rng(f"fault:{grant.station}").random() < self.spec.failure_probability(
                grant.station
            ):
                cause = "instrument fault"
        except simpy.Interrupt as stop:
            cause = str(stop.cause)
        self._step_ended(job, grant, row, cause)

    def _step_ended(self, job: _Job, grant: Grant, row: dict[str, Any], cause: str | None):
        now = self.env.now
        del self.running[job.id]
        self.on_station[grant.station].discard(job.id)
        self.book.release(grant)
        for name in grant.resources:
            self.held[name] += now - row["started"]
        row["finished"] = now
        if cause is None:
            row["status"] = "done"
            took = now - row["started"]
            mean = self.step_mean.get(job.index, took)
            self.step_mean[job.index] = 0.7 * mean + 0.3 * took
            self.station_failures[grant.station] = 0
            job.index += 1
            if job.index < self.n_steps:
                if self.timing.handoff > 0:
                    self.handoffs += 1
                    self.env.process(self._handoff(job))
                else:
                    self._enqueue(job)
            else:
                self._settle(job, True)
        else:
            row["status"] = "failed"
            self.failures[f"{row['step']} on {grant.station}: {cause}"] += 1
            if cause == "instrument fault":
                self._fault(grant.station)
            self._settle(job, False)
        self.round()

    def _handoff(self, job: _Job):
        yield self.env.timeout(self.timing.handoff)
        self.handoffs -= 1
        self._enqueue(job)
        self.round()

    def _settle(self, job: _Job, ok: bool) -> None:
        """As the campaign settles an experiment: a done one is told to the planner; every
        failure here is its station's (a fault, a breakdown), which says nothing about the
        point, so it is not told, and the point is measured again as a new experiment while
        ``instrument_reruns`` last (that one failure does not count towards the budget)."""
        del self.jobs[job.id]
        if ok:
            self.completed += 1
            self.told += 1
            self.done_times.append(self.env.now)
            if self.planner is not None and job.point:
                self.untold.append((job.point, self.outcome(job.point, self.rng("outcome"))))
            return
        self.failed += 1
        if job.reruns < self.spec.instrument_reruns:
            again = _Job(next(self.ids), dict(job.point), reruns=job.reruns + 1)
            self.jobs[again.id] = again
            self._enqueue(again)
            return
        self.completed += 1

    # -- stations out of service -----------------------------------------------------------
    def _fault(self, station: str) -> None:
        self.station_failures[station] += 1
        if self.station_failures[station] >= self.spec.max_failures.get(station, 3):
            self._take_out(station, f"{self.station_failures[station]} failures in a row")

    def _take_out(self, station: str, cause: str) -> None:
        if station in self.book.out_of_service:
            return
        self.book.out_of_service.add(station)
        self.oos_since[station] = self.env.now
        for job_id in list(self.on_station[station]):
            proc = self.running[job_id][0]
            if proc.is_alive:
                proc.interrupt(f"{station} broke down")
        self.repairing.add(station)  # now, not when the process starts: the end check
        self.env.process(self._repair(station))

    def _repair(self, station: str):
        st = self.timing.stations.get(station)
        mttr = st.mttr if st is not None else 3600.0
        remaining = float(self.rng(f"mttr:{station}").exponential(mttr)) if mttr > 0 else 0.0
        while remaining > 0:
            attended, change = self.timing.shifts.next_change(self.env.now)
            if attended:
                work = min(remaining, change - self.env.now)
                yield self.env.timeout(work)
                remaining -= work
            elif math.isinf(change):
                self.repairing.discard(station)
                self.round()  # nobody ever comes: the end check sees it
                return
            else:
                yield self.env.timeout(change - self.env.now)
        self.repairing.discard(station)
        self.book.out_of_service.discard(station)
        self.oos[station].append((self.oos_since.pop(station), self.env.now))
        self.station_failures[station] = 0
        self.round()

    def _breakdowns(self, station: str, mtbf: float):
        while True:
            yield self.env.timeout(float(self.rng(f"mtbf:{station}").exponential(mtbf)))
            if station not in self.book.out_of_service:
                self._take_out(station, "breakdown")
                self.round()

    # -- waking up, ending -------------------------------------------------------------------
    def _plan_wake(self) -> None:
        if self.asking:
            return
        due = next_ask_due(self._until_soon(), self.lookahead)
        if due is None:
            return
        at = self.env.now + due + 1e-6
        if self.wake_at is not None and self.wake_at <= at:
            return
        self.wake_at = at
        self.env.process(self._wake(at))

    def _wake(self, at: float):
        yield self.env.timeout(at - self.env.now)
        if self.wake_at == at:
            self.wake_at = None
            self.round()

    def _check_end(self) -> None:
        if self.finished.triggered:
            return
        if self.completed >= self.budget and not self.jobs and not self.asking:
            self.finished.succeed()
            return
        if self.running or self.asking or self.handoffs:
            return
        if self.repairing:
            return  # a repair will change things
        if not self.jobs and self.book.in_service(self.pools[0][0]):
            return  # about to ask (the budget is not done)
        self.stalled = self._explain()
        self.finished.succeed()

    def _explain(self) -> str:
        waiting = Counter(self.spec.steps[job.index].name for job in self.waiting)
        out = sorted(self.book.out_of_service)
        never = [s for s in out if s not in self.repairing]
        parts = []
        if waiting:
            what = ", ".join(f"{n} waiting for step {s!r}" for s, n in waiting.items())
            parts.append(f"experiments wait ({what}) and nothing runs")
        else:
            parts.append("no experiment can start: every first-step station is out of service")
        if never:
            shifts = self.timing.shifts
            why = (
                "the shifts have no attended hours (twin.shifts.days is empty)"
                if not shifts.days
                else "nobody repairs it"
            )
            parts.append(f"out of service for good: {', '.join(never)} ({why})")
        return "; ".join(parts)

    def _horizon(self):
        yield self.env.timeout(self.horizon)
        if not self.finished.triggered:
            self.finished.succeed()

    def run(self) -> Replication:
        for station in self.spec.stations:
            st = self.timing.stations.get(station)
            if st is not None and st.mtbf is not None:
                self.env.process(self._breakdowns(station, st.mtbf))
        self.env.process(self._horizon())
        self.round()
        self.env.run(until=self.finished)
        end = self.env.now
        for station, since in self.oos_since.items():
            self.oos[station].append((since, end))
        for _, grant, row in self.running.values():
            for name in grant.resources:
                self.held[name] += end - row["started"]
        attempts = pd.DataFrame(
            self.rows,
            columns=[
                "experiment_id", "step", "index", "station", "lane", "resources",
                "queued", "started", "finished", "status",
            ],
        )  # fmt: skip
        for job in self.waiting:  # queued and never started
            attempts.loc[len(attempts)] = [
                job.id, self.spec.steps[job.index].name, job.index, "", -1, [],
                job.queued, math.nan, math.nan, "queued",
            ]  # fmt: skip
        return Replication(
            seed=self.seed,
            end=end,
            attempts=attempts,
            out_of_service=self.oos,
            asks=self.asks,
            resource_busy=dict(self.held),
            done_times=self.done_times,
            failed=self.failed,
            stalled=self.stalled,
            ask_wall=self.ask_wall,
            failures=self.failures,
        )


def simulate(
    spec: TwinSpec,
    *,
    seed: int,
    horizon: float,
    planner: Any = None,
    outcome: Callable[[dict[str, Any], np.random.Generator], dict[str, float]] | None = None,
    pools: list | None = None,
) -> Replication:
    """Run one replication of ``spec`` for ``horizon`` simulated seconds (or its budget).

    Args:
        planner: a real planner (asked and told; its wall time charged to the clock), or
            None (the declared ask-time model; points are not needed).
        outcome: ``(point, rng) -> outcomes`` told to a real planner.
        pools: ``spec.check()``, when the caller has it (replications check once).
    """
    pools = spec.check() if pools is None else pools
    return _Run(spec, pools, seed, horizon, planner, outcome).run()
