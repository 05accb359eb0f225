"""labhotplate: an sdl device plugin for a hotplate with a TCP text protocol (example)."""

from .device import HotplateError, TcpHotplate
from .server import SimulatedHotplate

__all__ = ["HotplateError", "SimulatedHotplate", "TcpHotplate"]
