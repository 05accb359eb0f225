"""A simulated stirred reactor as a caproto IOC: heater, stirrer and spectrometer.

Run it (bound to loopback, port from ``EPICS_CAS_SERVER_PORT``, default 5064)::

    python -m sdl.devices._iocs.reactor --prefix R1: --tau 1.0

PVs (``<prefix>`` + name):

=================  ======================================================================
``T:SP``           temperature setpoint (degC, writable)
``T:RBV``          temperature; relaxes toward ``T:SP`` with time constant ``--tau`` s
``STIR:SP``        stir-rate setpoint (rpm, writable)
``STIR:RBV``       stir rate; ramps toward ``STIR:SP`` at ``--stir-accel`` rpm/s
``STIR:DMOV``      1 when the stir rate has reached its setpoint, 0 while ramping
``STIR:STOP``      write 1 to hold the stir rate where it is
``SPEC:ACQ``       write 1 to measure; the put completes after ``SPEC:EXPOSURE`` s, and the
                   PV returns to 0
``SPEC:EXPOSURE``  exposure time (s, writable)
``SPEC:YIELD``     product yield (%) at the temperature and stir rate of the measurement
``SPEC:ABS``       absorbance at 520 nm (a.u.)
``SPEC:SPECTRUM``  absorbance spectrum, 64 points from 400 to 700 nm
=================  ======================================================================

The physics are the plain functions :func:`reactor_yield` and :func:`spectrum`, so a test
can compare what a campaign measured with the truth.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys

import numpy as np

__all__ = [
    "WAVELENGTHS",
    "reactor_yield",
    "absorbance",
    "spectrum",
    "ReactorIOC",
    "main",
]

#: wavelengths of ``SPEC:SPECTRUM`` (nm)
WAVELENGTHS = np.linspace(400.0, 700.0, 64)

#: temperature (degC) and width (degC) of the yield's optimum
T_OPT, T_WIDTH = 72.0, 18.0
#: stir rate (rpm) at which mixing reaches 63 % of its full effect
STIR_SCALE = 250.0


def reactor_yield(temperature: float, stir_rate: float) -> float:
    """Product yield (%) of the reactor, without noise.

    Args:
        temperature: reactor temperature (degC).
        stir_rate: stir rate (rpm, >= 0).
    """
    t_term = math.exp(-(((temperature - T_OPT) / T_WIDTH) ** 2))
    s_term = 1.0 - math.exp(-max(stir_rate, 0.0) / STIR_SCALE)
    return 95.0 * t_term * s_term


def absorbance(yield_pct: float) -> float:
    """Absorbance (a.u.) at the 520 nm peak for a yield (%)."""
    return 1.5 * yield_pct / 100.0


def spectrum(yield_pct: float) -> np.ndarray:
    """Absorbance spectrum (64 points over :data:`WAVELENGTHS`) for a yield (%)."""
    return absorbance(yield_pct) * np.exp(-0.5 * ((WAVELENGTHS - 520.0) / 40.0) ** 2)


def _make_ioc_class():
    from caproto import ChannelType
    from caproto.server import PVGroup, pvproperty

    class ReactorIOC(PVGroup):
        """The reactor's PVs; see the module docstring."""

        t_sp = pvproperty(name="T:SP", value=25.0, units="degC", precision=3)
        t_rbv = pvproperty(name="T:RBV", value=25.0, units="degC", precision=3, read_only=True)
        stir_sp = pvproperty(name="STIR:SP", value=0.0, units="rpm", precision=1)
        stir_rbv = pvproperty(name="STIR:RBV", value=0.0, units="rpm", precision=1, read_only=True)
        stir_dmov = pvproperty(name="STIR:DMOV", value=1, dtype=ChannelType.LONG, read_only=True)
        stir_stop = pvproperty(name="STIR:STOP", value=0, dtype=ChannelType.LONG)
        acq = pvproperty(name="SPEC:ACQ", value=0, dtype=ChannelType.LONG)
        exposure = pvproperty(name="SPEC:EXPOSURE", value=0.05, units="s", precision=3)
        yield_pct = pvproperty(name="SPEC:YIELD", value=0.0, units="%", precision=3, read_only=True)
        abs520 = pvproperty(name="SPEC:ABS", value=0.0, units="a.u.", precision=4, read_only=True)
        spectrum_pv = pvproperty(
            name="SPEC:SPECTRUM", value=[0.0] * len(WAVELENGTHS), read_only=True
        )

        def __init__(self, *args, tau=1.0, stir_accel=2000.0, noise=0.2, seed=None, **kw):
            super().__init__(*args, **kw)
            self.tau = float(tau)
            self.stir_accel = float(stir_accel)
            self.noise = float(noise)
            self.rng = np.random.default_rng(seed)
            self.temperature = 25.0
            self.stir = 0.0

        @t_rbv.startup
        async def t_rbv(self, instance, async_lib):
            """The process: 50 Hz updates of temperature and stir rate."""
            dt = 0.02
            print(f"READY {self.prefix}", flush=True)
            while True:
                await async_lib.library.sleep(dt)
                target = self.t_sp.value
                self.temperature += (target - self.temperature) * (1 - math.exp(-dt / self.tau))
                shown = self.temperature + float(self.rng.normal(0.0, 0.005))
                if abs(shown - self.t_rbv.value) > 1e-4:
                    await self.t_rbv.write(shown)
                sp = self.stir_sp.value
                if self.stir != sp and self.stir_dmov.value == 0:
                    step = self.stir_accel * dt
                    self.stir = (
                        sp
                        if abs(sp - self.stir) <= step
                        else self.stir + math.copysign(step, sp - self.stir)
                    )
                    await self.stir_rbv.write(self.stir)
                if self.stir_dmov.value == 0 and self.stir == sp:
                    await self.stir_dmov.write(1)

        @stir_sp.putter
        async def stir_sp(self, instance, value):
            if value < 0:
                raise ValueError(f"stir rate {value} rpm must be >= 0")
            await self.stir_dmov.write(0)
            return value

        @stir_stop.putter
        async def stir_stop(self, instance, value):
            if value:
                await self.stir_sp.write(self.stir)
                await self.stir_dmov.write(1)
            return 0

        @acq.putter
        async def acq(self, instance, value):
            if not value:
                return 0
            await asyncio.sleep(max(self.exposure.value, 0.0))
            y = reactor_yield(self.temperature, self.stir) + float(self.rng.normal(0.0, self.noise))
            await self.yield_pct.write(y)
            await self.abs520.write(absorbance(y))
            await self.spectrum_pv.write(list(spectrum(y)))
            return 0

    return ReactorIOC


def __getattr__(name: str):
    if name == "ReactorIOC":  # caproto is imported only when the IOC itself is needed
        return _make_ioc_class()
    raise AttributeError(name)


def main(argv: list[str] | None = None) -> None:
    """Run the reactor IOC until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="SDL:REACTOR:", help="PV prefix")
    parser.add_argument("--interface", default="127.0.0.1", help="address to serve on")
    parser.add_argument("--tau", type=float, default=1.0, help="heater time constant (s)")
    parser.add_argument("--stir-accel", type=float, default=2000.0, help="stirrer rpm/s")
    parser.add_argument("--noise", type=float, default=0.2, help="yield noise std (%%)")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("EPICS_CAS_INTF_ADDR_LIST", args.interface)
    from caproto.server import run

    ioc = _make_ioc_class()(
        prefix=args.prefix,
        tau=args.tau,
        stir_accel=args.stir_accel,
        noise=args.noise,
        seed=args.seed,
    )
    try:
        run(ioc.pvdb, interfaces=[args.interface])
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
