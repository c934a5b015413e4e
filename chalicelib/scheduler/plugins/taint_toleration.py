"""TaintToleration: NoSchedule and NoExecute taints must be tolerated; PreferNoSchedule ones score.

The filter names the first untolerated taint as kube-scheduler v1.25-v1.34.1 print it:
"node(s) had untolerated taint {key: value}" (from v1.35, and v1.34.2, upstream prints the generic
`ERR_REASON_NOT_MATCH` instead so pod status does not leak taint keys). Rejections are
UnschedulableAndUnresolvable. Nodes share a few distinct taint lists, so each decision computes the
answer once per distinct list. The score counts intolerable PreferNoSchedule taints, reversed so the
node with fewest gets 100.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.scheduler.plugins.helper import MAX_NODE_SCORE, default_normalize
from chalicelib.scheduler.snapshot import NodeInfo, PodInfo, Snapshot
from chalicelib.scheduler.status import FilterResult, Rejections, Uniform, Unresolvable
from chalicelib.scheduler.tolerations import PREFER_NO_SCHEDULE, Taint, first_untolerated, tolerates_taint

NAME = "TaintToleration"
ERR_REASON_NOT_MATCH_FORMAT = "node(s) had untolerated taint {{{key}: {value}}}"
ERR_REASON_NOT_MATCH = "node(s) had untolerated taint(s)"  # upstream's wording from v1.35
_SCORE_STATE = NAME + "/score"


def untolerated_reason(taint: Taint) -> Unresolvable:
    return Unresolvable(ERR_REASON_NOT_MATCH_FORMAT.format(key=taint.get("key") or "", value=taint.get("value") or ""))


def filter(pod: PodInfo, node: NodeInfo, snapshot: Snapshot) -> FilterResult:
    if not node.hard_taints:
        return None
    answers: dict[Any, FilterResult] | None = pod.cycle.get(NAME)
    if answers is None:
        answers = pod.cycle[NAME] = {}
    key = node.hard_taints_key
    if key not in answers:
        taint = first_untolerated(node.hard_taints, pod.tolerations)
        answers[key] = None if taint is None else untolerated_reason(taint)
    return answers[key]


def filter_nodes(pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot) -> tuple[list[NodeInfo], Rejections]:
    rejected: Rejections = {}
    for node in [n for n in nodes if n.hard_taints]:
        result = filter(pod, node, snapshot)
        if result is not None:
            rejected[node.name] = result
    if not rejected:
        return nodes, {}
    return [n for n in nodes if n.name not in rejected], rejected


def pre_score(pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot, args: Mapping[str, Any]) -> Uniform | None:
    if not snapshot.prefer_no_schedule_nodes or not any(n.prefer_taints for n in nodes):
        return Uniform(MAX_NODE_SCORE)  # every raw score 0, reversed: 100 everywhere
    pod.cycle[_SCORE_STATE] = [t for t in pod.tolerations if (t.get("effect") or "") in ("", PREFER_NO_SCHEDULE)]
    return None


def score(pod: PodInfo, node: NodeInfo, snapshot: Snapshot) -> int:
    tolerations = pod.cycle[_SCORE_STATE]
    return sum(1 for taint in node.prefer_taints if not tolerates_taint(tolerations, taint))


def normalize(scores: dict[str, int], pod: PodInfo) -> dict[str, int]:
    return default_normalize(scores, reverse=True)
