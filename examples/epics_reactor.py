"""Run examples/epics_reactor.yaml against the simulated reactor IOC.

Starts ``python -m sdl.devices._iocs.reactor`` (caproto, on 127.0.0.1) as a subprocess
with a fresh PV prefix, points Channel Access at it, runs the campaign through pyepics
and ophyd, puts the reactor in its safe state and stops the IOC.

Run:  python examples/epics_reactor.py [--budget N] [--store PATH] [--tau SECONDS]
Needs caproto (``pip install caproto`` or the ``test`` extra).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from sdl.testing import IocProcess, loopback_ca

HERE = Path(__file__).parent


def run(budget: int = 12, store: str = "runs/epics_reactor.zarr", tau: float = 0.5) -> None:
    """Start the IOC, run the campaign, leave the reactor safe, stop the IOC."""
    loopback_ca()  # before the first Channel Access channel of this process
    from bluesky import RunEngine

    from sdl.config import load_campaign
    from sdl.devices import make_safe

    config = yaml.safe_load((HERE / "epics_reactor.yaml").read_text())
    with IocProcess("sdl.devices._iocs.reactor", ["--tau", str(tau)]) as ioc:
        config["devices"]["reactor"]["options"]["prefix"] = ioc.prefix
        campaign = load_campaign(config, budget=budget)
        try:
            result = campaign.run(RunEngine({}), store=store, overwrite=True, progress=True)
        finally:
            make_safe(campaign.devices.values())
        print(result.summary())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=12)
    parser.add_argument("--store", default="runs/epics_reactor.zarr")
    parser.add_argument("--tau", type=float, default=0.5, help="heater time constant (s)")
    args = parser.parse_args()
    run(args.budget, args.store, args.tau)


if __name__ == "__main__":
    main()
