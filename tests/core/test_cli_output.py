"""``sdl``'s output outlives whoever reads it, and a closed standard stream is no hazard.

Real ``sdl run`` processes, real stores. The Ctrl-C case (``sdl run | tee``, tee killed by
the terminal's SIGINT) is in test_cli_ctrl_c.py, beside the other Ctrl-C tests.
"""

import os
import subprocess
import time

import yaml

from sdl import open_store

from .test_durability import KILL_CONFIG, _sdl


def test_a_reader_that_goes_early_does_not_fail_the_campaign(tmp_path):
    # `sdl run ... | head -1` with no terminal (a script, CI): the reader leaves after one
    # line; the writes after it go to /dev/null. Before, the summary's print raised
    # BrokenPipeError: exit 1 and a traceback for a campaign that succeeded
    cfg = tmp_path / "campaign.yaml"
    cfg.write_text(yaml.safe_dump({**KILL_CONFIG, "budget": 6}))
    store, err = tmp_path / "head.zarr", tmp_path / "stderr.txt"
    with open(err, "w") as stderr:
        proc = subprocess.Popen(
            _sdl("run", str(cfg), "--store", str(store)),
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,  # no controlling terminal: nowhere to move stdout but null
        )
        assert proc.stdout.readline().startswith(b"sdl: campaign")
        proc.stdout.close()  # the reader goes
        code = proc.wait(120)
    assert code == 0 and "Traceback" not in err.read_text(), err.read_text()[-3000:]
    assert list(open_store(store).to_dataframe()["status"]) == ["done"] * 6


def test_sdl_run_with_its_standard_streams_closed(tmp_path):
    # `sdl run ... <&- >&- 2>&-`, as some supervisors start a job. Before, Python set
    # sys.stderr to None, the progress bar's first write failed the campaign before its
    # first experiment (exit 1, nothing measured), and the next file opened took fd 2
    cfg = tmp_path / "campaign.yaml"
    cfg.write_text(yaml.safe_dump({**KILL_CONFIG, "budget": 6}))
    store = tmp_path / "closed.zarr"

    def close_standard_streams():
        for fd in (0, 1, 2):
            os.close(fd)

    proc = subprocess.Popen(
        _sdl("run", str(cfg), "--store", str(store)), preexec_fn=close_standard_streams
    )
    seen: dict[int, str] = {}
    while proc.poll() is None and len(seen) < 3:
        for fd in (0, 1, 2):  # what the standard descriptors are while the campaign runs
            try:
                if store.exists():
                    seen[fd] = os.readlink(f"/proc/{proc.pid}/fd/{fd}")
            except OSError:  # not there yet, or the process ended
                pass
        time.sleep(0.02)
    assert proc.wait(120) == 0
    assert seen == {0: "/dev/null", 1: "/dev/null", 2: "/dev/null"}, seen
    assert list(open_store(store).to_dataframe()["status"]) == ["done"] * 6
