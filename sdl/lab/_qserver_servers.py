"""The services of a distributed lab on this machine: Redis, a 0MQ proxy, RE Managers.

:func:`export_qserver` writes what each station's RE worker needs (a startup folder per
station, the plans-and-devices list, the user-group permissions); :class:`LabServers`
starts Redis (Debian's ``redis-server``, unless an address is given), bluesky's 0MQ
proxy and one RE Manager per station lane, all on 127.0.0.1 with free ports, opens their
environments, and writes their PIDs and addresses to ``state.json``; ``stop`` ends them.
``sdl lab up|status|down`` are these, from the command line. See ``docs/distributed.md``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sdl.errors import ConfigError, NotConnectedError

__all__ = ["LabServers", "export_qserver", "read_state"]

STATE = "state.json"

_STARTUP = '''"""sdl: the RE worker of station {station!r} (written by sdl lab export-qserver)."""

import os

from sdl.lab.qserver_worker import worker_namespace

globals().update(
    worker_namespace(
        os.environ.get("SDL_QSERVER_LAB", {lab!r}),
        {station!r},
        os.environ.get("SDL_QSERVER_PROXY", ""),
    )
)
'''

_PERMISSIONS = """# sdl lab export-qserver: what the queue server lets a client run on a station
user_groups:
  root:
    allowed_plans: [null]
    forbidden_plans: [":^_"]
    allowed_devices: [null]
    forbidden_devices: [":^_:?.*"]
    allowed_functions: [null]
    forbidden_functions: [":^_"]
  primary:
    allowed_plans: ["sdl_step"]
    forbidden_plans: [null]
    allowed_devices: [":?.*:depth=5"]
    forbidden_devices: [null]
    allowed_functions: ["sdl_documents"]
    forbidden_functions: [null]
"""


def _lab(lab_file: Path) -> tuple[Any, Any]:
    from sdl.config import load_config
    from sdl.config._lab import build_lab

    config = load_config(lab_file)
    if config.lab is None:
        raise ConfigError(f"{lab_file}: lab: missing: a distributed lab needs a lab: section")
    built = build_lab(config)
    if built.workflow is None:
        raise ConfigError(
            f"{lab_file}: workflow: missing: the stations' workers run workflow steps; give one"
        )
    return built.lab, built.workflow


def used_stations(lab: Any, workflow: Any) -> list[str]:
    """The stations the workflow's steps run on, in the lab's order."""
    pools = lab.check(workflow)
    used = {s for stations, _ in pools for s in stations}
    return [s for s in lab.stations if s in used]


def export_qserver(lab_file: str | os.PathLike, directory: str | os.PathLike) -> Path:
    """Write ``DIR/<station>/startup.py`` and ``existing_plans_and_devices.yaml`` for every
    station the workflow uses, and ``DIR/user_group_permissions.yaml``; return ``DIR``."""
    from bluesky_queueserver.manager.gen_lists import gen_list_of_plans_and_devices

    lab_file = Path(lab_file).resolve()
    lab, workflow = _lab(lab_file)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / "user_group_permissions.yaml").write_text(_PERMISSIONS)
    for station in used_stations(lab, workflow):
        folder = out / station
        folder.mkdir(exist_ok=True)
        (folder / "startup.py").write_text(_STARTUP.format(station=station, lab=str(lab_file)))
        gen_list_of_plans_and_devices(startup_dir=str(folder), file_dir=str(folder), overwrite=True)
    return out


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


@dataclass
class LabServers:
    """The running services of a distributed lab (see the module).

    Attributes:
        directory: where the startup folders, logs and ``state.json`` are.
        redis: Redis's address (``127.0.0.1:6379``).
        proxy_in: the 0MQ proxy's input (workers publish there).
        proxy_out: its output (the coordinator listens there).
        managers: station -> each lane's 0MQ control address.
        pids: service name -> process id (Redis only if started here).
    """

    directory: str
    redis: str
    proxy_in: str
    proxy_out: str
    managers: dict[str, list[str]] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        lab_file: str | os.PathLike,
        directory: str | os.PathLike,
        *,
        redis: str | None = None,
        host: str = "127.0.0.1",
        timeout: float = 120.0,
    ) -> LabServers:
        """Export the startup folders, start the services, open every environment.

        Raises:
            ConfigError: no ``redis-server`` and no ``redis`` address given.
            NotConnectedError: Redis or a manager did not come up in ``timeout`` seconds
                (the address named; the log file's path given).
        """
        directory = Path(directory).resolve()
        lab_file = Path(lab_file).resolve()
        export_qserver(lab_file, directory)
        lab, workflow = _lab(lab_file)
        logs = directory / "logs"
        logs.mkdir(exist_ok=True)
        servers = cls(str(directory), "", "", "")
        try:
            servers._start(lab, workflow, lab_file, redis, host, timeout, logs)
        except BaseException:
            servers.stop()
            raise
        servers.write_state()
        return servers

    def _spawn(self, name: str, argv: Sequence[str], logs: Path, env: dict | None = None) -> None:
        log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - kept by the child
        proc = subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self.pids[name] = proc.pid
        self.write_state()

    def _start(self, lab, workflow, lab_file, redis, host, timeout, logs) -> None:
        if redis is None:
            exe = shutil.which("redis-server")
            if exe is None:
                raise ConfigError(
                    "no redis-server on this machine: install it (Debian: apt-get install "
                    "redis-server) or name a running Redis (sdl lab up --redis HOST:PORT)"
                )
            port = _free_port(host)
            self._spawn(
                "redis",
                [exe, "--port", str(port), "--bind", host, "--save", "", "--appendonly", "no"],
                logs,
            )
            redis = f"{host}:{port}"
            _wait_redis(redis, timeout)
        else:
            _wait_redis(redis, min(timeout, 5.0))
        self.redis = redis
        pin, pout = _free_port(host), _free_port(host)
        self.proxy_in, self.proxy_out = f"{host}:{pin}", f"{host}:{pout}"
        self._spawn(
            "proxy",
            _python(
                "import sys; from bluesky.commandline.zmq_proxy import main; sys.exit(main())",
                str(pin),
                str(pout),
            ),
            logs,
        )
        env = {**os.environ, "SDL_QSERVER_LAB": str(lab_file), "SDL_QSERVER_PROXY": self.proxy_in}
        root = Path(self.directory)
        for station in used_stations(lab, workflow):
            self.managers[station] = []
            for k in range(lab.stations[station].capacity):
                control = f"tcp://{host}:{_free_port(host)}"
                info = f"tcp://{host}:{_free_port(host)}"
                name = f"{station}-{k}"
                folder = root / station
                self._spawn(
                    f"manager-{name}",
                    _python(
                        "import sys; from bluesky_queueserver.manager.start_manager import "
                        "start_manager; sys.exit(start_manager())",
                        "--zmq-control-addr", control, "--zmq-info-addr", info,
                        "--redis-addr", redis, "--redis-name-prefix", f"sdl-{name}",
                        "--startup-dir", str(folder),
                        "--existing-plans-devices", str(folder / "existing_plans_and_devices.yaml"),
                        "--user-group-permissions", str(root / "user_group_permissions.yaml"),
                        "--update-existing-plans-devices", "NEVER",
                        "--zmq-publish-console", "OFF",
                    ),
                    logs,
                    # each lane's worker keeps its steps' documents there (a restart too)
                    {**env, "SDL_QSERVER_KEEP": str(folder / f"documents-{k}")},
                )  # fmt: skip
                self.managers[station].append(control)
        self.write_state()
        self._open_all(timeout, logs)

    def _open_all(self, timeout: float, logs: Path) -> None:
        from bluesky_queueserver_api.zmq import REManagerAPI

        deadline = time.monotonic() + timeout
        apis = {}
        for station, addresses in self.managers.items():
            for k, address in enumerate(addresses):
                api = REManagerAPI(zmq_control_addr=address, timeout_recv=2.0, timeout_send=2.0)
                _until(deadline, lambda api=api: api.status(), f"station {station!r}: the RE "
                       f"Manager at {address} did not start (log: {logs}/manager-{station}-{k}.log)")  # fmt: skip
                api.environment_open()
                apis[(station, k, address)] = api
        for (station, k, address), api in apis.items():

            def opened(api=api):
                status = api.status()
                if status.get("worker_environment_exists") and status["manager_state"] == "idle":
                    return True
                if status["manager_state"] == "idle" and not status.get(
                    "worker_environment_exists"
                ):
                    raise RuntimeError("environment failed to open")
                raise TimeoutError("opening")

            try:
                _until(deadline, opened, "")
            except (NotConnectedError, RuntimeError) as err:
                raise NotConnectedError(
                    f"station {station!r}: the RE Manager at {address} could not open its "
                    f"worker environment ({err}); see {logs}/manager-{station}-{k}.log"
                ) from None
            api.close()

    def write_state(self) -> Path:
        path = Path(self.directory) / STATE
        path.write_text(json.dumps(asdict(self), indent=2))
        return path

    def stop(self, timeout: float = 10.0) -> None:
        """End every service started here (managers first, then the proxy and Redis)."""
        managers = [p for n, p in self.pids.items() if n.startswith("manager")]
        others = [p for n, p in self.pids.items() if not n.startswith("manager") and n != "redis"]
        _end(managers, timeout)  # all at once: each takes a while to close its worker
        _end(others, timeout)
        _end([p for n, p in self.pids.items() if n == "redis"], timeout)
        self.pids.clear()
        if Path(self.directory, STATE).exists():
            Path(self.directory, STATE).unlink()

    def status(self) -> dict[str, str]:
        """Service -> ``running`` / ``gone``; manager lanes -> their state or ``no answer``."""
        from bluesky_queueserver_api.zmq import REManagerAPI

        out = {name: ("running" if _alive(pid) else "gone") for name, pid in self.pids.items()}
        for station, addresses in self.managers.items():
            for k, address in enumerate(addresses):
                api = REManagerAPI(zmq_control_addr=address, timeout_recv=1.0, timeout_send=1.0)
                try:
                    s = api.status()
                    env = (
                        "environment open"
                        if s.get("worker_environment_exists")
                        else "no environment"
                    )
                    out[f"{station}[{k}] {address}"] = f"{s['manager_state']}, {env}"
                except Exception:  # noqa: BLE001
                    out[f"{station}[{k}] {address}"] = "no answer"
                finally:
                    api.close()
        return out


def read_state(directory: str | os.PathLike) -> LabServers:
    """The :class:`LabServers` recorded in ``DIR/state.json``."""
    path = Path(directory) / STATE
    if not path.is_file():
        raise ConfigError(f"no lab services recorded in {directory} (no {STATE}): sdl lab up first")
    return LabServers(**json.loads(path.read_text()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _end(pids: list[int], timeout: float) -> None:
    """SIGTERM the process groups of ``pids``, SIGKILL those still there after
    ``timeout`` s; return when every one has ended (or the second timeout)."""
    left = list(pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in list(left):
            try:
                os.killpg(pid, sig)
            except OSError:
                left.remove(pid)
        deadline = time.monotonic() + timeout
        while left and time.monotonic() < deadline:
            for pid in list(left):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid if not _alive(pid) else 0
                if done:
                    left.remove(pid)
            time.sleep(0.05)
        if not left:
            return


def _until(deadline: float, probe, message: str) -> Any:
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            return probe()
        except RuntimeError:
            raise
        except Exception as err:  # noqa: BLE001 - not up yet
            last = err
            time.sleep(0.2)
    raise NotConnectedError(f"{message} ({type(last).__name__}: {last})")


def _wait_redis(address: str, timeout: float) -> None:
    import redis

    host, _, port = address.rpartition(":")
    client = redis.Redis(host=host or "127.0.0.1", port=int(port), socket_timeout=1.0)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except Exception as err:  # noqa: BLE001
            if time.monotonic() > deadline:
                raise NotConnectedError(
                    f"Redis at {address} does not answer ({type(err).__name__}: {err}); start "
                    f"it, or let sdl lab up start one (Debian's redis-server)"
                ) from None
            time.sleep(0.1)
