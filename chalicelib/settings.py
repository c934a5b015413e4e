"""Settings read from the environment, in one place.

Chalice sets these per stage (`.chalice/config.json`), the Pulumi program sets them on each Lambda,
and `skiff up` sets them for the local runtime. Nothing here talks to AWS.
"""

from __future__ import annotations

import os


def table_prefix() -> str:
    return os.environ.get("SKIFF_TABLE_PREFIX", "skiff")


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def changelog_retention_seconds() -> int:
    """How long watch history is kept (DynamoDB TTL on the change log); older watches get 410."""
    return int(os.environ.get("SKIFF_CHANGELOG_RETENTION_SECONDS", "3600"))


def watch_cap_seconds() -> float:
    """Longest a watch long-poll is held open; below API Gateway's 29 s integration timeout."""
    return float(os.environ.get("SKIFF_WATCH_CAP_SECONDS", "25"))


def watch_poll_seconds() -> float:
    """Pause between change-log reads while a watch waits for events."""
    return float(os.environ.get("SKIFF_WATCH_POLL_SECONDS", "0.1"))
