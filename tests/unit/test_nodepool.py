"""skiff.io/v1 NodePool and NodeClaim through the API: defaults, 422 causes, strict fields, status,
tables, discovery and OpenAPI, as kubectl meets them."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.api.openapi import openapi_v3_document
from tests.conftest import APIClient

POOLS = "/apis/skiff.io/v1/nodepools"
CLAIMS = "/apis/skiff.io/v1/nodeclaims"


def pool(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "skiff.io/v1", "kind": "NodePool", "metadata": {"name": "general"},
            "spec": {"instanceTypes": ["m5.large", "c5.large"], "launchTemplate": {"name": "skiff-node"}, **spec}}


def causes(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["field"], c["reason"]) for c in body["details"]["causes"]]


def test_a_pool_gets_its_defaults(admin: APIClient) -> None:
    code, created = admin.post(POOLS, pool())
    assert code == 201, created
    assert created["spec"]["capacityType"] == "on-demand"
    assert created["spec"]["disruption"] == {"emptyAfterSeconds": 300}
    assert created["spec"]["registrationTimeoutSeconds"] == 600
    assert created["spec"]["maxPodsPerNode"] == 110
    assert admin.get(f"{POOLS}/general")[0] == 200


@pytest.mark.parametrize("spec, expected", [
    ({"capacityType": "reserved"}, [("spec.capacityType", "FieldValueNotSupported")]),
    ({"limits": {"maxNodes": -1, "cpu": "-2"}},
     [("spec.limits.maxNodes", "FieldValueInvalid"), ("spec.limits.cpu", "FieldValueInvalid")]),
    ({"disruption": {"emptyAfterSeconds": -5}}, [("spec.disruption.emptyAfterSeconds", "FieldValueInvalid")]),
    ({"registrationTimeoutSeconds": 0}, [("spec.registrationTimeoutSeconds", "FieldValueInvalid")]),
    ({"instanceTypes": []}, [("spec.instanceTypes", "FieldValueRequired")]),
    ({"instanceTypes": ["m5.large", "m5.large"]}, [("spec.instanceTypes[1]", "FieldValueDuplicate")]),
    ({"instanceTypes": ["m5.huge"]}, [("spec.instanceTypes[0]", "FieldValueInvalid")]),
    ({"launchTemplate": {}}, [("spec.launchTemplate", "FieldValueRequired")]),
    ({"launchTemplate": {"name": "skiff-node", "id": "lt-0123456789abcdef0"}},
     [("spec.launchTemplate", "FieldValueForbidden")]),
    ({"launchTemplate": {"id": "template-7"}}, [("spec.launchTemplate.id", "FieldValueInvalid")]),
    ({"labels": {"node.kubernetes.io/instance-type": "m5.large"}},
     [("spec.labels[node.kubernetes.io/instance-type]", "FieldValueForbidden")]),
    ({"taints": [{"key": "a", "effect": "Sometimes"}]}, [("spec.taints[0].effect", "FieldValueNotSupported")]),
    ({"zones": ["us-east-1a", "us-east-1a"]}, [("spec.zones[1]", "FieldValueDuplicate")]),
])
def test_bad_pools_are_refused_with_causes(admin: APIClient, spec: dict[str, Any],
                                           expected: list[tuple[str, str]]) -> None:
    code, body = admin.post(POOLS, pool(**spec))
    assert code == 422, body
    assert body["reason"] == "Invalid" and causes(body) == expected
    assert admin.get(f"{POOLS}/general")[0] == 404


def test_a_pool_without_a_launch_template_is_refused(admin: APIClient) -> None:
    body = pool()
    del body["spec"]["launchTemplate"]
    code, out = admin.post(POOLS, body)
    assert code == 422 and causes(out) == [("spec.launchTemplate", "FieldValueRequired")]


def test_unknown_and_mistyped_fields_are_refused_as_kube_apiserver_does(admin: APIClient) -> None:
    code, body = admin.post(POOLS, pool(limit={"maxNodes": 3}), query={"fieldValidation": "Strict"})
    assert code == 400 and 'unknown field "spec.limit"' in body["message"]
    code, body = admin.post(POOLS, pool(limits={"maxNodes": "three"}))
    assert code == 400 and "NodePoolLimits.spec.limits.maxNodes of type int32" in body["message"]
    code, body = admin.post(POOLS, pool(limits={"cpu": "lots"}))
    assert code == 400 and "quantities must match the regular expression" in body["message"]


def test_status_is_only_written_through_the_status_subresource(admin: APIClient) -> None:
    _, created = admin.post(POOLS, pool())
    created["status"] = {"nodes": 3}
    code, updated = admin.put(f"{POOLS}/general", created)
    assert code == 200 and "nodes" not in (updated.get("status") or {})
    updated["status"] = {"nodes": 3, "cpu": "6", "unavailableOfferings": [
        {"instanceType": "c5.large", "zone": "us-east-1a", "capacityType": "on-demand",
         "until": "2026-01-01T00:00:00Z"}]}
    code, updated = admin.put(f"{POOLS}/general/status", updated)
    assert code == 200 and updated["status"]["nodes"] == 3


def test_kubectl_get_nodepools_prints_a_table(admin: APIClient) -> None:
    admin.post(POOLS, pool(capacityType="spot"))
    code, table = admin.get(POOLS, headers={"accept": "application/json;as=Table;g=meta.k8s.io;v=v1"})
    assert code == 200 and table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == \
        ["Name", "Nodes", "CPU", "Capacity", "Age"]
    assert table["rows"][0]["cells"][:4] == ["general", 0, "0", "spot"]


def test_discovery_serves_the_group(admin: APIClient) -> None:
    code, groups = admin.get("/apis")
    assert code == 200 and "skiff.io" in [g["name"] for g in groups["groups"]]
    code, resources = admin.get("/apis/skiff.io/v1")
    names = {r["name"]: r for r in resources["resources"]}
    assert names["nodepools"]["namespaced"] is False and names["nodepools"]["kind"] == "NodePool"
    assert {"nodepools/status", "nodeclaims", "nodeclaims/status"} <= set(names)


def test_openapi_lets_kubectl_validate_on_the_server() -> None:
    doc = openapi_v3_document("skiff.io", "v1")
    assert doc is not None
    patch = doc["paths"]["/apis/skiff.io/v1/nodepools/{name}"]["patch"]
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "skiff.io", "kind": "NodePool", "version": "v1"}
    schemas = doc["components"]["schemas"]
    assert {"io.skiff.v1.NodePoolSpec", "io.skiff.v1.NodeClaimStatus", "io.k8s.api.core.v1.Taint"} <= set(schemas)


def claim(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "skiff.io/v1", "kind": "NodeClaim", "metadata": {"name": "general-abc"},
            "spec": {"nodePool": "general", "instanceType": "c5.large", "zone": "us-east-1a",
                     "capacityType": "on-demand", "podUIDs": ["u1"], **spec}}


def test_a_claim_starts_pending_and_its_node_cannot_change(admin: APIClient) -> None:
    code, created = admin.post(CLAIMS, claim())
    assert code == 201 and created["status"] == {"phase": "Pending"}
    changed = {**created, "spec": {**created["spec"], "instanceType": "m5.large"}}
    code, body = admin.put(f"{CLAIMS}/general-abc", changed)
    assert code == 422 and causes(body) == [("spec.instanceType", "FieldValueInvalid")]
    grown = {**created, "spec": {**created["spec"], "podUIDs": ["u1", "u2"]}}
    assert admin.put(f"{CLAIMS}/general-abc", grown)[0] == 200
    code, fresh = admin.get(f"{CLAIMS}/general-abc")
    shrunk = {**fresh, "spec": {**fresh["spec"], "podUIDs": ["u2"]}}
    code, body = admin.put(f"{CLAIMS}/general-abc", shrunk)
    assert code == 422 and causes(body) == [("spec.podUIDs", "FieldValueForbidden")]


def test_a_claim_needs_its_offering(admin: APIClient) -> None:
    code, body = admin.post(CLAIMS, claim(zone="", capacityType="reserved"))
    assert code == 422
    assert causes(body) == [("spec.zone", "FieldValueRequired"), ("spec.capacityType", "FieldValueNotSupported")]


def test_a_type_dropped_from_the_price_table_does_not_lock_the_pool(admin: APIClient,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.provisioner import prices

    _, created = admin.post(POOLS, pool())
    monkeypatch.setattr(prices, "known_types", lambda: frozenset({"c5.large"}))
    code, _ = admin.put(f"{POOLS}/general/status", {**created, "status": {"nodes": 1}})
    assert code == 200
    code, body = admin.patch(f"{POOLS}/general", {"spec": {"instanceTypes": ["m5.large", "c5.large", "m5.xlarge"]}})
    assert code == 422 and causes(body) == [("spec.instanceTypes[2]", "FieldValueInvalid")]
