"""The OTLP/HTTP receiver: OpenTelemetry traces and metrics, mapped into the native ingest pipeline.

``POST /v1/traces`` and ``POST /v1/metrics`` take what an OpenTelemetry SDK's OTLP/HTTP exporter sends
(protobuf or JSON, gzip or not). Spans become command runs and delta counters event counts of the application
named by ``service.name``; they are turned into native reports and validated and stored like any other
(:mod:`~consentry_server.ingest.otlp.receiver`). See ``docs/otlp.md``.
"""

from __future__ import annotations

from consentry_server.ingest.otlp.port import only_otlp_on
from consentry_server.ingest.otlp.receiver import PATHS, Receiver, routes

__all__ = ["PATHS", "Receiver", "only_otlp_on", "routes"]
