"""SIGINT, SIGTERM and SIGHUP reaching a campaign process, in real processes on a real store.

- With nobody at a terminal (``sdl run`` under nohup, a service, a job scheduler), SIGINT
  stops the campaign cleanly after the current experiment and a second SIGINT aborts it.
  Before, Python's ``KeyboardInterrupt`` panicked the RunEngine, and with the control
  channel on the process then waited for an operator's decision that a panicked RunEngine
  could not carry out: it hung with an experiment ``running`` in the store.
- ``campaign.run(control=True, interactive=True)`` from a Python script in a terminal
  takes Ctrl-C as a pause and offers resume / stop / abort, as ``sdl run`` does. Before, the
  RunEngine sdl made had no SIGINT handling: the same panic, then a traceback at "stop".
- SIGTERM (``systemctl stop``, ``docker stop``), in a terminal or not, aborts the campaign
  cleanly. Before, the process died at once as in a crash: a motor went on moving and the
  store said an experiment was still ``running``.
- Closing the terminal (SIGHUP: a lost SSH connection) aborts it as SIGTERM does, though
  every write to the terminal now fails. Before, the process died as in a crash. Under
  ``nohup`` the campaign goes on.

Moves and exposures take real time here (0.05-0.2 s each), so the signals land while
experiments are under way.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from sdl import open_store
from sdl.control import ControlChannel

from .test_cli_ctrl_c import PROMPT, Terminal, _count, _sigint_to_a_thread
from .test_durability import KILL_CONFIG, STORM_CONFIG, _sdl

STOPPED = {"campaign stopped", "campaign stopped before it ran"}
ABORTED = {"campaign aborted", "campaign aborted before it ran", "campaign ended before it ran"}


def _config(tmp_path, config, budget=60):
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump({**config, "budget": budget}))
    return path


def _start(cmd):
    """A process with no terminal: stdin from /dev/null, output to a pipe."""
    return subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_for(store, n, proc, timeout=60.0):
    end = time.monotonic() + timeout
    while _count(store) < n:
        assert proc.poll() is None, proc.communicate()[0][-2000:]
        assert time.monotonic() < end, f"fewer than {n} experiments after {timeout} s"
        time.sleep(0.05)


def _finish(proc, timeout=60.0):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"still running {timeout} s after SIGINT:\n{out[-3000:]}") from None
    return proc.returncode, out


def _check_stopped(store, budget):
    view = open_store(store)
    df = view.to_dataframe()
    assert set(df["status"]) <= {"done", "interrupted"}, df[["status", "cause"]]
    assert 3 <= (df["status"] == "done").sum() < budget
    assert set(df.loc[df["status"] == "interrupted", "cause"]) <= STOPPED
    assert view.run(view.campaign_runs[0]).stop["exit_status"] == "success"
    return view


def test_sigint_without_a_terminal_stops_the_campaign_cleanly(tmp_path):
    store = tmp_path / "sigint.zarr"
    proc = _start(_sdl("run", str(_config(tmp_path, KILL_CONFIG)), "--store", str(store)))
    _wait_for(store, 3, proc)
    proc.send_signal(signal.SIGINT)
    code, out = _finish(proc)
    assert code == 0, out[-3000:]
    assert "stops after the current experiment" in out and "Traceback" not in out, out[-3000:]
    view = _check_stopped(store, 60)
    assert ("stop", "SIGINT") in [(e["action"], e["detail"]) for e in view.operator_log]
    assert ControlChannel(store).state()["state"] == "finished"


def test_a_second_sigint_without_a_terminal_aborts(tmp_path):
    # experiments of about 0.4 s: the second SIGINT comes while the first waits for the
    # current experiment to end
    store = tmp_path / "abort.zarr"
    proc = _start(_sdl("run", str(_config(tmp_path, STORM_CONFIG)), "--store", str(store)))
    _wait_for(store, 3, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.15)
    proc.send_signal(signal.SIGINT)
    code, out = _finish(proc)
    assert code == 0 and "Traceback" not in out, out[-3000:]
    view = open_store(store)
    df = view.to_dataframe()
    assert set(df["status"]) <= {"done", "interrupted"}, df[["status", "cause"]]
    assert (df["status"] == "done").sum() < 60
    assert "campaign aborted" in set(df.loc[df["status"] == "interrupted", "cause"])
    assert view.run(view.campaign_runs[0]).stop["exit_status"] == "abort"
    actions = [(e["action"], e["detail"]) for e in view.operator_log]
    assert ("stop", "SIGINT") in actions and ("abort", "SIGINT") in actions
    assert ControlChannel(store).state()["state"] == "aborted"


SCRIPT = """
import sys
from sdl import load_campaign

campaign = load_campaign(sys.argv[1])
result = campaign.run(store=sys.argv[2], {options})
print(result.summary())
print("store:", sys.argv[2])
"""


def _script(tmp_path, options):
    path = tmp_path / "campaign.py"
    path.write_text(SCRIPT.format(options=options))
    return path


def test_ctrl_c_in_a_python_script_with_interactive_pauses_then_stops(tmp_path):
    store = tmp_path / "api.zarr"
    script = _script(tmp_path, "control=True, interactive=True")
    cfg = _config(tmp_path, KILL_CONFIG)
    term = Terminal(argv=[sys.executable, str(script), str(cfg), str(store)])
    try:
        while _count(store) < 3:
            assert term.proc.poll() is None, term.text[-2000:]
            time.sleep(0.1)
        term.proc.send_signal(signal.SIGINT)
        term.expect(PROMPT)
        term.send("s")
        term.expect("store:")
        assert term.proc.wait(30) == 0
    finally:
        term.proc.kill()
        term.proc.wait()
    assert "Traceback" not in term.text, term.text[-3000:]
    view = _check_stopped(store, 60)
    terminal = [(e["action"], e["detail"]) for e in view.operator_log if e["who"] != "RunEngine"]
    assert terminal == [("stop", "in the terminal")]


def test_sigint_to_any_thread_of_a_python_script_stops_its_campaign(tmp_path):
    # campaign.run() with everything default, no terminal; the signal goes to one of the
    # process's other threads, which the main thread's polling wait still hears
    store = tmp_path / "api.zarr"
    script = _script(tmp_path, "")
    proc = _start([sys.executable, str(script), str(_config(tmp_path, KILL_CONFIG)), str(store)])
    _wait_for(store, 3, proc)
    _sigint_to_a_thread(proc.pid)
    code, out = _finish(proc)
    assert code == 0 and "Traceback" not in out, out[-3000:]
    assert "store:" in out
    view = _check_stopped(store, 60)
    assert ("stop", "SIGINT") in [(e["action"], e["detail"]) for e in view.operator_log]


def _check_aborted(store, signal_name="SIGTERM"):
    view = open_store(store)
    df = view.to_dataframe()
    assert set(df["status"]) <= {"done", "interrupted"}, df[["status", "cause"]]
    assert 2 <= (df["status"] == "done").sum() < 60  # the third may be the one cut
    assert set(df.loc[df["status"] == "interrupted", "cause"]) <= ABORTED
    assert view.run(view.campaign_runs[0]).stop["exit_status"] == "abort"
    assert ("abort", signal_name) in [(e["action"], e["detail"]) for e in view.operator_log]
    assert ControlChannel(store).state()["state"] == "aborted"


def test_sigterm_aborts_the_campaign_cleanly(tmp_path):
    store = tmp_path / "term.zarr"
    proc = _start(_sdl("run", str(_config(tmp_path, STORM_CONFIG)), "--store", str(store)))
    _wait_for(store, 3, proc)
    proc.send_signal(signal.SIGTERM)
    code, out = _finish(proc)
    assert code == 0 and "Traceback" not in out, out[-3000:]
    assert "SIGTERM: aborting the campaign" in out
    _check_aborted(store)


def test_sigterm_in_a_terminal_aborts_too(tmp_path):
    # in a terminal bluesky keeps SIGINT (Ctrl-C pauses); SIGTERM is still sdl's
    store = tmp_path / "term.zarr"
    term = Terminal("run", str(_config(tmp_path, STORM_CONFIG)), "--store", str(store))
    try:
        while _count(store) < 3:
            assert term.proc.poll() is None, term.text[-2000:]
            time.sleep(0.1)
        term.proc.send_signal(signal.SIGTERM)
        term.expect("store:")
        assert term.proc.wait(30) == 0
    finally:
        term.proc.kill()
        term.proc.wait()
    assert "Traceback" not in term.text, term.text[-3000:]
    _check_aborted(store)


@pytest.mark.parametrize("paused_first", [False, True], ids=["running", "paused"])
def test_closing_the_terminal_aborts_the_campaign_cleanly(tmp_path, paused_first):
    # the terminal is the campaign's controlling terminal; closing it sends SIGHUP, and from
    # then on every write to it fails. Before, the process died of the SIGHUP as in a crash:
    # the experiment under way stayed `running`, the channel said `running`, no stop document.
    # "paused": the operator pressed Ctrl-C (typed into the terminal, as a person does), and
    # the connection was lost while the campaign waited at the prompt
    store = tmp_path / "hup.zarr"
    term = Terminal(
        "run", str(_config(tmp_path, STORM_CONFIG)), "--store", str(store), controlling=True
    )
    try:
        while _count(store) < 3:
            assert term.proc.poll() is None, term.text[-2000:]
            time.sleep(0.1)
        if paused_first:
            os.write(term.master, b"\x03")  # the terminal's interrupt character: SIGINT
            term.expect(PROMPT)
        term.hang_up()
        code = term.proc.wait(60)
    finally:
        term.proc.kill()
        term.proc.wait()
    assert code == 0, f"exit {code}: {term.text[-2000:]}"
    _check_aborted(store, "SIGHUP")


def test_under_nohup_a_hangup_leaves_the_campaign_running(tmp_path):
    # nohup starts the campaign with SIGHUP ignored; sdl keeps it so
    nohup = shutil.which("nohup")
    assert nohup, "coreutils' nohup is on every POSIX system"
    store = tmp_path / "nohup.zarr"
    cfg = _config(tmp_path, STORM_CONFIG, budget=8)
    proc = _start([nohup, *_sdl("run", str(cfg), "--store", str(store))])
    _wait_for(store, 3, proc)
    before = _count(store)
    assert proc.poll() is None and before < 8, "premise: the SIGHUP lands mid-campaign"
    proc.send_signal(signal.SIGHUP)
    code, out = _finish(proc)
    assert code == 0 and "Traceback" not in out, out[-3000:]
    view = open_store(store)
    df = view.to_dataframe()
    assert list(df["status"]) == ["done"] * 8, df[["status", "cause"]]
    assert view.run(view.campaign_runs[0]).stop["exit_status"] == "success"
    assert not [e for e in view.operator_log if e["detail"] == "SIGHUP"]
    assert ControlChannel(store).state()["state"] == "finished"
