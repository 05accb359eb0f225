"""A detector over EPICS PVs: optional acquire PV, scalar PVs and an array (waveform) PV."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import DeviceStatus, Signal
from ophyd.signal import EpicsSignalRO

from ._epics_base import DEFAULT_CONNECTION_TIMEOUT, EpicsDeviceBase, _fail

__all__ = ["EpicsDetector"]


class _ShapedArraySignal(EpicsSignalRO):
    """A waveform PV reshaped to ``shape`` (e.g. ``[rows, cols]`` for an image)."""

    def __init__(self, read_pv: str, *, shape: Sequence[int] | None = None, **kwargs: Any):
        super().__init__(read_pv, **kwargs)
        self._shape = None if shape is None else tuple(int(n) for n in shape)

    def get(self, **kwargs: Any):
        value = np.asarray(super().get(**kwargs))
        if self._shape is not None:
            n = int(np.prod(self._shape))
            value = value[:n].reshape(self._shape)
        return value

    def describe(self):
        desc = super().describe()
        if self._shape is not None:
            desc[self.name]["shape"] = list(self._shape)
        desc[self.name]["dtype"] = "array"
        return desc


def _key(pv: str) -> str:
    """A data-key suffix from a PV name: its last field, lower case, ``[a-z0-9_]``."""
    tail = re.split(r"[:.]", pv.rstrip(":."))[-1]
    return re.sub(r"[^0-9a-zA-Z_]", "_", tail).lower() or "value"


class EpicsDetector(EpicsDeviceBase):
    """A detector read through EPICS: trigger an acquisition, then read scalar and array PVs.

    :meth:`trigger` writes ``trigger_value`` to ``trigger_pv`` and returns a status
    finishing when the acquisition is done: when ``done_pv`` reads ``done_value``
    after having left it (or ``done_delay`` seconds after the write), otherwise when
    the IOC completes the put (CA put-completion, as areaDetector's ``Acquire`` and
    busy records do); reads then go to the IOC (no cached monitor values), so a read
    after a trigger sees the new data.

    Without ``trigger_pv`` the IOC measures on its own schedule (a scanned record), and
    :meth:`trigger` waits, with ``fresh=True`` (default), until every read PV has
    sent a monitor update produced after the trigger, i.e. after the preceding move
    has ended; the status fails with :class:`~sdl.devices.DeviceTimeoutError` naming
    the PVs still stale after ``timeout`` seconds. An update counts when it arrived
    after the trigger and its IOC timestamp is later than this host's clock at the
    trigger, so the IOC's clock must be synchronized with this host's (NTP). With
    ``fresh=False`` the detector is read as is, however old the values.

    Data keys: ``<name>_<key>`` for each of ``read_pvs`` (scalars, hinted) and
    ``<name>_<array_key>`` for ``array_pv`` (shape ``array_shape``); configuration
    ``<name>_<key>`` for each of ``config_pvs``, and ``<name>_timeout``.

    Args:
        name: device name.
        read_pvs: ``{key: PV}``, or a list of PVs (keyed by their last field in
            lower case, ``"R:SPEC:YIELD"`` -> ``yield``).
        trigger_pv: PV written to start an acquisition.
        trigger_value: value written to ``trigger_pv``.
        done_pv: PV telling that the acquisition is done (default: put-completion).
        done_value: value of ``done_pv`` meaning "done".
        done_delay: seconds after the write after which a ``done_pv`` that never left
            ``done_value`` counts as done.
        array_pv: a waveform PV read as an array.
        array_key: data-key suffix of the array.
        array_shape: shape the waveform is cut and reshaped to (e.g. ``[64]`` or
            ``[480, 640]``); ``None`` keeps the PV's length.
        config_pvs: ``{key: PV}`` read as configuration (exposure time, gain).
        stop_pv: PV written with ``stop_value`` by :meth:`stop`.
        stop_value: value written to ``stop_pv``.
        timeout: seconds after which an unfinished acquisition (or, without
            ``trigger_pv``, the wait for fresh values) fails; ``None``: never.
        fresh: without ``trigger_pv``: wait for values produced after the trigger
            (``True``) or read the current ones whatever their age (``False``).
        connection_timeout: seconds to wait for the PVs to connect.
        **kwargs: passed to :class:`ophyd.Device`.

    Example:
        >>> det = EpicsDetector("spec", trigger_pv="R:SPEC:ACQ",
        ...                     read_pvs={"yield": "R:SPEC:YIELD"},
        ...                     array_pv="R:SPEC:SPECTRUM", array_shape=[64])
        >>> det.connect(); det.trigger().wait(10); det.read()["spec_yield"]["value"]
    """

    timeout = Cpt(Signal, value=0.0, kind="config")

    def __init__(
        self,
        name: str,
        *,
        read_pvs: Mapping[str, str] | Sequence[str] = (),
        trigger_pv: str | None = None,
        trigger_value: Any = 1,
        done_pv: str | None = None,
        done_value: Any = 1,
        done_delay: float = 0.5,
        array_pv: str | None = None,
        array_key: str = "array",
        array_shape: Sequence[int] | None = None,
        config_pvs: Mapping[str, str] | None = None,
        stop_pv: str | None = None,
        stop_value: Any = 1,
        timeout: float | None = 30.0,
        fresh: bool = True,
        connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, connection_timeout=connection_timeout, **kwargs)
        if timeout is not None and timeout <= 0:
            raise ValueError(f"{name}: timeout must be > 0 seconds or None")
        if isinstance(read_pvs, str):
            read_pvs = [read_pvs]
        reads = dict(read_pvs) if isinstance(read_pvs, Mapping) else {_key(p): p for p in read_pvs}
        if len(reads) != len(read_pvs):
            raise ValueError(
                f"{name}: read_pvs {list(read_pvs)} give duplicate keys; use a mapping"
            )
        if not reads and not array_pv:
            raise ValueError(f"{name}: give read_pvs and/or array_pv: nothing to read")
        self._timeout = None if timeout is None else float(timeout)
        self.timeout.put(float(timeout or 0.0))
        self._trigger_value = trigger_value
        self._done_value = done_value
        self._done_delay = float(done_delay)
        self._stop_value = stop_value
        # without a trigger PV, freshness is judged from the monitor updates of the read PVs
        self._fresh = bool(fresh) and not trigger_pv
        self._updates: dict[str, tuple[float, float]] = {}  # role -> (arrival, timestamp)
        for key, pv in reads.items():
            self._add_pv(
                f"read_{key}", pv, kind="hinted", key=f"{name}_{key}", auto_monitor=self._fresh
            )
        self._add_pv(
            "array",
            array_pv,
            kind="normal",
            key=f"{name}_{array_key}",
            cls=_ShapedArraySignal,
            shape=array_shape,
            auto_monitor=self._fresh,
        )
        if self._fresh:
            for role in self._read_roles:
                self._epics[role].subscribe(self._updated(role), run=False)
        for key, pv in (config_pvs or {}).items():
            self._add_pv(f"config_{key}", pv, kind="config", key=f"{name}_{key}")
        self._add_pv("trigger", trigger_pv, writable=True)
        self._add_pv("done", done_pv)
        self._add_pv("stop", stop_pv, writable=True)

    def trigger(self) -> DeviceStatus:
        """Start one acquisition.

        Returns:
            A status finishing when the data are ready (see the class docstring), or
            failing with the cause (timeout, disconnect, refused write).
        """
        status = self._new_status()
        try:
            self._require_connected("acquire")
        except Exception as err:
            _fail(status, err)
            return status
        if "trigger" not in self._epics:
            if self._fresh:
                self._wait_fresh(status)
            else:
                status.set_finished()
            return status
        t0 = time.monotonic()
        done_sig = self._epics.get("done")
        state = {"put_done": done_sig is not None, "left_done": False}

        def on_put(**_: Any) -> None:
            state["put_done"] = True

        def done() -> bool:
            if not state["put_done"]:
                return False
            if done_sig is not None:
                if done_sig.get() != self._done_value:
                    state["left_done"] = True
                    return False
                return state["left_done"] or time.monotonic() - t0 >= self._done_delay
            return True

        try:
            kw = {} if done_sig is not None else {"use_complete": True, "callback": on_put}
            self._put("trigger", self._trigger_value, "start an acquisition", **kw)
        except Exception as err:
            _fail(status, err)
            return status
        self._watch(status, done, timeout=self._timeout, what="acquisition")
        return status

    def _updated(self, role: str):
        """A monitor callback noting when an update of ``role`` arrived and its timestamp."""

        def on_update(*, timestamp: float | None = None, **_: Any) -> None:
            stamp = time.time() if timestamp is None else float(timestamp)
            self._updates[role] = (time.monotonic(), stamp)

        return on_update

    def _wait_fresh(self, status: DeviceStatus) -> None:
        """Finish ``status`` once every read PV has sent an update produced after now."""
        t_mono, t_wall = time.monotonic(), time.time()
        roles = list(self._read_roles)

        def fresh(role: str) -> bool:
            update = self._updates.get(role)
            if update is None or update[0] <= t_mono:
                return False  # nothing arrived since the trigger
            return update[1] > t_wall  # and produced after it, by the IOC's timestamp

        def progress() -> str:
            stale = [r for r in roles if not fresh(r)]
            ages = []
            for role in stale:
                update = self._updates.get(role)
                last = (
                    "no update received"
                    if update is None
                    else (f"last produced {t_wall - update[1]:.3g} s before the trigger")
                )
                ages.append(f"{self._epics[role].pvname!r} ({last})")
            return (
                f"no monitor update newer than the trigger from PV(s) {', '.join(ages)}; "
                "is the IOC scanning them, and posting an update each time (MDEL=-1 for "
                "a value that can repeat)? Set fresh: false to read old values"
            )

        self._watch(
            status,
            lambda: all(fresh(r) for r in roles),
            timeout=self._timeout,
            what="wait for fresh values",
            progress=progress,
        )

    def stop(self, *, success: bool = False) -> None:
        """Abort an acquisition in progress (writing ``stop_pv`` if given); its status fails."""
        self._fail_current("acquisition stopped")
        if "stop" in self._epics and self._epics["stop"].connected:
            try:
                self._epics["stop"].put(self._stop_value)
            except Exception:
                pass

    def safe_state(self):
        """A plan that stops any acquisition."""
        import bluesky.plan_stubs as bps

        yield from bps.stop(self)
