"""Run a caproto IOC in a subprocess on loopback, for tests and examples.

Channel Access clients (libca, via pyepics) read ``EPICS_CA_ADDR_LIST`` once, when the
process creates its first channel, so every IOC a process will ever talk to must serve
on a port listed then. :func:`loopback_ca` therefore reserves a small pool of free ports
once per process and lists them all; each :class:`IocProcess` serves on one port of the
pool that no other live IOC of this process uses. Parallel test runs pick their own
random ports and unique PV prefixes, so they do not see each other.
"""

from __future__ import annotations

import atexit
import collections
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence

__all__ = ["IocProcess", "loopback_ca", "free_port"]

_POOL: list[int] = []
_IN_USE: set[int] = set()
_LOCK = threading.Lock()
_LIVE: set[IocProcess] = set()


@atexit.register
def _stop_all() -> None:
    for ioc in list(_LIVE):
        ioc.stop()


def free_port() -> int:
    """A port free on 127.0.0.1 for both TCP and UDP right now."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def loopback_ca(n_ports: int = 4) -> list[int]:
    """Point this process's Channel Access client at a pool of loopback ports.

    Sets ``EPICS_CA_ADDR_LIST`` to ``"127.0.0.1:p1 127.0.0.1:p2 ..."`` and
    ``EPICS_CA_AUTO_ADDR_LIST=NO``; the first call chooses the ports, later calls
    return the same pool. Call it before the process creates its first channel.

    Returns:
        The pool's ports.
    """
    with _LOCK:
        if not _POOL:
            _POOL.extend(free_port() for _ in range(n_ports))
            os.environ["EPICS_CA_ADDR_LIST"] = " ".join(f"127.0.0.1:{p}" for p in _POOL)
            os.environ["EPICS_CA_AUTO_ADDR_LIST"] = "NO"
        return list(_POOL)


def _take_port() -> int:
    pool = loopback_ca()
    with _LOCK:
        for port in pool:
            if port not in _IN_USE:
                _IN_USE.add(port)
                return port
    raise RuntimeError(f"all {len(pool)} loopback CA ports are in use by running IOCs")


class IocProcess:
    """A caproto IOC module run as ``python -m <module> --prefix <prefix> ...``.

    The IOC must print a line starting with ``READY`` once it serves (the example IOCs
    in :mod:`sdl.devices._iocs` do). Use it as a context manager, or call
    :meth:`start` and :meth:`stop`.

    Args:
        module: the IOC's module, e.g. ``"sdl.devices._iocs.reactor"``.
        args: more command-line arguments.
        prefix: PV prefix; default a random ``"SDLT<hex>:"``, unique per IOC.
        startup_timeout: seconds to wait for ``READY``.

    Attributes:
        prefix: the PV prefix.
        port: the Channel Access port it serves on (127.0.0.1).
    """

    def __init__(
        self,
        module: str = "sdl.devices._iocs.reactor",
        args: Sequence[str] = (),
        *,
        prefix: str | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.module = module
        self.args = list(args)
        self.prefix = prefix or f"SDLT{uuid.uuid4().hex[:8]}:"
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.output: collections.deque[str] = collections.deque(maxlen=200)
        self._ready = threading.Event()

    def start(self) -> IocProcess:
        """Start the IOC and wait until it serves.

        A pool port that another socket took meanwhile ("Address already in use") is
        left out, and the next one tried.

        Raises:
            RuntimeError: it exited or did not report ``READY`` in time; its output
                is in the message.
        """
        while True:
            self.port = port = _take_port()  # RuntimeError once the pool is spent
            try:
                self._launch()
                return self
            except RuntimeError as err:
                if "Address already in use" not in str(err):
                    raise
                # another socket on this machine took the pool's port after the pool was
                # chosen (an ephemeral port of some client): leave it out for good
                with _LOCK:
                    _IN_USE.add(port)

    def _launch(self) -> None:
        assert self.port is not None
        self._ready.clear()
        env = dict(os.environ)
        env.update(
            EPICS_CAS_SERVER_PORT=str(self.port),
            EPICS_CA_SERVER_PORT=str(self.port),
            EPICS_CAS_INTF_ADDR_LIST="127.0.0.1",
            EPICS_CAS_BEACON_ADDR_LIST="127.0.0.1",
            EPICS_CAS_AUTO_BEACON_ADDR_LIST="NO",
            EPICS_CA_ADDR_LIST="127.0.0.1",
            EPICS_CA_AUTO_ADDR_LIST="NO",
            PYTHONUNBUFFERED="1",
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "--prefix", self.prefix, *self.args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        _LIVE.add(self)
        drain = threading.Thread(target=self._drain, args=(self.proc,), daemon=True)
        drain.start()
        deadline = time.monotonic() + self.startup_timeout
        # READY, or the process ended (then at once: its output says why), or the timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                break
        if not self._ready.is_set() or self.proc.poll() is not None:
            drain.join(2.0)  # the rest of its output
            self.stop()
            raise RuntimeError(
                f"IOC {self.module} (prefix {self.prefix!r}, port {self.port}) did not start "
                f"within {self.startup_timeout} s; its output:\n" + "".join(self.output)
            )

    def _drain(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.output.append(line)
            if line.startswith("READY"):
                self._ready.set()

    def kill(self) -> None:
        """Kill the IOC at once (SIGKILL: no clean shutdown, as a crash or a power cut).

        Its port stays reserved, so :meth:`restart` serves on the same port again.
        """
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)

    def restart(self) -> IocProcess:
        """Kill the IOC if it runs, then start it again on the same port with the same prefix.

        Clients reconnect to it as to a rebooted IOC. Its state starts afresh.

        Raises:
            RuntimeError: as :meth:`start`.
        """
        if self.port is None:
            return self.start()
        self.kill()
        self._launch()
        return self

    def stop(self) -> None:
        """Terminate the IOC (kill it if it does not exit within 5 s)."""
        proc, self.proc = self.proc, None
        _LIVE.discard(self)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self.port is not None:
            with _LOCK:
                _IN_USE.discard(self.port)
            self.port = None

    @property
    def running(self) -> bool:
        """Whether the IOC process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> IocProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
