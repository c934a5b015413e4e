"""PATCH bodies: JSON patch, merge patch, strategic merge patch and apply, as kube-apiserver
applies them (chalicelib/api/patch.py and strategic_merge.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from chalicelib import errors
from chalicelib.api.patch import MAX_JSON_PATCH_OPERATIONS, PATCH_CONTENT_TYPES, apply_patch, merge_patch
from chalicelib.api.strategic_merge import PATCH_STRATEGIES, REJECTED_MESSAGE

JSON_PATCH = "application/json-patch+json"
MERGE = "application/merge-patch+json"
SMP = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "front"},
                 "finalizers": ["a", "b"]},
    "spec": {
        "containers": [
            {"name": "app", "image": "app:1",
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
             "ports": [{"containerPort": 80, "protocol": "TCP"}]},
            {"name": "sidecar", "image": "side:1"},
        ],
        "tolerations": [{"key": "k1", "operator": "Exists"}],
        "volumes": [{"name": "data", "emptyDir": {}}],
    },
    "status": {"phase": "Pending"},
}


def patched(body: Any, content_type: str = SMP, original: dict[str, Any] | None = None,
            kind: str = "Pod") -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return apply_patch(copy.deepcopy(POD) if original is None else original, raw, content_type, kind=kind)


def failure(body: Any, content_type: str = SMP, original: dict[str, Any] | None = None,
            kind: str = "Pod") -> errors.APIError:
    with pytest.raises(errors.APIError) as caught:
        patched(body, content_type, original, kind)
    return caught.value


def nest(path: str, value: Any) -> dict[str, Any]:
    for key in reversed(path.split(".")):
        value = {key: value}
    return value


def dig(obj: Any, path: str) -> Any:
    for key in path.split("."):
        obj = obj[key]
    return obj


# ---- content types ------------------------------------------------------------------------------

def test_supported_content_types() -> None:
    assert PATCH_CONTENT_TYPES == (JSON_PATCH, MERGE, SMP, APPLY)


@pytest.mark.parametrize("content_type", [
    MERGE, f"{MERGE}; charset=utf-8", "Application/Merge-Patch+JSON", f" {MERGE} ;charset=UTF-8",
])
def test_content_type_parameters_and_case_are_ignored(content_type: str) -> None:
    assert patched({"status": {"phase": "Running"}}, content_type)["status"] == {"phase": "Running"}


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "", "application/yaml"])
def test_unknown_content_type_is_415(content_type: str) -> None:
    error = failure({}, content_type)
    assert isinstance(error, errors.UnsupportedMediaType)
    assert (error.code, error.reason) == (415, "UnsupportedMediaType")
    assert f'(got "{content_type}")' in error.message


@pytest.mark.parametrize("content_type,body", [
    (JSON_PATCH, [{"op": "replace", "path": "/spec/containers/0/image", "value": "app:2"}]),
    (MERGE, {"spec": {"tolerations": None}, "metadata": {"labels": {"app": None}}}),
    (SMP, {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}),
    (APPLY, {"apiVersion": "v1", "kind": "Pod", "spec": {"nodeName": "n1"}}),
])
def test_original_is_never_mutated(content_type: str, body: Any) -> None:
    original = copy.deepcopy(POD)
    result = apply_patch(original, json.dumps(body).encode(), content_type, kind="Pod")
    assert original == POD
    assert result != POD


# ---- JSON patch (RFC 6902) ----------------------------------------------------------------------

@pytest.mark.parametrize("operations,path,expected", [
    ([{"op": "add", "path": "/metadata/labels/new", "value": "x"}], "metadata.labels.new", "x"),
    ([{"op": "replace", "path": "/status/phase", "value": "Running"}], "status.phase", "Running"),
    ([{"op": "remove", "path": "/metadata/labels/tier"}], "metadata.labels", {"app": "web"}),
    ([{"op": "add", "path": "/metadata/finalizers/-", "value": "c"}], "metadata.finalizers", ["a", "b", "c"]),
    ([{"op": "move", "from": "/metadata/labels/tier", "path": "/metadata/labels/t"}],
     "metadata.labels", {"app": "web", "t": "front"}),
    ([{"op": "copy", "from": "/metadata/name", "path": "/metadata/labels/name"}],
     "metadata.labels.name", "web"),
    ([{"op": "test", "path": "/status/phase", "value": "Pending"},
      {"op": "replace", "path": "/status/phase", "value": "Failed"}], "status.phase", "Failed"),
    ([], "status.phase", "Pending"),
])
def test_json_patch_operations(operations: list[Any], path: str, expected: Any) -> None:
    assert dig(patched(operations, JSON_PATCH), path) == expected


@pytest.mark.parametrize("operations", [
    [{"op": "test", "path": "/status/phase", "value": "Running"}],    # failed test
    [{"op": "remove", "path": "/metadata/annotations"}],              # missing path
    [{"op": "replace", "path": "/spec/nodeName", "value": "n1"}],      # replace needs an existing value
    [{"op": "add", "path": "/no/such/parent", "value": 1}],           # missing parent
    [{"op": "bogus", "path": "/a"}],                                  # unknown operation
    [{"path": "/a", "value": 1}],                                     # no op member
    [{"op": "add", "value": 1}],                                      # no path member
    [{"op": "add", "path": "/a"}],                                    # no value member
    [{"op": "add", "path": "no-slash", "value": 1}],                  # not a JSON pointer
    [{"op": "remove", "path": "/spec/containers/9"}],                 # index out of range
])
def test_failing_json_patch_operation_is_422_like_kube_apiserver(operations: list[Any]) -> None:
    error = failure(operations, JSON_PATCH)
    assert (error.code, error.reason, error.message) == (422, "Invalid", REJECTED_MESSAGE)
    assert error.status()["code"] == 422


@pytest.mark.parametrize("body,fragment", [
    (b"[{", "error decoding patch: "),
    (b"", "error decoding patch: "),
    (b"\xff\xfe\x00", "error decoding patch: "),
    (b'[{"op": "add", "path": "/a", "value": NaN}]', "error decoding patch: NaN is not valid JSON"),
    (b'{"op": "add", "path": "/a", "value": 1}', "must be a JSON array of operation objects, got object"),
    (b'["add"]', "must be a JSON array of operation objects, got array"),
])
def test_undecodable_json_patch_is_400(body: bytes, fragment: str) -> None:
    error = failure(body, JSON_PATCH)
    assert (error.code, error.reason) == (400, "BadRequest")
    assert fragment in error.message


def test_json_patch_with_too_many_operations_is_413() -> None:
    operations = [{"op": "test", "path": "/kind", "value": "Pod"}] * (MAX_JSON_PATCH_OPERATIONS + 1)
    error = failure(operations, JSON_PATCH)
    assert (error.code, error.reason) == (413, "RequestEntityTooLarge")
    assert error.message == "The allowed maximum operations in a JSON patch is 10000, got 10001"


def test_json_patch_result_must_be_an_object() -> None:
    error = failure([{"op": "replace", "path": "", "value": [1, 2]}], JSON_PATCH)
    assert (error.code, error.message) == (400, "the patched object must be a JSON object, got array")


# ---- JSON merge patch (RFC 7386) ----------------------------------------------------------------

@pytest.mark.parametrize("target,patch,expected", [
    ({"a": 1}, {"a": 2}, {"a": 2}),
    ({"a": 1, "b": 2}, {"a": None}, {"b": 2}),
    ({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": 3}}, {"a": {"c": 2, "d": 3}}),
    ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),                          # lists replace
    ({"a": [{"name": "x", "v": 1}]}, {"a": [{"name": "x"}]}, {"a": [{"name": "x"}]}),
    ({"a": 1}, {"b": {"c": None, "d": 1}}, {"a": 1, "b": {"d": 1}}),  # nulls vanish in new maps
    ({"a": 1}, {"b": [None, {"c": None}]}, {"a": 1, "b": [None, {"c": None}]}),  # lists kept as sent
    ({"a": "x"}, {"a": {"b": 1}}, {"a": {"b": 1}}),
    ({"a": {"b": 1}}, {"a": "x"}, {"a": "x"}),
    ({"a": 1}, {}, {"a": 1}),
    ({"a": 1}, [1], [1]),                                             # a non-object replaces all
])
def test_merge_patch_rfc7386(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


def test_merge_patch_through_apply_patch() -> None:
    result = patched({"metadata": {"labels": {"tier": None, "new": "1"}}, "spec": {"containers": [
        {"name": "only"}]}}, MERGE)
    assert result["metadata"]["labels"] == {"app": "web", "new": "1"}
    assert result["spec"]["containers"] == [{"name": "only"}]            # no merge keys in merge patch
    assert result["spec"]["tolerations"] == POD["spec"]["tolerations"]


@pytest.mark.parametrize("body,message", [
    (b"{", "error decoding patch: "),
    (b"[1]", "the patched object must be a JSON object, got array"),
    (b'"x"', "the patched object must be a JSON object, got string"),
    (b"null", "the patched object must be a JSON object, got null"),
])
def test_bad_merge_patch_is_400(body: bytes, message: str) -> None:
    error = failure(body, MERGE)
    assert error.code == 400 and message in error.message


# ---- strategic merge patch: maps, nulls, merge keys ---------------------------------------------

def test_strategic_maps_merge_and_null_deletes() -> None:
    result = patched({"metadata": {"labels": {"tier": None, "new": "1"}, "annotations": {"a": "b"}},
                      "status": {"phase": None}})
    assert result["metadata"]["labels"] == {"app": "web", "new": "1"}
    assert result["metadata"]["annotations"] == {"a": "b"}
    assert "phase" not in result["status"]
    assert result["spec"] == POD["spec"]


def test_strategic_merges_containers_by_name_and_env_by_name() -> None:
    env = [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}]
    result = patched({"spec": {"containers": [{"name": "app", "image": "app:2", "env": env}]}})
    app, sidecar = result["spec"]["containers"]
    assert app["image"] == "app:2" and app["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    # Upstream order: items interleave by live position; B (live, after A) pulls the new C along.
    assert app["env"] == [{"name": "A", "value": "1"}, *env]
    assert sidecar == {"name": "sidecar", "image": "side:1"}


def test_strategic_new_list_item_goes_before_server_only_items_as_upstream() -> None:
    result = patched({"spec": {"containers": [{"name": "new", "image": "n:1"}]}})
    assert [c["name"] for c in result["spec"]["containers"]] == ["new", "app", "sidecar"]


def test_strategic_patch_order_wins_over_live_order() -> None:
    containers = [{"name": "sidecar", "image": "side:2"}, {"name": "app", "image": "app:2"}]
    result = patched({"spec": {"containers": containers}})
    assert [(c["name"], c["image"]) for c in result["spec"]["containers"]] == [
        ("sidecar", "side:2"), ("app", "app:2")]


POD_TEMPLATE = "spec.template.spec"


def named(*names: str, **fields: Any) -> list[dict[str, Any]]:
    return [{"name": n, **fields} for n in names]


def typed(type_: str, status: str) -> dict[str, str]:
    return {"type": type_, "status": status}


@pytest.mark.parametrize("kind,path,original,patch,expected", [
    # PodSpec and its containers (same paths under spec.template for Deployment and ReplicaSet).
    ("Pod", "spec.containers", named("a", image="1"), named("a", image="2"), named("a", image="2")),
    ("Pod", "spec.initContainers", named("i", image="1"), named("i", args=["x"]),
     named("i", image="1", args=["x"])),
    ("Pod", "spec.ephemeralContainers", named("e", image="1"), named("e", tty=True),
     named("e", image="1", tty=True)),
    ("Pod", "spec.volumes", named("v", emptyDir={}), named("v", emptyDir={"medium": "Memory"}),
     named("v", emptyDir={"medium": "Memory"})),
    ("Pod", "spec.imagePullSecrets", named("s1"), named("s2"), named("s2", "s1")),
    ("Pod", "spec.hostAliases", [{"ip": "1.1.1.1", "hostnames": ["a"]}],
     [{"ip": "1.1.1.1", "hostnames": ["b"]}], [{"ip": "1.1.1.1", "hostnames": ["b"]}]),
    ("Pod", "spec.topologySpreadConstraints", [{"topologyKey": "zone", "maxSkew": 1}],
     [{"topologyKey": "zone", "maxSkew": 2}], [{"topologyKey": "zone", "maxSkew": 2}]),
    ("Pod", "spec.schedulingGates", named("g1"), named("g2"), named("g2", "g1")),
    ("Pod", "spec.resourceClaims", named("r", resourceClaimName="x"), named("r", resourceClaimName="y"),
     named("r", resourceClaimName="y")),
    ("Pod", "status.conditions", [typed("Ready", "False"), typed("Scheduled", "True")],
     [typed("Ready", "True")], [typed("Ready", "True"), typed("Scheduled", "True")]),
    ("Pod", "status.podIPs", [{"ip": "10.0.0.1"}], [{"ip": "fd00::1"}],
     [{"ip": "fd00::1"}, {"ip": "10.0.0.1"}]),
    ("Pod", "metadata.ownerReferences", [{"uid": "u1", "name": "a"}], [{"uid": "u1", "name": "b"}],
     [{"uid": "u1", "name": "b"}]),
    ("Pod", "metadata.finalizers", ["a", "b"], ["b", "c"], ["a", "b", "c"]),
    # Lists without a patch strategy upstream are replaced whole.
    ("Pod", "spec.tolerations", [{"key": "k1"}], [{"key": "k2"}], [{"key": "k2"}]),
    ("Pod", "spec.readinessGates", [{"conditionType": "a"}], [{"conditionType": "b"}],
     [{"conditionType": "b"}]),
    ("Pod", "status.containerStatuses", named("a", ready=False), named("a", ready=True),
     named("a", ready=True)),
    ("Pod", "spec.containers", named("a", args=["1", "2"]), named("a", args=["3"]), named("a", args=["3"])),
    # Workloads: the pod template and their own status.
    ("Deployment", f"{POD_TEMPLATE}.containers", [*named("a", image="1"), *named("b")],
     named("a", image="2"), [*named("a", image="2"), *named("b")]),
    ("Deployment", "status.conditions", [typed("Available", "False")], [typed("Progressing", "True")],
     [typed("Progressing", "True"), typed("Available", "False")]),
    ("ReplicaSet", f"{POD_TEMPLATE}.volumes", named("v", secret={"secretName": "s"}), named("w", emptyDir={}),
     [*named("w", emptyDir={}), *named("v", secret={"secretName": "s"})]),
    ("ReplicaSet", "status.conditions", [typed("ReplicaFailure", "True")], [typed("ReplicaFailure", "False")],
     [typed("ReplicaFailure", "False")]),
    ("ReplicaSet", "spec.template.metadata.finalizers", ["x"], ["y"], ["y", "x"]),
    # Node, Namespace, Service.
    ("Node", "status.conditions", [typed("Ready", "Unknown")], [typed("Ready", "True")],
     [typed("Ready", "True")]),
    ("Node", "status.addresses",
     [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "n"}],
     [{"type": "InternalIP", "address": "10.0.0.2"}],
     [{"type": "InternalIP", "address": "10.0.0.2"}, {"type": "Hostname", "address": "n"}]),
    ("Node", "spec.taints", [{"key": "a", "effect": "NoSchedule"}], [{"key": "b", "effect": "NoSchedule"}],
     [{"key": "b", "effect": "NoSchedule"}]),
    ("Node", "spec.podCIDRs", ["10.0.0.0/24"], ["fd00::/64"], ["fd00::/64", "10.0.0.0/24"]),
    ("Namespace", "status.conditions", [typed("A", "True")], [typed("A", "False")], [typed("A", "False")]),
    ("Service", "spec.ports", [{"port": 80, "targetPort": 8080}, {"port": 443}],
     [{"port": 80, "targetPort": 9090}], [{"port": 80, "targetPort": 9090}, {"port": 443}]),
    ("Service", "status.conditions", [typed("A", "True")], [typed("A", "False")], [typed("A", "False")]),
    # ConfigMap, Event and Lease have only ObjectMeta's merge lists; unknown kinds have none at all.
    ("ConfigMap", "metadata.finalizers", ["a"], ["b"], ["b", "a"]),
    ("Lease", "spec.holders", named("a"), named("b"), named("b")),
    ("Widget", "metadata.finalizers", ["a"], ["b"], ["b"]),
    ("Widget", "spec.containers", named("a", image="1"), named("a"), named("a")),
])
def test_strategic_merge_keys_per_kind(kind: str, path: str, original: list[Any], patch: list[Any],
                                       expected: list[Any]) -> None:
    result = patched(nest(path, patch), original=nest(path, original), kind=kind)
    assert dig(result, path) == expected


@pytest.mark.parametrize("kind,field,key", [
    ("Pod", "spec.containers.ports", "containerPort"),
    ("Pod", "spec.containers.env", "name"),
    ("Pod", "spec.containers.volumeMounts", "mountPath"),
    ("Pod", "spec.initContainers.volumeDevices", "devicePath"),
    ("Pod", "spec.ephemeralContainers.env", "name"),
    ("Deployment", "spec.template.spec.containers.env", "name"),
    ("ReplicaSet", "spec.template.spec.initContainers.volumeMounts", "mountPath"),
])
def test_strategic_container_fields_merge_by_key(kind: str, field: str, key: str) -> None:
    containers, sub = field.rsplit(".", 1)
    original = nest(containers, [{"name": "c", sub: [{key: "k1", "x": 1}, {key: "k2", "x": 2}]}])
    patch = nest(containers, [{"name": "c", sub: [{key: "k2", "x": 3}]}])
    assert dig(patched(patch, original=original, kind=kind), containers)[0][sub] == [
        {key: "k1", "x": 1}, {key: "k2", "x": 3}]


def test_strategic_tables_follow_upstream_tags() -> None:
    pod = PATCH_STRATEGIES["Pod"]
    assert pod["spec.volumes"] == ("merge,retainKeys", "name")
    assert pod["spec.containers.ports"] == ("merge", "containerPort")
    assert pod["metadata.finalizers"] == ("merge", "")
    atomic_lists = ("spec.tolerations", "spec.readinessGates", "status.containerStatuses",
                    "spec.containers.envFrom", "spec.containers.resizePolicy")
    for atomic in atomic_lists:
        assert atomic not in pod
    assert "spec.taints" not in PATCH_STRATEGIES["Node"]
    assert PATCH_STRATEGIES["Deployment"]["spec.strategy"] == ("retainKeys", "")
    assert PATCH_STRATEGIES["ReplicaSet"]["spec.template.spec.containers.env"] == ("merge", "name")


def test_strategic_merge_key_values_compare_by_type() -> None:
    original = nest("spec.ports", [{"port": 80, "name": "http"}])
    result = patched(nest("spec.ports", [{"port": "80", "name": "str"}]), original=original, kind="Service")
    assert result["spec"]["ports"] == [{"port": "80", "name": "str"}, {"port": 80, "name": "http"}]


# ---- strategic merge patch: directives ----------------------------------------------------------

@pytest.mark.parametrize("patch,path,expected", [
    # $patch in maps
    ({"metadata": {"labels": {"$patch": "replace", "only": "1"}}}, "metadata.labels", {"only": "1"}),
    ({"metadata": {"labels": {"$patch": "delete"}}}, "metadata.labels", {}),
    ({"metadata": {"labels": {"$patch": "merge", "new": "1"}}}, "metadata.labels",
     {"app": "web", "tier": "front", "new": "1"}),
    ({"spec": {"affinity": {"$patch": "replace", "nodeAffinity": {"x": None, "y": 1}}}}, "spec.affinity",
     {"nodeAffinity": {"y": 1}}),
    # $patch in list elements
    ({"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}, "spec.containers",
     [copy.deepcopy(POD["spec"]["containers"][0])]),
    ({"spec": {"containers": [{"name": "solo", "image": "s"}, {"$patch": "replace"}]}}, "spec.containers",
     [{"name": "solo", "image": "s"}]),
    ({"spec": {"containers": [{"name": "app", "image": "app:3", "$patch": "merge"}]}},
     "spec.containers.0.image", "app:3"),
    ({"spec": {"containers": [{"name": "ghost", "$patch": "delete"}]}}, "spec.containers",
     copy.deepcopy(POD["spec"]["containers"])),
    # $deleteFromPrimitiveList
    ({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a", "zz"]}}, "metadata.finalizers", ["b"]),
    ({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["c"]}}, "metadata.finalizers",
     ["c", "b"]),
    ({"spec": {"$deleteFromPrimitiveList/nothingHere": ["a"]}}, "spec.tolerations",
     copy.deepcopy(POD["spec"]["tolerations"])),
    # $retainKeys clears what it does not name
    ({"spec": {"volumes": [{"name": "data", "$retainKeys": ["configMap", "name"],
                            "configMap": {"name": "cm"}}]}},
     "spec.volumes", [{"name": "data", "configMap": {"name": "cm"}}]),
    ({"spec": {"$retainKeys": ["containers", "volumes"]}}, "spec",
     {k: v for k, v in POD["spec"].items() if k != "tolerations"}),
])
def test_strategic_directives(patch: dict[str, Any], path: str, expected: Any) -> None:
    result: Any = patched(patch)
    for key in path.split("."):
        result = result[int(key)] if isinstance(result, list) else result[key]
    assert result == expected


def test_strategic_new_values_are_cleaned_of_nulls_and_directives() -> None:
    spec = {"affinity": {"$patch": "delete"},
            "dnsConfig": {"$retainKeys": ["options"], "options": [{"name": "x", "value": None}]},
            "imagePullSecrets": [{"name": "s", "$patch": "merge"}, {"$patch": "replace"}]}
    result = patched({"metadata": {"annotations": {"a": "1", "b": None}}, "spec": spec})
    assert result["metadata"]["annotations"] == {"a": "1"}
    assert result["spec"]["affinity"] == {}
    assert result["spec"]["dnsConfig"] == {"options": [{"name": "x"}]}
    assert result["spec"]["imagePullSecrets"] == [{"name": "s"}]


# kubectl apply's three-way patches: every changed merge list comes with $setElementOrder.
@pytest.mark.parametrize("patch,path,expected", [
    # Reorder only.
    ({"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]}},
     "spec.containers", ["sidecar", "app"]),
    # Add a container at the end, as written in the manifest.
    ({"spec": {"$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}, {"name": "new"}],
               "containers": [{"name": "new", "image": "n:1"}]}},
     "spec.containers", ["app", "sidecar", "new"]),
    # Add in the middle.
    ({"spec": {"$setElementOrder/containers": [{"name": "app"}, {"name": "mid"}, {"name": "sidecar"}],
               "containers": [{"name": "mid", "image": "m:1"}]}},
     "spec.containers", ["app", "mid", "sidecar"]),
    # Remove one (delete directive) and change another.
    ({"spec": {"$setElementOrder/containers": [{"name": "app"}],
               "containers": [{"name": "app", "image": "app:2"}, {"name": "sidecar", "$patch": "delete"}]}},
     "spec.containers", ["app"]),
    # Items the live object has but the manifest never listed stay where they were in the live list.
    ({"spec": {"$setElementOrder/containers": [{"name": "sidecar"}]}}, "spec.containers", ["app", "sidecar"]),
])
def test_strategic_set_element_order_for_maps(patch: dict[str, Any], path: str, expected: list[str]) -> None:
    assert [c["name"] for c in dig(patched(patch), path)] == expected


def test_kubectl_apply_three_way_patch_on_a_deployment() -> None:
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {"old": "1"}},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "web", "image": "nginx:1",
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
             "ports": [{"containerPort": 80}]}]}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}},
    }
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "old": None}},
        "spec": {"replicas": 3,
                 "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None},
                 "template": {"spec": {
                     "$setElementOrder/containers": [{"name": "web"}],
                     "containers": [{"name": "web", "image": "nginx:2",
                                     "$setElementOrder/env": [{"name": "C"}, {"name": "A"}],
                                     "env": [{"name": "C", "value": "3"},
                                             {"$patch": "delete", "name": "B"}]}]}}},
    }
    result = patched(patch, original=deployment, kind="Deployment")
    assert result["metadata"]["annotations"] == {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    assert result["spec"]["replicas"] == 3
    assert result["spec"]["strategy"] == {"type": "Recreate"}
    (web,) = result["spec"]["template"]["spec"]["containers"]
    assert web["image"] == "nginx:2" and web["ports"] == [{"containerPort": 80}]
    assert web["env"] == [{"name": "C", "value": "3"}, {"name": "A", "value": "1"}]


@pytest.mark.parametrize("patch,expected", [
    ({"metadata": {"$setElementOrder/finalizers": ["b", "a"]}}, ["b", "a"]),
    ({"metadata": {"$setElementOrder/finalizers": ["a", "c", "b"], "finalizers": ["c"]}}, ["a", "c", "b"]),
    ({"metadata": {"$setElementOrder/finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]}},
     ["b"]),
])
def test_strategic_set_element_order_for_primitives(patch: dict[str, Any], expected: list[str]) -> None:
    assert patched(patch)["metadata"]["finalizers"] == expected


def test_set_element_order_on_a_list_without_merge_strategy_is_ignored() -> None:
    spec = {"$setElementOrder/tolerations": [{"key": "b"}], "tolerations": [{"key": "b"}]}
    result = patched({"spec": spec})
    assert result["spec"]["tolerations"] == [{"key": "b"}]


@pytest.mark.parametrize("patch,fragment", [
    ({"spec": {"containers": [{"image": "x"}]}},
     'map: {"image": "x"} does not contain declared merge key: name'),
    ({"spec": {"containers": [{"$patch": "delete"}]}}, "does not contain declared merge key: name"),
    ({"spec": {"containers": [{"name": "app", "$patch": "explode"}]}}, "unknown patch type: explode in map"),
    ({"metadata": {"labels": {"$patch": "explode"}}}, "unknown patch type: explode in map"),
    ({"spec": {"$setElementOrder/containers": [{"name": "app"}], "containers": [{"name": "other"}]}},
     "doesn't match $setElementOrder list"),
    ({"spec": {"$setElementOrder/containers": [{"image": "x"}], "containers": [{"name": "app"}]}},
     "does not contain declared merge key: name"),
    ({"spec": {"$setElementOrder/containers": "app"}}, "invalid patch format of setElementOrder list"),
    ({"spec": {"$setElementOrder": []}}, "invalid patch format of setElementOrder list"),
    ({"metadata": {"$deleteFromPrimitiveListX/finalizers": ["a"]}}, "invalid patch format of primitive list"),
    ({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}, "invalid patch format of primitive list"),
    ({"spec": {"$deleteFromPrimitiveList/containers": ["app"]}}, "only applies to lists of primitive values"),
    ({"spec": {"volumes": [{"name": "data", "$retainKeys": "name"}]}}, "invalid patch format of retainKeys"),
    ({"spec": {"volumes": [{"name": "data", "$retainKeys": ["name"], "configMap": {"name": "cm"}}]}},
     "invalid patch format of retainKeys: 'configMap' is not in [\"name\"]"),
    ({"spec": {"containers": ["app"]}}, "list element types are not identical"),
])
def test_malformed_strategic_patch_is_400(patch: dict[str, Any], fragment: str) -> None:
    error = failure(patch)
    assert (error.code, error.reason) == (400, "BadRequest")
    assert fragment in error.message


def test_maps_in_a_list_of_primitives_cannot_merge() -> None:
    error = failure({"metadata": {"finalizers": [{"name": "x"}]}}, original={"metadata": {"finalizers": []}})
    assert error.code == 400
    assert "cannot merge lists without merge key for metadata.finalizers" in error.message


def test_strategic_list_of_lists_is_422_like_upstream() -> None:
    error = failure({"metadata": {"finalizers": [["nested"]]}})
    assert (error.code, error.reason, error.message) == (422, "Invalid", REJECTED_MESSAGE)


@pytest.mark.parametrize("body,fragment", [
    (b"{", "error decoding patch: "),
    (b"[]", "a strategic merge patch must be a JSON object, got array"),
    (b"null", "a strategic merge patch must be a JSON object, got null"),
    (b'{"a": Infinity}', "Infinity is not valid JSON"),
])
def test_undecodable_strategic_patch_is_400(body: bytes, fragment: str) -> None:
    error = failure(body)
    assert error.code == 400 and fragment in error.message


def test_strategic_top_level_delete_directive_empties_the_object() -> None:
    assert patched({"$patch": "delete"}) == {}


# ---- server-side apply (simplified) -------------------------------------------------------------

def test_apply_on_a_missing_object_returns_the_applied_object() -> None:
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  when: 2024-01-02T03:04:05Z\n"
    assert apply_patch({}, body, APPLY, kind="ConfigMap") == {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
        "data": {"when": "2024-01-02T03:04:05Z"}}                      # timestamps stay strings


def test_apply_merges_into_the_live_object_like_a_strategic_patch() -> None:
    body = (b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels:\n    tier: back\n"
            b"spec:\n  containers:\n  - name: app\n    image: app:9\n")
    result = apply_patch(copy.deepcopy(POD), body, APPLY, kind="Pod")
    assert result["metadata"]["labels"] == {"app": "web", "tier": "back"}
    assert [(c["name"], c["image"]) for c in result["spec"]["containers"]] == [
        ("app", "app:9"), ("sidecar", "side:1")]
    assert result["spec"]["containers"][0]["env"] == POD["spec"]["containers"][0]["env"]
    assert result["status"] == POD["status"]


def test_apply_accepts_json_and_yaml_quirks() -> None:
    body = b'{"apiVersion": "v1", "kind": "ConfigMap", "data": {"1": "one"}, "binaryData": null}'
    assert apply_patch({}, body, APPLY, kind="ConfigMap")["data"] == {"1": "one"}
    yaml_keys = b"apiVersion: v1\nkind: ConfigMap\ndata:\n  2: two\n  false: yes\n  '=': eq\n  x: =\n"
    assert apply_patch({}, yaml_keys, APPLY, kind="ConfigMap")["data"] == {
        "2": "two", "false": True, "=": "eq", "x": "="}


@pytest.mark.parametrize("body,message", [
    (b"a: [1, 2\n", "error decoding YAML: "),
    (b"a: 1\n---\nb: 2\n", "error decoding YAML: "),
    (b"- 1\n- 2\n", "error decoding YAML: the applied configuration must be an object, got array"),
    (b"", "error decoding YAML: the applied configuration must be an object, got null"),
    (b"a: .nan\n", "error decoding YAML: nan is not a valid JSON number"),
    (b"a: !!binary aGVsbG8=\n", "error decoding YAML: unsupported value of type bytes"),
    (b"apiVersion: v1\nmetadata:\n  managedFields: []\n", "metadata.managedFields must be nil"),
    (b"apiVersion: v2\nkind: Pod\n",
     "Incorrect version specified in apply patch. Specified patch version: v2, expected: v1"),
    (b"kind: Pod\n", "Incorrect version specified in apply patch. Specified patch version: , expected: v1"),
])
def test_bad_apply_is_400(body: bytes, message: str) -> None:
    error = failure(body, APPLY)
    assert (error.code, error.reason) == (400, "BadRequest")
    assert message in error.message
