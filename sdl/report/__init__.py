"""Campaign reports: PNG figures and an HTML summary, read from the store."""

from ._html import write_report
from ._snapshot import Snapshot, read_snapshot

__all__ = ["Snapshot", "read_snapshot", "write_report"]
