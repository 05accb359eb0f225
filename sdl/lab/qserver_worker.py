"""What a station's bluesky-queueserver RE worker runs at startup (``docs/distributed.md``).

``sdl lab export-qserver`` writes a startup folder whose ``startup.py`` calls
:func:`worker_namespace`; each RE Manager of the lab runs it with the environment:

* ``SDL_QSERVER_LAB``: the lab campaign file (its ``lab:`` and ``workflow:``);
* ``SDL_QSERVER_STATION``: the station this manager runs steps for;
* ``SDL_QSERVER_PROXY``: the 0MQ proxy's input address (``127.0.0.1:5577``) to which the
  worker's RunEngine publishes its documents (``bluesky.callbacks.zmq.Publisher``);
* ``SDL_QSERVER_KEEP`` (optional): a directory where the worker keeps its recent steps'
  documents, so that they outlive a restart of the worker (memory only without it).

The namespace holds ``RE``, the station's devices (and those of the lab's resources) by
their own names, one plan, ``sdl_step``, which runs a workflow step by name with the
station and lane the coordinator leased, and one function, ``sdl_documents``, which
returns the documents of a recent step by its correlation uid (kept by a
:class:`~sdl.lab._keeper.DocumentKeeper`, for a coordinator that restarts).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["worker_namespace"]


def worker_namespace(
    lab_file: str | None = None, station: str | None = None, proxy: str | None = None
) -> dict[str, Any]:
    """``RE``, ``sdl_step`` and the station's devices, for a queue server's startup code."""
    from bluesky import RunEngine
    from bluesky.callbacks.zmq import Publisher

    from sdl.config import load_config
    from sdl.config._lab import build_lab
    from sdl.config._load import flat_devices
    from sdl.lab import StepContext
    from sdl.protocols import as_plan

    lab_file = lab_file or os.environ["SDL_QSERVER_LAB"]
    station = station or os.environ.get("SDL_QSERVER_STATION", "")
    proxy = proxy or os.environ.get("SDL_QSERVER_PROXY", "")
    config = load_config(lab_file)
    built = build_lab(config)
    lab, workflow = built.lab, built.workflow
    if station not in lab.stations:
        raise ValueError(
            f"SDL_QSERVER_STATION={station!r}: no such station in {lab_file}; its stations: "
            f"{', '.join(lab.stations)}"
        )
    steps = {s.name: s for s in workflow.steps}

    from sdl.lab._keeper import DocumentKeeper

    RE = RunEngine({})
    if proxy:
        RE.subscribe(Publisher(proxy))
    keeper = DocumentKeeper(directory=os.environ.get("SDL_QSERVER_KEEP") or None)
    RE.subscribe(keeper)

    def sdl_documents(correlation: str) -> list:
        """``[name, doc]`` of each document of the step ``correlation`` (a recent one)."""
        return keeper.documents(correlation)

    def sdl_step(
        step: str,
        point: dict,
        lane: int = 0,
        resources: list | None = None,
        history: dict | None = None,
        md: dict | None = None,
    ):
        """Run workflow step ``step`` of the sdl lab on this station (a queue item)."""
        if step not in steps:
            raise ValueError(f"no step {step!r} in the workflow; its steps: {', '.join(steps)}")
        devices = dict(lab.stations[station].devices)
        for name in resources or ():
            item = lab.stations.get(name) or lab.resources[name]
            devices.update(item.devices)
        context = StepContext(
            experiment_id=int((md or {}).get("sdl_experiment_id", -1)),
            step=step,
            station=station,
            lane=int(lane),
            devices=devices,
            resources=tuple(resources or ()),
            history=dict(history or {}),
        )
        return (yield from as_plan(steps[step].plan(dict(point), context, md=dict(md or {}))))

    namespace: dict[str, Any] = {"RE": RE, "sdl_step": sdl_step, "sdl_documents": sdl_documents}
    mine = dict(lab.stations[station].devices)
    for item in lab.resources.values():
        mine.update(item.devices)
    for name, device in flat_devices(mine, by_own_name=True).items():
        if name.isidentifier() and getattr(device, "parent", None) is None:
            namespace[name] = device
    return namespace
