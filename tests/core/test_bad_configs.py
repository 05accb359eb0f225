"""A corpus of bad campaign files: each is refused before the store exists, by name.

Every case runs the real command line in-process (``sdl.cli.main(["run", FILE, "--store",
STORE])``) against real simulated devices, and asserts exit status 2, no traceback, the
offending field named in the message, and that no store was created.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from sdl.cli import main

ROOT = Path(__file__).resolve().parents[2]
BASES = {
    name: yaml.safe_load((ROOT / "examples" / f"{name}.yaml").read_text())
    for name in ("alignment", "color_mixing")
}


def _mutated(base: str, changes: dict[str, object]) -> dict:
    """``base`` with each dotted path (``"parameters.0.high"``) set; ``DELETE`` removes."""
    cfg = copy.deepcopy(BASES[base])
    for path, value in changes.items():
        *head, last = path.split(".")
        node = cfg
        for part in head:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        key = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[key]
        elif isinstance(node, list) and key == len(node):
            node.append(value)
        else:
            node[key] = value
    return cfg


DELETE = object()

#: a case makes a campaign file under ``tmp`` and returns ``(file, extra CLI arguments)``
Maker = Callable[[Path], tuple[Path, list[str]]]


def mut(changes: dict[str, object], base: str = "alignment", args: tuple = ()) -> Maker:
    def make(tmp: Path) -> tuple[Path, list[str]]:
        path = tmp / "campaign.yaml"
        path.write_text(yaml.safe_dump(_mutated(base, changes), sort_keys=False))
        return path, list(args)

    return make


def text(body: str | bytes) -> Maker:
    def make(tmp: Path) -> tuple[Path, list[str]]:
        path = tmp / "campaign.yaml"
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body)
        return path, []

    return make


def store_at(where: Callable[[Path], Path]) -> Maker:
    """The good alignment campaign with ``store:`` set to ``where(tmp)`` (prepared there)."""

    def make(tmp: Path) -> tuple[Path, list[str]]:
        cfg = _mutated("alignment", {"store": str(where(tmp))})
        path = tmp / "campaign.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path, ["--store", str(where(tmp))]

    return make


def _a_file(tmp: Path) -> Path:
    (tmp / "notes.txt").write_text("not a store")
    return tmp / "notes.txt"


def _under_a_file(tmp: Path) -> Path:
    (tmp / "notes.txt").write_text("not a store")
    return tmp / "notes.txt" / "run.zarr"


def _not_writable(tmp: Path) -> Path:
    if os.geteuid() == 0:  # root writes anywhere by permission; sysfs refuses new folders
        return Path("/sys/sdl-test-store.zarr")
    folder = tmp / "locked"
    folder.mkdir(exist_ok=True)
    folder.chmod(0o555)
    return folder / "run.zarr"


GOOD_YAML = (ROOT / "examples" / "alignment.yaml").read_text()
ALIGN_TEXT = yaml.safe_dump(BASES["alignment"], sort_keys=False)

CASES = [
    # -- the file itself -------------------------------------------------------------------
    ("duplicate-top-key", text(GOOD_YAML + "budget: 5\n"), ["budget", "line 5", "line 33"]),
    (
        "duplicate-nested-key",
        text(GOOD_YAML.replace("      seed: 2\n", "      seed: 2\n      seed: 3\n")),
        ["seed", "line 17", "line 18"],
    ),
    ("not-utf8", text(GOOD_YAML.encode() + b"# caf\xe9\n"), ["UTF-8", "line 33"]),
    ("not-yaml", text("budget: [1, 2\n"), ["not valid YAML"]),
    ("top-level-list", text("- just\n- a list\n"), ["top level", "mapping"]),
    ("empty-file", text(""), ["empty"]),
    # -- the store -------------------------------------------------------------------------
    ("empty-store", text(GOOD_YAML + "store:\n"), ["store", "empty"]),
    ("blank-store", mut({"store": "  "}), ["store", "empty"]),
    ("store-is-a-file", store_at(_a_file), ["store", "is a file"]),
    ("store-under-a-file", store_at(_under_a_file), ["store", "notes.txt", "is a file"]),
    ("store-not-writable", store_at(_not_writable), ["store", "not writable"]),
    # -- names a Zarr path cannot hold -----------------------------------------------------
    ("param-name-slash", mut({"parameters.0.name": "x/y"}), ["parameters[0].name", "A-Z"]),
    ("param-name-dotdot", mut({"parameters.0.name": ".."}), ["parameters[0].name", "'.'"]),
    ("objective-name-space", mut({"objectives.0.name": "peak height"}), ["objectives[0].name"]),
    (
        "measurement-name-dot",
        mut({"measurements": [{"name": ".hidden", "key": "stage_m0"}]}),
        ["measurements[0].name"],
    ),
    ("param-name-colon", mut({"parameters.1.name": "y:1"}), ["parameters[1].name"]),
    # -- the dry run against the devices ---------------------------------------------------
    (
        "objective-key-typo",
        mut({"objectives.0.key": "stage_det_intensty"}),
        ["objectives.intensity.key", "stage_det_intensty", "did you mean 'stage_det_intensity'"],
    ),
    (
        "objective-no-key-name-unknown",
        mut({"objectives.0": {"name": "brightness", "goal": "maximize"}}),
        ["objectives.brightness", "'brightness'", "stage_det_intensity"],
    ),
    (
        "measurement-key-unknown",
        mut({"measurements": [{"name": "pos", "key": "stage_m7"}]}),
        ["measurements.pos.key", "stage_m7"],
    ),
    (
        "color-key-typo",
        mut({"objectives.0.key": "station_sensor_dist"}, base="color_mixing"),
        ["objectives.distance.key", "station_sensor_distance"],
    ),
    (
        "function-module-missing",
        mut(
            {"objectives.0": {"name": "score", "function": "no_such_module_xyz:score"}},
            args=["--allow-import"],
        ),
        ["objectives.score.function", "no_such_module_xyz"],
    ),
    (
        "function-attribute-missing",
        mut(
            {"objectives.0": {"name": "score", "function": "math:no_such_function"}},
            args=["--allow-import"],
        ),
        ["objectives.score.function", "no_such_function"],
    ),
    (
        "function-not-callable",
        mut({"objectives.0": {"name": "score", "function": "math:pi"}}, args=["--allow-import"]),
        ["objectives.score.function", "not callable"],
    ),
    (
        "range-beyond-motor-limits",
        mut({"parameters.0.high": 20}),
        ["parameters.x", "[-10.0, 20.0]", "stage_m0", "[-10.0, 10.0]"],
    ),
    (
        "range-beyond-dispenser-limits",
        mut({"parameters.0.high": 150}, base="color_mixing"),
        ["parameters.cyan", "station_cyan", "[0.0, 100.0]"],
    ),
    (
        "outcome-constraint-unknown",
        mut({"planner.options.outcome_constraints": ["viscosity <= 50"]}),
        ["outcome_constraints", "viscosity", "measurements"],
    ),
    (
        "outcome-constraint-typo",
        mut(
            {
                "measurements": [{"name": "position", "key": "stage_m0"}],
                "planner.options.outcome_constraints": ["positon <= 5"],
            }
        ),
        ["outcome_constraints", "positon", "did you mean 'position'"],
    ),
    (
        "outcome-constraint-malformed",
        mut({"planner.options.outcome_constraints": ["x << 5"]}),
        ["x << 5"],
    ),
    ("fixed-out-of-range", mut({"fixed": {"x": 50}}), ["fixed.x", "50", "[-10.0, 10.0]"]),
    (
        "fixed-not-a-choice",
        mut(
            {
                "parameters.2": {"name": "mode", "type": "categorical", "choices": ["a", "b"]},
                "fixed": {"mode": "c"},
            }
        ),
        ["fixed.mode", "'c'", "'a', 'b'"],
    ),
    (
        "fixed-integer-fraction",
        mut(
            {
                "parameters.2": {"name": "n", "type": "integer", "low": 1, "high": 5},
                "fixed": {"n": 2.5},
            }
        ),
        ["fixed.n", "whole number"],
    ),
    ("fixed-text-for-real", mut({"fixed": {"x": "left"}}), ["fixed.x", "number"]),
    ("fixed-unknown", mut({"fixed": {"z": 1}}), ["fixed", "'z'"]),
    (
        "warm-start-missing",
        mut({"warm_start": "/nonexistent/old_runs.csv"}),
        ["warm_start", "/nonexistent/old_runs.csv"],
    ),
    # -- common mistakes -------------------------------------------------------------------
    ("unknown-planner", mut({"planner.name": "gradient-descent"}), ["planner", "botorch"]),
    ("unknown-planner-option", mut({"planner.options.restarts": 3}), ["restarts", "num_restarts"]),
    ("unknown-protocol", mut({"protocol.name": "dance"}), ["protocol", "set_settle_measure"]),
    ("missing-protocol", mut({"protocol": DELETE}), ["protocol", "missing"]),
    ("unknown-device-type", mut({"devices.stage.type": "hexapod"}), ["devices.stage", "hexapod"]),
    ("unknown-device-option", mut({"devices.stage.options.axes": 3}), ["devices.stage", "n_axes"]),
    ("no-devices", mut({"devices": {}}), ["devices"]),
    ("negative-budget", mut({"budget": -5}), ["budget", "greater than 0"]),
    ("budget-text", mut({"budget": "many"}), ["budget", "whole number"]),
    ("zero-batch", mut({"batch_size": 0}), ["batch_size"]),
    ("negative-retries", mut({"retries": -1}), ["retries"]),
    ("seed-text", mut({"seed": "abc"}), ["seed"]),
    ("low-above-high", mut({"parameters.0.low": 50}), ["parameters[0]", "swap"]),
    ("low-equals-high", mut({"parameters.0.low": 10}), ["parameters[0]", "less than high"]),
    ("low-text", mut({"parameters.0.low": "ten"}), ["parameters[0].low", "number"]),
    ("log-with-negative-low", mut({"parameters.0.log": True}), ["parameters[0]", "low > 0"]),
    (
        "categorical-no-choices",
        mut({"parameters.1": {"name": "y", "type": "categorical", "choices": []}}),
        ["parameters[1].choices"],
    ),
    (
        "categorical-choices-missing",
        mut({"parameters.1": {"name": "y", "type": "categorical"}}),
        ["parameters[1].choices", "missing"],
    ),
    (
        "integer-fraction",
        mut({"parameters.1": {"name": "y", "type": "integer", "low": 1.5, "high": 4}}),
        ["parameters[1].low", "whole number"],
    ),
    ("parameter-type", mut({"parameters.1.type": "complex"}), ["parameters[1]", "categorical"]),
    ("parameter-field-typo", mut({"parameters.0.hgh": 5}), ["'hgh'", "did you mean 'high'"]),
    ("duplicate-parameter", mut({"parameters.1.name": "x"}), ["parameters", "duplicate", "'x'"]),
    ("unknown-top-level", mut({"bugdet": 10}), ["'bugdet'", "did you mean 'budget'"]),
    ("no-parameters", mut({"parameters": []}), ["parameters"]),
    ("goal-typo", mut({"objectives.0.goal": "maximise"}), ["objectives[0].goal", "maximise"]),
    (
        "key-and-function",
        mut({"objectives.0.function": "math:fabs"}),
        ["objectives[0]", "either key or function"],
    ),
    (
        "function-no-colon",
        mut({"objectives.0": {"name": "s", "function": "math.fabs"}}),
        ["function"],
    ),
    ("unknown-param-device", mut({"parameters.0.device": "stage_m9"}), ["parameters.x.device"]),
    ("unknown-detector", mut({"protocol.options.detectors": ["camera"]}), ["detectors", "camera"]),
    (
        "flush-interval",
        mut({"store_options": {"flush_interval": 0}}),
        ["store_options.flush_interval"],
    ),
    ("approval", mut({"approval": "email"}), ["approval", "'email'"]),
    (
        "fault-probability",
        mut({"devices.stage.options.faults": {"timeout": 1.5}}),
        ["devices.stage.options.faults.timeout", "probability"],
    ),
]


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("make, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_campaign_is_refused_by_name(make, words, tmp_path, capsys):
    path, extra = make(tmp_path)
    store = tmp_path / "never.zarr"
    args = ["run", str(path), "--store", str(store), "--quiet", "--no-control"]
    code = main([*args, *extra] if extra else args)
    out, err = capsys.readouterr()
    assert code == 2, f"exit {code}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in out + err
    for word in words:
        assert word in err, f"{word!r} not in: {err}"
    assert not store.exists()  # refused before the store was created
    assert "sdl: campaign" not in out  # ... and before the campaign was announced
