"""An IOC killed and restarted mid-campaign: the hit experiment is recorded, the rest succeed.

A real YAML campaign (pyepics, ophyd, RunEngine, Zarr store) runs against the caproto
reactor IOC. The IOC is killed (SIGKILL) either between two experiments or while the
stirrer ramps, and started again on the same port. The loop pauses on the disconnect
(``pause_on_disconnect``); the operator waits until the devices are connected again and
resumes the RunEngine.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import pytest
import yaml
from bluesky.utils import RunEngineInterrupted

from sdl import open_store
from sdl.config import load_campaign
from sdl.devices import connect_all, make_safe
from sdl.devices._iocs.reactor import reactor_yield
from sdl.testing import IocProcess, loopback_ca

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "epics_reactor.yaml"
#: rpm/s: the stirrer takes 0.3-0.8 s for a move of 500-1150 rpm
STIR_ACCEL = 1500.0
BUDGET = 5
HIT = 2  # the experiment during which (or just before which) the IOC dies
PV_DEVICES = ("reactor_temperature", "reactor_stirrer", "reactor_spectrometer")


def _campaign(ioc: IocProcess, store_path: Path):
    config = yaml.safe_load(EXAMPLE.read_text())
    options = config["devices"]["reactor"]["options"]
    options.update(prefix=ioc.prefix, dwell=0.05, settle_timeout=20.0, connection_timeout=1.0)
    return load_campaign(config, budget=BUDGET, store=str(store_path))


def _kill_before(protocol, experiment_id: int, ioc: IocProcess, devices):
    """``protocol``, but the IOC is killed just before experiment ``experiment_id`` starts
    (and the devices have seen the disconnect)."""

    def wrapped(point, md):
        if md["sdl_experiment_id"] == experiment_id and ioc.running:
            ioc.kill()
            while any(d.connected for d in devices):
                yield from bps.sleep(0.01)
        return (yield from protocol(point, md=md))

    return wrapped


def _kill_during_move(protocol, experiment_id: int, ioc: IocProcess, stirrer, seen: dict):
    """``protocol``, but the IOC is killed 0.05 s after the stirrer was told to move in
    experiment ``experiment_id``; ``seen`` records the stirrer's state at that moment."""

    def wrapped(point, md):
        plan = protocol(point, md=md)
        if md["sdl_experiment_id"] != experiment_id or not ioc.running:
            return (yield from plan)

        def kill_soon():
            yield from bps.sleep(0.05)
            seen.update(moving=stirrer.moving, position=stirrer.position, target=stirrer._target)
            ioc.kill()

        def after_set(msg):
            if msg.command == "set" and msg.obj is stirrer:
                return None, kill_soon()
            return None, None

        return (yield from bpp.plan_mutator(plan, after_set))

    return wrapped


def _resume_when_back(RE, ioc: IocProcess, campaign) -> float:
    """What an operator does: restart the IOC, wait for the devices, resume. Returns the
    seconds the devices took to reconnect."""
    ioc.restart()
    t0 = time.monotonic()
    connect_all(campaign.devices.values(), timeout=25.0)
    waited = time.monotonic() - t0
    RE.resume()
    return waited


def _check_after_restart(store_path: Path, hit_cause: str, prefix: str) -> None:
    """The hit experiment failed naming the disconnect; every one after it succeeded."""
    df = open_store(store_path).to_dataframe()
    status = df["status"].tolist()
    assert status[: HIT + 1] == ["done"] * HIT + ["failed"], df[["status", "cause"]]
    cause = df["cause"].iloc[HIT]
    # the cause names the disconnect, what was being done and the PVs
    assert re.search(rf"PVDisconnectedError: reactor_\w+: {hit_cause}", cause), cause
    # (a PV of this IOC: quoted when the disconnect came first, bare in ophyd's "Failed to
    # read PV within 2.00 sec" when a read timed out first, as in one ci-local run)
    assert re.search(rf"\b{re.escape(prefix)}\w", cause), cause
    after = df.iloc[HIT + 1 :]
    causes = "\n".join(f"{i}: {r['status']} {r['cause']}" for i, r in df.iterrows())
    # after the restart every point is measured. Under a loaded CI machine one post-restart
    # experiment was once failed as an instrument fault (seen 1 in ~10 runs, not reproduced
    # alone); the loop then re-ran its point, and that is all that may happen
    late = after[after["status"] == "failed"]
    assert len(late) <= 1, causes
    for exp_id, row in late.iterrows():
        assert row["failure_kind"] == "instrument", causes
        root = exp_id if row["rerun_of"] < 0 else row["rerun_of"]
        again = df[df["rerun_of"] == root]
        assert (again.loc[again.index > exp_id, "status"] == "done").any(), causes
    # the budget counts the failed experiment or, if the loop measures it again, its rerun
    assert (df["status"] == "done").sum() >= BUDGET - 1 and len(df) <= BUDGET + 1 + len(late), df
    if "rerun_of" in df and (df["rerun_of"] == HIT).any():
        rerun = df[df["rerun_of"] == HIT].iloc[0]
        assert rerun["temperature"] == df["temperature"].iloc[HIT]
    for _, row in df[df["status"] == "done"].iterrows():
        truth = reactor_yield(row["temperature"], row["stir_rate"])
        assert abs(row["yield"] - truth) < 0.8, (row.to_dict(), truth)
    assert after["run_uid"].nunique() == len(after)


def test_ioc_killed_between_experiments_and_restarted(RE, store_path):
    loopback_ca()
    with IocProcess(args=["--tau", "0.05", "--noise", "0.05", "--seed", "5"]) as ioc:
        campaign = _campaign(ioc, store_path)
        campaign.protocol = _kill_before(
            campaign.protocol, HIT, ioc, [campaign.devices[n] for n in PV_DEVICES]
        )
        try:
            with pytest.raises(RunEngineInterrupted):
                campaign.run(RE, store=store_path)  # pauses on the disconnect
            assert RE.state == "paused"
            df = open_store(store_path).to_dataframe()
            assert df["status"].tolist() == ["done", "done", "failed"], df[["status", "cause"]]
            waited = _resume_when_back(RE, ioc, campaign)
            print(f"devices reconnected {waited:.1f} s after the restart")
        finally:
            make_safe(campaign.devices.values())
    assert RE.state == "idle"
    _check_after_restart(store_path, "cannot (set|move to)", ioc.prefix)


def test_ioc_killed_during_a_move_and_restarted(RE, store_path):
    loopback_ca()
    with IocProcess(
        args=["--tau", "0.05", "--noise", "0.05", "--seed", "6", "--stir-accel", str(STIR_ACCEL)]
    ) as ioc:
        campaign = _campaign(ioc, store_path)
        stirrer = campaign.devices["reactor_stirrer"]
        seen: dict = {}
        campaign.protocol = _kill_during_move(campaign.protocol, HIT, ioc, stirrer, seen)
        try:
            with pytest.raises(RunEngineInterrupted):
                campaign.run(RE, store=store_path)  # pauses on the disconnect
            # the IOC died while the stirrer was still on its way
            assert seen["moving"], seen
            assert abs(seen["position"] - seen["target"]) > 50, seen
            df = open_store(store_path).to_dataframe()
            assert df["status"].tolist() == ["done", "done", "failed"], df[["status", "cause"]]
            waited = _resume_when_back(RE, ioc, campaign)
            print(f"devices reconnected {waited:.1f} s after the restart")
        finally:
            make_safe(campaign.devices.values())
    assert RE.state == "idle"
    during = r"(PV\(s\) \[.*\] disconnected|no answer) during (move to|settling at)"
    _check_after_restart(store_path, during, ioc.prefix)
