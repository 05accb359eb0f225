"""The store's write-ahead log: every document appended to a file before Zarr sees it.

A document costs one ``write(2)`` of a JSON line here; the Zarr arrays are written from
memory in blocks (see :class:`~sdl.store.ZarrWriter`). After each block the writer records,
in ``applied.json``, the last record the block holds and the length of every appended
table, then deletes the segments the block covered. Opening the store replays what is
after that mark: a crash of the process loses nothing the log holds, and a crash inside
a block is undone (appended tables are cut back to the recorded lengths) and redone.

Layout: ``<store>/_wal/`` is an empty Zarr array (so plain Zarr lists it as one more
array and never trips on the files inside it): ``log-<first record>.jsonl`` segments of
``[n, name, document, flags]`` lines, and ``applied.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._json import _default

__all__ = ["LEDGER", "WAL", "WriteAheadLog", "read_applied", "read_records", "segments"]

WAL = "_wal"
#: Flags of a record: an event of a campaign run's ``experiments`` stream (a life-cycle
#: transition; readers apply these to the table before Zarr has them).
LEDGER = 1
APPLIED = "applied.json"
_PREFIX, _SUFFIX = "log-", ".jsonl"


def encode(n: int, name: str, doc: Any, flags: int = 0) -> bytes:
    """One log line (Python's JSON, so NaN and infinities survive the round trip)."""
    return (json.dumps([n, name, doc, flags], default=_default) + "\n").encode()


def segments(directory: Path) -> list[Path]:
    """The log's segment files, oldest first."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.name.startswith(_PREFIX) and p.suffix == _SUFFIX]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX) : -len(_SUFFIX)]))


def read_records(directory: Path, after: int = -1) -> Iterator[tuple[int, str, Any, int]]:
    """``(n, name, document, flags)`` of every record with ``n > after``, in order.

    A last line cut by a crash (no newline) is not a record; a segment deleted while it
    is read (a writer finished a block) raises ``FileNotFoundError``.
    """
    for path in segments(directory):
        with open(path, "rb") as f:
            data = f.read()
        for line in data.split(b"\n")[:-1]:  # the part after the last newline is cut
            if not line:
                continue
            n, name, doc, flags = json.loads(line)
            if n > after:
                yield n, name, doc, flags


def read_applied(directory: Path) -> dict[str, Any]:
    """The mark of the last block written to Zarr: ``{"through": n, "lengths": {...},
    "open": {uid: {"row", "descriptors"}}}``."""
    try:
        return json.loads((directory / APPLIED).read_text())
    except FileNotFoundError:
        return {"through": -1, "lengths": {}, "open": {}}


class WriteAheadLog:
    """Appends records to the current segment; rotates and trims at each block.

    Args:
        directory: ``<store>/_wal``.
        next_n: the number of the next record.
    """

    def __init__(self, directory: Path, next_n: int):
        self.directory = directory
        self.next_n = next_n
        self._fd: int | None = None
        self._unsynced = False

    def append(self, name: str, doc: Any, flags: int = 0) -> int:
        """Write one record (one ``write(2)``: in the OS's page cache when this returns)."""
        n = self.next_n
        line = encode(n, name, doc, flags)
        if self._fd is None:
            path = self.directory / f"{_PREFIX}{n}{_SUFFIX}"
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        view = memoryview(line)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.next_n = n + 1
        self._unsynced = True
        return n

    def sync(self) -> None:
        """Wait until the current segment is on disk (``fdatasync``)."""
        if self._fd is not None and self._unsynced:
            os.fdatasync(self._fd)
            self._unsynced = False

    def rotate(self) -> list[Path]:
        """Close the current segment; return every closed segment (the block to write)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._unsynced = False
        return segments(self.directory)

    def mark_applied(
        self, through: int, lengths: dict[str, int], open_runs: dict[str, Any], *, sync: bool
    ) -> None:
        """Record that Zarr holds every record up to ``through``, the length of every
        appended table, and the runs open then (row, descriptor uids); atomically."""
        tmp = self.directory / (APPLIED + ".tmp")
        with open(tmp, "w") as f:
            json.dump({"through": through, "lengths": lengths, "open": open_runs}, f)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self.directory / APPLIED)

    @staticmethod
    def trim(closed: list[Path]) -> None:
        """Delete segments whose records Zarr now holds."""
        for path in closed:
            path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
