"""An inter-process control channel kept beside a campaign's data: ``<store>/control/``.

Why files and not a socket: the store directory is the one thing every party already
shares (the campaign process, a terminal on the same machine, a dashboard on another
machine with the same file system), files survive either side restarting, and they leave
an audit trail. Why JSON files and not Zarr arrays: requests are few, small and written by
several processes at once; one file per request, written to a temporary name and renamed
into place, never needs a lock and is never seen half-written.

Layout::

    <store>/control/
      requests/<id>.json   {id, action, args, who, time, token_ok, expires}
      acks/<id>.json       {id, ok, result, by, time}    (the first acknowledgement wins)
      state.json           {state, time, heartbeat, pid, host, proposals, message, ...}

A request is *pending* while it has no acknowledgement and has not expired. Whoever
acknowledges first (the campaign, or the requester withdrawing it after a timeout) wins:
acknowledgements are created with a hard link, which fails if one already exists.
"""

from __future__ import annotations

import json
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

__all__ = [
    "ACTIONS",
    "STATES",
    "ControlChannel",
    "Request",
    "Acknowledgement",
    "operator_name",
]

#: What an operator can ask a running campaign to do.
ACTIONS = ("pause", "resume", "stop", "abort", "approve", "add")

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
            ``add``: ``points``).
        who: the operator's name.
        time: seconds since the epoch.
        token_ok: whether the requester proved it holds the control token (terminal
            requests from the store's own file system are trusted: they can write there).
        expires: seconds since the epoch after which the campaign ignores it (None: never).
    """

    id: str
    action: str
    args: dict[str, Any] = field(default_factory=dict)
    who: str = ""
    time: float = 0.0
    token_ok: bool = True
    expires: float | None = None


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


def _read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, OSError):
        return None


class ControlChannel:
    """Requests to a campaign and its published state, in ``<store_path>/control/``.

    Args:
        store_path: the campaign store (need not exist yet; the folder is made on first write).

    Example:
        >>> ch = ControlChannel("runs/demo.zarr")  # doctest: +SKIP
        >>> rid = ch.request("pause", who="ada")  # doctest: +SKIP
        >>> ch.wait(rid, timeout=5.0)  # doctest: +SKIP
        Acknowledgement(id=..., ok=True, result='pause requested: ...')
    """

    def __init__(self, store_path: str | os.PathLike):
        self.store_path = Path(store_path)
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
        token_ok: bool = True,
        expires_in: float | None = None,
        **args: Any,
    ) -> str:
        """Post a request; returns its id.

        Args:
            action: one of :data:`ACTIONS`.
            who: the operator (default :func:`operator_name`).
            token_ok: whether the requester holds the control token.
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
            token_ok=bool(token_ok),
            expires=None if expires_in is None else now + float(expires_in),
        )
        self._mark()
        _write_json_atomic(self._requests / f"{rid}.json", asdict(req))
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
    def pending(self) -> list[Request]:
        """Unanswered, unexpired requests, oldest first (expired ones are acknowledged)."""
        if not self._requests.is_dir():
            return []
        out = []
        now = time.time()
        for path in sorted(self._requests.glob("*.json")):
            rid = path.stem
            if (self._acks / path.name).exists():
                continue
            data = _read_json(path)
            if not isinstance(data, Mapping) or data.get("action") not in ACTIONS:
                continue
            req = Request(**{k: data[k] for k in Request.__dataclass_fields__ if k in data})
            if req.expires is not None and req.expires < now:
                self.acknowledge(rid, "expired before the campaign saw it", ok=False)
                continue
            out.append(req)
        return out

    def acknowledge(
        self, request_id: str, result: str, ok: bool = True, by: str = "campaign"
    ) -> bool:
        """Answer a request; True if this was the first answer (only the first counts)."""
        ack = Acknowledgement(
            id=request_id, ok=bool(ok), result=str(result), by=by, time=time.time()
        )
        return _create_json_exclusive(self._acks / f"{request_id}.json", asdict(ack))

    def history(self) -> list[tuple[Request, Acknowledgement | None]]:
        """Every request with its answer, oldest first (for audit and the dashboard)."""
        if not self._requests.is_dir():
            return []
        out = []
        for path in sorted(self._requests.glob("*.json")):
            data = _read_json(path)
            if isinstance(data, Mapping) and "action" in data:
                req = Request(**{k: data[k] for k in Request.__dataclass_fields__ if k in data})
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
