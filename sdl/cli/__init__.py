"""The ``sdl`` command line. Each subcommand lives in its own module (see ``COMMAND_MODULES``)."""

from ._main import COMMAND_MODULES, main

__all__ = ["COMMAND_MODULES", "main"]
