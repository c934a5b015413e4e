"""ReplicaSet controller: sync against a store fixture, asserting the actions taken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.controllers import replicaset
from chalicelib.controllers.client import Client
from tests.conftest import APIClient

RS = "/apis/apps/v1/namespaces/default/replicasets"
PODS = "/api/v1/namespaces/default/pods"


def rs_body(name: str = "web", replicas: int = 3, min_ready: int = 0) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def pods(admin: APIClient, *, active_only: bool = True) -> list[dict[str, Any]]:
    items = admin.get(PODS)[1]["items"]
    return [p for p in items if not active_only or not p["metadata"].get("deletionTimestamp")]


def mark_ready(admin: APIClient, name: str, *, since: datetime | None = None, node: str = "n1") -> None:
    pod = admin.get(f"{PODS}/{name}")[1]
    if admin.get(f"/api/v1/nodes/{node}")[0] == 404:
        admin.post("/api/v1/nodes", {"metadata": {"name": node}})
    if not pod["spec"].get("nodeName"):
        admin.post(f"{PODS}/{name}/binding", {"apiVersion": "v1", "kind": "Binding", "target": {"name": node}})
    stamp = (since or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    admin.patch(f"{PODS}/{name}/status", {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": stamp}]}})


def test_creates_missing_pods_with_owner_and_reports_status(admin: APIClient) -> None:
    admin.post(RS, rs_body(replicas=3))
    client = Client()
    replicaset.sync(client, "default", "web")
    created = [a for a in client.action_strings() if a.startswith("create pods")]
    assert len(created) == 3
    assert client.action_strings()[-1] == "update-status replicasets default/web"
    for p in pods(admin):
        assert p["metadata"]["name"].startswith("web-")
        ref = p["metadata"]["ownerReferences"][0]
        assert ref["kind"] == "ReplicaSet" and ref["controller"] is True and ref["name"] == "web"
    status = admin.get(f"{RS}/web")[1]["status"]
    assert status["replicas"] == 3 and status["observedGeneration"] == 1
    assert "readyReplicas" not in status
    events = admin.get("/api/v1/namespaces/default/events")[1]["items"]
    assert sum(e["reason"] == "SuccessfulCreate" for e in events) == 3


def test_second_sync_writes_nothing(admin: APIClient) -> None:
    admin.post(RS, rs_body(replicas=2))
    replicaset.sync(Client(), "default", "web")
    again = Client()
    replicaset.sync(again, "default", "web")
    assert again.action_strings() == []


def test_scale_down_deletes_unscheduled_then_not_ready_then_newest(admin: APIClient) -> None:
    admin.post(RS, rs_body(replicas=4))
    replicaset.sync(Client(), "default", "web")
    names = sorted(p["metadata"]["name"] for p in pods(admin))
    mark_ready(admin, names[0], since=datetime.now(UTC) - timedelta(hours=2))
    mark_ready(admin, names[1], since=datetime.now(UTC) - timedelta(hours=1))
    admin.post(f"{PODS}/{names[2]}/binding", {"apiVersion": "v1", "kind": "Binding", "target": {"name": "n1"}})
    assert admin.get(f"{PODS}/{names[2]}")[1]["spec"]["nodeName"] == "n1"
    # names[3] stays unscheduled
    admin.patch(f"{RS}/web", {"spec": {"replicas": 1}})
    client = Client()
    replicaset.sync(client, "default", "web")
    deletes = [a for a in client.action_strings() if a.startswith("delete")]
    assert deletes == [f"delete pods default/{names[3]}", f"delete pods default/{names[2]}",
                       f"delete pods default/{names[1]}"]
    assert [p["metadata"]["name"] for p in pods(admin)] == [names[0]]


def test_adopts_matching_orphans_and_releases_non_matching(admin: APIClient) -> None:
    admin.post(PODS, {"metadata": {"name": "orphan", "labels": {"app": "web"}},
                      "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    admin.post(RS, rs_body(replicas=1))
    client = Client()
    replicaset.sync(client, "default", "web")
    assert client.action_strings()[:1] == ["patch pods default/orphan"]
    assert not any(a.startswith("create pods") for a in client.action_strings())
    assert admin.get(f"{PODS}/orphan")[1]["metadata"]["ownerReferences"][0]["name"] == "web"
    admin.patch(f"{PODS}/orphan", {"metadata": {"labels": {"app": "other"}}})
    client = Client()
    replicaset.sync(client, "default", "web")
    assert "patch pods default/orphan" in client.action_strings()
    assert "ownerReferences" not in admin.get(f"{PODS}/orphan")[1]["metadata"]
    assert sum(a.startswith("create pods") for a in client.action_strings()) == 1


def test_ready_and_available_honour_min_ready_seconds(admin: APIClient) -> None:
    admin.post(RS, rs_body(replicas=2, min_ready=30))
    replicaset.sync(Client(), "default", "web")
    a, b = sorted(p["metadata"]["name"] for p in pods(admin))
    now = datetime.now(UTC)
    mark_ready(admin, a, since=now - timedelta(seconds=60))
    mark_ready(admin, b, since=now - timedelta(seconds=10))
    wait = replicaset.sync(Client(), "default", "web", now=now)
    status = admin.get(f"{RS}/web")[1]["status"]
    assert status["readyReplicas"] == 2 and status["availableReplicas"] == 1
    assert wait == pytest.approx(20, abs=2)
    replicaset.sync(Client(), "default", "web", now=now + timedelta(seconds=25))
    assert admin.get(f"{RS}/web")[1]["status"]["availableReplicas"] == 2


def test_finished_and_terminating_pods_are_replaced(admin: APIClient) -> None:
    admin.post(RS, rs_body(replicas=2))
    replicaset.sync(Client(), "default", "web")
    first = sorted(p["metadata"]["name"] for p in pods(admin))[0]
    admin.patch(f"{PODS}/{first}/status", {"status": {"phase": "Failed"}})
    client = Client()
    replicaset.sync(client, "default", "web")
    assert sum(a.startswith("create pods") for a in client.action_strings()) == 1


def test_missing_replicaset_is_a_no_op(admin: APIClient) -> None:
    client = Client()
    assert replicaset.sync(client, "default", "nope") is None
    assert client.action_strings() == []


def test_racing_syncs_create_each_pod_once(admin: APIClient) -> None:
    """Two syncs that read the same state (stream handler and resync) create the same names: no surplus."""
    admin.post(RS, rs_body(replicas=3))
    rs = admin.get(f"{RS}/web")[1]
    names = [replicaset.pod_name(rs, i) for i in range(3)]
    assert len(set(names)) == 3 and all(n.startswith("web-") and len(n) == len("web-") + 5 for n in names)
    # The second sync, from the same starting view, gets AlreadyExists for every pod and skips it.
    original = Client.list_objects
    calls = {"n": 0}

    def stale_list(self: Client, plural: str, namespace: str | None = None, **kw: Any) -> list[dict[str, Any]]:
        calls["n"] += 1
        return [] if plural == "pods" else original(self, plural, namespace, **kw)

    replicaset.sync(Client(), "default", "web")
    Client.list_objects = stale_list  # type: ignore[method-assign]
    try:
        second = Client()
        replicaset.sync(second, "default", "web")
    finally:
        Client.list_objects = original  # type: ignore[method-assign]
    assert not [a for a in second.action_strings() if a.startswith("create pods")]
    assert sorted(p["metadata"]["name"] for p in pods(admin)) == sorted(names)
