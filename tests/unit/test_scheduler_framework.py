"""Whole scheduling decisions: the FailedScheduling message, placement by profile, sampling, assume."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from chalicelib.scheduler import (
    NodeInfo,
    PodInfo,
    Profile,
    Snapshot,
    bin_packing_profile,
    default_profile,
    feasible_nodes,
    fit_error_message,
    schedule,
)
from chalicelib.scheduler.framework import DEFAULT_FILTERS, _pre_filter, _run_filters, num_feasible_nodes_to_find
from chalicelib.scheduler.podterms import PodMatcher, label_selector
from chalicelib.scheduler.status import reasons_of

ZONE, HOST = "topology.kubernetes.io/zone", "kubernetes.io/hostname"
UNREACHABLE = [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]


def node(name: str, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110", zone: str = "a",
         labels: dict[str, str] | None = None, taints: list[dict[str, Any]] | None = None,
         unschedulable: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"taints": taints or []}
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": name, "labels": {HOST: name, ZONE: zone, **(labels or {})}}, "spec": spec,
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods}}}


def pod(name: str = "p", *, cpu: str = "100m", memory: str = "128Mi", labels: dict[str, str] | None = None,
        namespace: str = "default", on: str | None = None, phase: str | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "c", "image": "i",
                                            "resources": {"requests": {"cpu": cpu, "memory": memory}}}], **spec}
    if on:
        body["nodeName"] = on
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": "web"}},
            "spec": body, "status": {"phase": phase or ("Running" if on else "Pending")}}


def place(pods: list[dict[str, Any]], snapshot: Snapshot, profile: Profile | None = None) -> list[str | None]:
    """Schedule pods one after another, assuming each into the snapshot, as the scheduler's cache does."""
    placed: list[str | None] = []
    for p in pods:
        decision = schedule(p, snapshot, profile)
        if decision.node:
            snapshot.add_pod(p, decision.node)
        placed.append(decision.node)
    return placed


# ---- the FailedScheduling message --------------------------------------------------------------

def test_message_for_a_mixed_cluster_is_kubernetes_own() -> None:
    nodes = [node("n1", cpu="2"), node("n2", cpu="2"), node("n3", cpu="2"),
             node("n4", taints=UNREACHABLE), node("n5", taints=UNREACHABLE)]
    busy = [pod(f"b{i}", cpu="1500m", on=f"n{i}") for i in (1, 2, 3)]
    decision = schedule(pod(cpu="1"), Snapshot.from_objects(nodes, busy))
    assert decision.node is None
    assert decision.message == ("0/5 nodes are available: 2 node(s) had untolerated taint "
                                "{node.kubernetes.io/unreachable: }, 3 Insufficient cpu.")
    assert decision.reasons == {"Insufficient cpu": 3,
                                "node(s) had untolerated taint {node.kubernetes.io/unreachable: }": 2}
    assert not decision.unresolvable  # the cpu could be freed; a provisioner should add capacity
    assert decision.scores == {} and decision.evaluated == 5


def test_message_sorts_the_formatted_strings_so_10_comes_before_2() -> None:
    nodes = [node(f"n{i:02d}", memory="1Gi") for i in range(10)] + [node(f"c{i}", unschedulable=True) for i in range(2)]
    decision = schedule(pod(memory="2Gi"), Snapshot.from_objects(nodes, []))
    assert decision.message == "0/12 nodes are available: 10 Insufficient memory, 2 node(s) were unschedulable."


def test_one_node_can_give_several_reasons() -> None:
    nodes = [node("n1", cpu="1", memory="1Gi"), node("n2", cpu="1", memory="1Gi")]
    holders = [pod("h1", cpu="1", memory="1Gi", on="n1"), pod("h2", cpu="1", memory="1Gi", on="n2")]
    decision = schedule(pod(cpu="1", memory="1Gi"), Snapshot.from_objects(nodes, holders))
    assert decision.message == "0/2 nodes are available: 2 Insufficient cpu, 2 Insufficient memory."


def test_fit_error_message_format() -> None:
    assert fit_error_message(3, {"b": 1, "a": 2}) == "0/3 nodes are available: 1 b, 2 a."


@pytest.mark.parametrize(("nodes", "incoming", "unresolvable"), [
    ([node("n", taints=UNREACHABLE), node("m", labels={"pool": "x"})], pod(nodeSelector={"pool": "y"}), True),
    ([node("n", cpu="1")], pod(cpu="2"), True),  # bigger than the whole node: no node of that size will do
    ([node("n", cpu="1", unschedulable=True), node("m", cpu="1")], pod(cpu="2"), True),
    ([node("n", pods="0")], pod(), False),
])
def test_unresolvable_when_no_capacity_would_help(nodes: list[dict[str, Any]], incoming: dict[str, Any],
                                                  unresolvable: bool) -> None:
    decision = schedule(incoming, Snapshot.from_objects(nodes, []))
    assert decision.node is None and decision.unresolvable is unresolvable


def test_no_nodes() -> None:
    decision = schedule(pod(), Snapshot([]))
    assert decision.node is None and decision.message == "no nodes available to schedule pods"
    assert not decision.unresolvable


def test_pinned_pod_is_checked_only_against_its_node() -> None:
    pinned = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n3"]}]}]}}}
    nodes = [node(f"n{i}", cpu="1" if i == 3 else "4") for i in range(1, 6)]
    snapshot = Snapshot.from_objects(nodes, [])
    assert schedule(pod(cpu="500m", affinity=pinned), snapshot).node == "n3"
    decision = schedule(pod(cpu="2", affinity=pinned), snapshot)
    assert decision.evaluated == 1
    assert decision.message == ("0/5 nodes are available: 1 Insufficient cpu, "
                                "4 node(s) didn't satisfy plugin(s) [NodeAffinity].")
    assert decision.unresolvable
    conflict = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]},
                         {"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]}}}
    decision = schedule(pod(affinity=conflict), snapshot)
    assert decision.message == "0/5 nodes are available: pod affinity terms conflict."
    assert decision.reasons == {"pod affinity terms conflict": 5} and decision.unresolvable


# ---- where pods go -----------------------------------------------------------------------------

def test_least_allocated_spreads_and_most_allocated_packs() -> None:
    nodes = [node(f"n{i}") for i in range(4)]
    spread = place([pod(f"p{i}", cpu="500m", memory="1Gi") for i in range(4)], Snapshot.from_objects(nodes, []))
    assert sorted(spread) == ["n0", "n1", "n2", "n3"]  # type: ignore[type-var]
    packed = place([pod(f"p{i}", cpu="500m", memory="1Gi") for i in range(4)], Snapshot.from_objects(nodes, []),
                   bin_packing_profile())
    assert len(set(packed)) == 1
    # MostAllocated still moves on when the full node cannot take more
    more = place([pod(f"q{i}", cpu="1500m", memory="1Gi") for i in range(4)], Snapshot.from_objects(nodes, []),
                 bin_packing_profile())
    assert sorted(more.count(n) for n in set(more)) == [2, 2]


def test_least_allocated_prefers_the_emptier_node() -> None:
    nodes = [node("busy"), node("idle")]
    snapshot = Snapshot.from_objects(nodes, [pod("b", cpu="3", memory="6Gi", on="busy")])
    decision = schedule(pod(cpu="500m", memory="1Gi"), snapshot)
    assert decision.node == "idle" and decision.scores["idle"] > decision.scores["busy"]
    assert schedule(pod(cpu="500m", memory="1Gi"), snapshot, bin_packing_profile()).node == "busy"


def test_topology_spread_across_zones() -> None:
    nodes = [node(f"{z}{i}", zone=z) for z in "abc" for i in range(3)]
    constraint = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
                   "labelSelector": {"matchLabels": {"app": "web"}}}]
    snapshot = Snapshot.from_objects(nodes, [])
    # even with bin packing pulling every pod to one node, the zones stay within one of each other
    placed = place([pod(f"p{i}", topologySpreadConstraints=constraint) for i in range(9)], snapshot,
                   bin_packing_profile())
    per_zone = {z: sum(1 for n in placed if n and n.startswith(z)) for z in "abc"}
    assert per_zone == {"a": 3, "b": 3, "c": 3}
    assert snapshot.count_by_domain(PodMatcher(namespaces=frozenset({"default"}), selector=label_selector(
        {"matchLabels": {"app": "web"}})), ZONE) == {"a": 3, "b": 3, "c": 3}


def test_topology_spread_with_a_zone_full_is_unschedulable_with_upstream_reasons() -> None:
    nodes = [node("a1", zone="a", cpu="1"), node("b1", zone="b"), node("c1", zone="c")]
    constraint = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
                   "labelSelector": {"matchLabels": {"app": "web"}}}]
    existing = [pod("w1", on="b1"), pod("w2", on="c1"), pod("hog", cpu="1", labels={"app": "hog"}, on="a1")]
    decision = schedule(pod(topologySpreadConstraints=constraint), Snapshot.from_objects(nodes, existing))
    assert decision.message == ("0/3 nodes are available: 1 Insufficient cpu, "
                                "2 node(s) didn't match pod topology spread constraints.")


def test_anti_affinity_on_hostname() -> None:
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": HOST, "labelSelector": {"matchLabels": {"app": "web"}}}]}}
    snapshot = Snapshot.from_objects([node("n1"), node("n2"), node("n3")], [])
    placed = place([pod(f"p{i}", affinity=anti) for i in range(4)], snapshot)
    assert sorted(placed[:3]) == ["n1", "n2", "n3"] and placed[3] is None  # type: ignore[type-var]
    decision = schedule(pod("p9", affinity=anti), snapshot)
    assert decision.message == "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."
    assert not decision.unresolvable
    # the pods already placed keep away every pod their term selects, and only those
    decision = schedule(pod("other", labels={"app": "web"}), snapshot)
    assert decision.message == "0/3 nodes are available: 3 node(s) didn't satisfy existing pods anti-affinity rules."
    assert schedule(pod("db", labels={"app": "db"}), snapshot).node is not None
    guarded = Snapshot.from_objects([node("n1"), node("n2")], [pod("g", on="n1", affinity=anti)])
    assert schedule(pod("x"), guarded).node == "n2"


def test_a_profile_change_changes_the_decision() -> None:
    nodes = [node("tainted", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
             node("busy", cpu="1")]
    snapshot = Snapshot.from_objects(nodes, [pod("b", cpu="900m", on="busy")])
    assert schedule(pod(cpu="500m"), snapshot).node is None
    without_taints = Profile(name="no-taints", filters=tuple(f for f in DEFAULT_FILTERS if f != "TaintToleration"))
    assert schedule(pod(cpu="500m"), snapshot, without_taints).node == "tainted"
    # weights: with NodeAffinity preferences weighted out, resource scoring decides
    prefer_busy = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [{"key": HOST, "operator": "In", "values": ["n1"]}]}}]}}
    two = Snapshot.from_objects([node("n1"), node("n2")], [pod("b", cpu="3", on="n1")])
    assert schedule(pod(affinity=prefer_busy), two).node == "n1"
    no_affinity_score = Profile(scores=tuple((n, 0 if n == "NodeAffinity" else w) for n, w in default_profile().scores))
    assert schedule(pod(affinity=prefer_busy), two, no_affinity_score).node == "n2"
    with pytest.raises(ValueError):
        Profile(filters=("NoSuchPlugin",))
    with pytest.raises(ValueError):
        Profile(scores=(("NodePorts", 1),))  # a filter, not a score plugin


def test_ties_go_to_the_lowest_name_or_a_seeded_choice() -> None:
    nodes = [node(name) for name in ("c", "a", "b")]
    decision = schedule(pod(), Snapshot.from_objects(nodes, []))
    assert decision.node == "a" and len(set(decision.scores.values())) == 1
    seeded = [schedule(pod(), Snapshot.from_objects(nodes, []), default_profile(seed=s)).node for s in range(20)]
    assert set(seeded) == {"a", "b", "c"}
    again = [schedule(pod(), Snapshot.from_objects(nodes, []), default_profile(seed=s)).node for s in range(20)]
    assert seeded == again


# ---- how much of the cluster is looked at -------------------------------------------------------

@pytest.mark.parametrize(("percentage", "nodes", "expected"), [
    (0, 50, 50), (0, 100, 100), (0, 200, 100), (0, 1000, 420), (0, 5000, 500), (0, 10000, 500), (0, 100000, 5000),
    (100, 5000, 5000), (10, 500, 100), (30, 1000, 300),
])
def test_num_feasible_nodes_to_find(percentage: int, nodes: int, expected: int) -> None:
    assert num_feasible_nodes_to_find(percentage, nodes) == expected


def test_partial_scan_rotates_through_the_cluster() -> None:
    snapshot = Snapshot.from_objects([node(f"n{i:03d}", zone="abc"[i % 3]) for i in range(250)], [])
    first = schedule(pod("p1"), snapshot)  # 250 nodes: 48% of them, 120
    assert first.evaluated == 120 and first.feasible == 120 and snapshot.next_start_index == 120
    second = schedule(pod("p2"), snapshot)
    assert second.node in {n.name for n in snapshot.order[120:240]} and snapshot.next_start_index == 240
    schedule(pod("p3"), snapshot)
    assert snapshot.next_start_index == 110  # wrapped around
    everything = schedule(pod("p4"), snapshot, default_profile(percentage_of_nodes_to_score=100))
    assert everything.evaluated == 250


def test_chunked_filtering_matches_a_node_by_node_walk() -> None:
    """The framework filters many nodes per plugin call; it must still stop where a walk would."""
    rng = random.Random(7)
    spread = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "web"}}}]
    for trial in range(40):
        count = rng.randint(100, 400)
        nodes = [node(f"n{i:03d}", cpu=rng.choice(["1", "2", "4"]), zone="abc"[i % 3],
                      taints=UNREACHABLE if rng.random() < 0.2 else None,
                      unschedulable=rng.random() < 0.1) for i in range(count)]
        bound = [pod(f"w{i}", on=f"n{rng.randrange(count):03d}") for i in range(rng.randrange(20))]
        snapshot = Snapshot.from_objects(nodes, bound)
        snapshot.next_start_index = start = rng.randrange(count)
        extra: dict[str, Any] = {"topologySpreadConstraints": spread} if trial % 2 else {}
        incoming = pod(f"p{trial}", cpu=rng.choice(["500m", "1500m", "3"]), **extra)
        decision = schedule(incoming, snapshot)

        info = PodInfo(incoming)
        filters = _pre_filter(info, snapshot, default_profile()).filters
        want, feasible, rejected = num_feasible_nodes_to_find(0, count), 0, {}
        for i in range(count):
            candidate = snapshot.order[(start + i) % count]
            result = _run_filters(info, candidate, snapshot, filters)
            if result is None:
                feasible += 1
                if feasible == want:
                    break
            else:
                rejected[candidate.name] = result
        assert (decision.feasible, decision.evaluated) == (feasible, feasible + len(rejected))
        assert decision.reasons == dict(Counter(r for v in rejected.values() for r in reasons_of(v)))
        assert snapshot.next_start_index == (start + feasible + len(rejected)) % count


def test_nodes_are_walked_zone_by_zone() -> None:
    snapshot = Snapshot.from_objects([node("a1", zone="a"), node("a2", zone="a"), node("b1", zone="b")], [])
    assert [n.name for n in snapshot.order] == ["a1", "b1", "a2"]


# ---- the snapshot --------------------------------------------------------------------------------

def test_snapshot_accounts_bound_unfinished_pods() -> None:
    terminating = pod("t", cpu="1", on="n1")
    terminating["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    pods = [pod("run", cpu="1", on="n1"), terminating, pod("done", cpu="1", on="n1", phase="Succeeded"),
            pod("failed", cpu="1", on="n1", phase="Failed"), pod("pending", cpu="1"),
            pod("elsewhere", cpu="1", on="gone")]
    snapshot = Snapshot.from_objects([node("n1")], pods)
    n1 = snapshot.get("n1")
    assert n1 is not None
    assert sorted(p.name for p in n1.pods) == ["run", "t"]
    assert n1.requested_cpu == 2000 and n1.free_cpu == 2000


def test_add_and_remove_pod_keep_counts_and_indexes() -> None:
    snapshot = Snapshot.from_objects([node("n1", zone="a"), node("n2", zone="b")], [pod("w", on="n1")])
    matcher = PodMatcher(namespaces=frozenset({"default"}), selector=label_selector({"matchLabels": {"app": "web"}}))
    assert snapshot.count_by_domain(matcher, ZONE) == {"a": 1}
    host_port = pod("hp", cpu="1")
    host_port["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    snapshot.add_pod(host_port, "n2")
    n2 = snapshot.get("n2")
    assert n2 is not None and n2.requested_cpu == 1000 and n2.host_ports == {("0.0.0.0", "TCP", 8080)}
    assert snapshot.count_by_domain(matcher, ZONE) == {"a": 1, "b": 1}
    assert snapshot.count_by_node(matcher) == {"n1": 1, "n2": 1}
    removed = snapshot.remove_pod("default", "hp")
    assert removed is not None and n2.requested_cpu == 0 and not n2.host_ports and not n2.pods
    assert snapshot.count_by_domain(matcher, ZONE) == {"a": 1}
    assert snapshot.remove_pod("default", "hp") is None


def test_assumed_anti_affinity_pods_guard_their_domain() -> None:
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": ZONE, "labelSelector": {"matchLabels": {"app": "db"}}}]}}
    snapshot = Snapshot.from_objects([node("a1", zone="a"), node("a2", zone="a"), node("b1", zone="b")], [])
    guard = pod("guard", labels={"app": "web"}, affinity=anti)
    snapshot.add_pod(guard, "a1")
    assert schedule(pod("db", labels={"app": "db"}), snapshot).node == "b1"
    snapshot.remove_pod("default", "guard")
    assert schedule(pod("db", labels={"app": "db"}), snapshot, default_profile(percentage_of_nodes_to_score=100)).node


# ---- what a provisioner asks ---------------------------------------------------------------------

def test_feasible_nodes_on_a_hypothetical_node() -> None:
    snapshot = Snapshot.from_objects([node("small", cpu="2")], [pod("b", cpu="1", on="small")])
    big = pod("big", cpu="6")
    assert schedule(big, snapshot).node is None
    candidate = NodeInfo(node("m5.2xlarge", cpu="8", memory="32Gi"))
    outcome = feasible_nodes(big, snapshot, nodes=[candidate])
    assert [n.name for n in outcome.feasible] == ["m5.2xlarge"] and outcome.rejected == {}
    too_small = NodeInfo(node("m5.large", cpu="2"))
    outcome = feasible_nodes(big, snapshot, nodes=[too_small, candidate])
    assert outcome.rejected == {"m5.large": "Insufficient cpu"}
    # the whole cluster, no sampling
    assert feasible_nodes(big, snapshot).rejected == {"small": "Insufficient cpu"}


def test_feasible_nodes_respects_existing_pods_anti_affinity() -> None:
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": ZONE, "labelSelector": {"matchLabels": {"app": "web"}}}]}}
    snapshot = Snapshot.from_objects([node("a1", zone="a")], [pod("w", on="a1")])
    same_zone, other_zone = NodeInfo(node("new-a", zone="a")), NodeInfo(node("new-b", zone="b"))
    outcome = feasible_nodes(pod("x", affinity=anti), snapshot, nodes=[same_zone, other_zone])
    assert [n.name for n in outcome.feasible] == ["new-b"]
    assert outcome.rejected == {"new-a": "node(s) didn't match pod anti-affinity rules"}
