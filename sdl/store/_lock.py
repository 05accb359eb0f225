"""One writer per store: an OS file lock held for the writer's whole life.

The lock is ``<store>/.sdl-writer/zarr.json``: the metadata of an empty Zarr group (so
plain Zarr readers, listing the store, see one more empty group and no foreign file),
whose attributes name the holder (host, PID, start time, command). The writer holds an
exclusive ``flock`` on that file from the moment it opens the store until it is closed.
The kernel releases a ``flock`` when its process dies, however it dies (``kill -9``
included), so a lock file left behind never blocks anyone: only a live holder does.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from sdl.errors import StoreError

__all__ = ["LOCK_DIR", "StoreLockedError", "WriterLock", "lock_holder"]

#: The lock's folder inside the store (a reserved name, like ``runs`` or ``control``).
LOCK_DIR = ".sdl-writer"
_LOCK_FILE = "zarr.json"
# a reader probing the lock holds it for microseconds: a writer retries this long first
_RETRY_S = 0.5


class StoreLockedError(StoreError):
    """Another live process writes to this store.

    Attributes:
        holder: what the holder wrote about itself (``host``, ``pid``, ``since``, ``command``).
    """

    def __init__(self, message: str, holder: dict[str, Any]):
        super().__init__(message)
        self.holder = holder


def _lock_path(store: str | os.PathLike) -> Path:
    return Path(store) / LOCK_DIR / _LOCK_FILE


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        text = os.pread(fd, 1 << 16, 0).decode()
        return dict(json.loads(text).get("attributes", {}).get("sdl_writer") or {})
    except (OSError, ValueError, AttributeError):  # being written right now
        return {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder.get("pid"):
        return "another process (it has not written its name yet)"
    since = holder.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "?"
    command = f" ({holder['command']})" if holder.get("command") else ""
    return f"PID {holder['pid']} on host {holder.get('host', '?')} since {when}{command}"


def lock_holder(store: str | os.PathLike) -> dict[str, Any] | None:
    """Who holds the store's writer lock now (``host``, ``pid``, ``since``, ``command``),
    or None when no live process does. Never creates anything."""
    path = _lock_path(store)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd) or {"pid": None}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class WriterLock:
    """The exclusive right to write one store; see :meth:`acquire`.

    Released by :meth:`release` (or leaving a ``with`` block), and by the kernel when
    the process ends. The lock file itself stays: it only names the last holder.
    """

    def __init__(self, store: str | os.PathLike, fd: int, holder: dict[str, Any]):
        self.store = Path(store)
        self.holder = holder
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, store: str | os.PathLike, command: str | None = None) -> WriterLock:
        """Take the store's writer lock, creating the store's folder if needed.

        Args:
            store: the store's directory.
            command: how the holder describes itself (default: this process's command line).

        Raises:
            StoreLockedError: a live process holds it; the message names that process.
        """
        path = _lock_path(store)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise StoreError(f"cannot create the writer lock {path}: {err}") from err
        deadline = time.monotonic() + _RETRY_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
                holder = _read_holder(fd)
                os.close(fd)
                raise StoreLockedError(
                    f"store {store} is being written by {_describe(holder)}; only one "
                    f"process may write a store: wait for that campaign to end (or stop it: "
                    f"sdl stop {store}), or use another store path",
                    holder,
                ) from None
        holder = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": time.time(),
            "command": command if command is not None else " ".join(sys.argv),
        }
        meta = {"zarr_format": 3, "node_type": "group", "attributes": {"sdl_writer": holder}}
        data = json.dumps(meta, indent=2).encode()
        try:  # in place: the flock belongs to this file, a rename would make a new one
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        except OSError:
            os.close(fd)
            raise
        return cls(store, fd, holder)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:  # a writer dropped without close(): do not keep the store
        self.release()
