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
    busy records do). Without ``trigger_pv`` the detector is read as is. Reads go to
    the IOC (no cached monitor values), so a read after a trigger sees the new data.

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
        timeout: seconds after which an unfinished acquisition fails; ``None``: never.
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
        for key, pv in reads.items():
            self._add_pv(f"read_{key}", pv, kind="hinted", key=f"{name}_{key}", auto_monitor=False)
        self._add_pv(
            "array",
            array_pv,
            kind="normal",
            key=f"{name}_{array_key}",
            cls=_ShapedArraySignal,
            shape=array_shape,
            auto_monitor=False,
        )
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
