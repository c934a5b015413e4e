"""The fleet against a live `skiff up`: an EC2 instance launched in its moto becomes a hollow node that
registers over HTTPS with its own node token, renews its Lease, and runs (reports Running and Ready)
the pod the live scheduler binds to it; terminating the instance stops the node's heartbeats.

The Fleet runs in this test process, pointed at the live API (its URL and CA) and the live moto, under
a cluster name of its own, so a fleet the runtime itself runs never adopts these instances.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import boto3
import pytest

from skiff.fleet import TAG_CLUSTER, Fleet
from tests.conftest import LiveCluster

T = TypeVar("T")
LEASES = "leases"


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 30.0, every: float = 0.2) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


@pytest.fixture
def ec2(live: LiveCluster) -> Any:
    return boto3.client("ec2", region_name="us-east-1", endpoint_url=live.aws_endpoint,
                        aws_access_key_id="skiff-local", aws_secret_access_key="skiff-local")


@pytest.fixture
def fleet(live: LiveCluster, remote_store: None, ec2: Any) -> Iterator[Fleet]:
    f = Fleet(live.url, live.home / "apiserver.crt", f"fleet-test-{uuid.uuid4().hex[:8]}", ec2=ec2,
              poll_seconds=0.5, node_options={"lease_seconds": 1.0, "pod_poll_seconds": 0.3,
                                              "status_seconds": 2.0})
    f.start()
    yield f
    f.stop()


def _lease_renewed_at(client: Any, name: str) -> str:
    lease = client.get(LEASES, "kube-node-lease", name)
    return str(((lease or {}).get("spec") or {}).get("renewTime") or "")


def test_instance_becomes_a_node_that_runs_pods_until_terminated(fleet: Fleet, ec2: Any) -> None:
    from chalicelib.controllers.client import Client

    client = Client()
    out = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="m5.large",
                            Placement={"AvailabilityZone": "us-east-1b"},
                            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                {"Key": TAG_CLUSTER, "Value": fleet.cluster_name}]}])
    instance_id = out["Instances"][0]["InstanceId"]
    provider_id = f"aws:///us-east-1b/{instance_id}"

    def registered() -> dict[str, Any] | None:
        for node in client.list_objects("nodes"):
            ready = [c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
            if (node.get("spec") or {}).get("providerID") == provider_id and ready and ready[0]["status"] == "True":
                return node
        return None

    node = wait_for("the instance's Node to register and be Ready", registered)
    name = node["metadata"]["name"]
    assert name == out["Instances"][0]["PrivateDnsName"]
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == name
    assert labels["topology.kubernetes.io/zone"] == "us-east-1b"
    assert labels["node.kubernetes.io/instance-type"] == "m5.large"
    assert node["status"]["capacity"]["cpu"] == "2"
    assert node["status"]["allocatable"]["pods"] == "110"
    assert node["status"]["allocatable"]["cpu"].endswith("m")  # 2 vCPUs minus the system's reserve
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.0-skiff-hollow"

    first = wait_for("the Lease", lambda: _lease_renewed_at(client, name))
    wait_for("the Lease to be renewed", lambda: _lease_renewed_at(client, name) != first, timeout=10)

    ns = f"fleet-{uuid.uuid4().hex[:6]}"
    client.create("namespaces", None, {"metadata": {"name": ns}})
    client.create("pods", ns, {"metadata": {"name": "web"}, "spec": {
        "nodeSelector": {"kubernetes.io/hostname": name},
        "containers": [{"name": "main", "image": "busybox", "resources": {"requests": {"cpu": "100m"}}}]}})

    def running_ready() -> dict[str, Any] | None:
        pod = client.get("pods", ns, "web")
        status = (pod or {}).get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        return pod if status.get("phase") == "Running" and ready else None

    pod = wait_for("the live scheduler to bind the pod and the hollow node to report it Running and Ready",
                   running_ready)
    assert pod["spec"]["nodeName"] == name
    assert pod["status"]["containerStatuses"][0]["ready"] is True
    assert pod["status"]["hostIP"] == out["Instances"][0]["PrivateIpAddress"]

    client.delete("pods", ns, "web")  # graceful: the node confirms it
    wait_for("the hollow node to confirm the graceful deletion", lambda: client.get("pods", ns, "web") is None,
             timeout=15)

    hollow = fleet.node_for(instance_id)
    assert hollow is not None and hollow.alive and hollow.stats.errors == 0, hollow and hollow.stats
    ec2.terminate_instances(InstanceIds=[instance_id])
    wait_for("the fleet to stop the hollow node", lambda: instance_id not in fleet.nodes, timeout=10)
    assert not hollow.alive
    last = _lease_renewed_at(client, name)
    time.sleep(3)  # three lease periods
    assert _lease_renewed_at(client, name) == last, "a stopped hollow node renews nothing"

    client.delete("nodes", None, name)  # no provisioner owns this instance: tidy up as it would
    client.delete("namespaces", None, ns)


def test_instances_of_other_clusters_and_stopped_ones_get_no_node(fleet: Fleet, ec2: Any) -> None:
    def launch(cluster: str) -> str:
        out = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.small",
                                TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                    {"Key": TAG_CLUSTER, "Value": cluster}]}])
        return str(out["Instances"][0]["InstanceId"])

    other = launch("some-other-cluster")
    stopped = launch(fleet.cluster_name)
    ec2.stop_instances(InstanceIds=[stopped])
    syncs = fleet.syncs
    wait_for("two fleet syncs", lambda: fleet.syncs >= syncs + 2, timeout=10)
    assert other not in fleet.nodes and stopped not in fleet.nodes
    ec2.terminate_instances(InstanceIds=[other, stopped])
