"""An inter-process control channel kept beside a campaign's data: ``<store>/control/``.

Why files and not a socket: the store directory is the one thing every party already
shares (the campaign process, a terminal on the same machine, a dashboard on another
machine with the same file system), files survive either side restarting, and they leave
a recent trail (the store's operator log is the lasting one). Why JSON files and not Zarr
arrays: requests are few, small and written by several processes at once; one file per
request, written to a temporary name and renamed into place, never needs a lock and is
never seen half-written.

Layout::

    <store>/control/
      requests/<id>.json   {id, action, args, who, time, expires, mac}
      acks/<id>.json       {id, ok, result, by, time}    (the first acknowledgement wins)
      state.json           {state, time, heartbeat, pid, host, proposals, message, ...}

``mac`` is the HMAC-SHA256 of the request under the control token (:mod:`._auth`), or
null from a requester without one; a campaign started with a token refuses a request
without a valid one. A request file that is not a valid request is deleted when the
campaign reads it, and answered requests beyond the last :data:`KEEP_ANSWERED` are
removed (:meth:`ControlChannel.prune`), so the folder stays small.

A request is *pending* while it has no acknowledgement and has not expired. Whoever
acknowledges first (the campaign, or the requester withdrawing it after a timeout) wins:
acknowledgements are created with a hard link, which fails if one already exists.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._auth import sign_request

__all__ = [
    "ACTIONS",
    "STATES",
    "ControlChannel",
    "Request",
    "Acknowledgement",
    "operator_name",
]

#: What an operator can ask a running campaign to do.
ACTIONS = ("pause", "resume", "stop", "abort", "approve", "add", "station")

#: What a campaign process publishes about itself in ``state.json``.
STATES = (
    "running",
    "pausing",
    "paused",
    "waiting-approval",
    "stopping",
    "finished",
    "failed",
    "aborted",
)

CONTROL_DIR = "control"

#: answered requests kept in the folder (older ones are removed by :meth:`ControlChannel.prune`)
KEEP_ANSWERED = 200

#: a request file that is not JSON yet is left alone this long (s): a writer not using
#: rename-into-place may still be writing it
_UNREADABLE_GRACE_S = 2.0

logger = logging.getLogger(__name__)


def operator_name(configured: str | None = None) -> str:
    """Who is at the controls: ``configured``, else ``$SDL_OPERATOR``, else the login name."""
    if configured:
        return configured
    env = os.environ.get("SDL_OPERATOR")
    if env:
        return env
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers)
        return "unknown"


@dataclass(frozen=True)
class Request:
    """One operator request.

    Attributes:
        id: sortable by time of creation.
        action: one of :data:`ACTIONS`.
        args: action arguments (``approve``: ``accepted``/``rejected``/``edited``/``added``;
            ``add``: ``points``; ``station``: ``name``, ``enable``).
        who: the operator's name, as the requester gives it.
        time: seconds since the epoch.
        expires: seconds since the epoch after which the campaign ignores it (None: never).
        mac: hex HMAC-SHA256 of the other fields under the control token (None: unsigned).
    """

    id: str
    action: str
    args: dict[str, Any] = field(default_factory=dict)
    who: str = ""
    time: float = 0.0
    expires: float | None = None
    mac: str | None = None

    @classmethod
    def from_json(cls, data: Any, file_id: str) -> Request:
        """A request read from ``requests/<file_id>.json``.

        Raises:
            ValueError: ``data`` is not a well-formed request, saying what is wrong.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"not a JSON object but {type(data).__name__}")
        if data.get("id") != file_id:
            raise ValueError(f"its id {data.get('id')!r} is not its file name {file_id!r}")
        if data.get("action") not in ACTIONS:
            raise ValueError(f"unknown action {data.get('action')!r}")
        args = data.get("args", {})
        who = data.get("who", "")
        t = data.get("time", 0.0)
        expires = data.get("expires")
        mac = data.get("mac")
        if not isinstance(args, Mapping):
            raise ValueError(f"args is {type(args).__name__}, not an object")
        if not isinstance(who, str):
            raise ValueError(f"who is {type(who).__name__}, not a string")
        if not _is_number(t) or (expires is not None and not _is_number(expires)):
            raise ValueError(f"time {t!r} or expires {expires!r} is not a number")
        if mac is not None and not isinstance(mac, str):
            raise ValueError(f"mac is {type(mac).__name__}, not a string")
        return cls(
            id=file_id,
            action=data["action"],
            args=dict(args),
            who=who,
            time=float(t),
            expires=None if expires is None else float(expires),
            mac=mac,
        )


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x


@dataclass(frozen=True)
class Acknowledgement:
    """The answer to a request: whether it was carried out, and what happened."""

    id: str
    ok: bool
    result: str
    by: str = ""
    time: float = 0.0


def _write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _create_json_exclusive(path: Path, obj: Any) -> bool:
    """Create ``path`` holding ``obj`` unless it exists; True if this call created it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, default=str)
        try:
            os.link(tmp, path)  # atomic and exclusive
            return True
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: best effort
            if path.exists():
                return False
            os.replace(tmp, path)
            return True
    finally:
        Path(tmp).unlink(missing_ok=True)


def _younger_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime < seconds
    except OSError:
        return False


def _read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, OSError):
        return None


class ControlChannel:
    """Requests to a campaign and its published state, in ``<store_path>/control/``.

    Args:
        store_path: the campaign store (need not exist yet; the folder is made on first write).
        token: the control token requests are signed with (None: unsigned, accepted only
            by a campaign started without a token).

    Example:
        >>> ch = ControlChannel("runs/demo.zarr")  # doctest: +SKIP
        >>> rid = ch.request("pause", who="ada")  # doctest: +SKIP
        >>> ch.wait(rid, timeout=5.0)  # doctest: +SKIP
        Acknowledgement(id=..., ok=True, result='pause requested: ...')
    """

    def __init__(self, store_path: str | os.PathLike, *, token: str | None = None):
        self.store_path = Path(store_path)
        self.token = token or None
        self.path = self.store_path / CONTROL_DIR
        self._requests = self.path / "requests"
        self._acks = self.path / "acks"
        self._state = self.path / "state.json"
        self._state_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ControlChannel({str(self.store_path)!r})"

    # -- the operator's side ---------------------------------------------------------------
    def request(
        self,
        action: str,
        who: str | None = None,
        *,
        expires_in: float | None = None,
        **args: Any,
    ) -> str:
        """Post a request, signed with the channel's token if it has one; returns its id.

        Args:
            action: one of :data:`ACTIONS`.
            who: the operator (default :func:`operator_name`).
            expires_in: seconds after which the campaign ignores the request (None: never).
            **args: the action's arguments (JSON-able).

        Raises:
            ValueError: unknown action.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown control action {action!r}; actions: {', '.join(ACTIONS)}")
        now = time.time()
        rid = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        req = Request(
            id=rid,
            action=action,
            args=dict(args),
            who=operator_name(who),
            time=now,
            expires=None if expires_in is None else now + float(expires_in),
        )
        record = asdict(req)
        if self.token is not None:
            record["mac"] = sign_request(self.token, record)
        self._mark()
        _write_json_atomic(self._requests / f"{rid}.json", record)
        return rid

    def _mark(self) -> None:
        """Make ``control/`` an (empty) Zarr group, so Zarr readers listing the store's
        members see a group instead of warning about an unknown object."""
        marker = self.path / "zarr.json"
        if not marker.exists():
            _write_json_atomic(
                marker,
                {
                    "zarr_format": 3,
                    "node_type": "group",
                    "attributes": {
                        "sdl_control": "operator requests as JSON files (docs/operators.md)"
                    },
                },
            )

    def response(self, request_id: str) -> Acknowledgement | None:
        """The acknowledgement of a request, or None while there is none."""
        data = _read_json(self._acks / f"{request_id}.json")
        if not isinstance(data, Mapping):
            return None
        return Acknowledgement(
            **{k: data[k] for k in ("id", "ok", "result", "by", "time") if k in data}
        )

    def wait(self, request_id: str, timeout: float, poll: float = 0.1) -> Acknowledgement | None:
        """Wait up to ``timeout`` seconds for the acknowledgement of a request."""
        deadline = time.monotonic() + timeout
        while True:
            ack = self.response(request_id)
            if ack is not None or time.monotonic() >= deadline:
                return ack
            time.sleep(poll)

    def withdraw(self, request_id: str, who: str | None = None) -> bool:
        """Withdraw an unanswered request; False if it was answered first."""
        return self.acknowledge(
            request_id, "withdrawn by the requester", ok=False, by=operator_name(who)
        )

    # -- the campaign's side ---------------------------------------------------------------
    def pending(self, malformed: list[tuple[str, str]] | None = None) -> list[Request]:
        """Unanswered, unexpired requests, oldest first (expired ones are acknowledged).

        A file that is not a well-formed request (not JSON, wrong types, unknown action)
        is deleted, so it never blocks the requests after it.

        Args:
            malformed: if given, ``(file name, what was wrong)`` is appended for each
                file deleted.
        """
        if not self._requests.is_dir():
            return []
        out = []
        now = time.time()
        for path in sorted(self._requests.glob("*.json")):
            rid = path.stem
            if (self._acks / path.name).exists():
                continue
            try:
                data = json.loads(path.read_text())
                req = Request.from_json(data, rid)
            except FileNotFoundError:
                continue
            except (ValueError, OSError, UnicodeDecodeError) as err:
                if isinstance(err, json.JSONDecodeError) and _younger_than(
                    path, _UNREADABLE_GRACE_S
                ):
                    continue  # perhaps still being written
                self._discard(path, f"{type(err).__name__}: {err}", malformed)
                continue
            if req.expires is not None and req.expires < now:
                self.acknowledge(rid, "expired before the campaign saw it", ok=False)
                continue
            out.append(req)
        return out

    def _discard(self, path: Path, why: str, malformed: list[tuple[str, str]] | None) -> None:
        logger.warning("control channel: deleted malformed request %s (%s)", path.name, why)
        try:
            path.unlink()
        except OSError as err:
            logger.warning("control channel: cannot delete %s: %s", path, err)
        if malformed is not None:
            malformed.append((path.name, why))

    def prune(self, keep: int = KEEP_ANSWERED) -> int:
        """Remove answered requests (and their answers) but the ``keep`` newest.

        Answers without a request are removed too. Returns the number of requests removed.
        """
        if not self._acks.is_dir():
            return 0
        acks = sorted(p for p in self._acks.glob("*.json"))
        removed = 0
        for ack in acks[: max(0, len(acks) - keep)]:
            request = self._requests / ack.name
            try:
                request.unlink()
                removed += 1
            except FileNotFoundError:
                pass
            except OSError as err:  # keep the answer while its request stays
                logger.warning("control channel: cannot delete %s: %s", request, err)
                continue
            ack.unlink(missing_ok=True)
        return removed

    def acknowledge(
        self, request_id: str, result: str, ok: bool = True, by: str = "campaign"
    ) -> bool:
        """Answer a request; True if this was the first answer (only the first counts)."""
        ack = Acknowledgement(
            id=request_id, ok=bool(ok), result=str(result), by=by, time=time.time()
        )
        return _create_json_exclusive(self._acks / f"{request_id}.json", asdict(ack))

    def history(self) -> list[tuple[Request, Acknowledgement | None]]:
        """The requests still in the folder with their answers, oldest first.

        The folder keeps the last :data:`KEEP_ANSWERED` answered requests; the lasting
        record of who did what is the store's operator log.
        """
        if not self._requests.is_dir():
            return []
        out = []
        for path in sorted(self._requests.glob("*.json")):
            try:
                req = Request.from_json(_read_json(path), path.stem)
            except ValueError:
                continue
            out.append((req, self.response(req.id)))
        return out

    # -- published state -------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What the campaign process last published (empty if nothing)."""
        data = _read_json(self._state)
        return dict(data) if isinstance(data, Mapping) else {}

    def set_state(
        self,
        state: str,
        *,
        proposals: list[dict[str, Any]] | None = None,
        message: str = "",
        **extra: Any,
    ) -> None:
        """Publish the campaign's state (one of :data:`STATES`) and proposals awaiting approval.

        Also records the time (``time`` and ``heartbeat``), the process id and the host.
        """
        if state not in STATES:
            raise ValueError(f"unknown campaign state {state!r}; states: {', '.join(STATES)}")
        now = time.time()
        record = {
            "state": state,
            "time": now,
            "heartbeat": now,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "proposals": list(proposals or []),
            "message": message,
            **extra,
        }
        self._mark()
        with self._state_lock:
            _write_json_atomic(self._state, record)

    def heartbeat(self) -> None:
        """Refresh the published state's ``heartbeat`` (a live campaign does so every few s)."""
        with self._state_lock:
            data = self.state()
            if data:
                data["heartbeat"] = time.time()
                _write_json_atomic(self._state, data)
