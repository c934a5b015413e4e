"""NodeResourcesFit: the pod's requests must fit what the node has left; the score places it.

Filter: pods, cpu, memory, ephemeral-storage and extended resources, each reason worded as upstream
("Too many pods", "Insufficient cpu", ...), all of them when several fall short. A rejection is
UnschedulableAndUnresolvable when the pod asks for more than the node's whole allocatable (upstream
since v1.31), so a provisioner knows a node of that size can never take it.

Score: LeastAllocated (default: prefer emptier nodes, spreading) or MostAllocated (prefer fuller
nodes, bin packing), over cpu and memory with equal weights unless the profile's args say otherwise
(`{"scoringStrategy": {"type": "MostAllocated", "resources": [{"name": "cpu", "weight": 1}, ...]}}`).
As upstream, scoring counts a container without a cpu or memory request as 100m / 200MiB.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.scheduler.plugins.helper import MAX_NODE_SCORE
from chalicelib.scheduler.resources import CPU, EPHEMERAL_STORAGE, MEMORY
from chalicelib.scheduler.snapshot import NodeInfo, PodInfo, Snapshot
from chalicelib.scheduler.status import FilterResult, Reasons, Rejections, Unresolvable, filter_each

NAME = "NodeResourcesFit"
ERR_REASON_TOO_MANY_PODS = "Too many pods"
ERR_REASON_INSUFFICIENT_CPU = "Insufficient cpu"
ERR_REASON_INSUFFICIENT_MEMORY = "Insufficient memory"
ERR_REASON_INSUFFICIENT_EPHEMERAL_STORAGE = "Insufficient ephemeral-storage"
ERR_REASON_INSUFFICIENT_FORMAT = "Insufficient {resource}"
LEAST_ALLOCATED, MOST_ALLOCATED = "LeastAllocated", "MostAllocated"
DEFAULT_RESOURCES: tuple[tuple[str, int], ...] = ((CPU, 1), (MEMORY, 1))

Scorer = Callable[[PodInfo, NodeInfo], int]


def filter(pod: PodInfo, node: NodeInfo, snapshot: Snapshot) -> FilterResult:
    cpu, memory = pod.cpu, pod.memory
    if (node.free_pods > 0 and (not cpu or cpu <= node.free_cpu) and (not memory or memory <= node.free_memory)
            and not pod.ephemeral_storage and not pod.scalar):
        return None
    return insufficient(pod, node)


def filter_nodes(pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot) -> tuple[list[NodeInfo], Rejections]:
    """`filter` for many nodes: pods, cpu and memory inlined (a request of 0 is never short, as upstream)."""
    if pod.ephemeral_storage or pod.scalar:
        return filter_each(filter, pod, nodes, snapshot)
    cpu, memory = pod.cpu, pod.memory
    # free_* can be negative (a node's pods overcommit it), so a zero request is skipped, not compared
    cpu_floor = cpu if cpu else -(2**63)
    memory_floor = memory if memory else -(2**63)
    passed = [n for n in nodes if n.free_pods > 0 and cpu_floor <= n.free_cpu and memory_floor <= n.free_memory]
    if len(passed) == len(nodes):
        return passed, {}
    rejected: Rejections = {}
    for node in nodes:
        if node.free_pods <= 0 or cpu_floor > node.free_cpu or memory_floor > node.free_memory:
            reason = insufficient(pod, node)
            assert reason is not None
            rejected[node.name] = reason
    return passed, rejected


def _reason(reason: str, requested: int, allocatable: int) -> str:
    return Unresolvable(reason) if requested > allocatable else reason


def insufficient(pod: PodInfo, node: NodeInfo) -> FilterResult:
    """Every resource the node is short of (fitsRequest), or None if it has them all."""
    reasons: list[str] = []
    if len(node.pods) + 1 > node.allowed_pods:
        reasons.append(ERR_REASON_TOO_MANY_PODS)
    checks = [(ERR_REASON_INSUFFICIENT_CPU, pod.cpu, node.allocatable_cpu, node.requested_cpu),
              (ERR_REASON_INSUFFICIENT_MEMORY, pod.memory, node.allocatable_memory, node.requested_memory),
              (ERR_REASON_INSUFFICIENT_EPHEMERAL_STORAGE, pod.ephemeral_storage,
               node.allocatable_ephemeral_storage, node.requested_ephemeral_storage)]
    checks += [(ERR_REASON_INSUFFICIENT_FORMAT.format(resource=name), value, node.allocatable_scalar.get(name, 0),
                node.requested_scalar.get(name, 0)) for name, value in sorted(pod.scalar.items())]
    for reason, requested, allocatable, used in checks:
        if requested > 0 and requested > allocatable - used:
            reasons.append(_reason(reason, requested, allocatable))
    if not reasons:
        return None
    return reasons[0] if len(reasons) == 1 else Reasons(reasons)


# ---- scoring ----------------------------------------------------------------------------------

def least_requested_score(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def most_requested_score(requested: int, capacity: int) -> int:
    if capacity == 0:
        return 0
    return min(requested, capacity) * MAX_NODE_SCORE // capacity


def _least_cpu_memory(pod: PodInfo, node: NodeInfo) -> int:
    """LeastAllocated over cpu and memory, weight 1 each: the default, kept to a few integer ops."""
    total = weights = 0
    capacity = node.allocatable_cpu
    if capacity:
        requested = node.non0_cpu + pod.non0_cpu
        total += (capacity - requested) * MAX_NODE_SCORE // capacity if requested <= capacity else 0
        weights += 1
    capacity = node.allocatable_memory
    if capacity:
        requested = node.non0_memory + pod.non0_memory
        total += (capacity - requested) * MAX_NODE_SCORE // capacity if requested <= capacity else 0
        weights += 1
    return total // weights if weights else 0


def _requested_and_capacity(pod: PodInfo, node: NodeInfo, resource: str) -> tuple[int, int]:
    """calculateResourceAllocatableRequest with useRequested false (non-zero cpu and memory)."""
    if resource == CPU:
        return node.non0_cpu + pod.non0_cpu, node.allocatable_cpu
    if resource == MEMORY:
        return node.non0_memory + pod.non0_memory, node.allocatable_memory
    if resource == EPHEMERAL_STORAGE:
        return node.requested_ephemeral_storage + pod.ephemeral_storage, node.allocatable_ephemeral_storage
    wanted = pod.scalar.get(resource, 0)
    if not wanted:
        return 0, 0  # an extended resource the pod does not ask for is left out of the score
    return node.requested_scalar.get(resource, 0) + wanted, node.allocatable_scalar.get(resource, 0)


def resource_scorer(strategy: str, resources: tuple[tuple[str, int], ...]) -> Scorer:
    """The per-node score for a strategy and weighted resources (resourceAllocationScorer.score)."""
    if strategy == LEAST_ALLOCATED and resources == DEFAULT_RESOURCES:
        return _least_cpu_memory
    per_resource = most_requested_score if strategy == MOST_ALLOCATED else least_requested_score

    def scorer(pod: PodInfo, node: NodeInfo) -> int:
        total = weights = 0
        for resource, weight in resources:
            requested, capacity = _requested_and_capacity(pod, node, resource)
            if capacity:
                total += per_resource(requested, capacity) * weight
                weights += weight
        return total // weights if weights else 0
    return scorer


def _strategy(args: Mapping[str, Any]) -> tuple[str, tuple[tuple[str, int], ...]]:
    strategy = args.get("scoringStrategy") or {}
    kind = strategy.get("type") or LEAST_ALLOCATED
    if kind not in (LEAST_ALLOCATED, MOST_ALLOCATED):
        raise ValueError(f"{NAME}: scoring strategy {kind!r} is not supported")
    resources = tuple((r["name"], int(r.get("weight", 1))) for r in strategy.get("resources") or ())
    return kind, resources or DEFAULT_RESOURCES


def pre_score(pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot, args: Mapping[str, Any]) -> None:
    pod.cycle[NAME] = resource_scorer(*_strategy(args))


def score(pod: PodInfo, node: NodeInfo, snapshot: Snapshot) -> int:
    scorer: Scorer = pod.cycle[NAME]
    return scorer(pod, node)


def score_nodes(pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot) -> list[int]:
    """`score` for many nodes; the default strategy inlined, since this runs for every feasible node."""
    scorer: Scorer = pod.cycle[NAME]
    if scorer is not _least_cpu_memory:
        return [scorer(pod, node) for node in nodes]
    pod_cpu, pod_memory = pod.non0_cpu, pod.non0_memory
    scores: list[int] = []
    append = scores.append
    for node in nodes:
        cpu, memory = node.allocatable_cpu, node.allocatable_memory
        cpu_used, memory_used = node.non0_cpu + pod_cpu, node.non0_memory + pod_memory
        if cpu and memory and cpu_used <= cpu and memory_used <= memory:
            append(((cpu - cpu_used) * MAX_NODE_SCORE // cpu + (memory - memory_used) * MAX_NODE_SCORE // memory) // 2)
        else:
            append(_least_cpu_memory(pod, node))
    return scores
