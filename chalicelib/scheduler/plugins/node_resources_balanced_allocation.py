"""NodeResourcesBalancedAllocation: prefer nodes whose cpu and memory would be used evenly.

The score is (1 - standard deviation of requested/allocatable fractions) * 100 after placing the
pod, counting actual requests (not the non-zero defaults). As upstream, best-effort pods (no
requests) skip this plugin, so they are not all drawn to the same balanced node.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from chalicelib.scheduler.plugins.helper import MAX_NODE_SCORE
from chalicelib.scheduler.snapshot import NodeInfo, PodInfo, Snapshot
from chalicelib.scheduler.status import SKIP, Skip

NAME = "NodeResourcesBalancedAllocation"


def pre_score(pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot, args: Mapping[str, Any]) -> Skip | None:
    return SKIP if not pod.cpu and not pod.memory else None


def balanced_score(fractions: list[float]) -> int:
    """balancedResourceScorer over fractions already capped at 1."""
    if len(fractions) == 2:
        deviation = abs(fractions[0] - fractions[1]) / 2
    elif len(fractions) > 2:
        mean = sum(fractions) / len(fractions)
        deviation = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
    else:
        deviation = 0.0
    return int((1 - deviation) * MAX_NODE_SCORE)


def score_nodes(pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot) -> list[int]:
    """`score` for many nodes, the two-resource case inlined."""
    pod_cpu, pod_memory = pod.cpu, pod.memory
    scores: list[int] = []
    append = scores.append
    for node in nodes:
        cpu, memory = node.allocatable_cpu, node.allocatable_memory
        if not cpu or not memory:
            append(score(pod, node, snapshot))
            continue
        cpu_fraction = (node.requested_cpu + pod_cpu) / cpu
        memory_fraction = (node.requested_memory + pod_memory) / memory
        if cpu_fraction > 1.0:
            cpu_fraction = 1.0
        if memory_fraction > 1.0:
            memory_fraction = 1.0
        append(int((1 - abs(cpu_fraction - memory_fraction) / 2) * MAX_NODE_SCORE))
    return scores


def score(pod: PodInfo, node: NodeInfo, snapshot: Snapshot) -> int:
    fractions: list[float] = []
    if node.allocatable_cpu:
        fractions.append(min((node.requested_cpu + pod.cpu) / node.allocatable_cpu, 1.0))
    if node.allocatable_memory:
        fractions.append(min((node.requested_memory + pod.memory) / node.allocatable_memory, 1.0))
    return balanced_score(fractions)
