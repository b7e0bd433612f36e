"""Keep a local run's stderr to curate's own lines: Beam's import-time noise is dropped.

Beam logs on the root logger while it is imported (no BigQuery client libraries: they are for
GCP jobs; no `resource` module: RunInference's memory metric). `logging.warning` on a root
logger without handlers installs Python's default handler ("WARNING:root:..."), so a
filter for exactly those messages goes on the root logger first (and, for the CLI, a handler
with our format); everything else still prints.
"""
from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(message)s"
NOISE = (
    "apitools not found, and bigquery client libraries are not available",
    "Resource module is not available for current platform",
)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(message.startswith(n) for n in NOISE)


def drop_noise() -> None:
    """Filter the noise on the root logger, where Beam logs it (safe for a library to call)."""
    root = logging.getLogger()
    if not any(isinstance(f, _DropNoise) for f in root.filters):
        root.addFilter(_DropNoise())


def install(level: int = logging.WARNING) -> None:
    """CLI logging: curate's format on the root handler, noise dropped (call before importing Beam)."""
    drop_noise()
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level, format=FORMAT)
