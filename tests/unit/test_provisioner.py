"""The provisioner against in-process moto EC2 and the store: launch, replay, limits, capacity errors,
registration and its timeout, scale-down, orphans.

Each test states pending pods (PodScheduled=False, Unschedulable, as the scheduler leaves them) and
NodePools, runs `reconcile` at chosen times, and checks what EC2 holds afterwards.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.controllers.client import Client
from chalicelib.provisioner import aws
from chalicelib.provisioner.reconcile import reconcile

Obj = dict[str, Any]
T0 = datetime.now(UTC).replace(microsecond=0)
LAUNCH_TEMPLATE = "skiff-node"


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def ec2(cluster: None) -> Iterator[Any]:
    client = boto3.client("ec2", region_name="us-east-1")
    client.create_launch_template(LaunchTemplateName=LAUNCH_TEMPLATE, LaunchTemplateData={"ImageId": "ami-12c6146b"})
    aws.reset()
    yield client
    aws.reset()


@pytest.fixture
def api() -> Client:
    return Client()


def make_pool(api: Client, name: str = "default", *, types: tuple[str, ...] = ("c5.large", "m5.large", "m5.xlarge"),
              zones: tuple[str, ...] = ("us-east-1a",), **spec: Any) -> Obj:
    body = {"apiVersion": "skiff.io/v1", "kind": "NodePool", "metadata": {"name": name},
            "spec": {"instanceTypes": list(types), "zones": list(zones),
                     "launchTemplate": {"name": LAUNCH_TEMPLATE}, **spec}}
    return api.create("nodepools", None, body)


def pending_pod(api: Client, name: str, *, cpu: str = "500m", memory: str = "256Mi",
                since: datetime = T0 - timedelta(seconds=5), **spec: Any) -> Obj:
    pod = api.create("pods", "default", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox",
                                 "resources": {"requests": {"cpu": cpu, "memory": memory}}}], **spec}})
    pod["status"] = {**pod["status"], "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/0 nodes are available", "lastTransitionTime": stamp(since)}]}
    return api.update_status("pods", pod)


def instances(ec2: Any, *, live: bool = True) -> list[Obj]:
    out = []
    for reservation in ec2.describe_instances()["Reservations"]:
        for inst in reservation["Instances"]:
            if not live or inst["State"]["Name"] not in ("shutting-down", "terminated"):
                out.append(inst)
    return sorted(out, key=lambda i: (i["InstanceType"], i["Placement"]["AvailabilityZone"], i["InstanceId"]))


def tags(inst: Obj) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in inst.get("Tags") or []}


def claims(api: Client) -> list[Obj]:
    return sorted(api.list_objects("nodeclaims"), key=lambda c: c["metadata"]["name"])


def register(api: Client, claim: Obj, *, taints: list[Obj] | None = None) -> Obj:
    """What the node agent does: a Node whose providerID names the claim's instance."""
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": claim["status"]["instanceID"]},
            "spec": {"providerID": claim["status"]["providerID"], **({"taints": taints} if taints else {})},
            "status": {"capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"}}}
    return api.create("nodes", None, node)


def bind(api: Client, name: str, node: str) -> None:
    pod = api.get("pods", "default", name)
    assert pod is not None
    api.bind("default", name, node)
    pod = api.get("pods", "default", name)
    assert pod is not None
    pod["status"] = {**pod["status"], "phase": "Running", "conditions": [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp(T0)}]}
    api.update_status("pods", pod)


# --- launching ---


def test_pending_pods_launch_the_cheapest_set_of_instances(ec2: Any, api: Client) -> None:
    make_pool(api)
    for i in range(4):  # 4 x 900m: one m5.xlarge ($0.192) holds all; two c5.large ($0.17) are cheaper
        pending_pod(api, f"web-{i}", cpu="900m")
    reconcile(api, now=T0, ec2=ec2)
    launched = instances(ec2)
    assert [(i["InstanceType"], i["Placement"]["AvailabilityZone"]) for i in launched] == \
        [("c5.large", "us-east-1a")] * 2
    by_name = {c["metadata"]["name"]: c for c in claims(api)}
    assert len(by_name) == 2
    for inst in launched:
        t = tags(inst)
        assert t["skiff:cluster"] == "skiff" and t["skiff:nodepool"] == "default"
        claim = by_name[t["skiff:nodeclaim"]]
        assert inst["ClientToken"] == claim["metadata"]["uid"]
        assert claim["status"]["phase"] == "Launched"
        assert claim["status"]["providerID"] == f"aws:///us-east-1a/{inst['InstanceId']}"
        assert len(claim["spec"]["podUIDs"]) == 2
        assert claim["spec"]["labels"]["node.kubernetes.io/instance-type"] == "c5.large"
        assert claim["spec"]["labels"]["skiff.io/nodepool"] == "default"
    pool = api.get("nodepools", None, "default")
    assert pool is not None and pool["status"]["nodes"] == 2 and pool["status"]["cpu"] == "4"


def test_big_pods_each_get_the_cheapest_node_that_holds_them(ec2: Any, api: Client) -> None:
    make_pool(api)
    for i in range(3):  # 1.5 cpu each: 3 x c5.large ($0.255) beats m5.xlarge + c5.large ($0.277)
        pending_pod(api, f"big-{i}", cpu="1500m", memory="1Gi")
    reconcile(api, now=T0, ec2=ec2)
    assert [i["InstanceType"] for i in instances(ec2)] == ["c5.large"] * 3


def test_cluster_name_and_spot_come_from_settings_and_pool(ec2: Any, api: Client,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKIFF_CLUSTER_NAME", "blue")
    make_pool(api, capacityType="spot")
    pending_pod(api, "web")
    reconcile(api, now=T0, ec2=ec2)
    [inst] = instances(ec2)
    assert tags(inst)["skiff:cluster"] == "blue"
    assert claims(api)[0]["spec"]["capacityType"] == "spot"


def test_a_replayed_pass_launches_nothing_more(ec2: Any, api: Client) -> None:
    make_pool(api)
    for i in range(3):
        pending_pod(api, f"web-{i}", cpu="1500m")
    reconcile(api, now=T0, ec2=ec2)
    first = [(c["metadata"]["name"], c["metadata"]["uid"]) for c in claims(api)]
    for _ in range(2):
        reconcile(api, now=T0, ec2=ec2)
        reconcile(api, now=T0 + timedelta(seconds=20), ec2=ec2)
    assert [(c["metadata"]["name"], c["metadata"]["uid"]) for c in claims(api)] == first
    launched = instances(ec2, live=False)
    assert len(launched) == 3
    assert sorted(i["ClientToken"] for i in launched) == sorted(uid for _, uid in first)


def test_a_launch_whose_status_write_was_lost_is_found_not_repeated(ec2: Any, api: Client) -> None:
    make_pool(api)
    pending_pod(api, "web")
    reconcile(api, now=T0, ec2=ec2)
    [claim] = claims(api)
    instance_id = claim["status"]["instanceID"]
    claim["status"] = {"phase": "Pending"}  # as if the handler died between run_instances and the status write
    api.update_status("nodeclaims", claim)
    reconcile(api, now=T0, ec2=ec2)
    assert [i["InstanceId"] for i in instances(ec2, live=False)] == [instance_id]
    assert claims(api)[0]["status"]["instanceID"] == instance_id


def test_a_pass_that_crashed_after_writing_a_claim_is_finished_by_the_next(ec2: Any, api: Client) -> None:
    make_pool(api)
    for i in range(3):
        pending_pod(api, f"web-{i}", cpu="1500m")
    with mock.patch.object(ec2, "run_instances", side_effect=RuntimeError("handler killed")), \
            pytest.raises(RuntimeError):
        reconcile(api, now=T0, ec2=ec2)
    assert [c["status"]["phase"] for c in claims(api)] == ["Pending"]  # claim written first, then the crash
    reconcile(api, now=T0, ec2=ec2)
    assert len(instances(ec2, live=False)) == 3
    assert sorted(len(c["spec"]["podUIDs"]) for c in claims(api)) == [1, 1, 1]


def test_pods_covered_by_a_claim_in_flight_cause_nothing_new(ec2: Any, api: Client) -> None:
    make_pool(api)
    pod = pending_pod(api, "web")
    api.create("nodeclaims", None, {
        "apiVersion": "skiff.io/v1", "kind": "NodeClaim", "metadata": {"name": "by-hand"},
        "spec": {"nodePool": "default", "instanceType": "m5.large", "zone": "us-east-1a",
                 "capacityType": "on-demand", "podUIDs": [pod["metadata"]["uid"]]}})
    reconcile(api, now=T0, ec2=ec2)
    [inst] = instances(ec2)
    assert inst["InstanceType"] == "m5.large" and tags(inst)["skiff:nodeclaim"] == "by-hand"
    assert [c["metadata"]["name"] for c in claims(api)] == ["by-hand"]


def test_later_pods_fill_a_claim_in_flight_before_a_new_node(ec2: Any, api: Client) -> None:
    make_pool(api, types=("m5.xlarge",))
    pending_pod(api, "first", cpu="1")
    reconcile(api, now=T0, ec2=ec2)
    later = pending_pod(api, "later", cpu="1", since=T0 + timedelta(seconds=30))
    reconcile(api, now=T0 + timedelta(seconds=40), ec2=ec2)
    [claim] = claims(api)
    assert later["metadata"]["uid"] in claim["spec"]["podUIDs"]
    assert len(instances(ec2)) == 1


def test_a_batch_waits_for_pods_to_stop_arriving(ec2: Any, api: Client) -> None:
    make_pool(api)
    pending_pod(api, "web", since=T0)
    due = reconcile(api, now=T0 + timedelta(milliseconds=500), ec2=ec2)
    assert instances(ec2) == [] and due is not None and 0 < due <= 2
    reconcile(api, now=T0 + timedelta(seconds=2), ec2=ec2)
    assert len(instances(ec2)) == 1


def test_pods_no_pool_can_take_launch_nothing(ec2: Any, api: Client) -> None:
    make_pool(api, taints=[{"key": "team", "value": "data", "effect": "NoSchedule"}])
    pending_pod(api, "untolerating")
    pending_pod(api, "wants-spot", nodeSelector={"skiff.io/capacity-type": "spot"},
                tolerations=[{"key": "team", "operator": "Exists"}])
    pending_pod(api, "too-big", cpu="16", tolerations=[{"key": "team", "operator": "Exists"}])
    reconcile(api, now=T0, ec2=ec2)
    assert instances(ec2) == [] and claims(api) == []


def test_selectors_on_well_known_labels_and_tolerated_taints_are_honoured(ec2: Any, api: Client) -> None:
    taint = {"key": "team", "value": "data", "effect": "NoSchedule"}
    make_pool(api, zones=("us-east-1a", "us-east-1b"), taints=[taint], labels={"team": "data"})
    tolerate = [{"key": "team", "operator": "Equal", "value": "data", "effect": "NoSchedule"}]
    pending_pod(api, "typed", tolerations=tolerate, nodeSelector={"node.kubernetes.io/instance-type": "m5.large"})
    pending_pod(api, "zoned", tolerations=tolerate, nodeSelector={"topology.kubernetes.io/zone": "us-east-1b",
                                                                  "team": "data"})
    pending_pod(api, "pooled", tolerations=tolerate, affinity={"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "skiff.io/nodepool", "operator": "In", "values": ["default"]}]}]}}})
    reconcile(api, now=T0, ec2=ec2)
    placed = {(c["spec"]["instanceType"], c["spec"]["zone"]): len(c["spec"]["podUIDs"]) for c in claims(api)}
    # "typed" needs an m5.large and "zoned" zone b: one m5.large in zone b holds all three, cheaper than two.
    assert placed == {("m5.large", "us-east-1b"): 3}
    for claim in claims(api):
        assert claim["spec"]["taints"] == [taint] and claim["spec"]["labels"]["team"] == "data"


# --- limits ---


def test_max_nodes_limits_the_pool(ec2: Any, api: Client) -> None:
    make_pool(api, types=("c5.large",), limits={"maxNodes": 2})
    for i in range(4):
        pending_pod(api, f"web-{i}", cpu="1500m")
    reconcile(api, now=T0, ec2=ec2)
    reconcile(api, now=T0 + timedelta(seconds=30), ec2=ec2)
    assert len(instances(ec2)) == 2


def test_cpu_limit_limits_the_pool(ec2: Any, api: Client) -> None:
    make_pool(api, types=("c5.large", "m5.xlarge"), limits={"cpu": "5"})
    for i in range(4):
        pending_pod(api, f"web-{i}", cpu="1500m")
    reconcile(api, now=T0, ec2=ec2)
    launched = instances(ec2)
    assert sum({"c5.large": 2, "m5.xlarge": 4}[i["InstanceType"]] for i in launched) <= 5
    assert len(launched) == 2
    pool = api.get("nodepools", None, "default")
    assert pool is not None and pool["status"]["cpu"] == "4"


# --- capacity errors ---


def _ice_for(ec2: Any, instance_type: str, zone: str) -> Any:
    real = ec2.run_instances

    def run_instances(**kwargs: Any) -> Any:
        if kwargs["InstanceType"] == instance_type and kwargs["Placement"]["AvailabilityZone"] == zone:
            raise ClientError({"Error": {"Code": "InsufficientInstanceCapacity",
                                         "Message": "We currently do not have sufficient capacity"}}, "RunInstances")
        return real(**kwargs)
    return run_instances


def test_insufficient_capacity_sets_the_offering_aside_and_plans_again(ec2: Any, api: Client) -> None:
    make_pool(api, zones=("us-east-1a", "us-east-1b"))
    pending_pod(api, "web")
    with mock.patch.object(ec2, "run_instances", side_effect=_ice_for(ec2, "c5.large", "us-east-1a")):
        reconcile(api, now=T0, ec2=ec2)
    [inst] = instances(ec2)
    assert (inst["InstanceType"], inst["Placement"]["AvailabilityZone"]) == ("c5.large", "us-east-1b")
    pool = api.get("nodepools", None, "default")
    assert pool is not None
    assert pool["status"]["unavailableOfferings"] == [
        {"instanceType": "c5.large", "zone": "us-east-1a", "capacityType": "on-demand",
         "until": stamp(T0 + timedelta(seconds=180))}]
    assert len(claims(api)) == 1
    reconcile(api, now=T0 + timedelta(seconds=181), ec2=ec2)
    pool = api.get("nodepools", None, "default")
    assert pool is not None and "unavailableOfferings" not in pool["status"]


def test_other_launch_errors_fail_the_claim_and_retry_after_a_back_off(ec2: Any, api: Client) -> None:
    make_pool(api)
    api.patch("nodepools", None, "default", {"spec": {"launchTemplate": {"name": "missing-template"}}})
    pending_pod(api, "web")
    reconcile(api, now=T0, ec2=ec2)
    [claim] = claims(api)
    assert claim["status"]["phase"] == "Failed" and "NotFound" in claim["status"]["message"]
    pool = api.get("nodepools", None, "default")
    assert pool is not None and pool["status"]["conditions"][0]["status"] == "False"
    reconcile(api, now=T0 + timedelta(seconds=30), ec2=ec2)
    assert [c["metadata"]["uid"] for c in claims(api)] == [claim["metadata"]["uid"]]  # backing off
    api.patch("nodepools", None, "default", {"spec": {"launchTemplate": {"name": LAUNCH_TEMPLATE}}})
    reconcile(api, now=T0 + timedelta(seconds=61), ec2=ec2)
    [retried] = claims(api)
    assert retried["metadata"]["uid"] != claim["metadata"]["uid"] and retried["status"]["phase"] == "Launched"
    assert len(instances(ec2)) == 1


# --- registration ---


def test_a_registered_node_gets_the_claims_labels_and_taints(ec2: Any, api: Client) -> None:
    taint = {"key": "team", "value": "data", "effect": "NoSchedule"}
    make_pool(api, taints=[taint], labels={"team": "data"})
    pending_pod(api, "web", tolerations=[{"key": "team", "operator": "Exists"}])
    reconcile(api, now=T0, ec2=ec2)
    [claim] = claims(api)
    node = register(api, claim, taints=[{"key": "skiff.io/unregistered", "effect": "NoExecute"}])
    reconcile(api, now=T0 + timedelta(seconds=10), ec2=ec2)
    [claim] = claims(api)
    assert claim["status"]["phase"] == "Registered" and claim["status"]["nodeName"] == node["metadata"]["name"]
    fresh = api.get("nodes", None, node["metadata"]["name"])
    assert fresh is not None
    labels = fresh["metadata"]["labels"]
    assert labels["team"] == "data" and labels["node.kubernetes.io/instance-type"] == "c5.large"
    assert labels["topology.kubernetes.io/zone"] == "us-east-1a" and labels["skiff.io/nodepool"] == "default"
    assert [(t["key"], t["effect"]) for t in fresh["spec"]["taints"]] == [("team", "NoSchedule")]


def test_an_instance_that_never_registers_is_terminated_and_its_pods_planned_again(ec2: Any, api: Client) -> None:
    make_pool(api, registrationTimeoutSeconds=600)
    pending_pod(api, "web")
    reconcile(api, now=T0, ec2=ec2)
    [first] = claims(api)
    due = reconcile(api, now=T0 + timedelta(seconds=599), ec2=ec2)
    assert due is not None and due <= 1
    assert [c["metadata"]["uid"] for c in claims(api)] == [first["metadata"]["uid"]]
    reconcile(api, now=T0 + timedelta(seconds=601), ec2=ec2)
    states = {i["InstanceId"]: i["State"]["Name"] for i in instances(ec2, live=False)}
    assert states[first["status"]["instanceID"]] in ("shutting-down", "terminated")
    [second] = claims(api)  # the pod got a new claim and a new instance
    assert second["metadata"]["uid"] != first["metadata"]["uid"] and second["status"]["phase"] == "Launched"
    assert states[second["status"]["instanceID"]] in ("pending", "running")


def test_deleting_a_registered_node_gives_its_instance_back(ec2: Any, api: Client) -> None:
    make_pool(api)
    pending_pod(api, "web")
    reconcile(api, now=T0, ec2=ec2)
    [claim] = claims(api)
    node = register(api, claim)
    reconcile(api, now=T0 + timedelta(seconds=5), ec2=ec2)
    bind(api, "web", node["metadata"]["name"])
    api.delete("nodes", None, node["metadata"]["name"])
    reconcile(api, now=T0 + timedelta(seconds=10), ec2=ec2)
    assert instances(ec2) == [] and claims(api) == []


def test_nothing_to_do_asks_ec2_nothing(cluster: None, api: Client) -> None:
    ec2 = mock.Mock()
    pending_pod(api, "web")
    assert reconcile(api, now=T0, ec2=ec2) is None
    assert ec2.mock_calls == []


def test_deleting_a_claim_terminates_its_instance_and_node(ec2: Any, api: Client) -> None:
    make_pool(api)
    pending_pod(api, "web")
    reconcile(api, now=T0, ec2=ec2)
    [claim] = claims(api)
    node = register(api, claim)
    api.delete("nodeclaims", None, claim["metadata"]["name"])
    reconcile(api, now=T0 + timedelta(seconds=5), ec2=ec2)
    assert claim["status"]["instanceID"] not in [i["InstanceId"] for i in instances(ec2)]
    assert api.get("nodes", None, node["metadata"]["name"]) is None
    # The pod is still pending, so it is planned again: same node, same name, a new claim and instance.
    [again] = claims(api)
    assert again["metadata"]["uid"] != claim["metadata"]["uid"]
    assert [i["ClientToken"] for i in instances(ec2)] == [again["metadata"]["uid"]]


def test_instances_no_claim_owns_are_terminated(ec2: Any, api: Client) -> None:
    make_pool(api)
    out = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": LAUNCH_TEMPLATE},
                            InstanceType="c5.large", TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                {"Key": "skiff:cluster", "Value": "skiff"}, {"Key": "skiff:nodeclaim", "Value": "x"}]}])
    other = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": LAUNCH_TEMPLATE},
                              InstanceType="c5.large")
    reconcile(api, now=datetime.now(UTC) + timedelta(seconds=10), ec2=ec2)
    assert len(instances(ec2)) == 2  # too young to be sure it is an orphan
    reconcile(api, now=datetime.now(UTC) + timedelta(seconds=200), ec2=ec2)
    assert [i["InstanceId"] for i in instances(ec2)] == [other["Instances"][0]["InstanceId"]]
    assert out["Instances"][0]["InstanceId"] not in [i["InstanceId"] for i in instances(ec2)]


# --- scale-down ---


def test_idle_empty_nodes_are_removed_and_busy_ones_kept(ec2: Any, api: Client) -> None:
    make_pool(api, types=("c5.large",), disruption={"emptyAfterSeconds": 300})
    pending_pod(api, "busy", cpu="1500m")
    pending_pod(api, "gone", cpu="1500m")
    reconcile(api, now=T0, ec2=ec2)
    nodes = {}
    for claim in claims(api):
        nodes[claim["metadata"]["name"]] = register(api, claim)["metadata"]["name"]
    [busy_claim, idle_claim] = claims(api)
    bind(api, "busy", nodes[busy_claim["metadata"]["name"]])
    api.delete("pods", "default", "gone", grace_seconds=0)
    t1 = T0 + timedelta(seconds=10)
    reconcile(api, now=t1, ec2=ec2)  # registers both; the idle clock of the empty one starts
    idle = api.get("nodeclaims", None, idle_claim["metadata"]["name"])
    assert idle is not None and idle["status"]["emptySince"] == stamp(t1)
    due = reconcile(api, now=t1 + timedelta(seconds=320), ec2=ec2)
    assert len(instances(ec2)) == 2 and due is not None and due <= 10
    reconcile(api, now=t1 + timedelta(seconds=331), ec2=ec2)
    [kept] = instances(ec2)
    assert kept["InstanceId"] == busy_claim["status"]["instanceID"]
    assert api.get("nodes", None, nodes[idle_claim["metadata"]["name"]]) is None
    assert api.get("nodes", None, nodes[busy_claim["metadata"]["name"]]) is not None
    assert [c["metadata"]["name"] for c in claims(api)] == [busy_claim["metadata"]["name"]]
    pool = api.get("nodepools", None, "default")
    assert pool is not None and pool["status"]["nodes"] == 1


def test_finished_pods_do_not_keep_a_node(ec2: Any, api: Client) -> None:
    make_pool(api, types=("c5.large",), disruption={"emptyAfterSeconds": 0})
    pending_pod(api, "job")
    reconcile(api, now=T0, ec2=ec2)
    [claim] = claims(api)
    node = register(api, claim)["metadata"]["name"]
    bind(api, "job", node)
    pod = api.get("pods", "default", "job")
    assert pod is not None
    api.update_status("pods", {**pod, "status": {**pod["status"], "phase": "Succeeded"}})
    reconcile(api, now=T0 + timedelta(seconds=5), ec2=ec2)
    assert len(instances(ec2)) == 1  # registration grace first
    reconcile(api, now=T0 + timedelta(seconds=36), ec2=ec2)
    assert instances(ec2) == [] and claims(api) == []


def test_a_pod_bound_while_cordoning_keeps_the_node(ec2: Any, api: Client) -> None:
    make_pool(api, types=("c5.large",), disruption={"emptyAfterSeconds": 0})
    pending_pod(api, "web")
    reconcile(api, now=T0, ec2=ec2)
    [claim] = claims(api)
    node = register(api, claim)["metadata"]["name"]
    reconcile(api, now=T0 + timedelta(seconds=1), ec2=ec2)
    real_patch = api.patch

    def patch_then_bind(plural: str, namespace: str | None, name: str, body: Any, **kw: Any) -> Obj:
        out = real_patch(plural, namespace, name, body, **kw)
        if plural == "nodes" and (body.get("spec") or {}).get("unschedulable"):
            bind(api, "web", node)  # the scheduler got there first
        return out

    with mock.patch.object(api, "patch", side_effect=patch_then_bind):
        reconcile(api, now=T0 + timedelta(seconds=40), ec2=ec2)
    assert len(instances(ec2)) == 1
    fresh = api.get("nodes", None, node)
    assert fresh is not None and not fresh["spec"].get("unschedulable")


def test_a_deleted_pool_takes_its_nodes_with_it(ec2: Any, api: Client) -> None:
    make_pool(api)
    pending_pod(api, "web")
    reconcile(api, now=T0, ec2=ec2)
    api.delete("nodepools", None, "default")
    reconcile(api, now=T0 + timedelta(seconds=5), ec2=ec2)
    assert instances(ec2) == [] and claims(api) == []


def test_status_of_a_pool_is_written_once_and_then_left_alone(ec2: Any, api: Client) -> None:
    make_pool(api)
    pending_pod(api, "web")
    reconcile(api, now=T0, ec2=ec2)
    before = copy.deepcopy(api.get("nodepools", None, "default"))
    api.actions.clear()
    reconcile(api, now=T0 + timedelta(seconds=1), ec2=ec2)
    assert api.get("nodepools", None, "default") == before
    assert [a for a in api.action_strings() if not a.startswith("create events")] == []
    assert before is not None and before["status"]["conditions"][0]["type"] == "Ready"


def test_a_settled_run_waits_for_the_batch_to_close(ec2: Any, api: Client) -> None:
    from chalicelib.provisioner.reconcile import reconcile_settled

    make_pool(api)
    pending_pod(api, "web", since=T0)
    clock = [T0 + timedelta(milliseconds=300)]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += timedelta(seconds=seconds)

    reconcile_settled(api, ec2=ec2, clock=lambda: clock[0], sleep=sleep)
    assert len(instances(ec2)) == 1 and 0 < sum(slept) <= 2
