"""The ``sdl`` command line: parser assembly, error handling and exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from importlib import import_module

from sdl.errors import ConfigError, SdlError

from ._stdio import keep_writing

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

#: Modules adding subcommands; each has ``add_commands(subparsers)`` and sets ``func``.
COMMAND_MODULES = [
    "sdl.cli._run",
    "sdl.cli._plugins",
    "sdl.cli._operate",
    "sdl.cli._station",
    "sdl.cli._store",
    "sdl.cli._twin",
    "sdl.cli._lab",
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdl", description="Run self-driving laboratory campaigns."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        import_module(module).add_commands(sub)
    return parser


class _OperatorLogFilter(logging.Filter):
    """Keep bluesky's warnings readable in a terminal: an operator's abort is not a crash.

    bluesky logs "Run aborted" with the ``RequestAbort`` traceback, and "No open traces left
    to close!" when a campaign's nested runs end together; both are expected here.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("bluesky"):
            return True
        message = record.getMessage()
        if message.startswith("No open traces left"):
            return False
        if message == "Run aborted":
            record.exc_info = None
            record.exc_text = None
        return True


def _configure_logging() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    handler.addFilter(_OperatorLogFilter())
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(handler)
        root.setLevel(logging.WARNING)


#: warning texts ``sdl`` shows once per process (GPyTorch's jitter, see below)
ONCE_PER_PROCESS = ("A not p.d., added jitter",)


def _configure_warnings() -> None:
    """GPyTorch's "A not p.d., added jitter" once per process, not once per ask.

    Noisy EI samples its incumbents jointly; in a long campaign settled on its optimum they
    are near-identical points and GPyTorch adds 1e-8 jitter to their covariance at nearly
    every ask (a 7-day twin forecast printed it about 300 times). Python's "default" and
    "once" actions would show it once, but every ``catch_warnings`` block (BoTorch's fits
    use them) resets that memory, so the shown texts are remembered here. Library use is
    unchanged.
    """
    show = warnings.showwarning
    if getattr(show, "sdl_once", False):
        return
    shown: set[str] = set()

    def show_once(message, category, filename, lineno, file=None, line=None):
        text = str(message)
        if text.startswith(ONCE_PER_PROCESS):
            if text in shown:
                return
            shown.add(text)
        show(message, category, filename, lineno, file, line)

    show_once.sdl_once = True  # type: ignore[attr-defined]
    warnings.showwarning = show_once


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sdl`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    with keep_writing():  # `sdl run | tee log`, Ctrl-C: tee dies, the campaign must not
        _configure_logging()
        _configure_warnings()
        try:
            return args.func(args)
        except SdlError as err:
            # bad config, unknown names, an unusable store: the user's to fix -> exit 2
            print(f"sdl: error: {err}", file=sys.stderr)
            usage = isinstance(err, (ConfigError, LookupError, OSError))
            return EXIT_USAGE if usage else EXIT_FAILED
        except KeyboardInterrupt:
            print("sdl: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
