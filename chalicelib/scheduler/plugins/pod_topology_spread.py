"""PodTopologySpread: keep matching pods spread across zones or nodes within maxSkew.

For each DoNotSchedule constraint a node passes when
    (matching pods in its domain) + (1 if the pod matches its own selector) - (global minimum) <= maxSkew,
where the global minimum is taken over the eligible domains, and counts as 0 while fewer than
minDomains domains exist. Eligible nodes carry every constraint's topologyKey and, by default,
match the pod's node affinity/selector (nodeAffinityPolicy Honor; nodeTaintsPolicy Ignore). Matching
pods are those in the pod's namespace that the labelSelector (plus matchLabelKeys) selects, not
terminating. A node without the topologyKey is UnschedulableAndUnresolvable ("missing required
label"). ScheduleAnyway constraints score nodes with fewer matching pods higher, as upstream.

Counts come from the snapshot's per-selector indexes, computed once per pod in PreFilter/PreScore.
When every node carries the keys and no inclusion policy narrows the nodes, that is a dictionary
lookup per domain; otherwise one pass over the nodes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from chalicelib.api.label_selector import IN, LabelSelector, Requirement
from chalicelib.scheduler.nodeselector import RequiredNodeAffinity
from chalicelib.scheduler.plugins.helper import MAX_NODE_SCORE
from chalicelib.scheduler.podterms import PodMatcher, label_selector
from chalicelib.scheduler.snapshot import HOSTNAME_LABEL, NodeInfo, PodInfo, Snapshot
from chalicelib.scheduler.status import SKIP, FilterResult, Rejections, Skip, Unresolvable, filter_each
from chalicelib.scheduler.tolerations import first_untolerated

NAME = "PodTopologySpread"
ERR_REASON_CONSTRAINTS_NOT_MATCH = "node(s) didn't match pod topology spread constraints"
ERR_REASON_NODE_LABEL_NOT_MATCH = Unresolvable(ERR_REASON_CONSTRAINTS_NOT_MATCH + " (missing required label)")
DO_NOT_SCHEDULE, SCHEDULE_ANYWAY = "DoNotSchedule", "ScheduleAnyway"
HONOR, IGNORE = "Honor", "Ignore"
_NO_DOMAIN_MIN = 2**31 - 1  # criticalPaths' initial MatchNum (math.MaxInt32)
_SCORE_STATE = NAME + "/score"


class Constraint(NamedTuple):
    max_skew: int
    topology_key: str
    matcher: PodMatcher
    counts_nothing: bool  # an empty selector counts no pods (countPodsMatchSelector), as upstream
    self_match: bool
    min_domains: int
    honor_node_affinity: bool
    honor_taints: bool


def _selector(constraint: Mapping[str, Any], pod_labels: Mapping[str, str]) -> LabelSelector:
    """The labelSelector, ANDed with `key in (pod's value)` for each matchLabelKeys key the pod has."""
    selector = label_selector(constraint.get("labelSelector"))
    extra = [Requirement(key, IN, (pod_labels[key],)) for key in constraint.get("matchLabelKeys") or ()
             if key in pod_labels]
    nothing = not selector.is_empty and not selector.requirements
    if extra and not nothing:
        selector = LabelSelector([*selector.requirements, *extra])
    return selector


def constraints(pod: PodInfo, action: str) -> list[Constraint]:
    """The pod's topologySpreadConstraints with whenUnsatisfiable `action`."""
    found: list[Constraint] = []
    for c in pod.spec.get("topologySpreadConstraints") or ():
        if (c.get("whenUnsatisfiable") or DO_NOT_SCHEDULE) != action:
            continue
        selector = _selector(c, pod.labels)
        min_domains = c.get("minDomains")
        found.append(Constraint(
            max_skew=int(c.get("maxSkew") or 1), topology_key=c.get("topologyKey") or "",
            matcher=PodMatcher(namespaces=frozenset({pod.namespace}), selector=selector, skip_terminating=True),
            counts_nothing=selector.is_empty, self_match=selector.matches(pod.labels),
            min_domains=int(min_domains) if min_domains is not None else 1,
            honor_node_affinity=(c.get("nodeAffinityPolicy") or HONOR) == HONOR,
            honor_taints=(c.get("nodeTaintsPolicy") or IGNORE) == HONOR))
    return found


def _every_node_eligible(pod: PodInfo, cs: list[Constraint], snapshot: Snapshot) -> bool:
    """True when no node is left out, so the snapshot's live per-domain counts are the answer."""
    if any(c.honor_taints for c in cs):
        return False
    if any(c.honor_node_affinity for c in cs) and not RequiredNodeAffinity(pod.spec).is_empty:
        return False
    return all(snapshot.nodes_with_label(c.topology_key) == len(snapshot) for c in cs)


def _node_eligible(pod: PodInfo, c: Constraint, node: NodeInfo, required: RequiredNodeAffinity) -> bool:
    """matchNodeInclusionPolicies."""
    if c.honor_node_affinity and not required.matches(node.labels, node.name):
        return False
    return not (c.honor_taints and first_untolerated(node.hard_taints, pod.tolerations) is not None)


def domain_counts(pod: PodInfo, cs: list[Constraint], snapshot: Snapshot,
                  wanted: list[set[str]] | None = None) -> list[Mapping[str, int]]:
    """Per constraint: matching pods per eligible domain. Domains with no matching pod are present
    (as 0) only on the slow path; `wanted` limits the slow path to domains of interest."""
    if _every_node_eligible(pod, cs, snapshot):
        return [{} if c.counts_nothing else snapshot.count_by_domain(c.matcher, c.topology_key) for c in cs]
    required = RequiredNodeAffinity(pod.spec)
    keys = [c.topology_key for c in cs]
    by_node = [{} if c.counts_nothing else snapshot.count_by_node(c.matcher) for c in cs]
    counts: list[dict[str, int]] = [{} for _ in cs]
    for node in snapshot.nodes:
        labels = node.labels
        if any(k not in labels for k in keys):
            continue
        for i, c in enumerate(cs):
            value = labels[c.topology_key]
            if (wanted is None or value in wanted[i]) and _node_eligible(pod, c, node, required):
                counts[i][value] = counts[i].get(value, 0) + by_node[i].get(node.name, 0)
    result: list[Mapping[str, int]] = [*counts]
    return result


class _FilterState(NamedTuple):
    constraint: Constraint
    counts: Mapping[str, int]
    global_min: int  # minimum over eligible domains, before minDomains


def pre_filter(pod: PodInfo, snapshot: Snapshot) -> Skip | None:
    cs = constraints(pod, DO_NOT_SCHEDULE)
    if not cs:
        return SKIP
    fast = _every_node_eligible(pod, cs, snapshot)
    states: list[_FilterState] = []
    for c, counts in zip(cs, domain_counts(pod, cs, snapshot), strict=True):
        domains = len(snapshot.domains(c.topology_key)) if fast else len(counts)
        if domains == 0:
            global_min = _NO_DOMAIN_MIN
        elif fast and len(counts) < domains:
            global_min = 0  # some domain holds no matching pod (fast counts list only non-empty ones)
        else:
            global_min = min(counts.values())
        if domains < c.min_domains:
            global_min = 0
        states.append(_FilterState(c, counts, global_min))
    pod.cycle[NAME] = states
    return None


def filter(pod: PodInfo, node: NodeInfo, snapshot: Snapshot) -> FilterResult:
    labels = node.labels
    for c, counts, global_min in pod.cycle[NAME]:
        value = labels.get(c.topology_key)
        if value is None:
            return ERR_REASON_NODE_LABEL_NOT_MATCH
        if counts.get(value, 0) + c.self_match - global_min > c.max_skew:
            return ERR_REASON_CONSTRAINTS_NOT_MATCH
    return None


def filter_nodes(pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot) -> tuple[list[NodeInfo], Rejections]:
    states: list[_FilterState] = pod.cycle[NAME]
    if len(states) != 1:
        return filter_each(filter, pod, nodes, snapshot)
    c, counts, global_min = states[0]
    key, limit = c.topology_key, c.max_skew + global_min - c.self_match  # count > limit: skew too big
    passed: list[NodeInfo] = []
    rejected: Rejections = {}
    for node in nodes:
        value = node.labels.get(key)
        if value is None:
            rejected[node.name] = ERR_REASON_NODE_LABEL_NOT_MATCH
        elif counts.get(value, 0) > limit:
            rejected[node.name] = ERR_REASON_CONSTRAINTS_NOT_MATCH
        else:
            passed.append(node)
    return passed, rejected


# ---- scoring (ScheduleAnyway) -----------------------------------------------------------------

class _ScoreState(NamedTuple):
    constraints: list[Constraint]
    counts: list[Mapping[str, int]]  # per constraint: domain -> matching pods (per node for hostname)
    weights: list[float]
    ignored: set[str]


def pre_score(pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot, args: Mapping[str, Any]) -> Skip | None:
    cs = constraints(pod, SCHEDULE_ANYWAY)
    if not cs or not nodes:
        return SKIP
    keys = [c.topology_key for c in cs]
    ignored = {n.name for n in nodes if any(k not in n.labels for k in keys)}
    wanted: list[set[str]] = [set() for _ in cs]
    for node in nodes:
        if node.name not in ignored:
            for i, key in enumerate(keys):
                wanted[i].add(node.labels[key])
    weights = [math.log((len(nodes) - len(ignored) if key == HOSTNAME_LABEL else len(wanted[i])) + 2)
               for i, key in enumerate(keys)]
    counts = domain_counts(pod, cs, snapshot, wanted)
    for i, c in enumerate(cs):
        if c.topology_key == HOSTNAME_LABEL:  # per-node counts, without the inclusion policies
            counts[i] = {} if c.counts_nothing else snapshot.count_by_node(c.matcher)
    pod.cycle[_SCORE_STATE] = _ScoreState(cs, counts, weights, ignored)
    return None


def score(pod: PodInfo, node: NodeInfo, snapshot: Snapshot) -> int:
    state: _ScoreState = pod.cycle[_SCORE_STATE]
    if node.name in state.ignored:
        return 0
    total = 0.0
    for c, counts, weight in zip(state.constraints, state.counts, state.weights, strict=True):
        value = node.labels.get(c.topology_key)
        if value is not None:
            count = counts.get(node.name if c.topology_key == HOSTNAME_LABEL else value, 0)
            total += count * weight + (c.max_skew - 1)
    return math.floor(total + 0.5)  # math.Round on a non-negative value


def normalize(scores: dict[str, int], pod: PodInfo) -> dict[str, int]:
    """Fewest matching pods gets 100: MaxNodeScore * (max + min - score) / max; ignored nodes 0."""
    ignored = pod.cycle[_SCORE_STATE].ignored
    considered = [s for name, s in scores.items() if name not in ignored]
    lowest, highest = min(considered, default=0), max(considered, default=0)
    out: dict[str, int] = {}
    for name, s in scores.items():
        if name in ignored:
            out[name] = 0
        elif highest == 0:
            out[name] = MAX_NODE_SCORE
        else:
            out[name] = MAX_NODE_SCORE * (highest + lowest - s) // highest
    return out
