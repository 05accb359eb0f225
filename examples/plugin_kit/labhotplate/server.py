"""A simulated hotplate controller speaking the instrument's text protocol over TCP.

Protocol (one command per line, ``\\n``-terminated, ASCII; one reply line each):

=============  ===========================  =============================================
command        reply                        meaning
=============  ===========================  =============================================
``SET 25.0``   ``OK``                       new setpoint (degC)
``GET?``       ``24.98``                    measured plate temperature (degC)
``SP?``        ``25.00``                    setpoint (degC)
``STOP``       ``OK``                       setpoint := current temperature (hold)
anything else  ``ERR <reason>``             e.g. ``ERR out of range 0..350``
=============  ===========================  =============================================

The plate temperature relaxes toward the setpoint with time constant ``tau`` seconds.
"""

from __future__ import annotations

import math
import socketserver
import threading
import time

__all__ = ["SimulatedHotplate"]


class SimulatedHotplate:
    """The simulated backend: a threaded TCP server on 127.0.0.1, random free port.

    Args:
        tau: time constant of the plate temperature (s).
        initial: starting temperature (degC).

    Attributes:
        host, port: where it listens (after :meth:`start`).

    Example:
        >>> with SimulatedHotplate(tau=0.1) as plate:
        ...     print(plate.host, plate.port)
    """

    MAX_TEMPERATURE = 350.0

    def __init__(self, tau: float = 1.0, initial: float = 25.0) -> None:
        self.tau = tau
        self._temp = initial
        self._sp = initial
        self._t = time.monotonic()
        self._lock = threading.Lock()
        self._server: socketserver.ThreadingTCPServer | None = None
        self.host, self.port = "127.0.0.1", 0

    def temperature(self) -> float:
        """Current plate temperature (degC)."""
        with self._lock:
            now = time.monotonic()
            self._temp += (self._sp - self._temp) * (1 - math.exp(-(now - self._t) / self.tau))
            self._t = now
            return self._temp

    def handle(self, line: str) -> str:
        """Answer one command line."""
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "GET?":
            return f"{self.temperature():.4f}"
        if cmd == "SP?":
            return f"{self._sp:.4f}"
        if cmd == "SET":
            try:
                value = float(arg)
            except ValueError:
                return f"ERR not a number: {arg!r}"
            if not 0.0 <= value <= self.MAX_TEMPERATURE:
                return f"ERR out of range 0..{self.MAX_TEMPERATURE:g}"
            self.temperature()
            self._sp = value
            return "OK"
        if cmd == "STOP":
            self._sp = self.temperature()
            return "OK"
        return f"ERR unknown command {cmd!r}"

    def start(self) -> SimulatedHotplate:
        """Listen on 127.0.0.1 (random free port) in a background thread."""
        plate = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for raw in self.rfile:
                    reply = plate.handle(raw.decode("ascii", "replace"))
                    self.wfile.write((reply + "\n").encode("ascii"))

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[:2]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening (open connections are dropped)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SimulatedHotplate:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
