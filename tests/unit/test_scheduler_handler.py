"""The scheduling pass against a store fixture: binds, reservations, the unschedulable story."""

from __future__ import annotations

from typing import Any

from chalicelib.controllers.client import Client
from chalicelib.scheduler import handler, reservations
from tests.conftest import APIClient

PODS = "/api/v1/namespaces/default/pods"


def add_node(admin: APIClient, name: str, cpu: str = "2", *, taints: list[dict[str, Any]] | None = None,
             zone: str = "us-east-1a") -> None:
    labels = {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone}
    admin.post("/api/v1/nodes", {"metadata": {"name": name, "labels": labels},
                                 "spec": {"taints": taints} if taints else {}})
    resources = {"cpu": cpu, "memory": "8Gi", "pods": "110"}
    admin.patch(f"/api/v1/nodes/{name}/status", {"status": {"capacity": resources, "allocatable": resources}})


def add_pod(admin: APIClient, name: str, cpu: str = "500m", **spec: Any) -> None:
    code, out = admin.post(PODS, {"metadata": {"name": name}, "spec": {"containers": [
        {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}], **spec}})
    assert code == 201, out


def node_of(admin: APIClient, name: str) -> str | None:
    return admin.get(f"{PODS}/{name}")[1]["spec"].get("nodeName")


def test_pending_pods_are_bound_and_reserved(admin: APIClient) -> None:
    add_node(admin, "n1")
    add_node(admin, "n2")
    for i in range(4):
        add_pod(admin, f"p{i}")
    result = handler.schedule_pending(Client())
    assert sorted(result.bound) == [f"default/p{i}" for i in range(4)] and not result.unschedulable
    placed = [node_of(admin, f"p{i}") for i in range(4)]
    assert placed.count("n1") == 2 and placed.count("n2") == 2  # LeastAllocated spreads
    assert reservations.usage("n1")[0] == 1000 and reservations.usage("n2")[0] == 1000
    events = admin.get("/api/v1/namespaces/default/events")[1]["items"]
    assert sum(e["reason"] == "Scheduled" for e in events) == 4


def test_unschedulable_message_condition_and_event(admin: APIClient) -> None:
    add_node(admin, "small", cpu="1")
    add_node(admin, "tainted", cpu="8", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    add_pod(admin, "big", cpu="2")
    client = Client()
    result = handler.schedule_pending(client)
    message = "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}."
    assert result.unschedulable == {"default/big": message}
    pod = admin.get(f"{PODS}/big")[1]
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "Unschedulable", message)
    events = [e for e in admin.get("/api/v1/namespaces/default/events")[1]["items"]
              if e["reason"] == "FailedScheduling"]
    assert len(events) == 1 and events[0]["type"] == "Warning" and events[0]["message"] == message
    again = Client()
    handler.schedule_pending(again)
    assert again.action_strings() == []  # the same story is not written twice


def test_retried_when_capacity_frees_up(admin: APIClient) -> None:
    add_node(admin, "n1", cpu="1")
    add_pod(admin, "first", cpu="1")
    add_pod(admin, "second", cpu="1")
    handler.schedule_pending(Client())
    assert node_of(admin, "first") == "n1" and node_of(admin, "second") is None
    admin.patch(f"{PODS}/first/status", {"status": {"phase": "Succeeded"}})
    handler.schedule_pending(Client())
    assert node_of(admin, "second") == "n1"


def test_tolerations_and_node_selector_are_honoured(admin: APIClient) -> None:
    add_node(admin, "plain")
    add_node(admin, "gpu", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}], zone="us-east-1b")
    add_pod(admin, "wants-gpu", nodeSelector={"topology.kubernetes.io/zone": "us-east-1b"},
            tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}])
    add_pod(admin, "anywhere")
    handler.schedule_pending(Client())
    assert node_of(admin, "wants-gpu") == "gpu" and node_of(admin, "anywhere") == "plain"


def test_pods_for_another_scheduler_are_left_alone(admin: APIClient) -> None:
    add_node(admin, "n1")
    add_pod(admin, "other", schedulerName="my-scheduler")
    assert handler.schedule_pending(Client()).bound == {}
    assert node_of(admin, "other") is None
