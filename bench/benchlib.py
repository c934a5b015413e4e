"""What every benchmark script needs: a free loopback port for the cluster it starts, and percentiles.

The scripts run as `python bench/<name>.py`, so this directory is on their import path."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    """The value at fraction `q` (0..1) of the sorted values, rounded to the nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]
