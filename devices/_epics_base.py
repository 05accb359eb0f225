"""Shared machinery of the EPICS devices: PV signals, connection checks, watched statuses.

The devices are plain ophyd :class:`~ophyd.Device` s whose EPICS signals are built from
PV names given at construction (not from a fixed prefix), so a YAML file can name any
PVs. Connection is never waited for silently: :meth:`EpicsDeviceBase.connect` waits at
most ``connection_timeout`` seconds for every PV together and raises one
:class:`~sdl.errors.NotConnectedError` naming all that did not connect; operations on a
device that lost its connection fail their status with :class:`PVDisconnectedError`.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ophyd import Device, DeviceStatus, Kind
from ophyd.signal import EpicsSignal, EpicsSignalBase, EpicsSignalRO

from sdl.errors import DeviceFaultError, LimitError, NotConnectedError

from ._faults import DeviceTimeoutError

__all__ = [
    "EpicsDeviceBase",
    "PVDisconnectedError",
    "PutFailedError",
    "connect_all",
    "DEFAULT_CONNECTION_TIMEOUT",
]

#: seconds a device waits for its PVs to connect unless told otherwise
DEFAULT_CONNECTION_TIMEOUT = 3.0
#: seconds between two checks of a move/settle/acquisition in progress
POLL_INTERVAL = 0.02


class PVDisconnectedError(NotConnectedError):
    """A PV lost its connection during an operation (the IOC stopped, the network fell)."""


class PutFailedError(DeviceFaultError):
    """Writing to a PV failed (rejected by the IOC, no write access, disconnected)."""


def _what_to_check() -> str:
    addr = os.environ.get("EPICS_CA_ADDR_LIST", "<unset>")
    auto = os.environ.get("EPICS_CA_AUTO_ADDR_LIST", "<unset>")
    return (
        f"is the IOC running, and does EPICS_CA_ADDR_LIST (now {addr!r}; "
        f"EPICS_CA_AUTO_ADDR_LIST={auto!r}) reach it? Check the PV names for typos"
    )


#: seconds an unexpected error while watching an operation waits for Channel Access to
#: report a disconnect, before it is called a device fault
DISCONNECT_GRACE = 1.0


def _lost_within(signals: list[Any], grace: float) -> list[str]:
    """The PVs of ``signals`` found disconnected within ``grace`` seconds (polled)."""
    end = time.monotonic() + grace
    while True:
        lost = [p for s in signals if not s.connected for p in _pvnames(s)]
        if lost or time.monotonic() >= end:
            return lost
        time.sleep(POLL_INTERVAL)


def _pvnames(sig: Any) -> list[str]:
    names = [getattr(sig, "pvname", None), getattr(sig, "setpoint_pvname", None)]
    out = [n for n in names if n]
    return list(dict.fromkeys(out)) or [getattr(sig, "name", repr(sig))]


def _signals_of(device: Any) -> list[Any]:
    """The signals of ``device`` whose connection matters."""
    own = getattr(device, "epics_signals", None)
    if own is not None:
        return list(own.values())
    walk = getattr(device, "walk_signals", None)
    if walk is not None:
        return [item.item for item in walk(include_lazy=False)]
    return [device] if hasattr(device, "connected") else []


def _signal_ready(sig: Any, deadline: float) -> bool:
    if not getattr(sig, "connected", True):
        return False
    if isinstance(sig, EpicsSignalBase):  # metadata and access rights have arrived too
        try:
            sig.wait_for_connection(timeout=max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            return False
    return True


def connect_all(devices: Iterable[Any], timeout: float | None = None) -> None:
    """Wait for every signal of every device to connect, all together.

    Works for sdl's EPICS devices and for any ophyd device (its signals are walked).
    The wait is shared: the whole call takes at most ``timeout`` seconds however many
    devices there are.

    Args:
        devices: ophyd devices (or signals); anything without signals is skipped.
        timeout: seconds; ``None`` uses the largest ``connection_timeout`` of the
            devices (default :data:`DEFAULT_CONNECTION_TIMEOUT`).

    Raises:
        NotConnectedError: listing, per device, every PV that did not connect, and
            what to check. ``err.failures`` maps device name -> PV names.
    """
    devices = list(devices)
    if timeout is None:
        timeout = (
            max(
                (float(getattr(d, "connection_timeout", 0) or 0) for d in devices),
                default=0.0,
            )
            or DEFAULT_CONNECTION_TIMEOUT
        )
    deadline = time.monotonic() + float(timeout)
    pending = [(d, s) for d in devices for s in _signals_of(d)]
    while pending and time.monotonic() < deadline:
        pending = [(d, s) for d, s in pending if not getattr(s, "connected", True)]
        if pending:
            time.sleep(POLL_INTERVAL)
    pending = [(d, s) for d, s in pending if not _signal_ready(s, deadline)]
    if not pending:
        return
    failures: dict[str, list[str]] = {}
    for dev, sig in pending:
        failures.setdefault(getattr(dev, "name", repr(dev)), []).extend(_pvnames(sig))
    n = sum(len(v) for v in failures.values())
    lines = [
        f"  device {name!r}: {', '.join(repr(p) for p in pvs)}" for name, pvs in failures.items()
    ]
    raise NotConnectedError(
        f"{n} PV(s) of {len(failures)} device(s) did not connect within {timeout:g} s:\n"
        + "\n".join(lines)
        + f"\n{_what_to_check()}",
        failures,
    )


def _fail(status: DeviceStatus, exc: Exception) -> None:
    """Fail ``status`` unless it has already finished (e.g. by stop())."""
    if not status.done:
        try:
            status.set_exception(exc)
        except Exception:  # finished concurrently; nothing to report
            pass


def _finish(status: DeviceStatus) -> None:
    if not status.done:
        try:
            status.set_finished()
        except Exception:
            pass


class EpicsDeviceBase(Device):
    """Base of the EPICS devices: PV signals by role, connection, limits, watched statuses.

    Args:
        name: device name; data keys are ``<name>`` / ``<name>_<role>``.
        connection_timeout: seconds to wait for the PVs to connect (in :meth:`connect`
            and before an operation on a device not yet connected).
        limits: ``(low, high)`` software limits in engineering units, or ``None``.
        safe_value: value :meth:`safe_state` drives the device to, or ``None``
            (only stop).
        egu: engineering units, for messages and descriptions.
        **kwargs: passed to :class:`ophyd.Device`.
    """

    def __init__(
        self,
        name: str,
        *,
        connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT,
        limits: tuple[float, float] | None = None,
        safe_value: float | None = None,
        egu: str = "",
        **kwargs: Any,
    ) -> None:
        if connection_timeout <= 0:
            raise ValueError(f"{name}: connection_timeout must be > 0 seconds")
        super().__init__(name=name, connection_timeout=float(connection_timeout), **kwargs)
        self.egu = egu
        if limits is not None:
            low, high = (float(v) for v in limits)
            if not low <= high:
                raise ValueError(f"{name}: limits {limits!r} must be (low, high), low <= high")
            limits = (low, high)
        self._limits = limits
        self.safe_value = safe_value
        self._epics: dict[str, EpicsSignalBase] = {}
        self._read_roles: list[str] = []
        self._config_roles: list[str] = []
        self._lock = threading.RLock()
        self._status: DeviceStatus | None = None
        if safe_value is not None:
            self.check_value(safe_value)

    # -- signals ------------------------------------------------------------------------
    def _add_pv(
        self,
        role: str,
        pvname: str | None,
        *,
        writable: bool = False,
        kind: str = "omitted",
        key: str | None = None,
        cls: type[EpicsSignalBase] | None = None,
        **kwargs: Any,
    ) -> EpicsSignalBase | None:
        """Create the signal of one PV (``None`` if ``pvname`` is not given)."""
        if not pvname:
            return None
        if cls is None:
            cls = EpicsSignal if writable else EpicsSignalRO
        sig = cls(
            pvname,
            name=key or f"{self.name}_{role}",
            kind=kind,
            connection_timeout=self.connection_timeout,
            **{"auto_monitor": True, **kwargs},
        )
        self._epics[role] = sig
        if kind in ("normal", "hinted"):
            self._read_roles.append(role)
        elif kind == "config":
            self._config_roles.append(role)
        return sig

    @property
    def epics_signals(self) -> dict[str, EpicsSignalBase]:
        """Role (``"setpoint"``, ``"readback"``, ...) -> EPICS signal."""
        return dict(self._epics)

    @property
    def pvs(self) -> dict[str, str]:
        """Role -> PV name."""
        return {role: sig.pvname for role, sig in self._epics.items()}

    @property
    def connected(self) -> bool:
        """Whether every PV of the device is connected."""
        return all(sig.connected for sig in self._epics.values())

    def unconnected_pvs(self) -> list[str]:
        """Names of the PVs not connected now."""
        return [p for sig in self._epics.values() if not sig.connected for p in _pvnames(sig)]

    def connect(self, timeout: float | None = None) -> None:
        """Wait until every PV is connected.

        Args:
            timeout: seconds; default ``connection_timeout``.

        Raises:
            NotConnectedError: naming the device, every PV that did not connect within
                ``timeout``, and what to check.
        """
        connect_all([self], self.connection_timeout if timeout is None else timeout)

    def wait_for_connection(self, all_signals: bool = False, timeout: float | None = None):
        """ophyd's name for :meth:`connect`."""
        self.connect(timeout)

    def _require_connected(self, operation: str) -> None:
        if self.connected:
            return
        try:
            self.connect()
        except NotConnectedError as err:
            raise PVDisconnectedError(
                f"{self.name}: cannot {operation}: {err}", err.failures
            ) from None

    def destroy(self) -> None:
        """Release the PVs' channels."""
        for sig in self._epics.values():
            sig.destroy()
        super().destroy()

    # -- ophyd reading ------------------------------------------------------------------
    def read(self):
        """Readings of every read PV (plus normal-kind components)."""
        out = super().read()
        for role in self._read_roles:
            out.update(self._epics[role].read())
        return out

    def describe(self):
        """Data keys of every read PV, with ``source`` ``PV:<name>``, shape and dtype."""
        out = super().describe()
        for role in self._read_roles:
            desc = self._epics[role].describe()
            for d in desc.values():
                if self.egu and not d.get("units"):
                    d["units"] = self.egu
                if self._limits is not None and role in ("readback", "setpoint"):
                    d["limits"] = {"control": {"low": self._limits[0], "high": self._limits[1]}}
            out.update(desc)
        return out

    def read_configuration(self):
        """Configuration readings (soft settings and config PVs)."""
        out = super().read_configuration()
        for role in self._config_roles:
            out.update(self._epics[role].read())
        return out

    def describe_configuration(self):
        """Descriptions matching :meth:`read_configuration`."""
        out = super().describe_configuration()
        for role in self._config_roles:
            out.update(self._epics[role].describe())
        return out

    @property
    def hints(self):
        """The hinted PVs' data keys."""
        hinted = [self._epics[r] for r in self._read_roles]
        return {"fields": [s.name for s in hinted if (s.kind & Kind.hinted) == Kind.hinted]}

    # -- limits -------------------------------------------------------------------------
    @property
    def limits(self) -> tuple[float, float] | None:
        """Software limits ``(low, high)``, or ``None``."""
        return self._limits

    def check_value(self, value: Any) -> None:
        """Raise if ``value`` is not an allowed target (bluesky ``Checkable``).

        Raises:
            LimitError: ``value`` is not a finite number or lies outside the limits;
                nothing has been sent to the IOC.
        """
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise LimitError(f"{self.name}: target {value!r} is not a number") from None
        if not math.isfinite(v):
            raise LimitError(f"{self.name}: target {value!r} is not finite; nothing was sent")
        if self._limits is not None and not self._limits[0] <= v <= self._limits[1]:
            low, high = self._limits
            raise LimitError(
                f"{self.name}: target {value!r} {self.egu} is outside the software limits "
                f"[{low}, {high}] {self.egu}; nothing was sent to the IOC"
            )

    # -- statuses -----------------------------------------------------------------------
    def _put(self, role: str, value: Any, what: str, **kwargs: Any) -> None:
        sig = self._epics[role]
        try:
            sig.put(value, **kwargs)
        except Exception as err:
            if not sig.connected:
                raise PVDisconnectedError(
                    f"{self.name}: {what}: PV {sig.setpoint_pvname!r} is disconnected "
                    f"({type(err).__name__}: {err}); {_what_to_check()}"
                ) from err
            raise PutFailedError(
                f"{self.name}: {what}: writing {value!r} to PV {sig.setpoint_pvname!r} "
                f"failed: {type(err).__name__}: {err}"
            ) from err

    def _watch(
        self,
        status: DeviceStatus,
        done: Callable[[], bool],
        *,
        timeout: float | None,
        what: str,
        progress: Callable[[], str] = lambda: "",
    ) -> None:
        """Finish ``status`` when ``done()`` holds; fail it on timeout or disconnect.

        Polls every :data:`POLL_INTERVAL` seconds on a daemon thread. ``stop()`` ends the
        watch by failing the status first.
        """
        t0 = time.monotonic()
        signals = list(self._epics.values())

        def run() -> None:
            while not status.done:
                lost = _lost_within(signals, 0)
                if lost:
                    _fail(
                        status,
                        PVDisconnectedError(
                            f"{self.name}: PV(s) {lost} disconnected during {what}; "
                            f"{_what_to_check()}",
                            {self.name: lost},
                        ),
                    )
                    return
                try:
                    if done():
                        _finish(status)
                        return
                except TimeoutError as err:
                    # ophyd's ReadTimeoutError: the IOC stopped answering, often just before
                    # Channel Access reports the disconnect itself
                    silent = _lost_within(signals, 0) or [p for s in signals for p in _pvnames(s)]
                    _fail(
                        status,
                        PVDisconnectedError(
                            f"{self.name}: no answer during {what} ({err}); treated as "
                            f"disconnected; {_what_to_check()}",
                            {self.name: silent},
                        ),
                    )
                    return
                except Exception as err:
                    # a stopping IOC's last monitor update can carry an INVALID alarm
                    # (CASeverityException) just before Channel Access reports the disconnect
                    lost = _lost_within(signals, DISCONNECT_GRACE)
                    if lost:
                        _fail(
                            status,
                            PVDisconnectedError(
                                f"{self.name}: PV(s) {lost} disconnected during {what} "
                                f"({err!r}); {_what_to_check()}",
                                {self.name: lost},
                            ),
                        )
                    else:
                        _fail(status, DeviceFaultError(f"{self.name}: during {what}: {err!r}"))
                    return
                if timeout is not None and time.monotonic() - t0 > timeout:
                    extra = progress()
                    _fail(
                        status,
                        DeviceTimeoutError(
                            f"{self.name}: {what} did not complete within {timeout:g} s"
                            + (f" ({extra})" if extra else "")
                        ),
                    )
                    return
                time.sleep(POLL_INTERVAL)

        threading.Thread(target=run, name=f"sdl-watch-{self.name}", daemon=True).start()

    def _new_status(self) -> DeviceStatus:
        with self._lock:
            old = self._status
            if old is not None and not old.done:
                _fail(old, DeviceFaultError(f"{self.name}: superseded by a new command"))
            status = DeviceStatus(self, call_stop_on_failure=False)
            self._status = status
            return status

    def _fail_current(self, reason: str) -> None:
        with self._lock:
            status, self._status = self._status, None
        if status is not None and not status.done:
            _fail(status, DeviceFaultError(f"{self.name}: {reason}"))

    # -- safe state ---------------------------------------------------------------------
    def safe_state(self):
        """A bluesky plan putting the device in its safe state.

        The default stops the device and, when ``safe_value`` is set, sets the device
        to it (waiting for completion). Subclasses refine this.
        """
        import bluesky.plan_stubs as bps

        yield from bps.stop(self)
        if self.safe_value is not None:
            yield from bps.abs_set(self, self.safe_value, wait=True)

    def go_safe(self) -> DeviceStatus:
        """Put the device in its safe state directly (no RunEngine needed).

        Returns:
            A status finishing when the safe state is reached (done at once if the
            device has no ``safe_value``).
        """
        self.stop()
        if self.safe_value is None:
            st = DeviceStatus(self)
            st.set_finished()
            return st
        return self.set(self.safe_value)
