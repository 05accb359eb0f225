"""A browser dashboard that follows a campaign by reading its store (Bokeh server).

``sdl dashboard STORE`` or :func:`serve`; read-only unless started with a control token.
"""

from ._server import StorePoller, make_server, serve

__all__ = ["StorePoller", "make_server", "serve"]
