"""NodeName: a pod that names its node (spec.nodeName) fits only that node."""

from __future__ import annotations

from chalicelib.scheduler.snapshot import NodeInfo, PodInfo, Snapshot
from chalicelib.scheduler.status import SKIP, FilterResult, Skip, Unresolvable

NAME = "NodeName"
ERR_REASON = Unresolvable("node(s) didn't match the requested node name")


def pre_filter(pod: PodInfo, snapshot: Snapshot) -> Skip | None:
    return None if pod.node_name else SKIP


def filter(pod: PodInfo, node: NodeInfo, snapshot: Snapshot) -> FilterResult:
    return None if not pod.node_name or pod.node_name == node.name else ERR_REASON
