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


def objects_stream_arn() -> str:
    """The objects table's stream ARN, which Chalice needs at import time (set per stage on deploy).

    Locally the stream runner reads the stream itself and calls the handler, so a placeholder will do.
    """
    return os.environ.get("SKIFF_OBJECTS_STREAM_ARN",
                          f"arn:aws:dynamodb:{region()}:000000000000:table/{table_prefix()}-objects/stream/local")


def stream_batch_window_seconds() -> float:
    """The controllers' event source batching window (Lambda's MaximumBatchingWindowInSeconds)."""
    return float(os.environ.get("SKIFF_STREAM_BATCH_WINDOW_SECONDS", "1"))


def resync_seconds() -> float:
    """How often the local runtime fires the resync schedule (on AWS: the EventBridge rule's rate)."""
    return float(os.environ.get("SKIFF_RESYNC_SECONDS", "10"))


def cluster_name() -> str:
    """The cluster's name: it tags the EC2 nodes and names the containers' log group."""
    return os.environ.get("SKIFF_CLUSTER_NAME", "skiff")


def container_log_group() -> str:
    """The CloudWatch Logs group the node agents ship container output to (one stream per container attempt)."""
    return f"/skiff/{cluster_name()}/containers"


def log_poll_seconds() -> float:
    """Pause between CloudWatch reads while `kubectl logs -f` waits for lines (GetLogEvents is rate limited)."""
    return float(os.environ.get("SKIFF_LOG_POLL_SECONDS", "1"))


def log_max_bytes() -> int:
    """Most bytes of log one request returns: a Lambda response must stay under 6 MB."""
    return int(os.environ.get("SKIFF_LOG_MAX_BYTES", str(5 * 1024 * 1024)))


CONTROLLERS = ("deployment", "replicaset", "gc", "namespace", "nodelifecycle", "schedule", "provisioner")
"""What `SKIFF_CONTROLLERS` may name (chalicelib.controllers.dispatch maps each sync to one of these)."""


def controllers() -> frozenset[str]:
    """The controllers this function runs (`SKIFF_CONTROLLERS`, comma-separated; unset or empty: all).

    The stream handler and the resync skip every other controller's syncs, so one deployment can run,
    say, the scheduler in a function of its own (`SKIFF_CONTROLLERS=schedule`) and the rest in another.
    A name that is not a controller raises ValueError: a typo would otherwise silently switch it off."""
    raw = os.environ.get("SKIFF_CONTROLLERS", "")
    names = {n.strip() for n in raw.split(",") if n.strip()}
    if not names:
        return frozenset(CONTROLLERS)
    unknown = sorted(names - set(CONTROLLERS))
    if unknown:
        raise ValueError(f"SKIFF_CONTROLLERS={raw!r}: unknown controller(s) {', '.join(unknown)}; "
                         f"valid names are {', '.join(CONTROLLERS)}")
    return frozenset(names)


def node_subnet_ids() -> tuple[str, ...]:
    """The subnets the provisioner launches nodes into (`SKIFF_NODE_SUBNET_IDS`, comma-separated).

    Set: each launch goes to a listed subnet in the claim's zone, and only zones with one are offered.
    Unset: EC2 picks the zone's default subnet (the default VPC)."""
    raw = os.environ.get("SKIFF_NODE_SUBNET_IDS", "")
    return tuple(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
