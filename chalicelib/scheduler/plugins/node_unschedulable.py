"""NodeUnschedulable: keep new pods off cordoned nodes (spec.unschedulable: true).

A pod that tolerates node.kubernetes.io/unschedulable:NoSchedule (DaemonSet pods do) ignores the
cordon, as upstream. Rejections are UnschedulableAndUnresolvable: no preemption uncordons a node.
"""

from __future__ import annotations

from chalicelib.scheduler.snapshot import NodeInfo, PodInfo, Snapshot
from chalicelib.scheduler.status import FilterResult, Rejections, Unresolvable
from chalicelib.scheduler.tolerations import NO_SCHEDULE, TAINT_NODE_UNSCHEDULABLE, tolerates_taint

NAME = "NodeUnschedulable"
ERR_REASON_UNSCHEDULABLE = Unresolvable("node(s) were unschedulable")
_UNSCHEDULABLE_TAINT = {"key": TAINT_NODE_UNSCHEDULABLE, "effect": NO_SCHEDULE}


def filter(pod: PodInfo, node: NodeInfo, snapshot: Snapshot) -> FilterResult:
    if not node.unschedulable or tolerates_taint(pod.tolerations, _UNSCHEDULABLE_TAINT):
        return None
    return ERR_REASON_UNSCHEDULABLE


def filter_nodes(pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot) -> tuple[list[NodeInfo], Rejections]:
    passed = [n for n in nodes if not n.unschedulable]
    if len(passed) == len(nodes) or tolerates_taint(pod.tolerations, _UNSCHEDULABLE_TAINT):
        return nodes, {}
    return passed, {n.name: ERR_REASON_UNSCHEDULABLE for n in nodes if n.unschedulable}
