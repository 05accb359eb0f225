"""The dashboard's Bokeh server and the one thread that re-reads the store."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from sdl.report import Snapshot, read_snapshot

__all__ = ["StorePoller", "make_server", "serve"]

logger = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class StorePoller:
    """Re-reads a campaign store every ``interval`` seconds in a daemon thread.

    Every browser session shares the latest :class:`~sdl.report.Snapshot`, so the store is
    read once per interval however many pages are open, and never in Tornado's thread.

    Args:
        store_path: the campaign store (it may not exist yet).
        interval: seconds between reads.
    """

    def __init__(self, store_path: str | os.PathLike, interval: float = 1.0):
        self.store_path = Path(store_path)
        self.interval = float(interval)
        self.version = 0
        self._snapshot: Snapshot = read_snapshot(self.store_path)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sdl-dashboard-poller", daemon=True)

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def start(self) -> StorePoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def refresh(self) -> Snapshot:
        """Read now (read_snapshot never raises: errors are in the snapshot)."""
        try:
            snap = read_snapshot(self.store_path)
        except Exception as err:  # belt and braces: the server must keep running
            logger.exception("dashboard: reading %s failed", self.store_path)
            snap = Snapshot(
                path=self.store_path, status="unreadable", error=repr(err), time=time.time()
            )
        self._snapshot = snap
        self.version += 1
        return snap

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()


def make_server(
    store_path: str | os.PathLike,
    *,
    port: int = 5006,
    host: str = "127.0.0.1",
    control_token: str | None = None,
    interval: float = 1.0,
) -> Any:
    """A started-but-not-running Bokeh server for the dashboard of one store.

    Call ``server.io_loop.start()`` to serve (blocking), or use :func:`serve`.

    Args:
        store_path: the campaign store to follow.
        port: TCP port.
        host: address to bind (127.0.0.1 by default: only this machine can connect).
        control_token: enables control; every action must give this token, and requests
            are signed with it for the campaign to check.
        interval: seconds between reads of the store.
    """
    from bokeh.application import Application
    from bokeh.application.handlers.function import FunctionHandler
    from bokeh.server.server import Server

    from ._app import DashboardSession

    poller = StorePoller(store_path, interval).start()

    def make_document(doc: Any) -> None:
        DashboardSession(doc, poller, control_token=control_token)

    if host in LOOPBACK:
        origins = [f"127.0.0.1:{port}", f"localhost:{port}"]
    else:  # reachable from elsewhere: any origin may read; control still needs the token
        origins = ["*"]
    server = Server(
        {"/": Application(FunctionHandler(make_document))},
        port=port,
        address=host,
        allow_websocket_origin=origins,
        num_procs=1,
    )
    server.sdl_poller = poller
    server.start()
    return server


def serve(
    store_path: str | os.PathLike,
    *,
    port: int = 5006,
    host: str = "127.0.0.1",
    control_token: str | None = None,
    interval: float = 1.0,
) -> None:
    """Serve the dashboard of ``store_path`` until interrupted (see :func:`make_server`)."""
    server = make_server(
        store_path, port=port, host=host, control_token=control_token, interval=interval
    )
    try:
        server.io_loop.start()
    finally:
        server.sdl_poller.stop()
