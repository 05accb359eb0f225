"""Ctrl-C in `sdl run`, in a real terminal (a pseudo-terminal): pause, then resume or stop."""

import fcntl
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import termios
import time

import pytest
import yaml

from sdl import open_store

from .test_durability import KILL_CONFIG, _sdl

PROMPT = "[r]esume, [s]top"


def _login_terminal():
    """In the child: stdin's terminal becomes the controlling one, and SIGHUP and SIGINT act
    as in a login session (a test run under ``nohup ... &`` ignores both, and children
    inherit that)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Terminal:
    """`sdl ...` with its stdin, stdout and stderr on a pseudo-terminal."""

    def __init__(self, *args, argv=None, controlling=False):
        """``sdl ARGS``, or the command ``argv`` if given.

        ``controlling``: the terminal is the process's controlling terminal, in a session of
        its own, as a login shell's is: closing it (:meth:`hang_up`) sends it SIGHUP.
        """
        exe = shutil.which("sdl")
        cmd = [exe, *args] if exe else [sys.executable, "-m", "sdl.cli", *args]
        cmd = argv if argv is not None else cmd
        self.master, slave = pty.openpty()
        session = {}
        if controlling:
            session = {"start_new_session": True, "preexec_fn": _login_terminal}
        self.proc = subprocess.Popen(
            cmd, stdin=slave, stdout=slave, stderr=slave, close_fds=True, **session
        )
        os.close(slave)
        self.text = ""

    def hang_up(self):
        """Close the terminal, as a lost SSH connection or a closed window does."""
        os.close(self.master)

    def expect(self, needle, timeout=60.0, start=0):
        end = time.monotonic() + timeout
        while needle not in self.text[start:]:
            assert time.monotonic() < end, f"{needle!r} not seen in:\n{self.text[-2000:]}"
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.text += os.read(self.master, 4096).decode(errors="replace")
                except OSError:  # the process closed the terminal
                    assert needle in self.text[start:], self.text[-2000:]
        return self.text.index(needle, start) + len(needle)

    def send(self, line):
        os.write(self.master, line.encode() + b"\n")


def _count(store):
    return len(open_store(store).to_dataframe()) if (store / "zarr.json").exists() else 0


def _threads_taking_sigint(pid):
    """The process's threads other than the main one that do not block SIGINT."""
    found = []
    for tid in sorted(int(t) for t in os.listdir(f"/proc/{pid}/task")):
        if tid == pid:
            continue
        try:
            status = open(f"/proc/{pid}/task/{tid}/status").read()
        except FileNotFoundError:  # the thread ended
            continue
        blocked = int(
            next(ln for ln in status.splitlines() if ln.startswith("SigBlk:")).split()[1], 16
        )
        if not blocked & (1 << (signal.SIGINT - 1)):
            found.append(tid)
    return found


def _sigint_to_a_thread(pid, skip=0):
    """SIGINT to the process, taken by one of its threads other than the main one.

    ``kill(tid)`` on Linux makes a process-wide signal that the thread ``tid`` takes if it
    can: what the kernel does on its own when the main thread is busy with another signal.
    """
    for tid in _threads_taking_sigint(pid)[skip:]:
        try:
            os.kill(tid, signal.SIGINT)
            return tid
        except ProcessLookupError:
            continue
    raise AssertionError("no thread but the main one takes SIGINT")


def _sigint(proc, to_a_thread, skip=0):
    if to_a_thread:
        _sigint_to_a_thread(proc.pid, skip=skip)
    else:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends


@pytest.mark.parametrize("to_a_thread", [False, True], ids=["process", "another-thread"])
def test_ctrl_c_pauses_then_resume_then_stop(tmp_path, to_a_thread):
    # to another thread: the kernel may hand SIGINT to any thread that does not block it.
    # Before PollingDuringTask the main thread slept in Event.wait() for the whole campaign
    # and the handler ran when it ended: all 60 experiments ran and no prompt came.
    cfg = tmp_path / "campaign.yaml"
    cfg.write_text(yaml.safe_dump({**KILL_CONFIG, "budget": 60}))
    store = tmp_path / "ctrl-c.zarr"
    term = Terminal("run", str(cfg), "--store", str(store), "--quiet")
    try:
        term.expect("sdl: campaign")
        while _count(store) < 3:
            time.sleep(0.1)
        _sigint(term.proc, to_a_thread)
        at = term.expect(PROMPT, timeout=20)
        n_paused = len(open_store(store).to_dataframe())
        time.sleep(1.0)
        assert len(open_store(store).to_dataframe()) == n_paused  # nothing runs while paused
        term.send("r")
        deadline = time.monotonic() + 30
        while len(open_store(store).to_dataframe()) <= n_paused + 1:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        _sigint(term.proc, to_a_thread, skip=3)  # (another thread)
        term.expect(PROMPT, start=at, timeout=20)
        term.send("s")
        term.expect("store:")
        assert term.proc.wait(30) == 0
    finally:
        term.proc.kill()
        term.proc.wait()
    assert "Traceback" not in term.text
    store_view = open_store(store)
    df = store_view.to_dataframe()
    assert 3 < len(df[df["status"] == "done"]) < 60
    assert set(df["status"]) <= {"done", "interrupted"}
    assert store_view.run(store_view.campaign_runs[0]).stop["exit_status"] == "success"
    actions = [e["action"] for e in store_view.operator_log]
    assert actions.count("running -> paused") == 2 and "paused -> running" in actions
    terminal = [
        (e["action"], e["detail"]) for e in store_view.operator_log if e["who"] != "RunEngine"
    ]
    assert terminal == [("resume", "in the terminal"), ("stop", "in the terminal")]


# a shell running `sdl ... | tee LOG` in the foreground: the pipeline shares its process
# group, so the terminal's Ctrl-C reaches sdl and tee; the shell itself survives it
PIPELINE = """
import signal, subprocess, sys
signal.signal(signal.SIGINT, lambda *args: None)
tee = subprocess.Popen(["tee", sys.argv[1]], stdin=subprocess.PIPE)
sdl = subprocess.Popen(sys.argv[2:], stdout=tee.stdin)
tee.stdin.close()
code = sdl.wait()
tee.wait()
print(f"sdl exited {code}, tee {tee.returncode}", file=sys.stderr, flush=True)
"""


def test_ctrl_c_when_sdl_run_is_piped_through_tee(tmp_path):
    # Ctrl-C kills tee, and every later write to sdl's stdout fails (EPIPE). Before, bluesky's
    # SIGINT thread died of its "deferred pause" message: no pause, no prompt, all 60
    # experiments ran; then the summary's print failed. Now stdout moves to the terminal
    assert shutil.which("tee"), "coreutils' tee is on every POSIX system"
    cfg = tmp_path / "campaign.yaml"
    cfg.write_text(yaml.safe_dump({**KILL_CONFIG, "budget": 60}))
    store, log = tmp_path / "tee.zarr", tmp_path / "run.log"
    sdl = _sdl("run", str(cfg), "--store", str(store))
    term = Terminal(argv=[sys.executable, "-c", PIPELINE, str(log), *sdl], controlling=True)
    try:
        while _count(store) < 3:
            assert term.proc.poll() is None, term.text[-2000:]
            time.sleep(0.1)
        os.write(term.master, b"\x03")  # Ctrl-C typed
        term.expect(PROMPT, timeout=20)
        term.send("s")
        at = term.expect("sdl exited", timeout=60)
        term.expect("\n", start=at)  # the whole line
        assert term.proc.wait(30) == 0
    finally:
        term.proc.kill()
        term.proc.wait()
    assert f"sdl exited 0, tee {-signal.SIGINT}" in term.text, term.text[-3000:]
    assert "Traceback" not in term.text, term.text[-3000:]
    assert "experiments: " in term.text  # the summary, in the terminal since tee is gone
    assert "sdl: campaign 'kill-test'" in log.read_text()  # tee's share, before Ctrl-C
    store_view = open_store(store)
    df = store_view.to_dataframe()
    assert 3 <= len(df[df["status"] == "done"]) < 60
    assert set(df["status"]) <= {"done", "interrupted"}
    assert store_view.run(store_view.campaign_runs[0]).stop["exit_status"] == "success"
    terminal = [
        (e["action"], e["detail"]) for e in store_view.operator_log if e["who"] != "RunEngine"
    ]
    assert terminal == [("stop", "in the terminal")]
