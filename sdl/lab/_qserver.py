"""The queue-server backend: each station lane is a bluesky-queueserver RE Manager.

A step becomes a queue item, plan ``sdl_step`` (registered by the worker's startup code,
:mod:`sdl.lab.qserver_worker`) with JSON arguments: the step's name, the point, the lane,
the leased resources' names, the history and the run metadata, which carries
``sdl_correlation``, a fresh uid per submission. The item is added to the lane's manager
and the queue started; a thread per lane polls the manager until the item is in its
history, then waits for the run's stop document. Documents come back through bluesky's
0MQ publisher -> proxy -> :class:`~bluesky.callbacks.zmq.RemoteDispatcher`; the documents of
a run whose correlation uid this backend is waiting for go to the store writer, any other
(a duplicate, a late document of a step already settled, another client's run) is
ignored and logged. See ``docs/distributed.md``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sdl.errors import NotConnectedError

from ._backend import StepOutcome, StepRequest
from ._model import Lab

__all__ = ["QServerBackend", "StepFailedInWorker", "qserver_backend"]

logger = logging.getLogger(__name__)

#: Seconds between looks at a manager's status while its item runs.
POLL = 0.02
#: Seconds to wait, after the manager reports the item done, for its runs' stop documents.
DOCUMENTS_WAIT = 10.0
#: Seconds :meth:`QServerBackend.close` waits for the document thread to end.
CLOSE_WAIT = 5.0
#: Seconds between starts of a manager's queue left idle with the awaited step in it.
RESTART_EVERY = 1.0
#: Seconds past the manager's timeout a cancelled step is awaited before it is given up on.
CANCEL_GRACE = 10.0
#: Seconds past a request's own timeout before its API client is given up on as wedged.
WEDGED_MARGIN = 5.0


class StepFailedInWorker(RuntimeError):
    """The step's plan failed in the station's RE worker; the message has its traceback."""


def _take_readings(readings: dict[str, Any], name: str, doc: dict) -> None:
    """Update a step's readings (data key -> last value) with an event or event page."""
    if name == "event":
        readings.update(doc.get("data", {}))
    elif name == "event_page":
        for key, values in doc.get("data", {}).items():
            if values:
                readings[key] = values[-1]


class _Runs:
    """Documents from the proxy, sorted by correlation uid; forwarded while awaited."""

    def __init__(self, subscribers: Sequence[Callable[[str, dict], Any]]):
        self.subscribers = list(subscribers)
        self.lock = threading.Condition()
        self.awaited: set[str] = set()
        self.run_of: dict[str, str] = {}  # run start uid -> correlation
        self.descriptor_run: dict[str, str] = {}  # descriptor uid -> run start uid
        self.readings: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, list[str]] = {}
        self.stopped: set[str] = set()
        self.replayed: set[str] = set()  # steps adopted after a restart

    def adopting(self, correlation: str) -> None:
        """Documents of ``correlation`` from the proxy are ignored: they come in full
        from its worker (:meth:`replay`)."""
        with self.lock:
            self.replayed.add(correlation)

    def replay(self, docs: Sequence[tuple[str, dict]]) -> tuple[dict[str, Any], list[str]]:
        """Send a step's documents, kept by its worker, to the subscribers; return its
        readings and runs."""
        readings: dict[str, Any] = {}
        runs: list[str] = []
        descriptors: set[str] = set()
        for name, doc in docs:
            if name == "start":
                runs.append(doc["uid"])
            elif name == "descriptor":
                descriptors.add(doc["uid"])
            elif doc.get("descriptor") in descriptors:
                _take_readings(readings, name, doc)
            for cb in self.subscribers:
                cb(name, doc)
        return readings, runs

    def expect(self, correlation: str) -> None:
        with self.lock:
            self.awaited.add(correlation)
            self.readings[correlation] = {}
            self.runs[correlation] = []

    def settle(self, correlation: str) -> tuple[dict[str, Any], list[str]]:
        with self.lock:
            self.awaited.discard(correlation)
            return self.readings.pop(correlation, {}), self.runs.pop(correlation, [])

    def wait_stopped(self, run_uids: Sequence[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not all(uid in self.stopped for uid in run_uids):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
        return True

    def __call__(self, name: str, doc: dict) -> None:
        with self.lock:
            if name == "start":
                correlation = str(doc.get("sdl_correlation", ""))
                if correlation in self.replayed:
                    return  # its documents come from its worker
                if correlation not in self.awaited:
                    logger.warning(
                        "ignored run %s: its correlation uid %r is not awaited (a duplicate, a "
                        "late run of a settled step, or another client's)",
                        doc.get("uid"),
                        correlation,
                    )
                    return
                self.run_of[doc["uid"]] = correlation
                self.runs[correlation].append(doc["uid"])
            else:
                run = doc.get("run_start")
                if name in ("event", "event_page"):
                    run = self.descriptor_run.get(doc.get("descriptor", ""))
                correlation = self.run_of.get(run or "")
                if correlation is None or correlation not in self.awaited:
                    if name == "stop" or run is None:
                        logger.debug("ignored %s of run %s (not awaited)", name, run)
                    return
                if name == "descriptor":
                    self.descriptor_run[doc["uid"]] = run
                elif name in ("event", "event_page"):
                    _take_readings(self.readings[correlation], name, doc)
                elif name == "stop":
                    self.stopped.add(run)
                    self.lock.notify_all()
        for cb in self.subscribers:  # outside the lock: the writer takes its own
            cb(name, doc)


class ClientWedged(TimeoutError):
    """A call on a lane's API client did not return long after its own timeout."""


class _Callers:
    """Daemon threads that make a lane's calls, reused (a thread per call cost 0.5 ms);
    several at once if several threads call. One whose call outlives its caller's wait
    is left to it and ends when (if ever) the call returns."""

    def __init__(self, name: str):
        self.name = name
        self.lock = threading.Lock()
        self.idle: list[queue.SimpleQueue] = []

    def call(
        self, fn: Callable[..., Any], args: tuple, kwargs: dict, limit: float
    ) -> tuple[bool, bool, Any]:
        """(answered within ``limit`` s, returned (else raised), value or exception)."""
        with self.lock:
            inbox = self.idle.pop() if self.idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), name=self.name, daemon=True).start()
        done = threading.Event()
        box: list[tuple[bool, Any]] = []
        inbox.put((fn, args, kwargs, box, done))
        if not done.wait(limit):
            inbox.put(None)  # its thread ends after the call, if it ever returns
            return False, False, None
        with self.lock:
            self.idle.append(inbox)
        return (True, *box[0])

    def close(self) -> None:
        """End the idle threads (one still in a call ends after it)."""
        with self.lock:
            idle, self.idle = self.idle, []
        for inbox in idle:
            inbox.put(None)

    @staticmethod
    def _serve(inbox: queue.SimpleQueue) -> None:
        while (job := inbox.get()) is not None:
            fn, args, kwargs, box, done = job
            try:
                box.append((True, fn(*args, **kwargs)))
            except BaseException as err:  # noqa: BLE001 - raised in the caller
                box.append((False, err))
            finally:
                done.set()


class _Lane:
    """One RE Manager: its API client (replaced if it wedges), step pool and state.

    bluesky-queueserver's 0MQ client takes its request lock without a timeout and frees
    it only on the normal path: a call interrupted between the two (an exception raised
    into the thread, a closed client) leaves every later call on that client waiting for
    good, the status poller's included. So every call goes through :meth:`request`,
    which gives up on it after the request's own timeout plus :data:`WEDGED_MARGIN`,
    puts a new client in the wedged one's place and (for a read) asks once more.
    """

    def __init__(
        self, station: str, lane: int, address: str, timeout: float, api_key: str | None = None
    ):
        self.name = f"{station}[{lane}]"
        self.station = station
        self.address = address
        self.timeout = timeout
        self.api_key = api_key
        self._swap = threading.Lock()
        self._callers = _Callers(f"sdl-qs-call-{self.name}")
        self.api = self._connect()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sdl-qs-{self.name}")
        self.cancelled = threading.Event()
        self.item_uid: str | None = None

    def _connect(self) -> Any:
        if self.address.startswith(("http://", "https://")):  # through bluesky-httpserver
            from bluesky_queueserver_api.http import REManagerAPI as HTTPManagerAPI

            api = HTTPManagerAPI(http_server_uri=self.address, timeout=self.timeout)
            if self.api_key:
                api.set_authorization_key(api_key=self.api_key)
            return api
        from bluesky_queueserver_api.zmq import REManagerAPI

        return REManagerAPI(
            zmq_control_addr=self.address, timeout_recv=self.timeout, timeout_send=self.timeout
        )

    def request(self, method: str, *args: Any, wait: float = 0.0, read: bool = False, **kwargs):
        """``self.api.<method>(*args, **kwargs)``, in a thread given up on after
        ``timeout + wait + WEDGED_MARGIN`` s (``wait``: a wait's own timeout). Then the
        client is replaced and, for a ``read`` (safe to send twice), the call is made
        once more on the new one; else, or if that one does not return either,
        :class:`ClientWedged` is raised. The library's own errors are raised as they are.
        """
        limit = self.timeout + wait + WEDGED_MARGIN
        for _ in range(2 if read else 1):
            api = self.api
            answered, ok, value = self._callers.call(getattr(api, method), args, kwargs, limit)
            if answered:
                if ok:
                    return value
                raise value
            self._replace(api, method, limit)
        raise ClientWedged(f"its API client did not return from {method} within {limit:g} s")

    def _replace(self, api: Any, method: str, limit: float) -> None:
        with self._swap:
            if self.api is not api:  # another thread did it meanwhile
                return
            self.api = self._connect()
        logger.warning(
            "station lane %s: its API client to %s did not return from %s within %g s; "
            "a new client is made",
            self.name, self.address, method, limit,
        )  # fmt: skip
        # the old client's threads may wait for good on its lock: they are daemons
        threading.Thread(target=_close_quietly, args=(api,), daemon=True).start()

    def close(self) -> None:
        self._callers.close()
        _close_quietly(self.api)

    def lost(self, what: str, err: BaseException) -> NotConnectedError:
        code = getattr(getattr(err, "response", None), "status_code", None)
        if code in (401, 403):  # a bluesky-httpserver that refuses our key
            return NotConnectedError(
                f"station {self.station!r}: the bluesky-httpserver at {self.address} refused "
                f"{what} (HTTP {code}): give its API key (SDL_QSERVER_API_KEY, or the "
                f"variable qserver.api_key_env names)"
            )
        return NotConnectedError(
            f"station {self.station!r}: the RE Manager at {self.address} did not answer "
            f"{what} within {self.timeout:g} s ({type(err).__name__}: {err}); is it running "
            f"(sdl lab status)?"
        )

    def status(self) -> dict[str, Any]:
        try:
            return self.request("status", read=True)
        except Exception as err:  # noqa: BLE001 - any failure to talk is a lost station
            raise self.lost("a status request", err) from None


class QServerBackend:
    """Runs each station lane's steps on its own bluesky-queueserver RE Manager.

    Args:
        lab: the lab (its stations and capacities).
        managers: station -> the address of each of its lanes' manager, as many as its
            capacity: a 0MQ control address (``tcp://127.0.0.1:60615``), or the address
            of a bluesky-httpserver in front of the manager (``http://host:60610``).
        proxy: the 0MQ proxy's output address (``127.0.0.1:5578``), where the workers'
            documents come from.
        timeout: seconds a manager may take to answer a request.
        step_timeout: seconds a step may run before it is failed (None: no limit).
        api_key: the API key of the bluesky-httpservers (None: the environment variable
            ``SDL_QSERVER_API_KEY``, if set); never sent to a 0MQ address.
    """

    def __init__(
        self,
        lab: Lab,
        managers: Mapping[str, Sequence[str]],
        proxy: str,
        *,
        timeout: float = 5.0,
        step_timeout: float | None = None,
        api_key: str | None = None,
    ):
        self.lab = lab
        self.api_key = api_key if api_key is not None else os.environ.get("SDL_QSERVER_API_KEY")
        self.managers = {k: list(v) for k, v in managers.items()}
        self.proxy = proxy
        self.timeout = timeout
        self.step_timeout = step_timeout
        self._lanes: dict[tuple[str, int], _Lane] = {}
        self._runs: _Runs | None = None
        self._dispatcher = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Lock()

    # -- opening ---------------------------------------------------------------------------
    def open(self, subscribers: Sequence[Callable[[str, dict], Any]]) -> None:
        from bluesky.callbacks.zmq import RemoteDispatcher

        if self._runs is not None:
            raise RuntimeError("backend already open")
        for station, addresses in self.managers.items():
            if station not in self.lab.stations:
                raise ValueError(
                    f"managers: no station {station!r} in lab {self.lab.name!r}; its stations: "
                    f"{', '.join(self.lab.stations)}"
                )
            capacity = self.lab.stations[station].capacity
            if len(addresses) != capacity:
                raise ValueError(
                    f"managers.{station}: {len(addresses)} address(es) for a station of "
                    f"capacity {capacity}; give one RE Manager per lane"
                )
            for lane, address in enumerate(addresses):
                self._lanes[(station, lane)] = _Lane(
                    station, lane, address, self.timeout, self.api_key
                )
        self._runs = _Runs(subscribers)
        self._dispatcher = RemoteDispatcher(self.proxy)
        self._dispatcher.subscribe(self._runs)
        self._thread = threading.Thread(target=self._dispatch, name="sdl-qs-documents", daemon=True)
        self._thread.start()
        try:
            self.check()
            for lane in self._lanes.values():  # the lab's managers run this campaign's only
                try:
                    lane.request("queue_mode_set", ignore_failures=True)  # a failed step
                    lane.request("queue_clear")  # fails itself
                except Exception as err:  # noqa: BLE001
                    raise lane.lost("a queue mode request", err) from None
        except BaseException:
            self.close()  # no API client, pool or dispatcher thread outlives a failed open
            raise

    def _dispatch(self) -> None:
        try:
            self._dispatcher.start()
        except (Exception, asyncio.CancelledError) as err:  # noqa: BLE001 - stopped, or the
            logger.debug("document dispatcher ended: %r", err)  # proxy went away

    def check(self) -> None:
        """Ask every manager for its status and plans: each answers, has its environment
        open and allows ``sdl_step``.

        Raises:
            NotConnectedError: a manager does not answer (its station and address named).
            RuntimeError: a manager's environment is closed, or it lacks ``sdl_step``.
        """
        for lane in self._lanes.values():
            status = lane.status()
            if not status.get("worker_environment_exists"):
                raise RuntimeError(
                    f"station {lane.station!r}: the RE Manager at {lane.address} has no "
                    f"worker environment open; open it (qserver environment open)"
                )
            try:
                plans = lane.request("plans_allowed", read=True)["plans_allowed"]
            except Exception as err:  # noqa: BLE001
                raise lane.lost("a plans request", err) from None
            if "sdl_step" not in plans:
                raise RuntimeError(
                    f"station {lane.station!r}: the RE Manager at {lane.address} does not "
                    f"allow plan 'sdl_step'; start it with the startup folder of "
                    f"'sdl lab export-qserver'"
                )

    # -- steps -------------------------------------------------------------------------------
    def submit(self, request: StepRequest) -> Future[StepOutcome]:
        ctx = request.context
        lane = self._lanes.get((ctx.station, ctx.lane))
        if lane is None:
            raise KeyError(f"no RE Manager for lane {ctx.lane} of station {ctx.station!r}")
        return lane.pool.submit(self._run, lane, request)

    def _run(self, lane: _Lane, request: StepRequest) -> StepOutcome:
        from bluesky_queueserver_api import BPlan

        assert self._runs is not None
        ctx = request.context
        correlation = str(request.md.get("sdl_correlation") or uuid.uuid4())
        md = {**_jsonable(dict(request.md)), "sdl_correlation": correlation}
        item = BPlan(
            "sdl_step",
            request.step.name,
            _jsonable(dict(request.point)),
            lane=ctx.lane,
            resources=list(ctx.resources),
            history=dict(ctx.history),
            md=md,
        )
        lane.cancelled.clear()
        started = time.time()
        self._runs.expect(correlation)
        try:
            error = self._execute(lane, item)
        except BaseException as err:  # noqa: BLE001 - an outcome
            error = err
        readings, run_uids = self._runs.settle(correlation)
        return _outcome(lane, error, readings, run_uids, started, time.time())

    def _execute(self, lane: _Lane, item: Any) -> BaseException | None:
        try:
            added = lane.request("item_add", item)
        except Exception as err:  # noqa: BLE001
            raise lane.lost("an item_add request", err) from None
        if not added.get("success"):
            return RuntimeError(f"station {lane.station!r} refused the step: {added.get('msg')}")
        uid = added["item"]["item_uid"]
        lane.item_uid = uid
        try:
            if lane.status().get("manager_state") == "idle":
                lane.request("queue_start")
        except NotConnectedError:
            raise
        except Exception as err:  # noqa: BLE001 - started meanwhile by another item
            logger.debug("queue_start on %s: %s", lane.name, err)
        result = self._await(lane, uid)
        if isinstance(result, BaseException):
            return result
        runs = list(result.get("run_uids") or [])
        assert self._runs is not None
        if runs and not self._runs.wait_stopped(runs, DOCUMENTS_WAIT):
            logger.warning(
                "station %s: the documents of runs %s did not all arrive", lane.name, runs
            )
        return self._verdict(lane, uid, result)

    def _await(self, lane: _Lane, uid: str) -> dict[str, Any] | BaseException:
        """The result of queue item ``uid`` once it is in the manager's history (or why
        it never will be)."""
        lane.item_uid = uid
        deadline = None if self.step_timeout is None else time.monotonic() + self.step_timeout
        given_up = None  # when a cancelled step is given up on
        seen = -1
        lost = stalled = restarts = 0
        restart_at = 0.0
        while True:
            status = lane.status()
            uid_now = status.get("plan_history_uid")
            if uid_now != seen:
                seen = uid_now
                result = self._result(lane, uid)
                if result is not None:
                    break
            idle = status.get("manager_state") == "idle"
            if idle and not status.get("items_in_queue"):
                lost += 1  # idle with nothing queued, and our item not in its history
                if lost > 3 and self._result(lane, uid) is None:
                    return RuntimeError(
                        f"station {lane.station!r}: the RE Manager at {lane.address} dropped "
                        f"the step's queue item {uid} (cleared by someone else?)"
                    )
            else:
                lost = 0
            # idle with our item queued: its queue_start failed (a timeout, a client given
            # up on) or came before the manager was ready; this campaign's managers run
            # only its items, so start the queue again (once a second at most)
            stalled = stalled + 1 if idle and status.get("items_in_queue") else 0
            if stalled > 3 and not lane.cancelled.is_set() and time.monotonic() > restart_at:
                restart_at = time.monotonic() + RESTART_EVERY
                (logger.debug if restarts else logger.info)(
                    "station lane %s: idle with its step queued: starting its queue", lane.name
                )
                restarts += 1
                try:
                    lane.request("queue_start")
                except Exception as err:  # noqa: BLE001 - started meanwhile; or asked again
                    logger.debug("queue_start on %s: %s", lane.name, err)
            if deadline is not None and time.monotonic() > deadline:
                return TimeoutError(
                    f"step on station {lane.station!r} ran more than {self.step_timeout:g} s"
                )
            if lane.cancelled.is_set():
                if given_up is None:
                    given_up = time.monotonic() + self.timeout + CANCEL_GRACE
                elif time.monotonic() > given_up:
                    return RuntimeError(
                        f"cancelled; the RE Manager at {lane.address} had not ended queue "
                        f"item {uid} {self.timeout + CANCEL_GRACE:g} s later"
                    )
            time.sleep(POLL)
        lane.item_uid = None
        return result

    def _verdict(self, lane: _Lane, uid: str, result: dict[str, Any]) -> BaseException | None:
        """None for a completed item; else the worker's failure, with its traceback."""
        status = result.get("exit_status")
        if status == "completed":
            return None
        try:  # an aborted or stopped item stays at the head of the queue: not to run again
            lane.request("item_remove", uid=uid)
        except Exception as err:  # noqa: BLE001 - not in the queue (a failure): fine
            logger.debug("item_remove %s on %s: %s", uid, lane.name, err)
        text = str(result.get("msg") or "")
        trace = str(result.get("traceback") or "")
        # the end of the worker's traceback says what failed (a cause is kept to 1000
        # characters); the whole of it is in the manager's log
        tail = trace.strip()[-500:]
        return StepFailedInWorker(
            f"step failed in the RE worker of station {lane.station!r} ({status}): "
            f"{text[:200]}" + (f"\nworker traceback, last lines:\n...{tail}" if tail else "")
        )

    # -- a campaign resumed after its coordinator died ---------------------------------------
    def reconcile(self, request: StepRequest) -> Future[StepOutcome] | None:
        """The step ``request`` was submitted before the campaign's process died: if its
        lane's manager ran it or runs it (found by ``sdl_correlation`` in its history or
        as its running item), a future of its outcome, with the documents its worker kept
        sent to the store; None if it never started there (its queue was cleared when
        this backend opened: submit it again)."""
        ctx = request.context
        lane = self._lanes.get((ctx.station, ctx.lane))
        correlation = str(request.md.get("sdl_correlation", ""))
        if lane is None or not correlation:
            return None
        uid = self._find(lane, correlation)
        if uid is None:
            return None
        assert self._runs is not None
        self._runs.adopting(correlation)  # its documents come from the worker, in full
        logger.info("station %s: step %s (item %s) adopted", lane.name, correlation, uid)
        return lane.pool.submit(self._adopt, lane, correlation, uid)

    def _find(self, lane: _Lane, correlation: str) -> str | None:
        try:
            running = lane.request("queue_get", read=True).get("running_item") or {}
            items = [*lane.request("history_get", read=True)["items"], running]
        except Exception as err:  # noqa: BLE001
            raise lane.lost("a history request", err) from None
        for it in items:
            md = (it.get("kwargs") or {}).get("md") or {}
            if md.get("sdl_correlation") == correlation:
                return it.get("item_uid")
        return None

    def _adopt(self, lane: _Lane, correlation: str, uid: str) -> StepOutcome:
        assert self._runs is not None
        lane.cancelled.clear()
        readings: dict[str, Any] = {}
        run_uids: list[str] = []
        result: dict[str, Any] = {}
        try:
            got = self._await(lane, uid)
            if isinstance(got, BaseException):
                raise got
            result = got
            docs = self._documents(lane, correlation)
            readings, run_uids = self._runs.replay(docs)
            missing = set(result.get("run_uids") or []) - set(run_uids)
            error = self._verdict(lane, uid, result)
            if error is None and missing:
                error = StepFailedInWorker(
                    f"station {lane.station!r}: its RE worker no longer holds the documents "
                    f"of runs {sorted(missing)} of step {correlation} (was it restarted?)"
                )
        except BaseException as err:  # noqa: BLE001 - an outcome
            error = err
        now = time.time()
        started, finished = result.get("time_start") or now, result.get("time_stop") or now
        return _outcome(lane, error, readings, run_uids, float(started), float(finished))

    def _documents(self, lane: _Lane, correlation: str) -> list[tuple[str, dict]]:
        """The documents of step ``correlation`` that the lane's worker kept
        (``sdl_documents``, run by the queue server as a background task)."""
        from bluesky_queueserver_api import BFunc

        try:
            reply = lane.request(
                "function_execute", BFunc("sdl_documents", correlation), run_in_background=True
            )
            if not reply.get("success"):
                raise RuntimeError(reply.get("msg"))
            task = reply["task_uid"]
            wait = max(self.timeout, 10.0)
            lane.request("wait_for_completed_task", task, timeout=wait, wait=wait, read=True)
            answer = lane.request("task_result", task, read=True)
        except Exception as err:  # noqa: BLE001
            raise lane.lost("an sdl_documents request", err) from None
        result = answer.get("result") or {}
        if answer.get("status") != "completed" or not result.get("success"):
            raise StepFailedInWorker(
                f"station {lane.station!r}: its RE worker did not give the documents of step "
                f"{correlation}: {str(result.get('msg') or answer.get('status'))[:300]}"
            )
        return [(str(name), dict(doc)) for name, doc in result.get("return_value") or []]

    def _result(self, lane: _Lane, uid: str) -> dict[str, Any] | None:
        try:
            items = lane.request("history_get", read=True)["items"]
        except Exception as err:  # noqa: BLE001
            raise lane.lost("a history request", err) from None
        for it in reversed(items):
            if it.get("item_uid") == uid:
                return it.get("result") or {}
        return None

    def cancel(self, station: str, lane: int, reason: str = "") -> None:
        item = self._lanes.get((station, lane))
        if item is None or item.item_uid is None:
            return
        item.cancelled.set()
        try:
            item.request("re_pause", option="immediate")
            item.request("wait_for_idle_or_paused", timeout=self.timeout, wait=self.timeout)
            if item.request("status", read=True).get("manager_state") == "paused":
                item.request("re_abort")
        except Exception as err:  # noqa: BLE001 - ended meanwhile, or the manager is gone
            logger.debug("cancel %s: %s", item.name, err)

    def close(self) -> None:
        """Cancel what runs, end the lanes' threads and clients and the document thread.
        Bounded in time (each request is, and a cancelled step is awaited at most
        ``timeout + CANCEL_GRACE`` s); safe to call again, from any thread."""
        with self._closing:
            self._close()

    def _close(self) -> None:
        for station, lane in list(self._lanes):
            self.cancel(station, lane, "campaign closed")
        for item in self._lanes.values():
            item.cancelled.set()  # a step submitted but not started does not start
            item.pool.shutdown(wait=True, cancel_futures=True)
            item.close()
        self._lanes.clear()
        if self._dispatcher is not None:
            # RemoteDispatcher.stop() from another thread cannot close its running loop (it
            # raised, quietly, and the thread went on waiting on its socket for good): stop
            # the loop in its own thread, whose start() then closes socket, context and loop
            try:
                self._dispatcher.loop.call_soon_threadsafe(_halt, self._dispatcher)
            except RuntimeError:  # the loop is closed already: the thread has ended
                pass
            self._thread.join(timeout=CLOSE_WAIT)
            if self._thread.is_alive():
                logger.warning("the document dispatcher did not stop in %s s", CLOSE_WAIT)
        self._runs = None


def _close_quietly(api: Any) -> None:
    try:
        api.close()
    except Exception as err:  # noqa: BLE001 - closing: nothing more to do with it
        logger.debug("closing an API client: %s", err)


def _halt(dispatcher: Any) -> None:
    """In the dispatcher's loop: cancel its polling task (``start`` then returns and closes
    everything), or stop the loop if the task is not there."""
    task = getattr(dispatcher, "_task", None)
    if task is not None:
        task.cancel()
    else:
        dispatcher.loop.stop()


def _outcome(
    lane: _Lane,
    error: BaseException | None,
    readings: dict[str, Any],
    run_uids: list[str],
    started: float,
    finished: float,
) -> StepOutcome:
    """How a lane's step ended (cancelled if :meth:`QServerBackend.cancel` hit it)."""
    cancelled = lane.cancelled.is_set()
    if cancelled and error is None:
        error = RuntimeError("cancelled")
    return StepOutcome(error, readings, run_uids, started, finished, cancelled)


def _jsonable(value: Any) -> Any:
    """Numbers, strings, lists and dicts as plain JSON types (numpy scalars included)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


def qserver_backend(directory: str, *, timeout: float = 5.0) -> Callable[[Lab], QServerBackend]:
    """A ``Campaign(backend=...)`` factory for the RE Managers ``sdl lab up`` started in
    ``directory`` (its ``state.json``)."""
    from ._qserver_servers import read_state

    state = read_state(directory)

    def factory(lab: Lab) -> QServerBackend:
        return QServerBackend(lab, state.managers, state.proxy_out, timeout=timeout)

    return factory
