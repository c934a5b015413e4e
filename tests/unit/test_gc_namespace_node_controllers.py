"""Garbage collector, namespace and node lifecycle controllers against a store fixture."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.controllers import gc, namespace, nodelifecycle, replicaset
from chalicelib.controllers.client import Client
from tests.conftest import APIClient

RS = "/apis/apps/v1/namespaces/default/replicasets"
PODS = "/api/v1/namespaces/default/pods"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


def rs_body(name: str = "web", replicas: int = 2) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def pod_names(admin: APIClient, path: str = PODS) -> list[str]:
    return sorted(p["metadata"]["name"] for p in admin.get(path)[1]["items"])


def test_background_deletion_removes_dependents(admin: APIClient) -> None:
    _, rs = admin.post(RS, rs_body())
    replicaset.sync(Client(), "default", "web")
    assert len(pod_names(admin)) == 2
    admin.delete(f"{RS}/web")
    client = Client()
    gc.owner_gone(client, "default", rs["metadata"]["uid"])
    assert sorted(a.split()[0] for a in client.action_strings() if not a.startswith("create events")) == \
        ["delete", "delete"]
    assert pod_names(admin) == []


def test_dependent_with_another_owner_only_loses_the_reference(admin: APIClient) -> None:
    _, rs = admin.post(RS, rs_body())
    admin.post(PODS, {"metadata": {"name": "shared", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs["metadata"]["uid"]},
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "other-uid"}]},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    admin.delete(f"{RS}/web")
    gc.owner_gone(Client(), "default", rs["metadata"]["uid"])
    refs = admin.get(f"{PODS}/shared")[1]["metadata"]["ownerReferences"]
    assert [r["uid"] for r in refs] == ["other-uid"]


def test_foreground_deletion_waits_for_dependents(admin: APIClient) -> None:
    admin.post(RS, rs_body())
    replicaset.sync(Client(), "default", "web")
    code, marked = admin.delete(f"{RS}/web", query={"propagationPolicy": "Foreground"})
    assert code == 202 and marked["metadata"]["finalizers"] == ["foregroundDeletion"]
    gc.sync_owner(Client(), "replicasets", "default", "web")
    assert pod_names(admin) == []
    assert admin.get(f"{RS}/web")[0] == 404


def test_orphan_deletion_keeps_dependents_without_reference(admin: APIClient) -> None:
    admin.post(RS, rs_body())
    replicaset.sync(Client(), "default", "web")
    admin.delete(f"{RS}/web", query={"propagationPolicy": "Orphan"})
    gc.sync_owner(Client(), "replicasets", "default", "web")
    assert admin.get(f"{RS}/web")[0] == 404
    items = admin.get(PODS)[1]["items"]
    assert len(items) == 2 and all("ownerReferences" not in p["metadata"] for p in items)


def test_sweep_deletes_dependents_of_owners_that_are_gone(admin: APIClient) -> None:
    admin.post(PODS, {"metadata": {"name": "dangling", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone", "uid": "no-such-uid"}]},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    gc.sweep(Client(), "default")
    assert pod_names(admin) == []


def test_namespace_deletion_empties_then_removes_it(admin: APIClient) -> None:
    admin.post("/api/v1/namespaces", {"metadata": {"name": "team"}})
    admin.post("/api/v1/namespaces/team/configmaps", {"metadata": {"name": "cm"}})
    admin.post("/api/v1/namespaces/team/pods", {"metadata": {"name": "p"},
                                               "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    admin.delete("/api/v1/namespaces/team")
    assert namespace.sync(Client(), "team") is True
    assert pod_names(admin, "/api/v1/namespaces/team/pods") == []
    assert namespace.sync(Client(), "team") is False
    assert admin.get("/api/v1/namespaces/team")[0] == 404


def renew(admin: APIClient, node: str, when: datetime) -> None:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    code, _ = admin.get(f"{LEASES}/{node}")
    body = {"metadata": {"name": node}, "spec": {"holderIdentity": node, "leaseDurationSeconds": 40,
                                                 "renewTime": stamp}}
    if code == 404:
        admin.post(LEASES, body)
    else:
        admin.patch(f"{LEASES}/{node}", {"spec": {"renewTime": stamp}})


def test_silent_node_is_tainted_then_its_pods_evicted_and_recovers(admin: APIClient) -> None:
    start = datetime.now(UTC)
    admin.post("/api/v1/nodes", {"metadata": {"name": "n1"}})
    renew(admin, "n1", start)
    admin.post(RS, rs_body(replicas=2))
    replicaset.sync(Client(), "default", "web")
    for name in pod_names(admin):
        admin.post(f"{PODS}/{name}/binding", {"apiVersion": "v1", "kind": "Binding", "target": {"name": "n1"}})
    assert nodelifecycle.sync(Client(), "n1", now=start + timedelta(seconds=10)) is not None
    assert not admin.get("/api/v1/nodes/n1")[1].get("spec", {}).get("taints")
    due = nodelifecycle.sync(Client(), "n1", now=start + timedelta(seconds=50))
    node = admin.get("/api/v1/nodes/n1")[1]
    assert {(t["key"], t["effect"]) for t in node["spec"]["taints"]} == {
        ("node.kubernetes.io/unreachable", "NoSchedule"), ("node.kubernetes.io/unreachable", "NoExecute")}
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "Unknown" and ready["reason"] == "NodeStatusUnknown"
    assert due == pytest.approx(300, abs=1) and len(pod_names(admin)) == 2
    nodelifecycle.sync(Client(), "n1", now=start + timedelta(seconds=50 + 301))
    assert pod_names(admin) == []
    renew(admin, "n1", start + timedelta(seconds=400))
    nodelifecycle.sync(Client(), "n1", now=start + timedelta(seconds=401))
    assert not admin.get("/api/v1/nodes/n1")[1].get("spec", {}).get("taints")


def test_toleration_seconds_are_honoured() -> None:
    pod = {"spec": {"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                     "effect": "NoExecute", "tolerationSeconds": 5}]}}
    assert nodelifecycle.toleration_seconds(pod) == 5
    forever = {"spec": {"tolerations": [{"operator": "Exists"}]}}
    assert nodelifecycle.toleration_seconds(forever) is None
    assert nodelifecycle.toleration_seconds({"spec": {}}) == 300
