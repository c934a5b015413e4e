"""One scheduling decision, run the way kube-scheduler's framework runs it, with no I/O.

schedule(pod, snapshot, profile):
  PreFilter  each filter plugin prepares per-pod state once (or skips itself, or narrows the nodes);
  Filter     walks the nodes from where the last decision stopped, recording one status per
             rejected node, until it has found enough feasible ones (percentageOfNodesToScore:
             adaptive by default, so 5000 nodes need not all be checked for every pod);
  Score      each score plugin scores the feasible nodes, normalises to 0..100, times its weight;
  select     the highest total; ties go to the lowest node name, or to a seeded random choice.
When nothing fits, the message is FitError.Error()'s: "0/5 nodes are available: " then the
"<count> <reason>" strings sorted as strings and joined with ", ", then ".". `unresolvable` is True
when every node's status is UnschedulableAndUnresolvable, i.e. no added capacity would help.
Binding and the store stay with the caller.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.scheduler.plugins import REGISTRY, Plugin
from chalicelib.scheduler.snapshot import NodeInfo, PodInfo, Snapshot
from chalicelib.scheduler.status import SKIP, Reasons, Uniform, Unresolvable, is_unresolvable, reasons_of

DEFAULT_SCHEDULER_NAME = "default-scheduler"
NO_NODE_AVAILABLE_MSG = "0/{} nodes are available"
ERR_NO_NODES_AVAILABLE = "no nodes available to schedule pods"
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5

DEFAULT_FILTERS: tuple[str, ...] = (
    "NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodePorts", "NodeResourcesFit",
    "PodTopologySpread", "InterPodAffinity",
)
DEFAULT_SCORES: tuple[tuple[str, int], ...] = (
    ("TaintToleration", 3), ("NodeAffinity", 2), ("NodeResourcesFit", 1), ("PodTopologySpread", 2),
    ("InterPodAffinity", 2), ("NodeResourcesBalancedAllocation", 1),
)


@dataclass(frozen=True)
class Profile:
    """Which plugins filter and score (with weights), their args, and how much of the cluster to scan.

    `percentage_of_nodes_to_score`: 0 is upstream's adaptive default (50% minus 1% per 125 nodes,
    at least 5%, at least 100 nodes); 100 checks every node. `rng`, when given, breaks score ties at
    random (upstream's behaviour): give concurrent schedulers different seeds so they spread out.
    """

    name: str = DEFAULT_SCHEDULER_NAME
    filters: tuple[str, ...] = DEFAULT_FILTERS
    scores: tuple[tuple[str, int], ...] = DEFAULT_SCORES
    args: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    percentage_of_nodes_to_score: int = 0
    rng: random.Random | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in self.filters:
            if name not in REGISTRY or REGISTRY[name].filter is None:
                raise ValueError(f"{name!r} is not a filter plugin")
        for name, weight in self.scores:
            if name not in REGISTRY or REGISTRY[name].score is None:
                raise ValueError(f"{name!r} is not a score plugin")
            if weight < 0:
                raise ValueError(f"{name}: a score weight must not be negative")
        if not 0 <= self.percentage_of_nodes_to_score <= 100:
            raise ValueError("percentage_of_nodes_to_score must be within 0..100")


def default_profile(*, seed: int | None = None, percentage_of_nodes_to_score: int = 0) -> Profile:
    """kube-scheduler's default plugins and weights (ImageLocality and the volume plugins aside)."""
    return Profile(rng=random.Random(seed) if seed is not None else None,
                   percentage_of_nodes_to_score=percentage_of_nodes_to_score)


def bin_packing_profile(*, seed: int | None = None, percentage_of_nodes_to_score: int = 0) -> Profile:
    """The default profile with NodeResourcesFit scoring MostAllocated: fill nodes before using more."""
    return Profile(name="bin-packing-scheduler",
                   args={"NodeResourcesFit": {"scoringStrategy": {"type": "MostAllocated"}}},
                   rng=random.Random(seed) if seed is not None else None,
                   percentage_of_nodes_to_score=percentage_of_nodes_to_score)


@dataclass
class Decision:
    """Where the pod goes (`node`), or why it cannot go anywhere (`message`, `reasons`).

    `scores` holds each feasible node's weighted total; it is empty when a single node was feasible
    (upstream does not score then). On success `message` is the Scheduled event's text.
    """

    node: str | None
    message: str
    reasons: dict[str, int] = field(default_factory=dict)  # reason -> nodes rejected for it
    scores: dict[str, int] = field(default_factory=dict)  # feasible node -> weighted total
    unresolvable: bool = False
    evaluated: int = 0  # nodes run through the filters
    feasible: int = 0


@dataclass
class FilterOutcome:
    """What the filters said about each node: feasible ones, and the rejection of every other."""

    feasible: list[NodeInfo]
    rejected: dict[str, str | Reasons]


def num_feasible_nodes_to_find(percentage: int, num_nodes: int) -> int:
    """Upstream's numFeasibleNodesToFind: how many feasible nodes end the filter scan."""
    if num_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_nodes
    if percentage == 0:
        percentage = max(50 - num_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(num_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


class _PreFiltered:
    """PreFilter's outcome: the filters to run, the candidate nodes, or the rejection of all."""

    __slots__ = ("filters", "allowed", "absent_reason", "rejection")

    def __init__(self) -> None:
        self.filters: list[Plugin] = []
        self.allowed: frozenset[str] | None = None
        self.absent_reason: str | None = None
        self.rejection: str | None = None


def _pre_filter(pod: PodInfo, snapshot: Snapshot, profile: Profile) -> _PreFiltered:
    """RunPreFilterPlugins: skipped plugins do not filter; node sets from plugins intersect, and nodes
    left out get one UnschedulableAndUnresolvable status naming the plugins (as upstream words it)."""
    out = _PreFiltered()
    narrowing: list[str] = []
    for name in profile.filters:
        plugin = REGISTRY[name]
        if plugin.pre_filter is not None:
            result = plugin.pre_filter(pod, snapshot)
            if result is SKIP:
                continue
            if isinstance(result, frozenset):
                narrowing.append(name)
                out.allowed = result if out.allowed is None else out.allowed & result
                if not out.allowed:
                    out.rejection = Unresolvable(
                        f"node(s) didn't satisfy plugin {name}" if len(narrowing) == 1
                        else f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(narrowing))}] simultaneously")
                    return out
            elif isinstance(result, str):
                out.rejection = result
                return out
        out.filters.append(plugin)
    if out.allowed is not None:
        out.absent_reason = Unresolvable(f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(narrowing))}]")
    return out


def _run_filters(pod: PodInfo, node: NodeInfo, snapshot: Snapshot, filters: Sequence[Plugin]) -> str | Reasons | None:
    """Upstream's RunFilterPlugins: the first plugin to reject the node decides its status."""
    for plugin in filters:
        assert plugin.filter is not None
        result = plugin.filter(pod, node, snapshot)
        if result is not None:
            return result
    return None


def feasible_nodes(pod: Mapping[str, Any] | PodInfo, snapshot: Snapshot, profile: Profile | None = None,
                   nodes: Sequence[NodeInfo] | None = None) -> FilterOutcome:
    """Run PreFilter and every filter on `nodes` (default: all of the snapshot's), with no sampling.

    For a provisioner: build a NodeInfo for a node you could add (NodeInfo(node_dict)) and ask whether
    the pod would fit it, judged against the pods already in `snapshot` (spread, anti-affinity).
    """
    info = _pod_info(pod)
    profile = profile or default_profile()
    nodes = snapshot.order if nodes is None else nodes
    pre = _pre_filter(info, snapshot, profile)
    outcome = FilterOutcome([], {})
    for node in nodes:
        if pre.rejection is not None:
            outcome.rejected[node.name] = pre.rejection
        elif pre.allowed is not None and node.name not in pre.allowed:
            outcome.rejected[node.name] = pre.absent_reason or ""
        else:
            result = _run_filters(info, node, snapshot, pre.filters)
            if result is None:
                outcome.feasible.append(node)
            else:
                outcome.rejected[node.name] = result
    return outcome


def _pod_info(pod: Mapping[str, Any] | PodInfo) -> PodInfo:
    info = pod if isinstance(pod, PodInfo) else PodInfo(pod)
    info.cycle = {}
    return info


def fit_error_message(num_nodes: int, reasons: Mapping[str, int]) -> str:
    """FitError.Error(): "0/N nodes are available: " + sorted "<count> <reason>" strings + "."."""
    histogram = sorted(f"{count} {reason}" for reason, count in reasons.items())
    return f"{NO_NODE_AVAILABLE_MSG.format(num_nodes)}: {', '.join(histogram)}."


def schedule(pod: Mapping[str, Any] | PodInfo, snapshot: Snapshot, profile: Profile | None = None) -> Decision:
    """Choose a node for `pod` (nothing is written; `snapshot.add_pod` the result to assume it)."""
    info = _pod_info(pod)
    profile = profile or default_profile()
    total = len(snapshot.order)
    if total == 0:
        return Decision(None, ERR_NO_NODES_AVAILABLE)
    pre = _pre_filter(info, snapshot, profile)
    if pre.rejection is not None:
        return Decision(None, f"{NO_NODE_AVAILABLE_MSG.format(total)}: {pre.rejection}.",
                        reasons={pre.rejection: total}, unresolvable=isinstance(pre.rejection, Unresolvable))

    candidates = snapshot.order
    if pre.allowed is not None:
        candidates = [n for n in (snapshot.get(name) for name in sorted(pre.allowed)) if n is not None]
    want = num_feasible_nodes_to_find(profile.percentage_of_nodes_to_score, len(candidates))
    start = snapshot.next_start_index % len(candidates) if candidates else 0
    feasible, rejected = _find_feasible(info, snapshot, pre.filters, candidates, start, want)
    snapshot.next_start_index = (snapshot.next_start_index + len(feasible) + len(rejected)) % total

    reasons: dict[str, int] = {}
    for result in rejected.values():
        for reason in reasons_of(result):
            reasons[reason] = reasons.get(reason, 0) + 1
    absent = total - len(candidates)
    if absent and pre.absent_reason:
        reasons[pre.absent_reason] = reasons.get(pre.absent_reason, 0) + absent
    evaluated = len(feasible) + len(rejected)
    if not feasible:
        unresolvable = all(is_unresolvable(r) for r in rejected.values())  # absent nodes always are
        return Decision(None, fit_error_message(total, reasons), reasons, unresolvable=unresolvable,
                        evaluated=evaluated)
    if len(feasible) == 1:  # upstream skips scoring when there is no choice
        return _decided(info, feasible[0].name, reasons, {}, evaluated, 1)
    names, totals = _score(info, feasible, snapshot, profile)
    best = max(totals)
    if totals.count(best) == 1:
        chosen = names[totals.index(best)]
    else:
        ties = [name for name, total_score in zip(names, totals, strict=True) if total_score == best]
        chosen = profile.rng.choice(ties) if profile.rng is not None else min(ties)
    return _decided(info, chosen, reasons, dict(zip(names, totals, strict=True)), evaluated, len(feasible))


def _find_feasible(pod: PodInfo, snapshot: Snapshot, filters: Sequence[Plugin], nodes: list[NodeInfo],
                   start: int, want: int) -> tuple[list[NodeInfo], dict[str, str | Reasons]]:
    """findNodesThatPassFilters: nodes from `start` on (wrapping) until `want` pass, and the status of
    each node rejected on the way.

    Plugins filter a slice of nodes at a time (one call per plugin, not one per node). A slice holds
    no more nodes than are still needed, so it can never overshoot; small remainders are checked 64
    at a time and cut back to the walk a node-by-node scan would have made.
    """
    feasible: list[NodeInfo] = []
    rejected: dict[str, str | Reasons] = {}
    total, scanned = len(nodes), 0
    while scanned < total and len(feasible) < want:
        needed = want - len(feasible)
        size = min(max(needed, 64), total - scanned)
        begin = (start + scanned) % total
        chunk = nodes[begin:begin + size]
        if len(chunk) < size:
            chunk += nodes[:size - len(chunk)]
        scanned += size
        alive = chunk
        chunk_rejected: dict[str, str | Reasons] = {}
        for plugin in filters:
            alive, plugin_rejected = plugin.filter_many(pod, alive, snapshot)
            chunk_rejected.update(plugin_rejected)
            if not alive:
                break
        if len(alive) <= needed:
            feasible.extend(alive)
            rejected.update(chunk_rejected)
            continue
        scanned -= size
        for node in chunk:  # more passed than needed: keep the walk up to the needed-th feasible node
            scanned += 1
            reason = chunk_rejected.get(node.name)
            if reason is not None:
                rejected[node.name] = reason
            else:
                feasible.append(node)
                if len(feasible) == want:
                    break
    return feasible, rejected


def _decided(pod: PodInfo, node: str, reasons: dict[str, int], scores: dict[str, int], evaluated: int,
             feasible: int) -> Decision:
    return Decision(node, f"Successfully assigned {pod.key} to {node}", reasons, scores,
                    evaluated=evaluated, feasible=feasible)


def _score(pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot, profile: Profile) -> tuple[list[str], list[int]]:
    """PreScore, Score, NormalizeScore and the weighted sum: node names and their totals."""
    names = [n.name for n in nodes]
    totals = [0] * len(nodes)
    uniform = 0
    for name, weight in profile.scores:
        if weight == 0:
            continue
        plugin: Plugin = REGISTRY[name]
        if plugin.pre_score is not None:
            prepared = plugin.pre_score(pod, nodes, snapshot, profile.args.get(name) or {})
            if prepared is SKIP:
                continue
            if isinstance(prepared, Uniform):
                uniform += int(prepared) * weight
                continue
        raw = plugin.scores(pod, nodes, snapshot)
        if plugin.normalize is not None:
            normalized = plugin.normalize(dict(zip(names, raw, strict=True)), pod)
            raw = [normalized[n] for n in names]
        totals = [t + s * weight for t, s in zip(totals, raw, strict=True)]
    return names, [t + uniform for t in totals] if uniform else totals
