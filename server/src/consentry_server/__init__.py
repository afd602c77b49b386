"""The Consentry collection server."""

__version__ = "0.1.0"
