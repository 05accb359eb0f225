"""Control needs the token, not a promise: signed requests, refusals, a channel that heals.

The campaign runs as ``sdl run`` in its own process; forged requests are written straight
into its store's control folder, as any process with write access could.
"""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import yaml
from bluesky import RunEngine

from sdl import open_store
from sdl.control import ControlChannel, ControlWatcher, control_token, read_control_token
from sdl.control._auth import sign_request
from sdl.errors import ConfigError

TOKEN = "tok-" + uuid.uuid4().hex


def _sdl(*args):
    return [sys.executable, "-m", "sdl.cli", *args]


def _campaign_file(tmp_path):
    config = yaml.safe_load(open("examples/alignment.yaml"))
    config["planner"] = {"name": "sobol", "options": {}}
    config["budget"] = 2000
    config["devices"]["stage"]["options"]["time_scale"] = 1.0  # ~0.2 s per experiment
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _wait_for(predicate, timeout, what, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the campaign exited ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _done(store):
    try:
        return int((open_store(store).to_dataframe()["status"] == "done").sum())
    except Exception:
        return 0


def _forge(store, action, *, sign_with=None, **fields):
    """Write a request file straight into the folder, as a process with write access can."""
    rid = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
    record = {"id": rid, "action": action, "args": {}, "who": "mallory", "time": time.time()}
    record.update(fields)
    if sign_with is not None:
        record["mac"] = sign_request(sign_with, record)
    folder = store / "control" / "requests"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{rid}.json").write_text(json.dumps(record))
    return rid


def _argv(pid):
    return open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")


def _start(tmp_path, store, *extra, env=None):
    return subprocess.Popen(
        _sdl("run", str(_campaign_file(tmp_path)), "--store", str(store), "--quiet", *extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.slow
def test_forged_requests_are_refused_and_signed_ones_obeyed(tmp_path):
    store = tmp_path / "bg.zarr"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k != "SDL_CONTROL_TOKEN"}
    child = _start(tmp_path, store, "--control-token-file", str(token_file), env=env)
    try:
        assert TOKEN not in _argv(child.pid)
        _wait_for(lambda: _done(store) >= 2, 90, "experiments", child)
        ch = ControlChannel(store)

        # forged: valid JSON claiming the token is fine, no MAC; then a MAC under another token
        unsigned = _forge(store, "abort", token_ok=True)
        wrong = _forge(store, "stop", expires=None, sign_with="a guessed token")
        # malformed files must not block what comes after them
        folder = store / "control" / "requests"
        (folder / "00000000000000000001-bad.json").write_text("{not json")
        bad_types = _forge(store, "pause", time="yesterday", args=["not", "a", "dict"])

        for rid in (unsigned, wrong):
            ack = ch.wait(rid, timeout=10)
            assert ack is not None and not ack.ok and "bad signature" in ack.result, ack
        n = _done(store)
        _wait_for(lambda: _done(store) > n + 2, 30, "the campaign to go on", child)
        assert ch.state()["state"] == "running"

        # unsigned sdl pause (no token in its environment): refused, exit 1
        proc = subprocess.run(
            _sdl("pause", str(store), "--timeout", "10"),
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert proc.returncode == 1 and "bad signature" in proc.stdout, proc
        # signed sdl pause (token from the environment): obeyed
        proc = subprocess.run(
            _sdl("pause", str(store), "--timeout", "10"),
            capture_output=True,
            text=True,
            env={**env, "SDL_CONTROL_TOKEN": TOKEN},
            timeout=60,
        )
        assert proc.returncode == 0 and "pause requested" in proc.stdout, proc
        _wait_for(lambda: ch.state().get("state") == "paused", 20, "the pause")
        # the malformed files were deleted, not left to block the channel
        names = {p.name for p in folder.iterdir()}
        assert "00000000000000000001-bad.json" not in names and f"{bad_types}.json" not in names

        proc = subprocess.run(
            _sdl("stop", str(store), "--control-token-file", str(token_file)),
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert proc.returncode == 0, proc
        assert child.wait(60) == 0, child.stderr.read()
    finally:
        child.kill()
        child.wait()
    log = open_store(store).operator_log
    refused = [e for e in log if e["detail"].startswith("refused: bad signature")]
    assert {e["action"] for e in refused} >= {"abort", "stop", "pause"}, log
    assert all("(unverified)" in e["who"] for e in refused)
    assert any("malformed request" in e["detail"] for e in log), log
    obeyed = [(e["action"], e["detail"]) for e in log if not e["detail"].startswith("refused")]
    assert ("abort", "") not in obeyed and any(a == "pause" for a, _ in obeyed), log


@pytest.mark.slow
def test_token_from_the_environment_is_not_in_argv(tmp_path):
    store = tmp_path / "env.zarr"
    child = _start(tmp_path, store, env={**os.environ, "SDL_CONTROL_TOKEN": TOKEN})
    try:
        _wait_for(lambda: _done(store) >= 1, 90, "experiments", child)
        assert TOKEN not in _argv(child.pid) and "sdl.cli" in _argv(child.pid)
        token_file = tmp_path / "token"
        token_file.write_text(TOKEN)
        proc = subprocess.run(
            _sdl("stop", str(store), "--control-token-file", str(token_file)),
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if k != "SDL_CONTROL_TOKEN"},
        )
        assert proc.returncode == 0 and "stop requested" in proc.stdout, proc
        assert child.wait(60) == 0, child.stderr.read()
    finally:
        child.kill()
        child.wait()


@pytest.fixture
def RE():
    RE = RunEngine({}, context_managers=[])
    yield RE
    RE.loop.call_soon_threadsafe(RE.loop.stop)
    RE._th.join(5)


def test_stale_and_replayed_requests_are_refused(tmp_path, RE):
    ch = ControlChannel(tmp_path, token=TOKEN)
    with control_token(TOKEN), ControlWatcher(ch, RE, poll=0.05, keep=2) as watcher:
        assert watcher.token == TOKEN
        fresh = ch.request("resume")  # the RunEngine is idle: answered "not paused"
        saved = (ch.path / "requests" / f"{fresh}.json").read_text()
        assert "not paused" in ch.wait(fresh, 5).result
        # a signed request from two minutes ago: outside the window
        old = {"id": f"{time.time_ns():020d}-aaaaaaaa", "action": "resume", "args": {},
               "who": "ada", "time": time.time() - 120, "expires": None}  # fmt: skip
        old["mac"] = sign_request(TOKEN, old)
        (ch.path / "requests" / f"{old['id']}.json").write_text(json.dumps(old))
        ack = ch.wait(old["id"], 5)
        assert not ack.ok and "stale" in ack.result
        # replay the fresh request once its answer has been pruned (keep=2)
        other = ch.request("resume")
        ch.wait(other, 5)
        _wait_for(lambda: not (ch.path / "acks" / f"{fresh}.json").exists(), 15, "the prune")
        (ch.path / "requests" / f"{fresh}.json").write_text(saved)
        # refused (its answer is the oldest, so it is pruned at once: look at what was done)
        _wait_for(
            lambda: [res for r, ok, res in watcher.handled if r.id == fresh and "replayed" in res],
            5,
            "the replay's refusal",
        )
        assert [ok for r, ok, _ in watcher.handled if r.id == fresh] == [False, False]


def test_the_folder_stays_bounded_and_a_flood_is_logged_briefly(tmp_path, RE):
    log = []
    ch = ControlChannel(tmp_path, token=TOKEN)
    watcher = ControlWatcher(
        ch, RE, token=TOKEN, keep=20, on_action=lambda a, who, detail: log.append(detail)
    )
    unsigned = ControlChannel(tmp_path)
    for i in range(150):
        (ch if i % 2 else unsigned).request("resume")
    watcher.poll_once()  # one poll answers all of them
    assert len(list((ch.path / "requests").iterdir())) <= 20
    assert len(list((ch.path / "acks").iterdir())) <= 20
    refusals = [d for d in log if "bad signature" in d]
    assert len(refusals) <= 6 and "70 more requests" in refusals[-1], refusals
    for _ in range(100):
        ch.request("resume")
        watcher.poll_once()
    assert len(list((ch.path / "requests").iterdir())) <= 20


def test_without_a_token_unsigned_requests_are_obeyed(tmp_path, RE):
    ch = ControlChannel(tmp_path)
    with ControlWatcher(ch, RE, poll=0.05) as watcher:
        assert watcher.token is None
        ack = ch.wait(ch.request("resume"), 5)
        assert "not paused" in ack.result and "refused" not in ack.result


def test_read_control_token(tmp_path):
    assert read_control_token(environ={"SDL_CONTROL_TOKEN": "abc"}) == "abc"
    assert read_control_token(environ={}) is None
    path = tmp_path / "t"
    path.write_text("  s3cret \n")
    assert read_control_token(path, environ={"SDL_CONTROL_TOKEN": "abc"}) == "s3cret"
    path.write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        read_control_token(path)
    with pytest.raises(ConfigError, match="cannot read"):
        read_control_token(tmp_path / "missing")
