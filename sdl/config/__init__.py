"""Campaign configuration: YAML validated into typed objects, then built."""

from ._load import build_campaign, build_devices, load_campaign, load_config
from ._model import CampaignConfig

__all__ = ["CampaignConfig", "build_campaign", "build_devices", "load_campaign", "load_config"]
