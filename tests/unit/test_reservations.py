"""Invariant 5 at the API: a binding reserves the node's capacity in the same transaction, and a pod
that finishes or is deleted frees it, exactly once."""

from __future__ import annotations

from typing import Any

from chalicelib.scheduler import reservations
from tests.conftest import APIClient

PODS = "/api/v1/namespaces/default/pods"


def add_node(admin: APIClient, name: str, cpu: str = "2", memory: str = "4Gi", pods: str = "110") -> None:
    """A node as its agent registers it: the object, then its status (capacity and allocatable)."""
    admin.post("/api/v1/nodes", {"metadata": {"name": name}})
    resources = {"cpu": cpu, "memory": memory, "pods": pods}
    code, _ = admin.patch(f"/api/v1/nodes/{name}/status", {"status": {"capacity": resources,
                                                                       "allocatable": resources}})
    assert code == 200


def pod(name: str, cpu: str = "500m", memory: str = "256Mi") -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"containers": [
        {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}}


def bind(admin: APIClient, name: str, to: str) -> tuple[int, Any]:
    return admin.post(f"{PODS}/{name}/binding", {"apiVersion": "v1", "kind": "Binding", "target": {"name": to}})


def test_binding_reserves_and_refuses_overcommit(admin: APIClient) -> None:
    add_node(admin, "n1", cpu="1")
    for i in range(3):
        admin.post(PODS, pod(f"p{i}"))
    assert bind(admin, "p0", "n1")[0] == 201
    assert bind(admin, "p1", "n1")[0] == 201
    code, status = bind(admin, "p2", "n1")  # 3 x 500m > 1 cpu
    assert code == 409 and "does not fit" in status["message"]
    assert "nodeName" not in admin.get(f"{PODS}/p2")[1]["spec"]
    cpu, memory, count, uids = reservations.usage("n1")
    assert (cpu, memory, count) == (1000, 2 * 256 * 1024 * 1024, 2) and len(uids) == 2


def test_a_pod_bigger_than_the_node_is_refused(admin: APIClient) -> None:
    add_node(admin, "n1", cpu="1")
    admin.post(PODS, pod("big", cpu="2"))
    code, status = bind(admin, "big", "n1")
    assert code == 409 and "Insufficient cpu" in status["message"]
    assert reservations.usage("n1")[:3] == (0, 0, 0)


def test_finishing_or_deleting_frees_once(admin: APIClient) -> None:
    add_node(admin, "n1", cpu="1")
    admin.post(PODS, pod("a"))
    admin.post(PODS, pod("b"))
    bind(admin, "a", "n1")
    bind(admin, "b", "n1")
    admin.patch(f"{PODS}/a/status", {"status": {"phase": "Succeeded"}})
    assert reservations.usage("n1")[2] == 1
    admin.patch(f"{PODS}/a/status", {"status": {"phase": "Succeeded", "message": "again"}})
    admin.delete(f"{PODS}/a")  # finished: freed already, nothing more
    assert reservations.usage("n1")[:3] == (500, 256 * 1024 * 1024, 1)
    admin.delete(f"{PODS}/b", query={"gracePeriodSeconds": "30"})  # graceful: still holds it
    assert reservations.usage("n1")[2] == 1
    admin.delete(f"{PODS}/b", query={"gracePeriodSeconds": "0"})  # the node confirms: freed
    assert reservations.usage("n1") == (0, 0, 0, set())
    admin.post(PODS, pod("c"))
    admin.post(PODS, pod("d"))
    assert bind(admin, "c", "n1")[0] == 201 and bind(admin, "d", "n1")[0] == 201
