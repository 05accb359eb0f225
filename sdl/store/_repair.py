"""Rebuild a damaged campaign table from the event log (``sdl repair``)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from sdl.errors import StoreError

from . import _layout as L
from ._check import (
    StoreDamagedError,
    StoreProblem,
    _inspect,
    _spec,
    damage_message,
    new_table,
    read_log,
)
from ._disk import sync_filesystem
from ._init import init_store, store_version
from ._lock import WriterLock

__all__ = ["RepairReport", "repair_store"]


@dataclass(frozen=True)
class RepairReport:
    """What :func:`repair_store` found and did.

    Attributes:
        found: the problems found before repairing (empty: nothing was done).
        aside: where the damaged table was moved (``experiments.damaged-<time>``), if it was.
        transitions: logged transitions replayed into the new table.
        experiments: rows of the new table.
        remaining: problems found by the check after the repair (empty: intact).
    """

    found: list[StoreProblem]
    aside: Path | None = None
    transitions: int = 0
    experiments: int = 0
    remaining: list[StoreProblem] = field(default_factory=list)

    def summary(self) -> str:
        if not self.found:
            return "the table agrees with the event log: nothing to repair"
        text = (
            f"rebuilt the table from the event log: {self.transitions} transitions, "
            f"{self.experiments} experiments"
        )
        if self.aside is not None:
            text += f"; the damaged table is kept in {self.aside.name}"
        if self.remaining:
            text += "; still wrong: " + "; ".join(str(p) for p in self.remaining)
        return text


def _aside_name(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    aside = path / f"{L.TABLE}.damaged-{stamp}"
    n = 1
    while aside.exists():
        n += 1
        aside = path / f"{L.TABLE}.damaged-{stamp}-{n}"
    return aside


def repair_store(store: str | os.PathLike) -> RepairReport:
    """Rebuild the campaign table from the event log when :func:`check_store` finds damage.

    Takes the store's writer lock, moves the damaged ``experiments/`` group aside (to
    ``experiments.damaged-<time>``; nothing is deleted), replays every logged transition
    through the writer's own table update into a fresh ``experiments/``, and checks again.
    A store without damage is left as it is.

    Raises:
        StoreLockedError: a campaign is writing the store.
        StoreDamagedError: the event log itself is damaged: the table cannot be rebuilt.
        StoreError: no store there.

    Example:
        >>> print(sdl.store.repair_store("runs/color.zarr").summary())  # doctest: +SKIP
    """
    path = Path(store)
    if not (path / "zarr.json").exists():
        raise StoreError(f"no campaign store at {path} (no zarr.json there)")
    with WriterLock.acquire(path) as lock:
        root = init_store(path)
        if store_version(root) >= 2:  # first what the write-ahead log holds beyond Zarr
            from ._writer import ZarrWriter

            try:
                ZarrWriter(path, lock=lock).close(release_lock=False)
            except StoreError:  # a damaged table: read_log below includes the log's tail
                pass
        found, pending = _inspect(path, live=False)
        if any(p.kind in ("log", "root") for p in found):
            raise StoreDamagedError(damage_message(path, found), found)
        table_damage = [p for p in found if p.kind == "table"]
        if not table_damage and not pending:
            return RepairReport(found=found, remaining=found)
        events, _ = read_log(root)
        aside = None
        if (path / L.TABLE).exists():
            aside = _aside_name(path)
            os.rename(path / L.TABLE, aside)
            if not (aside / "zarr.json").exists():  # mark it a group: Zarr readers list it
                (aside / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
        table = new_table(root, _spec(root))
        for event in events:
            table.apply(event.values, event.time)
        sync_filesystem(path)
        remaining, _ = _inspect(path, live=False)
        return RepairReport(
            found=found or [StoreProblem(L.TABLE, "one logged transition not yet applied")],
            aside=aside,
            transitions=len(events),
            experiments=table.n_rows,
            remaining=remaining,
        )
