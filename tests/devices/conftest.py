"""Fixtures for the device tests."""

from __future__ import annotations

import asyncio

import pytest
from bluesky import RunEngine
from bluesky.utils import TransitionError


@pytest.fixture
def RE():
    """A fresh RunEngine per test, closed afterwards (as bluesky's own fixture)."""
    loop = asyncio.new_event_loop()
    engine = RunEngine({}, loop=loop)
    yield engine
    if engine.state not in ("idle", "panicked"):
        try:
            engine.halt()
        except TransitionError:
            pass
    loop.call_soon_threadsafe(loop.stop)
    engine._th.join()
    loop.close()


@pytest.fixture
def collect():
    """A document collector: ``(callback, docs)`` with ``docs[name] -> [doc, ...]``."""
    docs: dict[str, list] = {}

    def callback(name, doc):
        docs.setdefault(name, []).append(doc)

    return callback, docs
