"""The scheduler plugins, registered in one place by their upstream names.

Each plugin is a module with a `NAME`, reason strings as constants and some of:
  pre_filter(pod, snapshot)                 -> None | SKIP | frozenset of node names | reason
  filter(pod, node, snapshot)               -> None (fits) | reason | Reasons
  filter_nodes(pod, nodes, snapshot)        -> (fitting nodes, {node: reason}) (optional, faster)
  pre_score(pod, feasible_nodes, snapshot, args) -> None | SKIP | Uniform(score)
  score(pod, node, snapshot)                -> int
  score_nodes(pod, nodes, snapshot)         -> [int] (optional: `score` for many nodes, faster)
  normalize(scores, pod)                    -> scores scaled to 0..100
PreFilter/PreScore keep what they compute for the per-node calls in `pod.cycle` (upstream's
CycleState). A plugin skipped at PreFilter is not asked to filter, as upstream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from chalicelib.scheduler.plugins import (
    inter_pod_affinity,
    node_affinity,
    node_name,
    node_ports,
    node_resources_balanced_allocation,
    node_resources_fit,
    node_unschedulable,
    pod_topology_spread,
    taint_toleration,
)
from chalicelib.scheduler.snapshot import NodeInfo, PodInfo, Snapshot
from chalicelib.scheduler.status import FilterResult, Rejections, filter_each

PreFilter = Callable[[PodInfo, Snapshot], Any]
Filter = Callable[[PodInfo, NodeInfo, Snapshot], FilterResult]
FilterNodes = Callable[[PodInfo, list[NodeInfo], Snapshot], tuple[list[NodeInfo], Rejections]]
PreScore = Callable[[PodInfo, list[NodeInfo], Snapshot, Mapping[str, Any]], Any]
Score = Callable[[PodInfo, NodeInfo, Snapshot], int]
ScoreNodes = Callable[[PodInfo, list[NodeInfo], Snapshot], list[int]]
Normalize = Callable[[dict[str, int], PodInfo], dict[str, int]]


@dataclass(frozen=True)
class Plugin:
    """A plugin module's extension points, looked up once."""

    name: str
    pre_filter: PreFilter | None
    filter: Filter | None
    pre_score: PreScore | None
    score: Score | None
    normalize: Normalize | None
    score_nodes: ScoreNodes | None
    filter_nodes: FilterNodes | None

    def filter_many(self, pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot) -> tuple[list[NodeInfo], Rejections]:
        """The nodes that pass, in order, and the rejection of each other node."""
        if self.filter_nodes is not None:
            return self.filter_nodes(pod, nodes, snapshot)
        assert self.filter is not None
        return filter_each(self.filter, pod, nodes, snapshot)

    def scores(self, pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot) -> list[int]:
        """Raw scores of `nodes`, in order."""
        if self.score_nodes is not None:
            return self.score_nodes(pod, nodes, snapshot)
        score = self.score
        assert score is not None
        return [score(pod, node, snapshot) for node in nodes]


def _plugin(module: ModuleType) -> Plugin:
    return Plugin(module.NAME, getattr(module, "pre_filter", None), getattr(module, "filter", None),
                  getattr(module, "pre_score", None), getattr(module, "score", None),
                  getattr(module, "normalize", None), getattr(module, "score_nodes", None),
                  getattr(module, "filter_nodes", None))


REGISTRY: dict[str, Plugin] = {p.name: p for p in map(_plugin, (
    node_unschedulable, node_name, taint_toleration, node_affinity, node_ports, node_resources_fit,
    pod_topology_spread, inter_pod_affinity, node_resources_balanced_allocation,
))}
