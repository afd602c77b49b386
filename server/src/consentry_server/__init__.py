"""The Consentry collection server.

Run it with ``consentry-server serve``; embed it as an ASGI application with :func:`create_app`.
"""

from consentry_server._version import __version__
from consentry_server.app import create_app
from consentry_server.config import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "__version__", "create_app", "load_settings"]
