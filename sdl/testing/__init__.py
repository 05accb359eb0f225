"""Conformance suites and helpers for plugin authors (and sdl's own tests).

Subclass a suite in your package's tests, as zarr's ``StoreTests`` are subclassed for
every store backend, and provide its fixtures::

    from sdl.testing import DeviceTests

    class TestMyPump(DeviceTests):
        @pytest.fixture
        def device(self):
            return MyPump("pump", host="127.0.0.1", port=...)

        @pytest.fixture
        def valid_value(self):
            return 2.5

Public names:
    :class:`DeviceTests`, :class:`PlannerTests` (pytest suites; they need ``pytest``),
    :class:`IocProcess` and :func:`loopback_ca` (run a caproto IOC on loopback),
    :func:`pause_before` (a protocol that pauses the RunEngine before a given experiment),
    :func:`stage_campaign_config` (a small campaign file on the simulated stage).
"""

from ._configs import stage_campaign_config
from ._device_tests import DeviceTests
from ._ioc import IocProcess, free_port, loopback_ca
from ._planner_tests import PlannerTests
from ._protocols import pause_before

__all__ = [
    "DeviceTests",
    "IocProcess",
    "PlannerTests",
    "free_port",
    "loopback_ca",
    "pause_before",
    "stage_campaign_config",
]
