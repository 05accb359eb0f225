"""Fixtures shared by the whole suite: a fresh RunEngine per test, loopback EPICS."""

from __future__ import annotations

import os

import pytest
from bluesky import RunEngine

# EPICS Channel Access only on loopback: tests start their own IOCs on 127.0.0.1.
os.environ.setdefault("EPICS_CA_ADDR_LIST", "127.0.0.1")
os.environ.setdefault("EPICS_CA_AUTO_ADDR_LIST", "NO")
os.environ.setdefault("EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1")


@pytest.fixture
def RE():
    """A fresh RunEngine (no SIGINT handler), stopped and its thread joined afterwards."""
    engine = RunEngine({}, context_managers=[])
    yield engine
    if engine.state not in ("idle", "panicked"):
        engine.halt()
    engine.loop.call_soon_threadsafe(engine.loop.stop)
    engine._th.join(5)


@pytest.fixture
def store_path(tmp_path):
    """Path of a campaign store that does not exist yet."""
    return tmp_path / "campaign.zarr"
