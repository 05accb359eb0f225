"""The real-time fault tier: campaigns where time passes and instruments fail.

The simulated alignment stage runs at a time scale where every move and exposure takes
tens of milliseconds (moves of different lengths take different times), so a fault of
one motor happens while the other still moves, and a timed-out status fails after the
experiment that drew it has moved on. Faults are injected at 0 %, 5 % and 20 % per
operation (a third each timeouts, exceptions and NaN readings) with several seeds.

Every fault the devices inject is in their log (``stage.injected_faults``) with the
time it was drawn; each fault is matched with the experiment that was running then
(``t_started`` ... ``t_finished`` in the store). The campaign must then account for
every fault and nothing else:

- the campaign finishes its whole budget: done + failed experiments, where an
  instrument failure measured again (a later experiment with ``rerun_of`` = its id)
  is counted once;
- no experiment is dropped: ids are contiguous and every experiment is final;
- an experiment with an injected timeout or exception failed; its cause starts with one
  of those faults (device name and exception text) and names every one of them (a motor
  that failed while another still moved) and no other device failure; ``failure_kind``
  is ``instrument``; one with only a NaN reading failed with a cause naming the NaN and
  ``failure_kind`` ``sample``; an experiment without an injected fault is done (no
  failure poisons a later experiment, e.g. through a stale status).
"""

from __future__ import annotations

import math
import time
from collections import Counter

import pytest

from sdl import Campaign, open_store
from sdl.devices import AlignmentStage, Faults
from sdl.planners import Objective, Real, SobolPlanner
from sdl.protocols import set_settle_measure

#: (rate per operation, seed, budget, time_scale, motor velocity in mm per simulated s)
CAMPAIGNS = [
    (0.00, 0, 30, 0.02, 100.0),
    (0.05, 1, 50, 0.01, None),
    (0.05, 2, 50, 0.02, 100.0),
    (0.05, 3, 50, 0.05, 100.0),
    (0.20, 4, 45, 0.01, None),
    (0.20, 5, 45, 0.02, 100.0),
    (0.20, 6, 45, 0.05, 100.0),
]
INSTRUMENT_KINDS = ("timeout", "exception")


@pytest.fixture(scope="module")
def tally():
    """Figures over the module's campaigns, printed at the end (``pytest -s``)."""
    rows: list[dict] = []
    yield rows
    total = Counter()
    for row in rows:
        total.update({k: v for k, v in row.items() if isinstance(v, int)})
        total["wall_ms"] += int(row["wall_s"] * 1000)
    print(f"\nreal-time fault tier: {len(rows)} campaigns, {dict(total)}")


def _run(RE, path, rate, seed, budget, time_scale, velocity):
    stage = AlignmentStage(
        "stage",
        n_axes=2,
        settle_time=0.5,  # simulated s: 5-25 ms per move, plus travel with a velocity
        velocity=velocity,
        exposure_time=0.5,
        time_scale=time_scale,
        faults=Faults(timeout=rate / 3, exception=rate / 3, nan=rate / 3, timeout_s=2.0),
        seed=seed,
    )
    objectives = [Objective("intensity", goal="maximize", key="stage_det_intensity")]
    planner = SobolPlanner([Real("x", -10, 10), Real("y", -10, 10)], objectives, seed=seed)

    def protocol(point, md):
        return set_settle_measure(
            point, movables=dict(zip("xy", stage.motors)), detectors=[stage.detector], md=md
        )

    campaign = Campaign(
        objectives=objectives,
        planner=planner,
        protocol=protocol,
        budget=budget,
        retries=0,
        name=f"realtime-faults-{seed}",
    )
    t0 = time.monotonic()
    result = campaign.run(RE, store=path)
    wall = time.monotonic() - t0
    return stage, result, open_store(path).to_dataframe(), wall


def _failures_named(cause):
    """The device failures a cause names: its parts that name a stage device.

    ``"FailedStatus: E1: stage_m0: ...; also: FailedStatus: E2: stage_m1: ...; instrument
    failure, measured again as experiment 7"`` -> ``["E1: stage_m0: ...", "E2: ..."]``.
    """
    parts = (p.removeprefix("also: ").removeprefix("FailedStatus: ") for p in cause.split("; "))
    return [p for p in parts if "stage_" in p]


def _audit(df, by_exp) -> list[str]:
    """What does not match between each experiment's record and its injected faults."""
    problems = []
    for i, faults in by_exp.items():
        row = df.loc[i]
        status, cause, kind = row["status"], row["cause"], row["failure_kind"]
        instrument = [f.text for f in faults if f.kind in INSTRUMENT_KINDS]
        where = f"experiment {i} ({status}, failure_kind {kind!r}, cause {cause!r})"
        if instrument:
            named = _failures_named(cause)
            if status != "failed" or kind != "instrument":
                problems.append(f"{where}: injected {instrument}, not an instrument failure")
            elif not named or named[0] not in instrument:
                problems.append(f"{where}: the first cause is not one of {instrument}")
            elif sorted(named) != sorted(instrument):
                problems.append(f"{where}: names {named}, injected {instrument}")
        elif faults:  # NaN readings only
            if status != "failed" or kind != "sample":
                problems.append(f"{where}: NaN injected, not a sample failure")
            elif "gave nan" not in cause or faults[0].device not in cause:
                problems.append(f"{where}: the cause does not name the NaN of {faults[0].device}")
        elif status != "done":
            problems.append(f"{where}: failed with no fault injected")
    return problems


def _faults_by_experiment(df, injected):
    """Each injected fault in the experiment running when it was drawn."""
    assert df["t_started"].notna().all() and df["t_finished"].notna().all()
    windows = list(zip(df.index, df["t_started"], df["t_finished"]))
    by_exp: dict[int, list] = {int(i): [] for i in df.index}
    for fault in injected:
        inside = [i for i, t0, t1 in windows if t0 <= fault.time <= t1]
        assert len(inside) == 1, f"{fault} drawn outside exactly one experiment: {inside}"
        by_exp[int(inside[0])].append(fault)
    return by_exp


@pytest.mark.slow
@pytest.mark.parametrize(
    "rate, seed, budget, time_scale, velocity",
    CAMPAIGNS,
    ids=[f"{int(c[0] * 100)}pct-seed{c[1]}-ts{c[3]}" for c in CAMPAIGNS],
)
def test_every_fault_is_accounted_for(
    RE, tmp_path, tally, rate, seed, budget, time_scale, velocity
):
    stage, result, df, wall = _run(
        RE, tmp_path / "c.zarr", rate, seed, budget, time_scale, velocity
    )
    injected = stage.injected_faults
    failed = df[df["status"] == "failed"]

    # no experiment dropped: contiguous ids, every one final
    assert list(df.index) == list(range(len(df)))
    assert set(df["status"]) <= {"done", "failed"}, df["status"].value_counts().to_dict()
    assert result.n_interrupted == 0
    assert result.n_done == (df["status"] == "done").sum()

    # re-runs: of an instrument failure only, once, at the same point, later
    reruns = df.loc[df["rerun_of"] >= 0, "rerun_of"].astype(int)
    assert reruns.is_unique, "an experiment was measured again more than once"
    for new, old in reruns.items():
        assert old < new and old not in reruns.index, (old, new)  # no re-run of a re-run
        assert df.at[old, "status"] == "failed" and df.at[old, "failure_kind"] == "instrument"
        assert (df.at[old, "x"], df.at[old, "y"]) == (df.at[new, "x"], df.at[new, "y"])

    # the whole budget: done + failed, a re-run failure counted once
    assert len(df) - len(reruns) == budget

    # every failure is an injected fault, every fault a failure, nothing else fails
    by_exp = _faults_by_experiment(df, injected)
    problems = _audit(df, by_exp)
    n_instrument = sum(any(f.kind in INSTRUMENT_KINDS for f in fs) for fs in by_exp.values())
    if (failed["failure_kind"] == "instrument").sum() != n_instrument:
        problems.append(
            f"{(failed['failure_kind'] == 'instrument').sum()} instrument failures for "
            f"{n_instrument} experiments with an injected timeout or exception"
        )

    if rate == 0:
        assert not injected and len(df) == budget and failed.empty
    else:
        assert injected  # the rates are high enough that faults did happen
    if rate <= 0.05:
        assert (df["status"] == "done").mean() >= 0.75  # most experiments succeed
    assert all(math.isfinite(v) for v in df.loc[df["status"] == "done", "intensity"])

    kinds = Counter(f.kind for f in injected)
    tally.append(
        {
            "experiments": len(df),
            "budget": budget,
            "done": int((df["status"] == "done").sum()),
            "failed_instrument": int((failed["failure_kind"] == "instrument").sum()),
            "failed_sample": int((failed["failure_kind"] == "sample").sum()),
            "reruns": len(reruns),
            "injected_timeout": kinds["timeout"],
            "injected_exception": kinds["exception"],
            "injected_nan": kinds["nan"],
            "several_faults": sum(
                sum(f.kind in INSTRUMENT_KINDS for f in fs) > 1 for fs in by_exp.values()
            ),
            "wall_s": wall,
        }
    )
    print(f"\n{rate:.0%} seed {seed} ts {time_scale}: {tally[-1]}")
    assert not problems, f"{len(problems)} experiment(s) not accounted for:\n" + "\n".join(problems)
