"""A test bench as a caproto IOC: a motor that takes real time, a slow PV, a frozen PV.

Run it (bound to loopback, port from ``EPICS_CAS_SERVER_PORT``, default 5064)::

    python -m sdl.devices._iocs.bench --prefix B1: --velocity 5 --period 0.3

PVs (``<prefix>`` + name):

=============  ==========================================================================
``M:VAL``      motor set-point (mm, writable); like a motor record's ``VAL``, the put
               completes when the move has ended
``M:SP``       the same motor's set-point as a plain soft PV: its put completes at once
``M:RBV``      motor position (mm); moves toward the set-point at ``M:VELO`` mm/s
``M:VELO``     velocity (mm/s, writable)
``M:DMOV``     1 when the motor has reached its set-point, 0 while it moves
``M:STOP``     write 1 to stop the motor where it is
``SLOW``       a measurement updated every ``--period`` s by a scan loop (the number of
               updates so far, so two different readings are two different updates)
``FROZEN``     a value that is never updated after start
=============  ==========================================================================

The real-time tests of the EPICS devices use it: a move takes ``distance / velocity``
seconds, and a slow PV is never up to date the moment a move ends.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys

__all__ = ["main"]

#: seconds between two steps of the motor
DT = 0.01


def _make_ioc_class():
    from caproto import ChannelType
    from caproto.server import PVGroup, pvproperty

    class BenchIOC(PVGroup):
        """The bench's PVs; see the module docstring."""

        val = pvproperty(name="M:VAL", value=0.0, units="mm", precision=4)
        sp = pvproperty(name="M:SP", value=0.0, units="mm", precision=4)
        rbv = pvproperty(name="M:RBV", value=0.0, units="mm", precision=4, read_only=True)
        velo = pvproperty(name="M:VELO", value=5.0, units="mm/s", precision=3)
        dmov = pvproperty(name="M:DMOV", value=1, dtype=ChannelType.LONG, read_only=True)
        stop = pvproperty(name="M:STOP", value=0, dtype=ChannelType.LONG)
        slow = pvproperty(name="SLOW", value=0.0, precision=1, read_only=True)
        frozen = pvproperty(name="FROZEN", value=1.0, read_only=True)

        def __init__(self, *args, velocity=5.0, period=0.3, **kw):
            super().__init__(*args, **kw)
            self.initial_velocity = float(velocity)
            self.period = float(period)
            self.position = 0.0
            self.target = 0.0
            self.arrived = asyncio.Event()

        @rbv.startup
        async def rbv(self, instance, async_lib):
            """The motor: steps of ``velocity * DT`` toward the target."""
            await self.velo.write(self.initial_velocity)
            print(f"READY {self.prefix}", flush=True)
            while True:
                await async_lib.library.sleep(DT)
                if self.position == self.target:
                    continue
                step = max(self.velo.value, 1e-9) * DT
                gap = self.target - self.position
                self.position = (
                    self.target if abs(gap) <= step else self.position + math.copysign(step, gap)
                )
                await self.rbv.write(self.position)
                if self.position == self.target:
                    await self.dmov.write(1)
                    self.arrived.set()

        @slow.startup
        async def slow(self, instance, async_lib):
            """The scan loop of the slow measurement."""
            while True:
                await async_lib.library.sleep(self.period)
                await self.slow.write(self.slow.value + 1.0)

        async def _move(self, value: float) -> None:
            self.arrived.clear()
            self.target = float(value)
            if self.target == self.position:
                self.arrived.set()
                return
            await self.dmov.write(0)

        @val.putter
        async def val(self, instance, value):
            await self._move(value)
            await self.arrived.wait()  # put-completion: the move has ended
            return value

        @sp.putter
        async def sp(self, instance, value):
            await self._move(value)
            return value

        @stop.putter
        async def stop(self, instance, value):
            if value:
                self.target = self.position
                await self.dmov.write(1)
                self.arrived.set()
            return 0

    return BenchIOC


def main(argv: list[str] | None = None) -> None:
    """Run the bench IOC until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="SDL:BENCH:", help="PV prefix")
    parser.add_argument("--interface", default="127.0.0.1", help="address to serve on")
    parser.add_argument("--velocity", type=float, default=5.0, help="motor speed (mm/s)")
    parser.add_argument("--period", type=float, default=0.3, help="SLOW update period (s)")
    args = parser.parse_args(argv)
    os.environ.setdefault("EPICS_CAS_INTF_ADDR_LIST", args.interface)
    from caproto.server import run

    ioc = _make_ioc_class()(prefix=args.prefix, velocity=args.velocity, period=args.period)
    try:
        run(ioc.pvdb, interfaces=[args.interface])
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
