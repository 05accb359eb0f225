"""A positioner over EPICS PVs: setpoint, readback, optional done/moving and stop PVs."""

from __future__ import annotations

import time
from typing import Any

from ophyd import Component as Cpt
from ophyd import DeviceStatus, Signal

from sdl.errors import ConfigError

from ._epics_base import DEFAULT_CONNECTION_TIMEOUT, EpicsDeviceBase, _fail

__all__ = ["EpicsPositioner"]


def _needs_put_complete(
    name: str,
    setpoint_pv: str,
    readback_pv: str | None,
    done_pv: str | None,
    tolerance: float | None,
    put_complete: bool | None,
) -> bool:
    """Whether a move waits for put-completion; refuse a move that could never know its end.

    A done PV tells when a move has ended; so does a tolerance on a readback, but only
    when the readback is a PV of its own (on the set-point PV it holds at once).
    Otherwise only the IOC's put-completion can.
    """
    own_readback = bool(readback_pv) and readback_pv != setpoint_pv
    knows_end = bool(done_pv) or (tolerance is not None and own_readback)
    if put_complete is None:
        return not knows_end
    if not put_complete and not knows_end:
        why = (
            "a tolerance on the set-point PV itself holds at once"
            if tolerance is not None
            else "it has neither done_pv nor tolerance"
        )
        raise ConfigError(
            f"positioner {name!r}: put_complete: false, but nothing else can tell when a "
            f"move has ended ({why}); its moves would report done at once, before the axis "
            f"moved. Give done_pv (e.g. the motor record's .DMOV), readback_pv with a "
            f"tolerance, or put_complete: true (the IOC completes the put when the move ends)"
        )
    return bool(put_complete)


class EpicsPositioner(EpicsDeviceBase):
    """A motor, stage, pump or any axis driven through a setpoint PV.

    ``set(value)`` checks the software limits (raising :class:`~sdl.errors.LimitError`
    before anything is sent), writes the setpoint PV and returns a status that finishes
    when the move is complete:

    * with ``done_pv``: when it reads ``done_value`` after having been seen not done
      (or ``done_delay`` seconds after the put, for a move so short the IOC never
      flagged it), and, with ``tolerance``, the readback is within it;
    * with ``tolerance`` on a ``readback_pv`` of its own: when
      ``|readback - target| <= tolerance``;
    * with neither: when the IOC completes the put (Channel Access put with callback;
      a motor record's ``VAL`` completes when the move has ended). ``put_complete``
      is then on by default, and turning it off is refused: nothing would tell
      when the move ends;

    then after ``settle_time`` more seconds. It fails with
    :class:`~sdl.devices.DeviceTimeoutError` after ``timeout`` seconds,
    :class:`~sdl.devices.PVDisconnectedError` if a PV disconnects, and
    :class:`~sdl.devices.PutFailedError` if the write is refused.

    Data keys: ``<name>`` (readback, hinted), ``<name>_setpoint``; configuration
    ``<name>_settle_time``, ``<name>_tolerance`` (NaN: none), ``<name>_timeout``.

    Args:
        name: device name.
        setpoint_pv: PV written with the target.
        readback_pv: PV read as the position; defaults to ``setpoint_pv``.
        done_pv: PV saying whether the move is done (a motor record's ``.DMOV``), or,
            with ``done_value=0``, whether it is moving (``.MOVN``).
        done_value: value of ``done_pv`` meaning "done".
        tolerance: allowed ``|readback - target|`` at the end of a move, in ``egu``.
        stop_pv: PV written with ``stop_value`` by :meth:`stop`.
        stop_value: value written to ``stop_pv``.
        limits: ``(low, high)`` software limits, in ``egu``; ``None`` for none.
        settle_time: seconds to wait after the move is done.
        timeout: seconds after which an unfinished move fails; ``None`` waits forever.
        done_delay: seconds after the put after which a ``done_pv`` that never left
            ``done_value`` counts as done.
        put_complete: write the setpoint with put-completion and also wait for it.
            ``None`` (default): only when neither ``done_pv`` nor ``tolerance`` on a
            ``readback_pv`` of its own can tell that the move has ended.
        safe_value: position :meth:`safe_state` moves to after stopping; ``None``
            only stops.
        egu: engineering units, e.g. ``"mm"``, ``"rpm"``.
        connection_timeout: seconds to wait for the PVs to connect.
        **kwargs: passed to :class:`ophyd.Device`.

    Example:
        >>> m = EpicsPositioner("x", setpoint_pv="IOC:m1", readback_pv="IOC:m1.RBV",
        ...                     done_pv="IOC:m1.DMOV", stop_pv="IOC:m1.STOP",
        ...                     limits=(-5, 5), egu="mm")
        >>> m.connect(); m.set(1.0).wait(10)
    """

    settle_time = Cpt(Signal, value=0.0, kind="config")
    tolerance = Cpt(Signal, value=float("nan"), kind="config")
    timeout = Cpt(Signal, value=0.0, kind="config")

    def __init__(
        self,
        name: str,
        *,
        setpoint_pv: str,
        readback_pv: str | None = None,
        done_pv: str | None = None,
        done_value: Any = 1,
        tolerance: float | None = None,
        stop_pv: str | None = None,
        stop_value: Any = 1,
        limits: tuple[float, float] | None = None,
        settle_time: float = 0.0,
        timeout: float | None = 60.0,
        done_delay: float = 0.5,
        put_complete: bool | None = None,
        safe_value: float | None = None,
        egu: str = "",
        connection_timeout: float = DEFAULT_CONNECTION_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            name,
            connection_timeout=connection_timeout,
            limits=limits,
            safe_value=safe_value,
            egu=egu,
            **kwargs,
        )
        if settle_time < 0 or (timeout is not None and timeout <= 0) or done_delay < 0:
            raise ValueError(f"{name}: settle_time, done_delay >= 0 and timeout > 0 seconds")
        if tolerance is not None and tolerance < 0:
            raise ValueError(f"{name}: tolerance must be >= 0 {egu}")
        self._tol = None if tolerance is None else float(tolerance)
        self._timeout = None if timeout is None else float(timeout)
        self._done_value = done_value
        self._stop_value = stop_value
        self._done_delay = float(done_delay)
        self._put_complete = _needs_put_complete(
            name, setpoint_pv, readback_pv, done_pv, tolerance, put_complete
        )
        self.settle_time.put(float(settle_time))
        self.tolerance.put(float("nan") if tolerance is None else float(tolerance))
        self.timeout.put(float(timeout or 0.0))
        self._add_pv("readback", readback_pv or setpoint_pv, kind="hinted", key=self.name)
        self._add_pv("setpoint", setpoint_pv, writable=True, kind="normal")
        self._add_pv("done", done_pv)
        self._add_pv("stop", stop_pv, writable=True)
        self._target: float | None = None

    # -- position -----------------------------------------------------------------------
    @property
    def position(self) -> float:
        """The readback, in ``egu``."""
        return self._epics["readback"].get()

    @property
    def moving(self) -> bool:
        """Whether a move started by :meth:`set` is in progress."""
        st = self._status
        return st is not None and not st.done

    def set(self, value: float) -> DeviceStatus:
        """Move to ``value`` (``egu``).

        Returns:
            A status finishing when the move is done (see the class docstring), or
            failing with the cause.

        Raises:
            LimitError: before anything is sent, if ``value`` is outside the limits.
        """
        self.check_value(value)
        target = float(value)
        status = self._new_status()
        try:
            self._require_connected(f"move to {target} {self.egu}")
        except Exception as err:
            _fail(status, err)
            return status
        t0 = time.monotonic()
        state = {"left_done": False, "reached": None, "put_done": not self._put_complete}
        done_sig = self._epics.get("done")

        def on_put(**_: Any) -> None:
            state["put_done"] = True

        def arrived() -> bool:
            if not state["put_done"]:
                return False
            if done_sig is not None:
                if done_sig.get() != self._done_value:
                    state["left_done"] = True
                    return False
                if not state["left_done"] and time.monotonic() - t0 < self._done_delay:
                    return False
            if self._tol is not None and abs(self.position - target) > self._tol:
                return False
            return True

        def done() -> bool:
            if state["reached"] is None:
                if not arrived():
                    return False
                state["reached"] = time.monotonic()
            return time.monotonic() - state["reached"] >= self.settle_time.get()

        def progress() -> str:
            return f"target {target} {self.egu}, readback {self.position} {self.egu}"

        self._target = target
        try:
            kw = {"use_complete": True, "callback": on_put} if self._put_complete else {}
            self._put("setpoint", target, f"move to {target} {self.egu}", **kw)
        except Exception as err:
            _fail(status, err)
            return status
        self._watch(
            status, done, timeout=self._timeout, what=f"move to {target}", progress=progress
        )
        return status

    def stop(self, *, success: bool = False) -> None:
        """Stop a move in progress: write ``stop_value`` to ``stop_pv`` (if any) and
        fail the move's status with "stopped"."""
        self._fail_current(f"move to {self._target} {self.egu} stopped")
        if "stop" in self._epics and self._epics["stop"].connected:
            try:
                self._epics["stop"].put(self._stop_value)
            except Exception:  # stopping must not raise; the status already failed
                pass
