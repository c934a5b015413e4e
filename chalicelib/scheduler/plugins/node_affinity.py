"""NodeAffinity: spec.nodeSelector and required node affinity filter; preferred terms score.

PreFilter narrows the candidate nodes when every required term names nodes by metadata.name (how
DaemonSet pods are pinned), so such a pod is checked against its node, not all of them; nodes left
out are reported as upstream reports them ("node(s) didn't satisfy plugin(s) [NodeAffinity]").
Rejections are UnschedulableAndUnresolvable. The score is the sum of the weights of matching
preferred terms, normalised so the best node gets 100.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.scheduler.nodeselector import (
    OBJECT_NAME_FIELD,
    PreferredNodeAffinity,
    RequiredNodeAffinity,
    required_terms,
)
from chalicelib.scheduler.plugins.helper import default_normalize
from chalicelib.scheduler.snapshot import NodeInfo, PodInfo, Snapshot
from chalicelib.scheduler.status import SKIP, FilterResult, Rejections, Skip, Unresolvable

NAME = "NodeAffinity"
ERR_REASON_POD = Unresolvable("node(s) didn't match Pod's node affinity/selector")
ERR_REASON_CONFLICT = Unresolvable("pod affinity terms conflict")
_SCORE_STATE = NAME + "/score"


def pre_filter(pod: PodInfo, snapshot: Snapshot) -> Skip | frozenset[str] | str | None:
    required = RequiredNodeAffinity(pod.spec)
    if required.is_empty:
        return SKIP
    pod.cycle[NAME] = required
    names: set[str] | None = None
    for term in required_terms(pod.spec) or ():
        term_names: set[str] | None = None
        for field in term.get("matchFields") or ():
            if field.get("key") == OBJECT_NAME_FIELD and field.get("operator") == "In":
                values = {str(v) for v in field.get("values") or ()}
                term_names = values if term_names is None else term_names & values
        if term_names is None:
            return None  # this term may match any node, and terms are ORed
        names = term_names if names is None else names | term_names
    if names is None:
        return None
    return frozenset(names) if names else ERR_REASON_CONFLICT


def filter(pod: PodInfo, node: NodeInfo, snapshot: Snapshot) -> FilterResult:
    required = pod.cycle.get(NAME) or RequiredNodeAffinity(pod.spec)
    return None if required.matches(node.labels, node.name) else ERR_REASON_POD


def filter_nodes(pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot) -> tuple[list[NodeInfo], Rejections]:
    required: RequiredNodeAffinity = pod.cycle.get(NAME) or RequiredNodeAffinity(pod.spec)
    if required.terms is None and len(required.selector) == 1:  # the common nodeSelector: one label
        ((key, value),) = required.selector
        passed = [n for n in nodes if n.labels.get(key) == value]
    else:
        passed = [n for n in nodes if required.matches(n.labels, n.name)]
    if len(passed) == len(nodes):
        return passed, {}
    kept = {n.name for n in passed}
    return passed, {n.name: ERR_REASON_POD for n in nodes if n.name not in kept}


def pre_score(pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot, args: Mapping[str, Any]) -> Skip | None:
    preferred = PreferredNodeAffinity(pod.spec)
    if not preferred.terms:
        return SKIP
    pod.cycle[_SCORE_STATE] = preferred
    return None


def score(pod: PodInfo, node: NodeInfo, snapshot: Snapshot) -> int:
    preferred: PreferredNodeAffinity = pod.cycle[_SCORE_STATE]
    return preferred.score(node.labels, node.name)


def normalize(scores: dict[str, int], pod: PodInfo) -> dict[str, int]:
    return default_normalize(scores)
