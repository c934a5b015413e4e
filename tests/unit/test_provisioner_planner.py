"""The provisioner's pure parts: batching from condition times, cover by claims, fit, packing, limits."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.provisioner import fit, prices
from chalicelib.provisioner.catalogue import InstanceType, allocatable
from chalicelib.provisioner.pending import closed_batches, covered, is_pending_unschedulable
from chalicelib.provisioner.planner import InFlight, Offering, PoolView, plan, plan_pool

T0 = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
TYPES = {
    "c5.large": InstanceType("c5.large", 2, 4096, "amd64"),
    "m5.large": InstanceType("m5.large", 2, 8192, "amd64"),
    "m5.xlarge": InstanceType("m5.xlarge", 4, 16384, "amd64"),
    "r5.large": InstanceType("r5.large", 2, 16384, "amd64"),
}


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name: str, cpu: str = "500m", memory: str = "256Mi", since: datetime = T0, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}],
                     **spec},
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "lastTransitionTime": stamp(since)}]}}


def pool(types: tuple[str, ...] = ("c5.large", "m5.large", "m5.xlarge"), zones: tuple[str, ...] = ("us-east-1a",),
         capacity: str = "on-demand", **kw: Any) -> PoolView:
    offerings = [Offering(TYPES[t], z, capacity, prices.price(t, capacity) or 0.0) for t in types for z in zones]
    return PoolView(name=kw.pop("name", "default"), offerings=offerings, labels=kw.pop("labels", {}),
                    taints=kw.pop("taints", []), max_pods=kw.pop("max_pods", 110), region="us-east-1", **kw)


def shapes(result: Any) -> list[tuple[str, str, int]]:
    return sorted((n.offering.instance_type.name, n.offering.zone, len(n.pods)) for n in result.nodes)


# --- batching and cover ---


def test_only_unschedulable_unbound_unnominated_pods_are_pending() -> None:
    assert is_pending_unschedulable(pod("a"))
    bound = pod("b", nodeName="n1")
    nominated = pod("c")
    nominated["status"]["nominatedNodeName"] = "n1"
    gated = pod("d")
    gated["status"]["conditions"][0]["reason"] = "SchedulingGated"
    assert not any(is_pending_unschedulable(p) for p in (bound, nominated, gated))


def test_a_batch_closes_after_an_idle_second_or_ten_seconds() -> None:
    pods = [pod(f"p{i}", since=T0 + timedelta(seconds=i)) for i in range(13)]  # one a second, for 13 s
    ready, wait = closed_batches(pods, T0 + timedelta(seconds=12, milliseconds=500))
    assert [p["metadata"]["name"] for p in ready] == [f"p{i}" for i in range(10)]  # closed at 10 s
    assert wait is not None and 0 < wait <= 2
    ready, wait = closed_batches(pods, T0 + timedelta(seconds=14))
    assert len(ready) == 13 and wait is None
    ready, wait = closed_batches([pod("x", since=T0)], T0 + timedelta(milliseconds=800))
    assert ready == [] and wait is not None and abs(wait - 1.2) < 1e-6


def test_claims_cover_their_pods_until_their_node_had_time_to_take_them() -> None:
    launching = {"metadata": {"name": "a"}, "spec": {"podUIDs": ["u1"]}, "status": {"phase": "Launched"}}
    registered = {"metadata": {"name": "b"}, "spec": {"podUIDs": ["u2"]},
                  "status": {"phase": "Registered", "registeredAt": stamp(T0)}}
    going = {"metadata": {"name": "c", "deletionTimestamp": stamp(T0)}, "spec": {"podUIDs": ["u3"]},
             "status": {"phase": "Launched"}}
    uids, due = covered([launching, registered, going], T0 + timedelta(seconds=10))
    assert uids == {"u1", "u2"} and due == 20
    uids, _ = covered([launching, registered, going], T0 + timedelta(seconds=31))
    assert uids == {"u1"}


# --- fit ---


def test_requests_count_init_containers_sidecars_and_overhead() -> None:
    spec = {"containers": [{"name": "a", "resources": {"requests": {"cpu": "200m", "memory": "100Mi"}}}],
            "initContainers": [
                {"name": "sidecar", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
                {"name": "setup", "resources": {"requests": {"cpu": "1", "memory": "50Mi"}}}],
            "overhead": {"cpu": "50m"}}
    assert fit.pod_requests(spec) == {"cpu": 1100 + 50, "memory": 100 * 1024 * 1024}


def test_taints_must_be_tolerated_and_selectors_matched() -> None:
    taints = [{"key": "gpu", "effect": "NoSchedule"}, {"key": "soft", "effect": "PreferNoSchedule"}]
    labels = {"topology.kubernetes.io/zone": "us-east-1a", "size": "8"}
    assert not fit.accepts(pod("a"), labels, taints)
    tolerant = pod("b", tolerations=[{"key": "gpu", "operator": "Exists"}])
    assert fit.accepts(tolerant, labels, taints)
    near = pod("c", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "size", "operator": "Gt", "values": ["4"]},
                                                     {"key": "topology.kubernetes.io/zone", "operator": "NotIn",
                                                      "values": ["us-east-1b"]}]}]}}})
    assert fit.selects(near, labels) and not fit.selects(near, {**labels, "size": "2"})
    by_name = pod("d", affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}})
    assert not fit.selects(by_name, labels)  # a node's name is unknown before it exists


def test_allocatable_keeps_the_kubelets_share() -> None:
    room = allocatable(TYPES["m5.large"], 110)
    assert room.cpu_milli == 2000 - 100  # the EKS share (70m) is below what a node agent keeps at least
    assert allocatable(InstanceType("x", 16, 65536, "amd64"), 110).cpu_milli == 16000 - 110
    assert room.memory_bytes == (8192 - 255 - 11 * 110 - 100) * 1024 * 1024
    assert room.pods == 110


# --- packing ---


def needs(*pods: dict[str, Any]) -> list[fit.PodNeeds]:
    return [fit.needs(p) for p in pods]


def test_cheapest_packing_wins_over_the_greedy_one() -> None:
    result = plan_pool(pool(), needs(*(pod(f"p{i}", cpu="900m") for i in range(4))))
    assert shapes(result) == [("c5.large", "us-east-1a", 2), ("c5.large", "us-east-1a", 2)]
    result = plan_pool(pool(), needs(*(pod(f"p{i}", cpu="1500m") for i in range(3))))
    assert shapes(result) == [("c5.large", "us-east-1a", 1)] * 3


def test_memory_heavy_pods_get_memory_heavy_types() -> None:
    result = plan_pool(pool(types=("c5.large", "m5.large", "r5.large")), needs(pod("db", cpu="500m", memory="12Gi")))
    assert shapes(result) == [("r5.large", "us-east-1a", 1)]


def test_plans_are_deterministic_and_named_by_what_they_hold() -> None:
    pods = needs(*(pod(f"p{i}", cpu="700m") for i in range(7)))
    first, again = plan_pool(pool(), pods), plan_pool(pool(), list(reversed(pods)))
    assert [n.claim_name for n in first.nodes] == [n.claim_name for n in again.nodes]
    assert len({n.claim_name for n in first.nodes}) == len(first.nodes)
    assert all(n.claim_name.startswith("default-") for n in first.nodes)


def test_host_ports_and_pods_per_node_split_nodes() -> None:
    port = [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}], "resources": {}}]
    result = plan_pool(pool(types=("m5.xlarge",)), needs(pod("a", containers=port), pod("b", containers=port)))
    assert shapes(result) == [("m5.xlarge", "us-east-1a", 1)] * 2
    result = plan_pool(pool(types=("m5.xlarge",), max_pods=3), needs(*(pod(f"p{i}", cpu="10m") for i in range(7))))
    assert sorted(len(n.pods) for n in result.nodes) == [1, 3, 3]


def test_zones_are_spread_when_prices_tie() -> None:
    result = plan_pool(pool(types=("c5.large",), zones=("us-east-1a", "us-east-1b")),
                       needs(*(pod(f"p{i}", cpu="1500m") for i in range(4))))
    assert sorted(n.offering.zone for n in result.nodes) == ["us-east-1a", "us-east-1a", "us-east-1b", "us-east-1b"]


def test_limits_downsize_or_drop_nodes() -> None:
    big = needs(pod("big", cpu="3"))
    assert shapes(plan_pool(pool(cpu_left_milli=2000), big)) == []  # only an m5.xlarge holds it: over the limit
    small = needs(*(pod(f"p{i}", cpu="1500m") for i in range(3)))
    # Three c5.large would be cheapest, but only two nodes are allowed: placing every pod comes first.
    result = plan_pool(pool(nodes_left=2), small)
    assert shapes(result) == [("c5.large", "us-east-1a", 1), ("m5.xlarge", "us-east-1a", 2)]
    result = plan_pool(pool(types=("c5.large",), nodes_left=2), small)
    assert len(result.nodes) == 2 and len(result.unplaced) == 1


def test_pods_fill_claims_in_flight_first() -> None:
    inflight = InFlight("default-abc", Offering(TYPES["m5.xlarge"], "us-east-1a", "on-demand", 0.192),
                        tuple(needs(pod("old", cpu="1"))))
    result = plan_pool(pool(inflight=[inflight]), needs(pod("new", cpu="2")))
    assert result.nodes == [] and result.extend == {"default-abc": ["uid-new"]}


def test_a_pod_goes_to_the_first_pool_that_takes_it() -> None:
    tainted = pool(name="a-gpu", taints=[{"key": "gpu", "effect": "NoSchedule"}])
    general = pool(name="b-general")
    plans = plan([general, tainted], needs(pod("plain"), pod("gpu", tolerations=[{"key": "gpu",
                                                                                  "operator": "Exists"}])))
    assert [(n.pool, [p.name for p in n.pods]) for r in plans for n in r.nodes] == \
        [("a-gpu", ["gpu"]), ("b-general", ["plain"])]


def test_packing_a_thousand_pods_stays_quick() -> None:
    many = needs(*(pod(f"p{i}", cpu=f"{100 + (i % 7) * 150}m", memory=f"{128 + (i % 5) * 256}Mi")
                   for i in range(1000)))
    started = time.monotonic()
    result = plan_pool(pool(types=tuple(TYPES), zones=("us-east-1a", "us-east-1b", "us-east-1c")), many)
    assert time.monotonic() - started < 20
    assert result.placed == 1000
    lower_bound = sum(p.cpu_milli for p in many) / 3915  # m5.xlarge allocatable cpu, the largest node
    assert len(result.nodes) < 2 * lower_bound + 1
