"""The scheduler's decision: which node a pending pod should run on, as kube-scheduler would choose.

Pure functions over a `Snapshot` of nodes and bound pods; the caller reads the store, builds the
snapshot, calls `schedule`, and writes the binding (handler.py and binding.py). See framework.py for
the cycle, plugins/ for the rules, snapshot.py for what is counted.
"""

from __future__ import annotations

from chalicelib.scheduler.framework import (
    Decision,
    FilterOutcome,
    Profile,
    bin_packing_profile,
    default_profile,
    feasible_nodes,
    fit_error_message,
    schedule,
)
from chalicelib.scheduler.snapshot import NodeInfo, PodInfo, Snapshot

__all__ = [
    "Decision",
    "FilterOutcome",
    "NodeInfo",
    "PodInfo",
    "Profile",
    "Snapshot",
    "bin_packing_profile",
    "default_profile",
    "feasible_nodes",
    "fit_error_message",
    "schedule",
]
