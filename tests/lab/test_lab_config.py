"""Labs in campaign files: the film lab and labs of stations, their errors, ``sdl station``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sdl import open_store
from sdl.cli import main
from sdl.config import load_campaign, load_config
from sdl.control import ControlChannel

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _sdl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``sdl ARGS`` in a fresh interpreter (unsigned control requests: no token)."""
    env = {k: v for k, v in os.environ.items() if k != "SDL_CONTROL_TOKEN"}
    return subprocess.run(
        [sys.executable, "-m", "sdl.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _film(**lab) -> dict:
    cfg = yaml.safe_load((EXAMPLES / "film_lab.yaml").read_text())
    cfg["lab"].update(lab)
    return cfg


# -- the examples ------------------------------------------------------------------------


def test_the_lab_examples_are_valid():
    film = load_config(EXAMPLES / "film_lab.yaml")
    assert film.lab.kind == "film" and film.lab.synth_stations == 3
    assert film.max_in_flight == 4
    assert film.final_in_flight is None  # the default: half of max_in_flight, >= the lanes
    # the film lab brings its parameters and objective into the config (and the store)
    assert [p.name for p in film.parameters] == ["speed", "temperature", "fraction_a", "anneal"]
    assert [(o.name, o.goal, o.key) for o in film.objectives] == [
        ("fom", "maximize", "spectrometer")
    ]
    color = load_config(EXAMPLES / "color_mixing_lab.yaml")
    assert [s.name for s in color.lab.stations] == ["mixer"] and color.protocol.name == "mix_color"


def test_film_lab_from_a_lab_file_runs_end_to_end(tmp_path):
    """``sdl run`` of a campaign whose ``lab:`` is another file: several steps, one store."""
    cfg = _film(time_scale=0.02, faults={})
    (tmp_path / "labs").mkdir()
    _write(tmp_path / "labs" / "film.yaml", {"lab": cfg.pop("lab")})
    cfg.update(lab="labs/film.yaml", budget=6)
    campaign = _write(tmp_path / "campaign.yaml", cfg)
    store = tmp_path / "film.zarr"
    proc = _sdl("run", str(campaign), "--store", str(store), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "lab 'film' (6 station(s))" in proc.stdout
    s = open_store(store)
    df = s.to_dataframe()
    assert (df["status"] == "done").sum() == 6 and len(df) == 6
    assert df["fom"].notna().all()
    assert s.campaign["lab"]["name"] == "film"
    assert [st["name"] for st in s.campaign["workflow"]] == [
        "synthesize",
        "transfer",
        "anneal",
        "unload",
        "characterize",
    ]
    # every experiment ran on a coater, then the furnace
    assert set(df["synthesize_station"]) <= {"synth-1", "synth-2", "synth-3"}
    assert set(df["anneal_station"]) == {"furnace"}
    # the stored config holds the lab itself: a resume needs no lab file
    stored = s.campaign["config"]
    assert stored["lab"]["kind"] == "film" and stored["lab"]["time_scale"] == 0.02
    assert load_config(stored).lab.kind == "film"


def test_one_station_color_mixing_lab_gives_the_plain_campaigns_table(tmp_path, RE):
    def small(name: str) -> dict:
        cfg = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
        cfg["budget"] = 5
        cfg["planner"]["options"].update(n_initial=3, num_restarts=2, raw_samples=64)
        devices = cfg["devices"] if "devices" in cfg else cfg["lab"]["stations"][0]["devices"]
        for device in devices.values():
            device["options"]["time_scale"] = 0.0
        return cfg

    load_campaign(small("color_mixing")).run(RE, store=tmp_path / "plain.zarr")
    lab_campaign = load_campaign(small("color_mixing_lab"))
    assert lab_campaign.lab is not None and list(lab_campaign.lab.stations) == ["mixer"]
    lab_campaign.run(RE, store=tmp_path / "lab.zarr")
    plain = open_store(tmp_path / "plain.zarr").to_dataframe()
    lab = open_store(tmp_path / "lab.zarr")
    assert lab.campaign["lab"]["name"] == "color-lab"
    cols = ["cyan", "magenta", "yellow", "distance", "status"]
    labdf = lab.to_dataframe()
    assert len(plain) == 5 and (plain["status"] == "done").all()
    assert plain[cols].to_dict("list") == labdf[cols].to_dict("list")
    assert set(labdf["measure_station"]) == {"mixer"}


def test_a_lab_of_stations_with_a_workflow_of_registered_step_plans(tmp_path, RE):
    """A general lab in YAML: devices by role, a shared resource, the film step plans."""

    def sim(name=None):
        dev = {"type": "sim_motor", "options": {"limits": [0, 10000]}}
        return {**dev, "name": name} if name else dev

    cfg = {
        "name": "coat",
        "budget": 3,
        "planner": {"name": "sobol"},
        "lab": {
            "name": "coat-lab",
            "stations": [
                {"name": "c-1", "devices": {"coater": sim("c1_coater")}},
                {"name": "c-2", "devices": {"coater": sim("c2_coater")}},
                {"name": "robot", "capacity": 1, "devices": {"arm": sim("arm")}},
            ],
            "resources": [{"name": "hood", "capacity": 2}],
        },
        "workflow": [
            {"name": "synthesize", "station": "c-*", "uses": ["hood"], "plan": "film.synthesize"},
            {"name": "transfer", "station": ["robot"], "plan": "film.transfer"},
        ],
        "parameters": [  # the film step plans record the recipe: fraction_a too
            {"name": "speed", "low": 500, "high": 8000},
            {"name": "fraction_a", "low": 0, "high": 1},
        ],
        "objectives": [{"name": "arm", "goal": "minimize"}],
    }
    campaign = load_campaign(cfg)
    assert campaign.lab.stations["c-2"].devices["coater"].name == "c2_coater"
    assert [s.name for s in campaign.workflow.steps] == ["synthesize", "transfer"]
    campaign.run(RE, store=tmp_path / "coat.zarr")
    s = open_store(tmp_path / "coat.zarr")
    df = s.to_dataframe()
    assert (df["status"] == "done").all() and len(df) == 3
    assert set(df["synthesize_station"]) <= {"c-1", "c-2"}
    assert s.campaign["workflow"][0]["plan"] == "sdl.protocols.film:synthesize"
    assert s.campaign["workflow"][0]["uses"] == ["hood"]


# -- mistakes: exit 2, the field named -----------------------------------------------------

_STATIONS = {
    "name": "two",
    "stations": [
        {"name": "a", "devices": {"m": {"type": "sim_motor"}}},
        {"name": "b", "capacity": 2},
    ],
    "resources": [{"name": "arm"}],
}
_WORKFLOW = [
    {"name": "first", "station": "a", "plan": "film.synthesize"},
    {"name": "second", "station": "b", "uses": ["arm"], "plan": "film.transfer"},
]
_GENERAL = {
    "name": "general",
    "budget": 2,
    "planner": {"name": "sobol"},
    "lab": _STATIONS,
    "workflow": _WORKFLOW,
    "parameters": [{"name": "speed", "low": 0, "high": 1}],
    "objectives": [{"name": "m"}],
}


def _changed(base: dict, **changes) -> dict:
    cfg = yaml.safe_load(yaml.safe_dump(base))  # a deep copy
    for dotted, value in changes.items():
        node, keys = cfg, dotted.split("__")
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        last = keys[-1]
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return cfg


_DELETE = object()
_COLOR = yaml.safe_load((EXAMPLES / "color_mixing.yaml").read_text())

BAD = [
    (
        "unknown-station",
        _changed(_GENERAL, workflow__1__station="c"),
        ["workflow[1].station", "'c' matches no station", "a, b"],
    ),
    (
        "unknown-station-in-a-list",
        _changed(_GENERAL, workflow__0__station=["a", "z"]),
        [],  # a list matching one station is fine: checked below as good
    ),
    (
        "unknown-resource",
        _changed(_GENERAL, workflow__1__uses=["hood"]),
        ["workflow[1].uses[0]", "'hood' matches no resource", "lab.resources"],
    ),
    (
        "capacity-0",
        _changed(_GENERAL, lab__stations__1__capacity=0),
        ["lab.stations[1].capacity", ">= 1", "give 1 or more"],
    ),
    (
        "resource-capacity-0",
        _changed(_GENERAL, lab__resources__0__capacity=0),
        ["lab.resources[0].capacity", ">= 1"],
    ),
    (
        "duplicate-station",
        _changed(_GENERAL, lab__stations__1__name="a"),
        ["lab.stations[1].name", "'a' is already the name of lab.stations[0]", "unique"],
    ),
    (
        "resource-named-like-a-station",
        _changed(_GENERAL, lab__resources__0__name="b"),
        ["lab.resources[0].name", "'b'", "unique"],
    ),
    (
        "duplicate-step",
        _changed(_GENERAL, workflow__1__name="first"),
        ["workflow[1].name", "'first'", "unique"],
    ),
    (
        "workflow-without-lab",
        _changed(_COLOR, workflow=_WORKFLOW),
        ["workflow:", "add a lab: section"],
    ),
    (
        "protocol-and-workflow",
        _changed(_GENERAL, protocol={"name": "mix_color"}),
        ["protocol:", "not both"],
    ),
    (
        "protocol-on-a-multi-station-lab",
        _changed(_GENERAL, workflow=_DELETE, protocol={"name": "mix_color"}),
        ["protocol:", "one-station lab", "has 2 stations", "workflow:"],
    ),
    (
        "lab-without-workflow-or-protocol",
        _changed(_GENERAL, workflow=_DELETE),
        ["workflow: missing"],
    ),
    (
        "devices-beside-a-lab",
        _changed(_GENERAL, devices=_COLOR["devices"]),
        ["devices:", "lab.stations[i].devices"],
    ),
    (
        "lookahead-without-lab",
        _changed(_COLOR, lookahead=3),
        ["lookahead:", "lab campaign only"],
    ),
    (
        "final-in-flight-without-lab",
        _changed(_COLOR, final_in_flight=2),
        ["final_in_flight:", "lab campaign only"],
    ),
    (
        "final-in-flight-zero",
        _changed(_GENERAL, final_in_flight=0),
        ["final_in_flight", "greater than 0"],
    ),
    (
        "unknown-lab-kind",
        _changed(_GENERAL, lab__kind="chemistry"),
        ["lab", "kind must be 'film'"],
    ),
    (
        "unknown-step-plan",
        _changed(_GENERAL, workflow__0__plan="film.synthesise"),
        ["workflow[0].plan", "unknown step plan 'film.synthesise'", "'film.synthesize'"],
    ),
    (
        "step-plan-import-path-without-allow-import",
        _changed(_GENERAL, workflow__0__plan="sdl.protocols.film:synthesize"),
        ["workflow[0].plan: 'sdl.protocols.film:synthesize'", "--allow-import"],
    ),
    (
        "station-device-import-path-without-allow-import",
        _changed(_GENERAL, lab__stations__0__devices__m__type="sdl.devices:SimMotor"),
        ["lab.stations[0].devices.m.type", "--allow-import"],
    ),
    (
        "unknown-station-device-type",
        _changed(_GENERAL, lab__stations__0__devices__m__type="sim_moter"),
        ["lab.stations[0].devices.m", "sim_moter"],
    ),
    (
        "the-same-device-name-twice",
        _changed(_GENERAL, lab__stations__1__devices={"m": {"type": "sim_motor"}}),
        ["lab.stations[1].devices.m", "'m' is taken by lab.stations[0].devices.m", "name:"],
    ),
    (
        "film-lab-with-a-protocol",
        _changed(_film(), protocol={"name": "mix_color"}),
        ["protocol:", "film lab runs its own workflow"],
    ),
    (
        "film-lab-other-parameters",
        _changed(_film(), parameters=[{"name": "x", "low": 0, "high": 1}]),
        ["parameters:", "speed, temperature, fraction_a, anneal"],
    ),
    (
        "film-fault-on-no-station",
        _changed(_film(), lab__faults={"synth-7": {"exception": 0.1}}),
        ["lab.faults", "synth-7", "synth-1, synth-2, synth-3"],
    ),
    (
        "film-unknown-step-duration",
        _changed(_film(), lab__durations={"spin": [1.0, 0.1]}),
        ["lab.durations", "'spin'", "synthesize"],
    ),
    (
        "film-workflow-on-an-unknown-station",
        _changed(
            _film(),
            workflow=[{"name": "s", "station": "oven", "plan": "film.anneal"}],
        ),
        ["workflow[0].station", "'oven'", "furnace"],
    ),
    (
        "film-typo",
        _changed(_film(), lab__synth_station=2),
        ["lab.synth_station", "did you mean 'synth_stations'"],
    ),
    (
        "qserver-unknown-station",
        _changed(
            _GENERAL, qserver={"managers": {"a": ["tcp://h:1"], "z": ["tcp://h:2"]}, "proxy": "h:3"}
        ),
        ["qserver.managers.z", "no station 'z'", "a, b"],
    ),  # fmt: skip
    (
        "qserver-bad-address",
        _changed(_GENERAL, qserver={"managers": {"a": ["h:1"]}, "proxy": "h:3"}),
        ["qserver.managers", "'h:1' is not a manager address", "tcp://HOST:PORT"],
    ),
    (
        "qserver-bad-proxy",
        _changed(_GENERAL, qserver={"managers": {"a": ["tcp://h:1"]}, "proxy": "h"}),
        ["qserver.proxy", "is not HOST:PORT"],
    ),
    (
        "qserver-station-without-manager",
        _changed(_GENERAL, qserver={"managers": {"a": ["tcp://h:1"]}, "proxy": "h:3"}),
        ["qserver.managers", "no manager for station 'b'", "one address per lane"],
    ),
    (
        "qserver-lanes-other-than-capacity",
        _changed(
            _GENERAL, qserver={"managers": {"a": ["tcp://h:1"], "b": ["tcp://h:2"]}, "proxy": "h:3"}
        ),
        ["qserver.managers.b", "1 address(es) for a station of capacity 2"],
    ),  # fmt: skip
    (
        "qserver-without-a-lab",
        {**_COLOR, "qserver": {"managers": {"a": ["tcp://h:1"]}, "proxy": "h:3"}},
        ["qserver:", "applies to a lab campaign only"],
    ),
]


@pytest.mark.parametrize("cfg, words", [pytest.param(c, w, id=i) for i, c, w in BAD if w])
def test_a_bad_lab_config_exits_2_naming_the_field(cfg, words, tmp_path, capsys):
    path = _write(tmp_path / "campaign.yaml", cfg)
    store = tmp_path / "s.zarr"
    code = main(["run", str(path), "--store", str(store), "--check"])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    for word in words:
        assert word in err, f"{word!r} not in:\n{err}"
    assert not store.exists()


def test_the_good_variants_check_ok(tmp_path, capsys):
    """The bad cases' base, and a list of station names, pass ``sdl run --check``."""
    queues = {"managers": {"a": ["tcp://h:1"], "b": ["tcp://h:2", "http://h:3"]}, "proxy": "h:4"}
    for i, cfg in enumerate([
        _GENERAL,
        _changed(_GENERAL, workflow__0__station=["a", "z"]),
        _changed(_GENERAL, qserver=queues),  # checked, not connected to
    ]):  # fmt: skip
        path = _write(tmp_path / f"good{i}.yaml", cfg)
        code = main(["run", str(path), "--store", str(tmp_path / "s.zarr"), "--check"])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert "lab 'two' (2 station(s)), workflow first -> second" in out
    # and the station device import path runs with --allow-import
    cfg = _changed(_GENERAL, lab__stations__0__devices__m__type="sdl.devices:SimMotor")
    path = _write(tmp_path / "imports.yaml", cfg)
    code = main(
        ["run", str(path), "--store", str(tmp_path / "s.zarr"), "--check", "--allow-import"]
    )
    assert code == 0, capsys.readouterr().err


def test_a_missing_lab_file_exits_2(tmp_path):
    cfg = _film()
    cfg["lab"] = "labs/nowhere.yaml"
    path = _write(tmp_path / "campaign.yaml", cfg)
    proc = _sdl("run", str(path), "--store", str(tmp_path / "s.zarr"), "--check")
    assert proc.returncode == 2, proc.stderr
    assert "lab: no lab file at" in proc.stderr
    assert str(tmp_path / "labs" / "nowhere.yaml") in proc.stderr  # relative to the campaign file
    assert "Traceback" not in proc.stderr


def test_errors_inside_a_lab_file_name_the_field_and_the_file(tmp_path, capsys):
    cfg = _changed(_GENERAL)
    lab = cfg.pop("lab")
    lab["stations"][0]["capacity"] = 0
    _write(tmp_path / "shared-lab.yaml", lab)  # the bare mapping, without ``lab:``
    cfg["lab"] = "shared-lab.yaml"
    path = _write(tmp_path / "campaign.yaml", cfg)
    code = main(["run", str(path), "--check", "--store", str(tmp_path / "s.zarr")])
    err = capsys.readouterr().err
    assert code == 2
    assert "lab.stations[0].capacity" in err and "(lab: shared-lab.yaml)" in err


# -- sdl station ---------------------------------------------------------------------------


def test_sdl_station_usage_errors(tmp_path, capsys):
    assert main(["station", "disable", str(tmp_path / "nope.zarr"), "synth-1"]) == 2
    assert "no campaign store at" in capsys.readouterr().err
    (tmp_path / "idle.zarr").mkdir()
    code = main(["station", "disable", str(tmp_path / "idle.zarr"), "synth-1", "--timeout", "0.3"])
    assert code == 1
    assert "no answer from the campaign" in capsys.readouterr().err
    assert ControlChannel(tmp_path / "idle.zarr").pending() == []  # withdrawn
    with pytest.raises(SystemExit) as exc:
        main(["station", "pause", str(tmp_path / "idle.zarr"), "synth-1"])
    assert exc.value.code == 2


def _wait(predicate, timeout: float, child: subprocess.Popen, what: str):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert child.poll() is None, f"the campaign ended early:\n{child.stdout.read()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_sdl_station_disable_and_enable_a_running_film_lab(tmp_path):
    cfg = _film(time_scale=0.5, faults={})  # an experiment takes ~1 s
    cfg.update(budget=400, max_in_flight=6)
    path = _write(tmp_path / "campaign.yaml", cfg)
    store = tmp_path / "film.zarr"
    env = {k: v for k, v in os.environ.items() if k != "SDL_CONTROL_TOKEN"}
    child = subprocess.Popen(
        [sys.executable, "-m", "sdl.cli", "run", str(path), "--store", str(store), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        _wait(
            lambda: ControlChannel(store).state().get("state") == "running",
            60,
            child,
            "the campaign to run",
        )
        time.sleep(1.5)  # every coater busy
        off = _sdl("station", "disable", str(store), "synth-1", "--who", "ada")
        assert off.returncode == 0, off.stderr
        assert "synth-1 out of service" in off.stdout
        time.sleep(3.0)  # synth-1 idle while the others work
        on = _sdl("station", "enable", str(store), "synth-1", "--who", "bob")
        assert on.returncode == 0, on.stderr
        assert "back in service" in on.stdout
        refused = _sdl("station", "disable", str(store), "synth-9")
        assert refused.returncode == 1 and "no station 'synth-9'" in refused.stderr
        time.sleep(3.0)  # synth-1 works again
        stop = _sdl("control", "stop", str(store))
        assert stop.returncode == 0, stop.stderr
        assert child.wait(60) == 0
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdout.close()
    s = open_store(store)
    run = s.run(s.campaign_runs[0])
    stations = run.to_dataframe("stations")
    ours = stations[stations["station"] == "synth-1"]
    assert list(ours["in_service"]) == [0, 1], stations
    assert list(ours["who"]) == ["ada", "bob"]
    t_off, t_on = ours["time"].iloc[0], ours["time"].iloc[1]
    steps = run.to_dataframe("steps")
    started = steps[(steps["status"] == "started") & (steps["station"] == "synth-1")]
    assert ((started["time"] > t_off) & (started["time"] < t_on)).sum() == 0, started
    # synth-1 worked before and after: the test sees the station's absence, not idleness
    assert (started["time"] < t_off).any() and (started["time"] > t_on).any(), started
    others = steps[(steps["status"] == "started") & (steps["station"] == "synth-2")]
    assert ((others["time"] > t_off) & (others["time"] < t_on)).any()


def test_final_in_flight_reaches_the_campaign_and_its_metadata(tmp_path):
    cfg = yaml.safe_load((EXAMPLES / "film_lab.yaml").read_text())
    cfg["final_in_flight"] = 2
    campaign = load_campaign(str(_write(tmp_path / "film.yaml", cfg)))
    assert campaign.lab_options.final_in_flight == 2
    assert campaign._describe_lab()["final_in_flight"] == 2
