"""InterPodAffinity: required pod affinity and anti-affinity filter; preferred terms score.

A node is rejected when
  - the pod's required affinity finds no matching pod in the node's domain (unless no pod anywhere
    matches and the pod matches its own terms: the first of a group that attracts itself), or the
    node lacks a term's topologyKey: UnschedulableAndUnresolvable;
  - the pod's required anti-affinity finds a matching pod in the node's domain: Unschedulable;
  - an existing pod's required anti-affinity selects the incoming pod and sits in the node's domain:
    Unschedulable.
Scoring adds, per topology domain, the weights of the pod's preferred terms times the pods they
match there, existing pods' preferred terms (and required affinity, weight 1) that match the
incoming pod, and subtracts anti-affinity likewise; then min-max normalises to 0..100.

Everything is computed once per pod from the snapshot's counts per selector and its groups of
identical existing terms; the per-node check is a lookup per term.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, NamedTuple

from chalicelib.scheduler.plugins.helper import MAX_NODE_SCORE
from chalicelib.scheduler.podterms import AffinityTerm
from chalicelib.scheduler.snapshot import (
    PREFERRED_AFFINITY,
    PREFERRED_ANTI_AFFINITY,
    REQUIRED_AFFINITY,
    REQUIRED_ANTI_AFFINITY,
    NodeInfo,
    PodInfo,
    Snapshot,
)
from chalicelib.scheduler.status import SKIP, FilterResult, Rejections, Skip, Unresolvable, filter_each

NAME = "InterPodAffinity"
ERR_REASON_AFFINITY_RULES_NOT_MATCH = Unresolvable("node(s) didn't match pod affinity rules")
ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH = "node(s) didn't match pod anti-affinity rules"
ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH = "node(s) didn't satisfy existing pods anti-affinity rules"
HARD_POD_AFFINITY_WEIGHT = 1  # InterPodAffinityArgs.hardPodAffinityWeight default
_SCORE_STATE = NAME + "/score"

DomainCounts = Mapping[str, int]


class _FilterState(NamedTuple):
    affinity: list[tuple[str, DomainCounts]]  # (topologyKey, matching pods per domain) per term
    affinity_found: bool  # some pod matches all the affinity terms (affinityCounts is not empty)
    self_match: bool  # the pod matches all its own affinity terms
    anti_affinity: list[tuple[str, DomainCounts]]
    existing_anti: dict[str, set[str]]  # topologyKey -> domains where an existing pod forbids the pod


def _selects(term: AffinityTerm, pod: PodInfo, snapshot: Snapshot) -> bool:
    """AffinityTerm.Matches: an existing pod's term against the incoming pod."""
    return term.matcher.matches(pod.namespace, pod.labels, False, snapshot.namespace_labels)


def _affinity_counts(terms: tuple[AffinityTerm, ...], snapshot: Snapshot) -> list[DomainCounts]:
    """Per term, pods (matching every term) per domain of that term's key."""
    if len(terms) == 1:
        return [snapshot.count_by_domain(terms[0].matcher, terms[0].topology_key)]
    counts: list[dict[str, int]] = [{} for _ in terms]
    for pod in snapshot.pods_in(terms[0].matcher):
        if all(_selects(t, pod, snapshot) for t in terms):
            node = snapshot.get(pod.node_name)
            for i, t in enumerate(terms):
                value = node.labels.get(t.topology_key) if node else None
                if value is not None:
                    counts[i][value] = counts[i].get(value, 0) + 1
    result: list[DomainCounts] = [*counts]
    return result


def pre_filter(pod: PodInfo, snapshot: Snapshot) -> Skip | None:
    existing: dict[str, set[str]] = {}
    for group in snapshot.term_groups(REQUIRED_ANTI_AFFINITY):
        if group.by_domain and _selects(group.term, pod, snapshot):
            existing.setdefault(group.term.topology_key, set()).update(group.by_domain)
    terms = pod.terms
    if not existing and not terms.required_affinity and not terms.required_anti_affinity:
        return SKIP
    affinity_counts = _affinity_counts(terms.required_affinity, snapshot) if terms.required_affinity else []
    pod.cycle[NAME] = _FilterState(
        affinity=[(t.topology_key, c) for t, c in zip(terms.required_affinity, affinity_counts, strict=True)],
        affinity_found=any(affinity_counts),
        self_match=all(_selects(t, pod, snapshot) for t in terms.required_affinity),
        anti_affinity=[(t.topology_key, snapshot.count_by_domain(t.matcher, t.topology_key))
                       for t in terms.required_anti_affinity],
        existing_anti=existing)
    return None


def filter(pod: PodInfo, node: NodeInfo, snapshot: Snapshot) -> FilterResult:
    state: _FilterState = pod.cycle[NAME]
    labels = node.labels
    if state.affinity:
        pods_exist = True
        for key, counts in state.affinity:
            value = labels.get(key)
            if value is None:
                return ERR_REASON_AFFINITY_RULES_NOT_MATCH
            if counts.get(value, 0) <= 0:
                pods_exist = False
        if not pods_exist and (state.affinity_found or not state.self_match):
            return ERR_REASON_AFFINITY_RULES_NOT_MATCH
    for key, counts in state.anti_affinity:
        value = labels.get(key)
        if value is not None and counts.get(value, 0) > 0:
            return ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH
    for key, domains in state.existing_anti.items():
        value = labels.get(key)
        if value is not None and value in domains:
            return ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH
    return None


def filter_nodes(pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot) -> tuple[list[NodeInfo], Rejections]:
    """`filter` for many nodes; a single anti-affinity rule (the usual "one per node") is a set lookup."""
    state: _FilterState = pod.cycle[NAME]
    # count_by_domain keeps only domains with pods, so its keys are the forbidden domains
    rules: list[tuple[str, Collection[str], str]] = [
        (key, counts, ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH) for key, counts in state.anti_affinity if counts]
    rules += [(key, domains, ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH)
              for key, domains in state.existing_anti.items()]
    if state.affinity or len(rules) > 1:
        return filter_each(filter, pod, nodes, snapshot)
    if not rules:
        return nodes, {}
    ((key, forbidden, reason),) = rules
    passed = [n for n in nodes if n.labels.get(key) not in forbidden]
    if len(passed) == len(nodes):
        return passed, {}
    return passed, {n.name: reason for n in nodes if n.labels.get(key) in forbidden}


# ---- scoring ----------------------------------------------------------------------------------

def pre_score(pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot, args: Mapping[str, Any]) -> Skip | None:
    hard_weight = int(args.get("hardPodAffinityWeight", HARD_POD_AFFINITY_WEIGHT))
    topology: dict[str, dict[str, int]] = {}

    def add(key: str, counts: DomainCounts, weight: int) -> None:
        if counts and weight:
            scores = topology.setdefault(key, {})
            for value, count in counts.items():
                scores[value] = scores.get(value, 0) + weight * count

    terms = pod.terms
    for term in terms.preferred_affinity:
        add(term.topology_key, snapshot.count_by_domain(term.matcher, term.topology_key), term.weight)
    for term in terms.preferred_anti_affinity:
        add(term.topology_key, snapshot.count_by_domain(term.matcher, term.topology_key), -term.weight)
    for kind, sign in ((REQUIRED_AFFINITY, 0), (PREFERRED_AFFINITY, 1), (PREFERRED_ANTI_AFFINITY, -1)):
        for group in snapshot.term_groups(kind):
            if group.by_domain and _selects(group.term, pod, snapshot):
                weight = hard_weight if kind == REQUIRED_AFFINITY else sign * group.term.weight
                add(group.term.topology_key, group.by_domain, weight)
    if not topology:
        return SKIP
    pod.cycle[_SCORE_STATE] = topology
    return None


def score(pod: PodInfo, node: NodeInfo, snapshot: Snapshot) -> int:
    topology: dict[str, dict[str, int]] = pod.cycle[_SCORE_STATE]
    total = 0
    for key, scores in topology.items():
        value = node.labels.get(key)
        if value is not None:
            total += scores.get(value, 0)
    return total


def normalize(scores: dict[str, int], pod: PodInfo) -> dict[str, int]:
    """Min-max to 0..100, truncated (float64 then int64, as upstream)."""
    if not scores:
        return scores
    lowest, highest = min(scores.values()), max(scores.values())
    spread = highest - lowest
    if spread <= 0:
        return dict.fromkeys(scores, 0)
    return {name: int(MAX_NODE_SCORE * ((s - lowest) / spread)) for name, s in scores.items()}
