"""The hollow node's duties, one step at a time, against the in-process API with a node token.

The transport calls the API's entry point directly (no HTTP), so NodeRestriction and validation apply
as they do over HTTPS; the steps are driven by hand because in-process moto is not thread safe.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from skiff.hollow import KUBELET_VERSION, ApiError, HollowNode, NodeConfig, decode_response
from tests.conftest import APIClient

NAME = "ip-10-1-2-3.ec2.internal"
PROVIDER_ID = "aws:///us-east-1b/i-0123456789abcdef0"


class InProcessTransport:
    """The Transport protocol over chalicelib.api.server.handle, with a bearer token."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[tuple[str, str]] = []

    def request(self, method: str, path: str, *, query: Mapping[str, str] | None = None, body: Any = None,
                content_type: str = "application/json") -> Any:
        from chalicelib.api.http import Request
        from chalicelib.api.server import handle

        self.calls.append((method, path))
        resp = handle(Request(method=method, path=path, query={k: [v] for k, v in (query or {}).items()},
                              headers={"content-type": content_type, "authorization": f"Bearer {self.token}"},
                              body=b"" if body is None else json.dumps(body).encode()))
        return decode_response(resp.status, resp.encoded())


def config(**overrides: Any) -> NodeConfig:
    base: dict[str, Any] = dict(
        name=NAME, provider_id=PROVIDER_ID, zone="us-east-1b", region="us-east-1", instance_type="m5.large",
        cpu_milli=2000, memory_bytes=8 * 1024**3, allocatable_cpu_milli=1930, allocatable_memory_bytes=6 * 1024**3,
        labels={"skiff.io/nodepool": "general", "team": "a"},
        taints=({"key": "dedicated", "value": "a", "effect": "NoSchedule"},),
        internal_ip="10.1.2.3", internal_dns=NAME, pod_cidr="10.244.7.0/24", machine_id="i-0123456789abcdef0")
    base.update(overrides)
    return NodeConfig(**base)


@pytest.fixture
def hollow(cluster: None) -> HollowNode:
    from chalicelib.api.auth import issue_token

    return HollowNode(config(), InProcessTransport(issue_token("node", node=NAME)), status_report_seconds=3600)


def test_registers_node_with_facts_labels_taints_and_status(hollow: HollowNode, admin: APIClient) -> None:
    hollow.register()
    code, node = admin.get(f"/api/v1/nodes/{NAME}")
    assert code == 200
    assert node["spec"]["providerID"] == PROVIDER_ID
    assert node["spec"]["podCIDR"] == "10.244.7.0/24"
    assert node["spec"]["taints"] == [{"key": "dedicated", "value": "a", "effect": "NoSchedule"}]
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == NAME
    assert labels["topology.kubernetes.io/zone"] == "us-east-1b"
    assert labels["node.kubernetes.io/instance-type"] == "m5.large"
    assert labels["skiff.io/nodepool"] == "general" and labels["team"] == "a"
    status = node["status"]
    assert status["capacity"]["cpu"] == "2" and status["capacity"]["pods"] == "110"
    assert status["allocatable"]["cpu"] == "1930m" and status["allocatable"]["memory"] == f"{6 * 1024**2}Ki"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["lastHeartbeatTime"]
    assert status["nodeInfo"]["kubeletVersion"] == KUBELET_VERSION
    assert {"type": "InternalIP", "address": "10.1.2.3"} in status["addresses"]


def test_default_allocatable_keeps_a_system_reserve() -> None:
    cfg = NodeConfig(name="n", cpu_milli=4000, memory_bytes=16 * 1024**3)
    assert cfg.allocatable()["cpu"] == "3900m"
    assert cfg.allocatable()["memory"] == f"{(16 * 1024 - 356) * 1024}Ki"
    assert cfg.allocatable()["pods"] == "110"


def test_lease_is_created_then_renewed(hollow: HollowNode, admin: APIClient) -> None:
    hollow.register()
    hollow.renew_lease()
    path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NAME}"
    code, lease = admin.get(path)
    assert code == 200
    assert lease["spec"]["holderIdentity"] == NAME and lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"
    first = lease["metadata"]["resourceVersion"]
    hollow.renew_lease()
    _, renewed = admin.get(path)
    assert renewed["metadata"]["resourceVersion"] != first
    assert hollow.stats.lease_renewals == 2


def test_lease_renewal_survives_someone_else_writing_it(hollow: HollowNode, admin: APIClient) -> None:
    hollow.register()
    hollow.renew_lease()
    path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NAME}"
    _, lease = admin.get(path)
    lease["metadata"]["labels"] = {"touched": "yes"}
    assert admin.put(path, lease)[0] == 200
    hollow.renew_lease()  # its copy is stale: 409, read again, renew
    _, renewed = admin.get(path)
    assert renewed["metadata"]["labels"] == {"touched": "yes"}
    assert hollow.stats.lease_renewals == 2


def test_status_rewritten_when_ready_was_taken_away(hollow: HollowNode, admin: APIClient) -> None:
    hollow.register()
    reports = hollow.stats.status_reports
    hollow.sync_status()
    assert hollow.stats.status_reports == reports, "nothing changed: no write"
    _, node = admin.get(f"/api/v1/nodes/{NAME}")
    conditions = [c if c["type"] != "Ready" else {**c, "status": "Unknown"} for c in node["status"]["conditions"]]
    assert admin.patch(f"/api/v1/nodes/{NAME}/status", {"status": {"conditions": conditions}})[0] == 200
    hollow.sync_status()
    assert hollow.stats.status_reports == reports + 1
    _, node = admin.get(f"/api/v1/nodes/{NAME}")
    assert next(c for c in node["status"]["conditions"] if c["type"] == "Ready")["status"] == "True"


def test_reregistration_takes_over_its_own_node(hollow: HollowNode, admin: APIClient) -> None:
    from chalicelib.api.auth import issue_token

    hollow.register()
    again = HollowNode(config(), InProcessTransport(issue_token("node", node=NAME)))
    again.register()  # a restarted agent: 409, the same providerID, carries on
    assert again.registered
    impostor = HollowNode(config(provider_id="aws:///us-east-1a/i-0fffffffffffffff0"),
                          InProcessTransport(issue_token("node", node=NAME)))
    with pytest.raises(RuntimeError, match="already exists"):
        impostor.register()


def test_node_deleted_under_it_is_not_recreated(hollow: HollowNode, admin: APIClient) -> None:
    hollow.register()
    hollow.renew_lease()
    assert admin.delete(f"/api/v1/nodes/{NAME}")[0] == 200
    hollow.sync_status()
    assert hollow.orphaned
    hollow.renew_lease()
    assert admin.get(f"/api/v1/nodes/{NAME}")[0] == 404


def _pod(admin: APIClient, name: str, **spec: Any) -> dict[str, Any]:
    body = {"metadata": {"name": name}, "spec": {"containers": [{"name": "main", "image": "busybox"}], **spec}}
    code, pod = admin.post("/api/v1/namespaces/default/pods", body)
    assert code == 201, pod
    return dict(pod)


def test_bound_pods_reported_running_and_ready(hollow: HollowNode, admin: APIClient) -> None:
    hollow.register()
    _pod(admin, "web", nodeName=NAME, initContainers=[{"name": "init", "image": "busybox"}])
    _pod(admin, "elsewhere", nodeName="other-node")
    _pod(admin, "host", nodeName=NAME, hostNetwork=True)
    hollow.sync_pods()
    _, pod = admin.get("/api/v1/namespaces/default/pods/web")
    status = pod["status"]
    assert status["phase"] == "Running"
    for kind in ("Initialized", "ContainersReady", "Ready"):
        assert next(c for c in status["conditions"] if c["type"] == kind)["status"] == "True"
    assert status["containerStatuses"][0]["ready"] and "running" in status["containerStatuses"][0]["state"]
    assert status["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert status["podIP"].startswith("10.244.7.") and status["hostIP"] == "10.1.2.3"
    _, host = admin.get("/api/v1/namespaces/default/pods/host")
    assert host["status"]["podIP"] == "10.1.2.3"
    _, other = admin.get("/api/v1/namespaces/default/pods/elsewhere")
    assert other["status"].get("phase", "Pending") == "Pending"
    assert hollow.stats.pods_started == 2
    calls: list[tuple[str, str]] = hollow.api.calls  # type: ignore[attr-defined]
    before = len(calls)
    hollow.sync_pods()  # nothing new: no writes
    assert calls[before:] == [("GET", "/api/v1/pods")]


def test_distinct_pod_ips(hollow: HollowNode, admin: APIClient) -> None:
    hollow.register()
    for i in range(5):
        _pod(admin, f"p{i}", nodeName=NAME)
    hollow.sync_pods()
    _, pods = admin.get("/api/v1/namespaces/default/pods")
    ips = [p["status"]["podIP"] for p in pods["items"]]
    assert len(set(ips)) == 5 and "10.244.7.1" not in ips


def test_graceful_deletion_confirmed(hollow: HollowNode, admin: APIClient) -> None:
    hollow.register()
    _pod(admin, "web", nodeName=NAME)
    hollow.sync_pods()
    code, marked = admin.delete("/api/v1/namespaces/default/pods/web")
    assert code == 202 and marked["metadata"].get("deletionTimestamp"), "a bound pod waits for its node"
    hollow.sync_pods()
    assert admin.get("/api/v1/namespaces/default/pods/web")[0] == 404
    assert hollow.stats.deletions_confirmed == 1


def test_errors_are_api_errors_with_the_status_message() -> None:
    with pytest.raises(ApiError) as info:
        decode_response(403, json.dumps({"kind": "Status", "reason": "Forbidden", "message": "no"}).encode())
    assert info.value.status == 403 and info.value.reason == "Forbidden" and info.value.message == "no"
    assert decode_response(200, b'{"a": 1}') == {"a": 1}


class _Broken:
    def request(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("the API is down")


def test_a_broken_api_never_kills_the_thread() -> None:
    import time

    node = HollowNode(NodeConfig(name="n"), _Broken()).start()
    time.sleep(0.3)
    assert node.alive and node.stats.errors >= 1 and "the API is down" in node.stats.last_error
    assert node.stop(5)
    assert not node.alive
