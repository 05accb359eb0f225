"""docs/python.md: its examples run, and BestEffortCallback follows a campaign cleanly."""

import functools
import re
from pathlib import Path

from bluesky.callbacks.best_effort import BestEffortCallback
from ophyd.sim import det, motor

import sdl
from sdl import Campaign, Objective, Real
from sdl.protocols import set_settle_measure
from sdl.store import ZarrWriter

DOC = Path(__file__).resolve().parents[2] / "docs" / "python.md"


def test_every_example_of_the_python_page_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 4
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {"__name__": "__doc_example__"})
    out = capsys.readouterr().out
    assert "experiments: 6 done" in out and "experiments: 5 done" in out
    assert len(sdl.open_store("runs/own-re.zarr").to_dataframe()) == 3


def _campaign(budget):
    return Campaign(
        parameters=[Real("x", -5.0, 5.0)],
        objectives=[Objective("det", goal="maximize")],
        protocol=functools.partial(set_settle_measure, movables={"x": motor}, detectors=[det]),
        planner="sobol",
        budget=budget,
    )


def test_best_effort_callback_sees_only_the_experiments(RE, store_path, capsys, caplog):
    bec = BestEffortCallback()
    bec.disable_plots()
    RE.subscribe(sdl.experiment_runs(bec))
    writer = ZarrWriter(store_path)
    RE.subscribe(writer)
    RE(_campaign(3).plan())
    writer.close()
    captured = capsys.readouterr()
    text = captured.out + captured.err + caplog.text
    # a table per experiment, and none of the KeyErrors the interleaved campaign run causes
    assert text.count("generator set_settle_measure") == 3
    assert "Traceback" not in text and "exception raised in the callback" not in text


def test_without_the_filter_best_effort_callback_is_confused(RE, store_path, capsys, caplog):
    # why the filter exists: the campaign run's documents interleave with the experiments'
    bec = BestEffortCallback()
    bec.disable_plots()
    RE.subscribe(bec)
    writer = ZarrWriter(store_path)
    RE.subscribe(writer)
    RE(_campaign(2).plan())
    writer.close()
    captured = capsys.readouterr()
    assert "KeyError" in captured.out + captured.err + caplog.text
