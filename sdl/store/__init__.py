"""The campaign store: Zarr v3 on disk, written by a RunEngine subscriber, read by anyone."""

from ._check import StoreDamagedError, StoreProblem, check_store
from ._lab_views import station_overview, station_time, utilization
from ._layout import FORMAT_VERSION
from ._lock import StoreLockedError, WriterLock, lock_holder
from ._reader import CampaignStore, RunView, open_store
from ._repair import RepairReport, repair_store
from ._writer import ZarrWriter, init_store

__all__ = [
    "FORMAT_VERSION",
    "CampaignStore",
    "RepairReport",
    "RunView",
    "StoreDamagedError",
    "StoreLockedError",
    "StoreProblem",
    "WriterLock",
    "ZarrWriter",
    "check_store",
    "init_store",
    "lock_holder",
    "open_store",
    "repair_store",
    "station_overview",
    "station_time",
    "utilization",
]
