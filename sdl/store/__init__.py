"""The campaign store: Zarr v3 on disk, written by a RunEngine subscriber, read by anyone."""

from ._layout import FORMAT_VERSION
from ._reader import CampaignStore, RunView, open_store
from ._writer import ZarrWriter, init_store

__all__ = ["FORMAT_VERSION", "CampaignStore", "RunView", "ZarrWriter", "init_store", "open_store"]
