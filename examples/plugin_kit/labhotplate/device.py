"""``TcpHotplate``: an ophyd device for a hotplate speaking a TCP text protocol.

It satisfies ``bluesky.protocols`` Readable, Movable, Stoppable and Configurable, so it
works in sdl campaigns (and any bluesky plan) unchanged. Every network operation has a
timeout, and every error names ``host:port``.
"""

from __future__ import annotations

import math
import socket
import threading
import time

import bluesky.plan_stubs as bps
from ophyd import Component as Cpt
from ophyd import Device, DeviceStatus, Signal, SignalRO

from sdl.errors import DeviceFaultError, LimitError, NotConnectedError

__all__ = ["HotplateError", "TcpHotplate"]


class HotplateError(DeviceFaultError):
    """The hotplate answered ``ERR ...`` or something unexpected."""


class _QuerySignal(SignalRO):
    """A read-only signal whose value is asked from the instrument on every read."""

    def __init__(self, *, query: str, **kwargs):
        super().__init__(value=0.0, **kwargs)
        self._query_text = query

    def get(self, **kwargs):
        value = float(self.parent.query(self._query_text))
        self._readback, self._metadata["timestamp"] = value, time.time()
        return value


class TcpHotplate(Device):
    """A hotplate on ``host:port``: ``set(T)`` heats and waits until settled.

    Data keys: ``<name>`` (plate temperature, degC, hinted), ``<name>_setpoint``;
    configuration ``<name>_tolerance``, ``<name>_dwell``.

    Args:
        name: device name.
        host: address of the hotplate (its serial-to-Ethernet adapter).
        port: TCP port.
        tolerance: allowed ``|T - setpoint|`` for "settled" (degC).
        dwell: seconds within tolerance before ``set`` finishes.
        limits: software limits (degC), checked before anything is sent.
        timeout: seconds one command may take to answer.
        settle_timeout: seconds after which an unsettled ``set`` fails.
        safe_value: setpoint of the safe state (degC).

    Raises:
        NotConnectedError: (from :meth:`connect`) nothing answers on ``host:port``.
    """

    readback = Cpt(_QuerySignal, query="GET?", kind="hinted")
    setpoint = Cpt(_QuerySignal, query="SP?", kind="normal")
    tolerance = Cpt(Signal, value=0.5, kind="config")
    dwell = Cpt(Signal, value=0.0, kind="config")

    def __init__(
        self,
        name: str,
        *,
        host: str = "127.0.0.1",
        port: int,
        tolerance: float = 0.5,
        dwell: float = 0.0,
        limits: tuple[float, float] = (20.0, 300.0),
        timeout: float = 2.0,
        settle_timeout: float = 600.0,
        safe_value: float = 25.0,
        **kwargs,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.readback.name = name
        self.host, self.port = host, int(port)
        self.limits = (float(limits[0]), float(limits[1]))
        self.timeout, self.settle_timeout = float(timeout), float(settle_timeout)
        self.safe_value = safe_value
        self.tolerance.put(float(tolerance))
        self.dwell.put(float(dwell))
        self._sock: socket.socket | None = None
        self._file = None
        self._io = threading.Lock()
        self._status: DeviceStatus | None = None

    # -- the wire ---------------------------------------------------------------------
    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self, timeout: float | None = None) -> None:
        """Open the TCP connection (within ``timeout`` s, default ``self.timeout``)."""
        with self._io:
            if self._sock is not None:
                return
            try:
                self._sock = socket.create_connection(
                    (self.host, self.port), timeout=timeout or self.timeout
                )
            except OSError as err:
                raise NotConnectedError(
                    f"{self.name}: cannot connect to the hotplate at {self.address} "
                    f"({err}); is it powered, cabled, and is the address right?",
                    {self.name: [self.address]},
                ) from err
            self._sock.settimeout(self.timeout)
            self._file = self._sock.makefile("rwb")

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._file = None

    def query(self, command: str) -> str:
        """Send one command line, return the reply line.

        Raises:
            NotConnectedError: the connection failed or timed out (names host:port).
            HotplateError: the hotplate replied ``ERR ...``.
        """
        self.connect()
        with self._io:
            try:
                self._file.write((command + "\n").encode("ascii"))
                self._file.flush()
                reply = self._file.readline().decode("ascii").strip()
            except OSError as err:
                self._drop()
                raise NotConnectedError(
                    f"{self.name}: no answer from {self.address} to {command!r} within "
                    f"{self.timeout} s ({type(err).__name__}: {err})",
                    {self.name: [self.address]},
                ) from err
            if not reply:
                self._drop()
                raise NotConnectedError(f"{self.name}: {self.address} closed the connection")
        if reply.startswith("ERR"):
            raise HotplateError(f"{self.name} ({self.address}): {command!r} -> {reply!r}")
        return reply

    def destroy(self) -> None:
        with self._io:
            self._drop()
        super().destroy()

    # -- bluesky protocols ----------------------------------------------------------------
    @property
    def position(self) -> float:
        return self.readback.get()

    def check_value(self, value: float) -> None:
        """Raise :class:`LimitError` unless ``value`` is a finite number within limits."""
        low, high = self.limits
        if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
            raise LimitError(
                f"{self.name}: setpoint {value!r} degC is outside [{low}, {high}] degC; "
                "nothing was sent"
            )

    def set(self, value: float) -> DeviceStatus:
        """Send ``SET value`` and finish once settled (or fail with the cause)."""
        self.check_value(value)
        status = DeviceStatus(self, call_stop_on_failure=False)
        self._status = status
        try:
            self.query(f"SET {float(value):.3f}")
        except Exception as err:
            status.set_exception(err)
            return status

        def watch() -> None:
            t0, since = time.monotonic(), None
            while not status.done:
                try:
                    close = abs(self.position - value) <= self.tolerance.get()
                except Exception as err:
                    status.set_exception(err)
                    return
                since = (since or time.monotonic()) if close else None
                if since is not None and time.monotonic() - since >= self.dwell.get():
                    status.set_finished()
                    return
                if time.monotonic() - t0 > self.settle_timeout:
                    status.set_exception(
                        DeviceFaultError(
                            f"{self.name}: not settled at {value} degC within "
                            f"{self.settle_timeout} s (at {self.position:.2f} degC)"
                        )
                    )
                    return
                time.sleep(0.02)

        threading.Thread(target=watch, daemon=True).start()
        return status

    def stop(self, *, success: bool = False) -> None:
        """Hold the current temperature; a ``set`` in progress fails."""
        status, self._status = self._status, None
        if status is not None and not status.done:
            status.set_exception(DeviceFaultError(f"{self.name}: stopped"))
        try:
            self.query("STOP")
        except Exception:
            pass

    def safe_state(self):
        """A plan: stop, then set ``safe_value`` without waiting for the plate to cool."""
        yield from bps.stop(self)
        yield from bps.abs_set(self, self.safe_value, wait=False)
