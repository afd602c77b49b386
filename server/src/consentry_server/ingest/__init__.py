"""Ingest: from an HTTP request to a report fit to store.

The routes of every upload format (native, OTLP/HTTP, the seed systems'), the checks that need only the body
(decoding, validation against the registered manifests: pure), the limits on what one client may send, and where a
request comes from (used, then forgotten). Nothing here writes to the database; :mod:`consentry_server.commit` does.
"""

__all__: list[str] = []
