"""The fleet against in-process moto EC2: one hollow node per running instance of the cluster, with what
EC2 and the NodeClaim say; the provisioner's whole path (launch, registration, a pod Running) in one
process; terminated instances stop their node and lose its token.

Hollow nodes here are stepped by hand over the in-process API (in-process moto is not thread safe);
the threaded path over HTTPS is tests/integration/test_fleet.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from skiff.fleet import TAG_CLUSTER, Fleet, Instance, Placement, running_instances
from skiff.hollow import HollowNode
from tests.unit.test_hollow import InProcessTransport

Obj = dict[str, Any]


class SteppedHollow(HollowNode):
    """A hollow node without a thread: `start` registers, the test calls the duties."""

    def start(self) -> HollowNode:
        self.register()
        return self

    @property
    def alive(self) -> bool:
        return not self.stopped


@pytest.fixture
def ec2(cluster: None) -> Iterator[Any]:
    from chalicelib.provisioner import aws, catalogue

    client = boto3.client("ec2", region_name="us-east-1")
    client.create_launch_template(LaunchTemplateName="skiff-node", LaunchTemplateData={"ImageId": "ami-12c6146b"})
    aws.reset()
    catalogue.reset()
    yield client
    aws.reset()


@pytest.fixture
def fleet(ec2: Any) -> Fleet:
    from chalicelib.api import auth

    revoked: list[str] = []

    def revoke(token: str) -> None:
        revoked.append(token)
        auth.revoke_token(token)

    f = Fleet("https://unused.invalid", "/nonexistent/ca.crt", "skiff", ec2=ec2, revoke_token=revoke,
              node_factory=lambda config, token: SteppedHollow(config, InProcessTransport(token)))
    f.revoked = revoked  # type: ignore[attr-defined]
    return f


def run(ec2: Any, cluster: str = "skiff", count: int = 1, instance_type: str = "m5.large",
        zone: str = "us-east-1b", **tags: str) -> list[str]:
    all_tags = [{"Key": TAG_CLUSTER, "Value": cluster}] + [{"Key": k.replace("_", ":"), "Value": v}
                                                           for k, v in tags.items()]
    out = ec2.run_instances(ImageId="ami-12c6146b", MinCount=count, MaxCount=count, InstanceType=instance_type,
                            Placement={"AvailabilityZone": zone},
                            TagSpecifications=[{"ResourceType": "instance", "Tags": all_tags}])
    return [i["InstanceId"] for i in out["Instances"]]


def test_one_hollow_node_per_running_instance_of_this_cluster(ec2: Any, fleet: Fleet, admin: Any) -> None:
    [mine] = run(ec2)
    run(ec2, cluster="another-cluster")
    changes = fleet.sync_once()
    assert changes["started"] == [mine]
    node = fleet.node_for(mine)
    assert node is not None and node.registered
    raw = ec2.describe_instances(InstanceIds=[mine])["Reservations"][0]["Instances"][0]
    assert node.name == raw["PrivateDnsName"]
    code, obj = admin.get(f"/api/v1/nodes/{node.name}")
    assert code == 200
    assert obj["spec"]["providerID"] == f"aws:///us-east-1b/{mine}"
    labels = obj["metadata"]["labels"]
    assert labels["node.kubernetes.io/instance-type"] == "m5.large"
    assert labels["topology.kubernetes.io/zone"] == "us-east-1b"
    assert labels["topology.kubernetes.io/region"] == "us-east-1"
    # m5.large: 2 vCPUs, 8 GiB; allocatable as the provisioner's catalogue plans it
    assert obj["status"]["capacity"]["cpu"] == "2"
    assert obj["status"]["capacity"]["memory"] == f"{8 * 1024 * 1024}Ki"
    from chalicelib.provisioner import catalogue

    planned = catalogue.allocatable(catalogue.describe(ec2, ["m5.large"])["m5.large"], 110)
    assert obj["status"]["allocatable"]["cpu"] == f"{planned.cpu_milli}m"
    assert obj["status"]["allocatable"]["memory"] == f"{planned.memory_bytes // 1024}Ki"
    assert obj["status"]["allocatable"]["pods"] == "110"
    assert obj["status"]["addresses"][0] == {"type": "InternalIP", "address": raw["PrivateIpAddress"]}
    assert fleet.sync_once() == {"started": [], "stopped": []}, "the next sync changes nothing"


def test_terminated_instance_stops_its_node_and_revokes_its_token(ec2: Any, fleet: Fleet, admin: Any) -> None:
    from chalicelib.store.models import TokenRecord

    [a, b] = run(ec2, count=2)
    fleet.sync_once()
    assert set(fleet.nodes) == {a, b}
    node_a = fleet.node_for(a)
    assert node_a is not None
    tokens_before = TokenRecord.count()
    ec2.terminate_instances(InstanceIds=[a])
    ec2.stop_instances(InstanceIds=[b])
    changes = fleet.sync_once()
    assert sorted(changes["stopped"]) == sorted([a, b])
    assert fleet.nodes == {} and node_a.stopped
    assert len(fleet.revoked) == 2  # type: ignore[attr-defined]
    assert TokenRecord.count() == tokens_before - 2


def test_distinct_pod_networks_and_names(ec2: Any, fleet: Fleet) -> None:
    run(ec2, count=3)
    fleet.sync_once()
    cidrs = {n.config.pod_cidr for n in fleet.nodes.values()}
    names = {n.name for n in fleet.nodes.values()}
    assert len(cidrs) == 3 and len(names) == 3


class Unstarted(HollowNode):
    def start(self) -> HollowNode:
        return self

    @property
    def alive(self) -> bool:
        return not self.stopped


def test_a_taken_name_falls_back_to_the_instance_id(ec2: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    instances = [Instance("i-1", "m5.large", "us-east-1a", "ip-10-0-0-1.ec2.internal", "10.0.0.1"),
                 Instance("i-2", "m5.large", "us-east-1a", "ip-10-0-0-1.ec2.internal", "10.0.0.1"),
                 Instance("i-3", "m5.large", "us-east-1a", "", "10.0.0.3")]
    monkeypatch.setattr("skiff.fleet.running_instances", lambda ec2, name: instances)
    fleet = Fleet("https://unused.invalid", "/x", ec2=ec2, issue_token=lambda name: "t", revoke_token=lambda t: None,
                  placement=lambda i: Placement(),
                  node_factory=lambda config, token: Unstarted(config, InProcessTransport(token)))
    fleet.sync_once()
    assert {i: n.name for i, n in fleet.nodes.items()} == {"i-1": "ip-10-0-0-1.ec2.internal", "i-2": "i-2",
                                                           "i-3": "i-3"}


def test_a_placement_that_cannot_be_read_registers_with_ec2s_facts(ec2: Any) -> None:
    def broken(instance: Instance) -> Placement:
        raise KeyError("nodeclaims")

    fleet = Fleet("https://unused.invalid", "/x", ec2=ec2, issue_token=lambda name: "t", placement=broken,
                  node_factory=lambda config, token: Unstarted(config, InProcessTransport(token)))
    [instance_id] = run(ec2, skiff_nodepool="general")
    assert fleet.sync_once()["started"] == [instance_id]
    node = fleet.node_for(instance_id)
    assert node is not None and node.config.labels == {"skiff.io/nodepool": "general",
                                                        "skiff.io/capacity-type": "on-demand"}


def test_unknown_instance_type_is_skipped_and_said_once(ec2: Any, caplog: pytest.LogCaptureFixture) -> None:
    fleet = Fleet("https://unused.invalid", "/x", ec2=ec2, issue_token=lambda name: "t",
                  placement=lambda i: Placement(), shape=lambda i, pods: None)
    run(ec2)
    assert fleet.sync_once()["started"] == []
    fleet.sync_once()
    assert sum("not known" in r.message for r in caplog.records) == 1


def test_running_instances_pages(ec2: Any) -> None:
    run(ec2, count=7)
    assert len(running_instances(ec2, "skiff")) == 7


def test_the_provisioners_whole_path(ec2: Any, fleet: Fleet) -> None:
    """Pending pod -> NodeClaim -> run_instances -> hollow node registers with the claim's labels and
    taints -> claim Registered -> the scheduler binds the pod -> the hollow node reports it Running."""
    from chalicelib.controllers.client import Client
    from chalicelib.provisioner.reconcile import reconcile
    from chalicelib.scheduler.handler import schedule_pending

    api = Client()
    taint = {"key": "team", "value": "data", "effect": "NoSchedule"}
    api.create("nodepools", None, {
        "apiVersion": "skiff.io/v1", "kind": "NodePool", "metadata": {"name": "data"},
        "spec": {"instanceTypes": ["m5.large"], "zones": ["us-east-1c"], "launchTemplate": {"name": "skiff-node"},
                 "labels": {"team": "data"}, "taints": [taint]}})
    api.create("pods", "default", {"metadata": {"name": "job"}, "spec": {
        "tolerations": [{"key": "team", "operator": "Exists"}], "nodeSelector": {"team": "data"},
        "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "500m"}}}]}})
    assert schedule_pending(api).unschedulable, "no node yet"
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    reconcile(api, now=now + timedelta(seconds=15), ec2=ec2)  # past the batching window
    [claim] = api.list_objects("nodeclaims")
    assert claim["status"]["phase"] == "Launched"
    [started] = fleet.sync_once()["started"]
    node = fleet.node_for(started)
    assert node is not None and node.config.provider_id == claim["status"]["providerID"]
    registered = api.get("nodes", None, node.name)
    assert registered is not None
    assert registered["metadata"]["labels"]["team"] == "data"
    assert registered["metadata"]["labels"]["skiff.io/nodepool"] == "data"
    assert registered["spec"]["taints"] == [taint]
    reconcile(api, now=now + timedelta(seconds=20), ec2=ec2)
    [claim] = api.list_objects("nodeclaims")
    assert claim["status"]["phase"] == "Registered" and claim["status"]["nodeName"] == node.name
    assert schedule_pending(api).bound == {"default/job": node.name}
    node.sync_pods()
    pod = api.get("pods", "default", "job")
    assert pod is not None and pod["status"]["phase"] == "Running"


class _BrokenEC2:
    meta = None

    def describe_instances(self, **kwargs: Any) -> Any:
        raise ConnectionError("moto is down")


def test_ec2_trouble_never_kills_the_fleet() -> None:
    import time

    fleet = Fleet("https://unused.invalid", "/x", ec2=_BrokenEC2(), poll_seconds=0.05, issue_token=lambda n: "t",
                  placement=lambda i: Placement(), shape=lambda i, pods: None).start()
    try:
        time.sleep(0.3)
        assert fleet.sync_errors >= 2 and fleet._thread is not None and fleet._thread.is_alive()
    finally:
        fleet.stop()
