"""The test IOCs' Channel Access ports: a pool port another socket took is skipped.

The pool is chosen once per process (``loopback_ca``); an unrelated socket of the machine
(an ephemeral UDP port of some client) may take one of its ports later. Seen once in CI:
the IOC then died with "Address already in use" instead of serving on another pool port.
"""

from __future__ import annotations

import socket

from sdl.testing import IocProcess
from sdl.testing._ioc import _IN_USE, _LOCK, loopback_ca


def test_an_ioc_skips_a_pool_port_that_another_socket_took():
    pool = loopback_ca()
    with _LOCK:
        free = [p for p in pool if p not in _IN_USE]
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", free[0]))  # the port the next IOC would take
    try:
        with IocProcess(args=["--tau", "0.05", "--seed", "5"]) as ioc:
            assert ioc.running
            assert ioc.port in pool and ioc.port != free[0]
    finally:
        blocker.close()
        with _LOCK:  # give the port back to the later tests of this process
            _IN_USE.discard(free[0])
