"""Each scheduler plugin's filter and score, case by case, against upstream's rules and wording."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from chalicelib.scheduler import NodeInfo, PodInfo, Snapshot
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
from chalicelib.scheduler.plugins.helper import default_normalize
from chalicelib.scheduler.resources import DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST
from chalicelib.scheduler.status import SKIP, Reasons, Uniform, Unresolvable, is_unresolvable

ZONE, HOST = "topology.kubernetes.io/zone", "kubernetes.io/hostname"
GI = 1024**3


def node(name: str, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110", zone: str | None = "a",
         labels: dict[str, str] | None = None, taints: list[dict[str, Any]] | None = None,
         unschedulable: bool = False) -> dict[str, Any]:
    all_labels = {HOST: name, **({ZONE: zone} if zone else {}), **(labels or {})}
    spec: dict[str, Any] = {"taints": taints} if taints else {}
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": name, "labels": all_labels}, "spec": spec,
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods}}}


def pod(name: str = "p", *, cpu: str | None = None, memory: str | None = None, namespace: str = "default",
        labels: dict[str, str] | None = None, node_name_: str | None = None, **spec: Any) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    body: dict[str, Any] = {"containers": [{"name": "c", "image": "i", "resources": {"requests": requests}}], **spec}
    if node_name_:
        body["nodeName"] = node_name_
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels or {}}, "spec": body,
            "status": {"phase": "Running" if node_name_ else "Pending"}}


def check(plugin: Any, incoming: dict[str, Any], target: dict[str, Any], *, nodes: Sequence[dict[str, Any]] = (),
          pods: Sequence[dict[str, Any]] = ()) -> Any:
    """Run the plugin's PreFilter and Filter for `incoming` on `target`, in a cluster of `nodes` + `pods`."""
    others = [n for n in nodes if n["metadata"]["name"] != target["metadata"]["name"]]
    snapshot = Snapshot.from_objects([target, *others], list(pods))
    info = PodInfo(incoming)
    pre = getattr(plugin, "pre_filter", None)
    if pre is not None:
        result = pre(info, snapshot)
        if result is SKIP:
            return None
        if isinstance(result, frozenset):
            return result
        if isinstance(result, str):
            return result
    return plugin.filter(info, snapshot.get(target["metadata"]["name"]), snapshot)


def prepare_scores(plugin: Any, incoming: dict[str, Any], nodes: list[dict[str, Any]],
                   pods: Sequence[dict[str, Any]] = (), args: dict[str, Any] | None = None) -> dict[str, int] | None:
    """PreScore, Score and NormalizeScore of one plugin over all `nodes`; None if it skips."""
    snapshot = Snapshot.from_objects(nodes, list(pods))
    info = PodInfo(incoming)
    infos = list(snapshot.nodes)
    pre = getattr(plugin, "pre_score", None)
    if pre is not None:
        prepared = pre(info, infos, snapshot, args or {})
        if prepared is SKIP:
            return None
        if isinstance(prepared, Uniform):
            return {n.name: int(prepared) for n in infos}
    raw = {n.name: plugin.score(info, n, snapshot) for n in infos}
    if hasattr(plugin, "score_nodes"):
        assert plugin.score_nodes(info, infos, snapshot) == list(raw.values())
    normalize = getattr(plugin, "normalize", None)
    return normalize(raw, info) if normalize else raw


def scores(plugin: Any, incoming: dict[str, Any], nodes: list[dict[str, Any]], pods: Sequence[dict[str, Any]] = (),
           args: dict[str, Any] | None = None) -> dict[str, int]:
    got = prepare_scores(plugin, incoming, nodes, pods, args)
    assert got is not None, "the plugin skipped scoring"
    return got


def skips_scoring(plugin: Any, incoming: dict[str, Any], nodes: list[dict[str, Any]],
                  pods: Sequence[dict[str, Any]] = ()) -> bool:
    return prepare_scores(plugin, incoming, nodes, pods) is None


# ---- requests, as the scheduler counts them ---------------------------------------------------

def container(cpu: str, memory: str = "0", restart: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}
    if restart:
        c["restartPolicy"] = restart
    return c


@pytest.mark.parametrize(("spec", "cpu"), [
    ({"containers": [container("1"), container("500m")]}, 1500),
    ({"containers": [container("1")], "initContainers": [container("2")]}, 2000),
    ({"containers": [container("3")], "initContainers": [container("2")]}, 3000),
    # sidecars run beside the app containers: they add up
    ({"containers": [container("1")], "initContainers": [container("1", restart="Always")]}, 2000),
    # an init container after a sidecar runs next to it: 1 + 5 = 6 beats 1 + 1
    ({"containers": [container("1")], "initContainers": [container("1", restart="Always"), container("5")]}, 6000),
    # an init container before the sidecar runs alone: max(4, 1 + 1)
    ({"containers": [container("1")], "initContainers": [container("4"), container("1", restart="Always")]}, 4000),
    ({"containers": [container("1")], "overhead": {"cpu": "250m"}}, 1250),
    ({"containers": [container("1")], "initContainers": [container("2")], "overhead": {"cpu": "100m"}}, 2100),
    # pod-level requests replace the containers' sum
    ({"containers": [container("1")], "resources": {"requests": {"cpu": "3"}}}, 3000),
])
def test_pod_requests_follow_upstream(spec: dict[str, Any], cpu: int) -> None:
    assert PodInfo({"metadata": {"name": "p"}, "spec": spec}).cpu == cpu


def test_non_zero_requests_for_scoring() -> None:
    info = PodInfo(pod(cpu=None, memory=None))
    assert (info.cpu, info.memory) == (0, 0)
    assert (info.non0_cpu, info.non0_memory) == (DEFAULT_MILLI_CPU_REQUEST, DEFAULT_MEMORY_REQUEST)
    explicit_zero = PodInfo(pod(cpu="0", memory="1Gi"))
    assert (explicit_zero.non0_cpu, explicit_zero.non0_memory) == (0, GI)


def test_node_allocatable_falls_back_to_capacity() -> None:
    info = NodeInfo({"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "2", "memory": "1Gi", "pods": "10"},
                                                          "allocatable": {"cpu": "1500m"}}})
    assert (info.allocatable_cpu, info.allocatable_memory, info.allowed_pods) == (1500, GI, 10)


# ---- NodeUnschedulable ------------------------------------------------------------------------

@pytest.mark.parametrize(("tolerations", "cordoned", "expected"), [
    ([], False, None),
    ([], True, "node(s) were unschedulable"),
    ([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}], True, None),
    ([{"operator": "Exists"}], True, None),
    ([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoExecute"}], True,
     "node(s) were unschedulable"),
])
def test_node_unschedulable(tolerations: list[dict[str, Any]], cordoned: bool, expected: str | None) -> None:
    result = check(node_unschedulable, pod(tolerations=tolerations), node("n", unschedulable=cordoned))
    assert result == expected
    if expected:
        assert result == node_unschedulable.ERR_REASON_UNSCHEDULABLE and is_unresolvable(result)


# ---- NodeName ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("wanted", "expected"), [
    (None, None), ("n", None), ("other", "node(s) didn't match the requested node name")])
def test_node_name(wanted: str | None, expected: str | None) -> None:
    incoming = pod()
    if wanted:
        incoming["spec"]["nodeName"] = wanted
    assert check(node_name, incoming, node("n")) == expected


# ---- NodeAffinity -----------------------------------------------------------------------------

def required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    e: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        e["values"] = list(values)
    return e


AFFINITY_REASON = "node(s) didn't match Pod's node affinity/selector"


@pytest.mark.parametrize(("spec", "labels", "fits"), [
    ({}, {}, True),
    ({"nodeSelector": {"disk": "ssd"}}, {"disk": "ssd"}, True),
    ({"nodeSelector": {"disk": "ssd"}}, {"disk": "hdd"}, False),
    ({"nodeSelector": {"disk": "ssd"}}, {}, False),
    ({"affinity": required({"matchExpressions": [expr("disk", "In", "ssd", "nvme")]})}, {"disk": "nvme"}, True),
    ({"affinity": required({"matchExpressions": [expr("disk", "In", "ssd")]})}, {}, False),
    ({"affinity": required({"matchExpressions": [expr("disk", "NotIn", "hdd")]})}, {}, True),
    ({"affinity": required({"matchExpressions": [expr("disk", "NotIn", "hdd")]})}, {"disk": "hdd"}, False),
    ({"affinity": required({"matchExpressions": [expr("gpu", "Exists")]})}, {"gpu": ""}, True),
    ({"affinity": required({"matchExpressions": [expr("gpu", "DoesNotExist")]})}, {"gpu": "1"}, False),
    ({"affinity": required({"matchExpressions": [expr("cores", "Gt", "8")]})}, {"cores": "16"}, True),
    ({"affinity": required({"matchExpressions": [expr("cores", "Gt", "8")]})}, {"cores": "8"}, False),
    ({"affinity": required({"matchExpressions": [expr("cores", "Lt", "8")]})}, {"cores": "4"}, True),
    ({"affinity": required({"matchExpressions": [expr("cores", "Gt", "8")]})}, {"cores": "many"}, False),
    # expressions in a term are ANDed, terms are ORed
    ({"affinity": required({"matchExpressions": [expr("a", "Exists"), expr("b", "Exists")]})}, {"a": "1"}, False),
    ({"affinity": required({"matchExpressions": [expr("a", "Exists")]},
                           {"matchExpressions": [expr("b", "Exists")]})}, {"b": "1"}, True),
    # nodeSelector and affinity must both hold
    ({"nodeSelector": {"a": "1"}, "affinity": required({"matchExpressions": [expr("b", "Exists")]})},
     {"a": "1"}, False),
    # no terms, an empty term, and a term that does not parse match nothing
    ({"affinity": required()}, {"a": "1"}, False),
    ({"affinity": required({})}, {"a": "1"}, False),
    ({"affinity": required({"matchExpressions": [expr("a", "In")]})}, {"a": "1"}, False),
    ({"affinity": required({"matchFields": [expr("metadata.name", "NotIn", "other")]})}, {}, True),
])
def test_node_affinity_filter(spec: dict[str, Any], labels: dict[str, str], fits: bool) -> None:
    result = check(node_affinity, pod(**spec), node("n", labels=labels, zone=None))
    assert result == (None if fits else AFFINITY_REASON)
    if not fits:
        assert is_unresolvable(result)


def test_node_affinity_prefilter_narrows_to_named_nodes() -> None:
    by_name = required({"matchFields": [expr("metadata.name", "In", "n2")]},
                       {"matchFields": [expr("metadata.name", "In", "n3")]})
    assert check(node_affinity, pod(affinity=by_name), node("n1")) == frozenset({"n2", "n3"})
    conflict = required({"matchFields": [expr("metadata.name", "In", "n1"), expr("metadata.name", "In", "n2")]})
    assert check(node_affinity, pod(affinity=conflict), node("n1")) == "pod affinity terms conflict"
    # a term without node names lets every node through PreFilter
    mixed = required({"matchFields": [expr("metadata.name", "In", "n2")]}, {"matchExpressions": [expr("a", "Exists")]})
    assert check(node_affinity, pod(affinity=mixed), node("n1", labels={"a": "1"})) is None


def test_node_affinity_score_sums_preferred_weights_normalised() -> None:
    preferred = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [expr("disk", "In", "ssd")]}},
        {"weight": 30, "preference": {"matchExpressions": [expr("gpu", "Exists")]}},
        {"weight": 0, "preference": {"matchExpressions": [expr("gpu", "Exists")]}},
    ]}}
    nodes = [node("both", labels={"disk": "ssd", "gpu": "1"}), node("gpu", labels={"gpu": "1"}),
             node("ssd", labels={"disk": "ssd"}), node("none")]
    assert scores(node_affinity, pod(affinity=preferred), nodes) == {"both": 100, "gpu": 75, "ssd": 25, "none": 0}
    assert skips_scoring(node_affinity, pod(), nodes)


# ---- TaintToleration --------------------------------------------------------------------------

def taint(key: str, value: str = "", effect: str = "NoSchedule") -> dict[str, str]:
    t = {"key": key, "effect": effect}
    if value:
        t["value"] = value
    return t


@pytest.mark.parametrize(("taints", "tolerations", "expected"), [
    ([], [], None),
    ([taint("dedicated", "gpu")], [], "node(s) had untolerated taint {dedicated: gpu}"),
    ([taint("node.kubernetes.io/unreachable", effect="NoExecute")], [],
     "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"),
    ([taint("dedicated", "gpu", "PreferNoSchedule")], [], None),
    ([taint("dedicated", "gpu")], [{"key": "dedicated", "operator": "Equal", "value": "gpu"}], None),
    ([taint("dedicated", "gpu")], [{"key": "dedicated", "value": "gpu"}], None),  # Equal is the default
    ([taint("dedicated", "gpu")], [{"key": "dedicated", "operator": "Equal", "value": "cpu"}],
     "node(s) had untolerated taint {dedicated: gpu}"),
    ([taint("dedicated", "gpu")], [{"key": "dedicated", "operator": "Exists"}], None),
    ([taint("dedicated", "gpu")], [{"operator": "Exists"}], None),  # empty key + Exists: every taint
    ([taint("dedicated", "gpu")], [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}], None),
    ([taint("dedicated", "gpu", "NoExecute")], [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
     "node(s) had untolerated taint {dedicated: gpu}"),
    # the first untolerated taint, in the node's order, is the one reported
    ([taint("a", "1"), taint("b", "2")], [{"key": "a", "operator": "Exists"}], "node(s) had untolerated taint {b: 2}"),
])
def test_taint_toleration_filter(taints: list[dict[str, str]], tolerations: list[dict[str, Any]],
                                 expected: str | None) -> None:
    result = check(taint_toleration, pod(tolerations=tolerations), node("n", taints=taints))
    assert result == expected
    if expected:
        assert isinstance(result, Unresolvable)


def test_taint_toleration_score_prefers_fewer_intolerable_prefer_no_schedule_taints() -> None:
    soft = [taint("a", effect="PreferNoSchedule"), taint("b", effect="PreferNoSchedule")]
    nodes = [node("clean"), node("one", taints=soft[:1]), node("two", taints=soft)]
    assert scores(taint_toleration, pod(), nodes) == {"clean": 100, "one": 50, "two": 0}
    tolerating = pod(tolerations=[{"key": "b", "operator": "Exists", "effect": "PreferNoSchedule"}])
    assert scores(taint_toleration, tolerating, nodes) == {"clean": 100, "one": 0, "two": 0}
    assert scores(taint_toleration, pod(), [node("x"), node("y")]) == {"x": 100, "y": 100}


# ---- NodeResourcesFit -------------------------------------------------------------------------

@pytest.mark.parametrize(("incoming", "target", "bound", "expected"), [
    (pod(cpu="1", memory="1Gi"), node("n"), [], None),
    (pod(cpu="3", memory="1Gi"), node("n"), [pod("b", cpu="2", node_name_="n")], "Insufficient cpu"),
    (pod(cpu="1", memory="4Gi"), node("n", memory="4Gi"), [pod("b", memory="1Gi", node_name_="n")],
     "Insufficient memory"),
    (pod(cpu="3", memory="4Gi"), node("n", memory="4Gi"), [pod("b", cpu="2", memory="1Gi", node_name_="n")],
     Reasons(("Insufficient cpu", "Insufficient memory"))),
    (pod(), node("n", pods="1"), [pod("b", node_name_="n")], "Too many pods"),
    (pod(), node("n", pods="2"), [pod("b", node_name_="n")], None),
    (pod(cpu="5"), node("n"), [], "Insufficient cpu"),
    # a node its pods overcommit still takes a pod that asks for no cpu
    (pod(memory="1Gi"), node("n"), [pod("b", cpu="6", node_name_="n")], None),
])
def test_node_resources_fit_filter(incoming: dict[str, Any], target: dict[str, Any], bound: list[dict[str, Any]],
                                   expected: Any) -> None:
    assert check(node_resources_fit, incoming, target, pods=bound) == expected


def test_node_resources_fit_unresolvable_only_when_the_whole_node_is_too_small() -> None:
    too_big = check(node_resources_fit, pod(cpu="5"), node("n"))
    assert is_unresolvable(too_big)
    crowded = check(node_resources_fit, pod(cpu="3"), node("n"), pods=[pod("b", cpu="2", node_name_="n")])
    assert crowded == "Insufficient cpu" and not is_unresolvable(crowded)
    assert not is_unresolvable(check(node_resources_fit, pod(), node("n", pods="1"), pods=[pod("b", node_name_="n")]))


def test_node_resources_fit_extended_resources() -> None:
    gpu_pod = pod()
    gpu_pod["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = "2"
    gpu_node = node("n")
    gpu_node["status"]["allocatable"]["nvidia.com/gpu"] = "4"
    assert check(node_resources_fit, gpu_pod, gpu_node) is None
    assert check(node_resources_fit, gpu_pod, node("n")) == "Insufficient nvidia.com/gpu"
    holder = pod("b", node_name_="n")
    holder["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = "3"
    result = check(node_resources_fit, gpu_pod, gpu_node, pods=[holder])
    assert result == "Insufficient nvidia.com/gpu" and not is_unresolvable(result)


def test_node_resources_fit_filter_nodes_matches_filter() -> None:
    nodes = [node(f"n{i}", cpu=str(i)) for i in range(1, 5)] + [node("full", cpu="1", pods="0")]
    snapshot = Snapshot.from_objects(nodes, [])
    info = PodInfo(pod(cpu="2500m"))
    passed, rejected = node_resources_fit.filter_nodes(info, list(snapshot.nodes), snapshot)
    assert [n.name for n in passed] == ["n3", "n4"]
    assert rejected == {"n1": "Insufficient cpu", "n2": "Insufficient cpu",
                        "full": Reasons(("Too many pods", "Insufficient cpu"))}


# half the node's cpu and a quarter of its memory already requested, the pod adds 1 cpu, 1Gi
SCORED_NODES = [node("busy", cpu="4", memory="8Gi"), node("idle", cpu="4", memory="8Gi")]
SCORED_PODS = [pod("b", cpu="1", memory="1Gi", node_name_="busy")]


@pytest.mark.parametrize(("strategy", "expected"), [
    # least: cpu (4000-2000)*100/4000 = 50, memory (8-2)/8 = 75 -> 62; idle: 75, 87 -> 81
    (None, {"busy": 62, "idle": 81}),
    # most: cpu 50, memory 25 -> 37; idle: 25, 12 -> 18
    ("MostAllocated", {"busy": 37, "idle": 18}),
])
def test_node_resources_fit_scoring_strategies(strategy: str | None, expected: dict[str, int]) -> None:
    args = {"scoringStrategy": {"type": strategy}} if strategy else {}
    assert scores(node_resources_fit, pod(cpu="1", memory="1Gi"), SCORED_NODES, SCORED_PODS, args) == expected


def test_node_resources_fit_scoring_counts_best_effort_pods_as_small_requests() -> None:
    got = scores(node_resources_fit, pod(), [node("n", cpu="1", memory="1000Mi")])
    # 100m of 1000m used -> 90; 200Mi of 1000Mi -> 80
    assert got == {"n": 85}


def test_node_resources_fit_weighted_resources() -> None:
    args = {"scoringStrategy": {"type": "LeastAllocated", "resources": [{"name": "cpu", "weight": 3},
                                                                          {"name": "memory", "weight": 1}]}}
    # busy: cpu 50 * 3 + memory 75 -> 225 / 4 = 56
    assert scores(node_resources_fit, pod(cpu="1", memory="1Gi"), SCORED_NODES, SCORED_PODS, args)["busy"] == 56


def test_balanced_allocation() -> None:
    nodes = [node("even", cpu="4", memory="4Gi"), node("skewed", cpu="4", memory="16Gi")]
    # even: 1/4 and 1/4 -> 100; skewed: 1/4 and 1/16 -> 1 - 0.09375 -> 90
    assert scores(node_resources_balanced_allocation, pod(cpu="1", memory="1Gi"), nodes) == {"even": 100, "skewed": 90}
    assert skips_scoring(node_resources_balanced_allocation, pod(), nodes)


# ---- NodePorts --------------------------------------------------------------------------------

def port_pod(name: str, port: int, *, protocol: str | None = None, ip: str | None = None, bound: bool = False,
             sidecar: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"hostPort": port, "containerPort": 80}
    if protocol:
        spec["protocol"] = protocol
    if ip:
        spec["hostIP"] = ip
    p = pod(name, node_name_="n" if bound else None)
    if sidecar:
        p["spec"]["initContainers"] = [{"name": "s", "restartPolicy": "Always", "ports": [spec]}]
    else:
        p["spec"]["containers"][0]["ports"] = [spec]
    return p


PORTS_REASON = "node(s) didn't have free ports for the requested pod ports"


@pytest.mark.parametrize(("incoming", "existing", "expected"), [
    (port_pod("p", 8080), [], None),
    (port_pod("p", 8080), [port_pod("b", 8080, bound=True)], PORTS_REASON),
    (port_pod("p", 8080), [port_pod("b", 8081, bound=True)], None),
    (port_pod("p", 8080, protocol="UDP"), [port_pod("b", 8080, bound=True)], None),
    (port_pod("p", 8080, protocol="TCP"), [port_pod("b", 8080, bound=True)], PORTS_REASON),
    (port_pod("p", 8080, ip="10.0.0.1"), [port_pod("b", 8080, bound=True)], PORTS_REASON),
    (port_pod("p", 8080), [port_pod("b", 8080, ip="10.0.0.1", bound=True)], PORTS_REASON),
    (port_pod("p", 8080, ip="10.0.0.2"), [port_pod("b", 8080, ip="10.0.0.1", bound=True)], None),
    (port_pod("p", 8080), [port_pod("b", 8080, bound=True, sidecar=True)], PORTS_REASON),
    (pod(), [port_pod("b", 8080, bound=True)], None),
])
def test_node_ports(incoming: dict[str, Any], existing: list[dict[str, Any]], expected: str | None) -> None:
    assert check(node_ports, incoming, node("n"), pods=existing) == expected


# ---- PodTopologySpread ------------------------------------------------------------------------

APP = {"matchLabels": {"app": "web"}}


def spread(key: str = ZONE, *, skew: int = 1, when: str = "DoNotSchedule", **extra: Any) -> list[dict[str, Any]]:
    return [{"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": when, "labelSelector": APP, **extra}]


def web(name: str, on: str | None = None, **kw: Any) -> dict[str, Any]:
    return pod(name, labels={"app": "web"}, node_name_=on, **kw)


ZONED = [node("a1", zone="a"), node("a2", zone="a"), node("b1", zone="b"), node("c1", zone="c")]
SKEW = "node(s) didn't match pod topology spread constraints"


@pytest.mark.parametrize(("target", "bound", "spec", "expected"), [
    # zones hold a:2, b:1, c:1 -> zone a would be 3 against a minimum of 1
    ("a1", [web("w1", "a1"), web("w2", "a2"), web("w3", "b1"), web("w4", "c1")], {}, SKEW),
    ("b1", [web("w1", "a1"), web("w2", "a2"), web("w3", "b1"), web("w4", "c1")], {}, None),
    # maxSkew 2 lets zone a take it
    ("a1", [web("w1", "a1"), web("w2", "a2"), web("w3", "b1"), web("w4", "c1")], {"skew": 2}, None),
    # pods of other apps and of other namespaces do not count
    ("a1", [pod("x", labels={"app": "db"}, node_name_="b1"), web("w", "b1", namespace="other")], {}, None),
    # a:1, b:1, c:0: only zone c can take it
    ("b1", [web("w1", "b1"), web("w2", "a1")], {}, SKEW),
    ("c1", [web("w1", "b1"), web("w2", "a1")], {}, None),
    # minDomains 4 with 3 zones: the global minimum counts as 0
    ("b1", [web("w1", "a1"), web("w2", "b1"), web("w3", "c1")], {"minDomains": 4}, SKEW),
    ("b1", [web("w1", "a1"), web("w2", "b1"), web("w3", "c1")], {"minDomains": 3}, None),
])
def test_pod_topology_spread_filter(target: str, bound: list[dict[str, Any]], spec: dict[str, Any],
                                    expected: str | None) -> None:
    incoming = web("new", topologySpreadConstraints=spread(**spec))
    target_node = next(n for n in ZONED if n["metadata"]["name"] == target)
    assert check(pod_topology_spread, incoming, target_node, nodes=ZONED, pods=bound) == expected


def test_pod_topology_spread_ignores_terminating_pods() -> None:
    leaving = web("w2", "a2")
    leaving["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    bound = [web("w1", "a1"), leaving, web("w3", "b1"), web("w4", "c1")]
    assert check(pod_topology_spread, web("new", topologySpreadConstraints=spread()), ZONED[0], nodes=ZONED,
                 pods=bound) is None


def test_pod_topology_spread_missing_label_is_unresolvable() -> None:
    unlabelled = node("x", zone=None)
    result = check(pod_topology_spread, web("new", topologySpreadConstraints=spread()), unlabelled,
                   nodes=[*ZONED, unlabelled])
    assert result == "node(s) didn't match pod topology spread constraints (missing required label)"
    assert is_unresolvable(result)


def test_pod_topology_spread_honours_node_affinity_when_counting_domains() -> None:
    # zone c is excluded by the pod's nodeSelector, so its emptiness does not set the minimum
    nodes = [node("a1", zone="a", labels={"pool": "x"}), node("b1", zone="b", labels={"pool": "x"}),
             node("c1", zone="c")]
    bound = [web("w1", "a1"), web("w2", "b1")]
    incoming = web("new", topologySpreadConstraints=spread(), nodeSelector={"pool": "x"})
    assert check(pod_topology_spread, incoming, nodes[0], nodes=nodes, pods=bound) is None
    ignoring = web("new", topologySpreadConstraints=spread(nodeAffinityPolicy="Ignore"), nodeSelector={"pool": "x"})
    assert check(pod_topology_spread, ignoring, nodes[0], nodes=nodes, pods=bound) == SKEW


def test_pod_topology_spread_honours_taints_when_asked() -> None:
    nodes = [node("a1", zone="a"), node("b1", zone="b"), node("c1", zone="c", taints=[taint("t")])]
    bound = [web("w1", "a1"), web("w2", "b1")]
    assert check(pod_topology_spread, web("new", topologySpreadConstraints=spread()), nodes[0], nodes=nodes,
                 pods=bound) == SKEW
    honour = web("new", topologySpreadConstraints=spread(nodeTaintsPolicy="Honor"))
    assert check(pod_topology_spread, honour, nodes[0], nodes=nodes, pods=bound) is None


def test_pod_topology_spread_match_label_keys() -> None:
    bound = [web("w1", "a1"), web("w2", "a2")]  # no "rev" label: another revision's pods
    incoming = web("new", topologySpreadConstraints=spread(matchLabelKeys=["rev"]))
    incoming["metadata"]["labels"]["rev"] = "2"
    assert check(pod_topology_spread, incoming, ZONED[0], nodes=ZONED, pods=bound) is None


def test_pod_topology_spread_score_prefers_emptier_domains() -> None:
    nodes = [node("a1", zone="a"), node("b1", zone="b"), node("c1", zone="c")]
    bound = [web("w1", "a1"), web("w2", "a1"), web("w3", "b1")]
    got = scores(pod_topology_spread, web("new", topologySpreadConstraints=spread(when="ScheduleAnyway")), nodes, bound)
    # raw: count * ln(3 + 2) rounded -> a: 3, b: 2, c: 0; normalised: 100 * (3 + 0 - s) / 3
    assert got == {"a1": 0, "b1": 33, "c1": 100}
    by_host = scores(pod_topology_spread, web("new", topologySpreadConstraints=spread(HOST, when="ScheduleAnyway")),
                     nodes, bound)
    assert by_host["c1"] == 100 and by_host["a1"] < by_host["b1"] < 100
    assert skips_scoring(pod_topology_spread, web("new"), nodes, bound)


# ---- InterPodAffinity -------------------------------------------------------------------------

def pod_term(key: str, selector: dict[str, Any] = APP, **extra: Any) -> dict[str, Any]:
    return {"topologyKey": key, "labelSelector": selector, **extra}


def anti(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def attract(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


ANTI_REASON = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_REASON = "node(s) didn't satisfy existing pods anti-affinity rules"
AFFINITY_RULES_REASON = "node(s) didn't match pod affinity rules"


@pytest.mark.parametrize(("incoming", "target", "bound", "expected"), [
    (web("new", affinity=anti(pod_term(HOST))), "a1", [web("w", "a1")], ANTI_REASON),
    (web("new", affinity=anti(pod_term(HOST))), "a2", [web("w", "a1")], None),
    (web("new", affinity=anti(pod_term(ZONE))), "a2", [web("w", "a1")], ANTI_REASON),
    (web("new", affinity=anti(pod_term(ZONE))), "b1", [web("w", "a1")], None),
    # the term looks in the pod's namespace unless it names others
    (web("new", affinity=anti(pod_term(HOST))), "a1", [web("w", "a1", namespace="other")], None),
    (web("new", affinity=anti(pod_term(HOST, namespaces=["other"]))), "a1", [web("w", "a1", namespace="other")],
     ANTI_REASON),
    (web("new", affinity=anti(pod_term(HOST, namespaceSelector={}))), "a1", [web("w", "a1", namespace="other")],
     ANTI_REASON),
    (web("new", affinity=anti(pod_term(HOST, namespaceSelector={
        "matchLabels": {"kubernetes.io/metadata.name": "other"}}))), "a1", [web("w", "a1", namespace="other")],
     ANTI_REASON),
    # an existing pod's anti-affinity keeps the incoming pod away
    (web("new"), "a1", [pod("db", labels={"app": "db"}, node_name_="a1", affinity=anti(pod_term(HOST)))],
     EXISTING_ANTI_REASON),
    (web("new"), "a2", [pod("db", labels={"app": "db"}, node_name_="a1", affinity=anti(pod_term(ZONE)))],
     EXISTING_ANTI_REASON),
    (web("new"), "b1", [pod("db", labels={"app": "db"}, node_name_="a1", affinity=anti(pod_term(ZONE)))], None),
    (pod("new", labels={"app": "db"}), "a1",
     [pod("db", labels={"app": "db"}, node_name_="a1", affinity=anti(pod_term(HOST)))], None),
    # required affinity: a matching pod must be in the node's domain
    (pod("new", affinity=attract(pod_term(ZONE))), "a2", [web("w", "a1")], None),
    (pod("new", affinity=attract(pod_term(ZONE))), "b1", [web("w", "a1")], AFFINITY_RULES_REASON),
    # no matching pod anywhere: the first pod of a self-attracting group may go anywhere ...
    (web("new", affinity=attract(pod_term(ZONE))), "b1", [], None),
    # ... but not a pod that does not match its own terms
    (pod("new", affinity=attract(pod_term(ZONE))), "b1", [], AFFINITY_RULES_REASON),
])
def test_inter_pod_affinity_filter(incoming: dict[str, Any], target: str, bound: list[dict[str, Any]],
                                   expected: str | None) -> None:
    target_node = next(n for n in ZONED if n["metadata"]["name"] == target)
    assert check(inter_pod_affinity, incoming, target_node, nodes=ZONED, pods=bound) == expected


def test_inter_pod_affinity_codes() -> None:
    missing_key = node("x", zone=None)
    result = check(inter_pod_affinity, pod("new", affinity=attract(pod_term(ZONE))), missing_key,
                   nodes=[*ZONED, missing_key], pods=[web("w", "a1")])
    assert result == AFFINITY_RULES_REASON and is_unresolvable(result)
    anti_result = check(inter_pod_affinity, web("new", affinity=anti(pod_term(HOST))), ZONED[0], nodes=ZONED,
                        pods=[web("w", "a1")])
    assert not is_unresolvable(anti_result)
    assert check(inter_pod_affinity, web("new"), ZONED[0], nodes=ZONED, pods=[web("w", "a1")]) is None


def test_inter_pod_affinity_score() -> None:
    preferred = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 80, "podAffinityTerm": pod_term(ZONE)}]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 20, "podAffinityTerm": pod_term(HOST)}]}}
    bound = [web("w1", "a1"), web("w2", "b1"), web("w3", "b1")]
    got = scores(inter_pod_affinity, pod("new", affinity=preferred), ZONED, bound)
    # raw: a1 80-20=60, a2 80, b1 160-40=120, c1 0 -> min-max to 0..100
    assert got == {"a1": 50, "a2": 66, "b1": 100, "c1": 0}
    # an existing pod's preferred affinity for the incoming pod draws it near
    lover = pod("l", labels={"app": "l"}, node_name_="c1", affinity={"podAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 5, "podAffinityTerm": pod_term(ZONE)}]}})
    assert scores(inter_pod_affinity, web("new"), ZONED, [lover]) == {"a1": 0, "a2": 0, "b1": 0, "c1": 100}
    assert skips_scoring(inter_pod_affinity, web("new"), ZONED, bound)


def test_default_normalize() -> None:
    assert default_normalize({"a": 0, "b": 5, "c": 10}) == {"a": 0, "b": 50, "c": 100}
    assert default_normalize({"a": 0, "b": 5, "c": 10}, reverse=True) == {"a": 100, "b": 50, "c": 0}
    assert default_normalize({"a": 0}, reverse=True) == {"a": 100}
    assert default_normalize({"a": 0}) == {"a": 0}


# ---- the many-node fast paths agree with the one-node rules ------------------------------------

def test_filter_nodes_agrees_with_filter_node_by_node() -> None:
    cluster = [node(f"{z}{i}", zone=z, cpu=str(1 + i % 3), labels={"pool": "x" if i % 2 else "y"},
                    taints=[taint("t")] if i == 3 else None, unschedulable=i == 4) for z in "abc" for i in range(6)]
    bound = [web("w1", "a0"), web("w2", "a1"), web("w3", "b2", cpu="1"), pod("hog", cpu="10", node_name_="a5"),
             pod("db", labels={"app": "db"}, node_name_="c1", affinity=anti(pod_term(ZONE)))]
    incoming = [
        pod(cpu="1500m"), pod("best-effort"), pod("memory-only", memory="1Gi"),
        pod(tolerations=[{"key": "t", "operator": "Exists"}]), pod(nodeSelector={"pool": "x"}),
        web("s", topologySpreadConstraints=spread()), web("h", topologySpreadConstraints=spread(HOST)),
        web("a", affinity=anti(pod_term(HOST))), web("z", affinity=anti(pod_term(ZONE))),
        pod("d", labels={"app": "db"}), web("aa", affinity=anti(pod_term(HOST), pod_term(ZONE))),
        pod("f", affinity=attract(pod_term(ZONE))),
    ]
    snapshot = Snapshot.from_objects(cluster, bound)
    plugins = [node_unschedulable, taint_toleration, node_affinity, node_resources_fit, pod_topology_spread,
               inter_pod_affinity]
    compared = Counter[str]()
    for spec in incoming:
        for plugin in plugins:
            info = PodInfo(spec)
            pre = getattr(plugin, "pre_filter", None)
            if pre is not None and pre(info, snapshot) is SKIP:
                continue
            nodes = list(snapshot.order)
            expected = {n.name: plugin.filter(info, n, snapshot) for n in nodes}
            passed, rejected = plugin.filter_nodes(info, nodes, snapshot)
            assert [n.name for n in passed] == [name for name, r in expected.items() if r is None], plugin.NAME
            assert rejected == {name: r for name, r in expected.items() if r is not None}, plugin.NAME
            compared[plugin.NAME] += len(rejected)
    assert all(compared[p.NAME] > 0 for p in plugins), compared  # every fast path rejected something
