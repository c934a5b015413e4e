"""SKIFF_NODE_SUBNET_IDS: nodes launch into the configured subnets (so into the VPC of the launch
template's security group), the one with most free addresses in the claim's zone, and only zones that
have one are offered. Without the setting, EC2 picks the zone's default subnet as before.

The world: in-process moto with a VPC of our own beside moto's default one, and a launch template whose
security group is in our VPC (as infra/ makes it with skiff:createVpc or skiff:vpcId).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.controllers.client import Client
from chalicelib.provisioner import aws
from chalicelib.provisioner.reconcile import reconcile
from tests.unit.test_provisioner import LAUNCH_TEMPLATE, T0, claims, instances, make_pool, pending_pod


@dataclass(frozen=True)
class Network:
    ec2: Any
    vpc: str
    group: str
    subnets: dict[str, str]  # our name -> subnet id


@pytest.fixture
def net(cluster: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Network]:
    """Our VPC: in us-east-1a a /24 and a /20, in us-east-1b a /24; nothing in the other zones."""
    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = {name: ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]
               for name, cidr, zone in (("a-small", "10.42.0.0/24", "us-east-1a"),
                                        ("a-big", "10.42.16.0/20", "us-east-1a"),
                                        ("b", "10.42.32.0/24", "us-east-1b"))}
    group = ec2.create_security_group(GroupName="skiff-nodes", Description="nodes", VpcId=vpc)["GroupId"]
    ec2.create_launch_template(LaunchTemplateName=LAUNCH_TEMPLATE,
                               LaunchTemplateData={"ImageId": "ami-12c6146b", "SecurityGroupIds": [group]})
    monkeypatch.setenv("SKIFF_NODE_SUBNET_IDS", ",".join(subnets.values()))
    aws.reset()
    yield Network(ec2=ec2, vpc=vpc, group=group, subnets=subnets)
    aws.reset()


@pytest.fixture
def api() -> Client:
    return Client()


def placed(net: Network) -> list[tuple[str, str]]:
    """(zone, our name of the subnet) of each live instance."""
    names = {v: k for k, v in net.subnets.items()}
    return [(i["Placement"]["AvailabilityZone"], names.get(i["SubnetId"], i["SubnetId"])) for i in instances(net.ec2)]


def test_nodes_launch_into_the_zones_configured_subnet_with_most_free_addresses(net: Network, api: Client) -> None:
    make_pool(api, zones=("us-east-1a",))
    for i in range(4):
        pending_pod(api, f"web-{i}", cpu="900m")
    reconcile(api, now=T0, ec2=net.ec2)
    assert placed(net) == [("us-east-1a", "a-big")] * 2
    for inst in instances(net.ec2):
        assert inst["VpcId"] == net.vpc
        assert [g["GroupId"] for g in inst["SecurityGroups"]] == [net.group]


def test_launches_spread_over_subnets_as_their_free_addresses_go(net: Network, api: Client,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    second = net.ec2.create_subnet(VpcId=net.vpc, CidrBlock="10.42.1.0/24", AvailabilityZone="us-east-1a")
    pair = sorted([net.subnets["a-small"], second["Subnet"]["SubnetId"]])
    monkeypatch.setenv("SKIFF_NODE_SUBNET_IDS", ",".join(pair))  # two /24s: as free as each other
    make_pool(api, zones=("us-east-1a",))
    for i in range(3):
        pending_pod(api, f"big-{i}", cpu="1500m")
    reconcile(api, now=T0, ec2=net.ec2)
    subnets = [i["SubnetId"] for i in sorted(instances(net.ec2), key=lambda i: i["LaunchTime"])]
    assert len(subnets) == 3 and set(subnets) == set(pair)  # not three in the first one


def test_only_zones_with_a_configured_subnet_are_offered(net: Network, api: Client,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKIFF_NODE_SUBNET_IDS", net.subnets["b"])
    make_pool(api)  # every zone of the region
    api.patch("nodepools", None, "default", {"spec": {"zones": None}})
    for i in range(3):
        pending_pod(api, f"big-{i}", cpu="1500m")
    reconcile(api, now=T0, ec2=net.ec2)
    assert placed(net) == [("us-east-1b", "b")] * 3


def test_a_pool_whose_zones_have_no_configured_subnet_launches_nothing(net: Network, api: Client) -> None:
    make_pool(api, zones=("us-east-1c", "us-east-1d"))
    pending_pod(api, "web")
    reconcile(api, now=T0, ec2=net.ec2)
    assert instances(net.ec2) == [] and claims(api) == []


def test_a_claim_in_a_zone_without_a_configured_subnet_is_planned_again_where_there_is_one(
        net: Network, api: Client) -> None:
    """A claim made before the subnets changed: no launch in the default subnet, the pods go elsewhere."""
    make_pool(api, zones=("us-east-1a", "us-east-1c"))
    pod = pending_pod(api, "web")
    api.create("nodeclaims", None, {
        "apiVersion": "skiff.io/v1", "kind": "NodeClaim", "metadata": {"name": "old"},
        "spec": {"nodePool": "default", "instanceType": "c5.large", "zone": "us-east-1c",
                 "capacityType": "on-demand", "podUIDs": [pod["metadata"]["uid"]]}})
    reconcile(api, now=T0, ec2=net.ec2)
    assert placed(net) == [("us-east-1a", "a-big")]
    pool = api.get("nodepools", None, "default")
    assert pool is not None and [e["zone"] for e in pool["status"]["unavailableOfferings"]] == ["us-east-1c"]
    assert [c["spec"]["zone"] for c in claims(api)] == ["us-east-1a"]


def test_a_subnet_that_does_not_exist_is_an_error_that_names_it(net: Network, api: Client,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKIFF_NODE_SUBNET_IDS", f"{net.subnets['b']},subnet-0missing")
    make_pool(api)
    pending_pod(api, "web")
    with pytest.raises(aws.SubnetsMissing, match="us-east-1 does not have: subnet-0missing$"):
        reconcile(api, now=T0, ec2=net.ec2)
    assert instances(net.ec2) == []


def test_free_addresses_are_described_again_after_a_while(net: Network, api: Client,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    real = net.ec2.describe_subnets
    monkeypatch.setattr(net.ec2, "describe_subnets", lambda **kw: calls.append(kw) or real(**kw))
    clock = [1000.0]
    monkeypatch.setattr(aws.time, "monotonic", lambda: clock[0])
    make_pool(api, zones=("us-east-1a",))
    pending_pod(api, "first")
    reconcile(api, now=T0, ec2=net.ec2)
    pending_pod(api, "second", cpu="1500m", since=T0 + timedelta(seconds=30))
    reconcile(api, now=T0 + timedelta(seconds=40), ec2=net.ec2)
    assert len(calls) == 1  # cached within the minute
    clock[0] += aws.SUBNET_CACHE_SECONDS + 1
    pending_pod(api, "third", cpu="1500m", since=T0 + timedelta(seconds=90))
    reconcile(api, now=T0 + timedelta(seconds=100), ec2=net.ec2)
    assert len(calls) == 2 and len(instances(net.ec2)) == 3


def test_without_the_setting_nodes_go_to_the_zones_default_subnet(net: Network, api: Client,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SKIFF_NODE_SUBNET_IDS")
    make_pool(api, zones=("us-east-1c",))
    pending_pod(api, "web")
    reconcile(api, now=T0, ec2=net.ec2)
    [inst] = instances(net.ec2)
    default = net.ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]},
                                                {"Name": "availability-zone", "Values": ["us-east-1c"]}])
    assert inst["SubnetId"] == default["Subnets"][0]["SubnetId"] and inst["VpcId"] != net.vpc


def with_client_tokens(ec2: Any) -> Any:
    """EC2's ClientToken rule, which moto does not keep: the same token with the same parameters gets the
    first call's answer; with other parameters, IdempotentParameterMismatch."""
    real, seen = ec2.run_instances, {}

    def run_instances(**kwargs: Any) -> Any:
        token = kwargs["ClientToken"]
        if token in seen:
            first_kwargs, answer = seen[token]
            if first_kwargs != kwargs:
                raise ClientError({"Error": {"Code": "IdempotentParameterMismatch", "Message": "other parameters"}},
                                  "RunInstances")
            return answer
        seen[token] = (kwargs, real(**kwargs))
        return seen[token][1]
    return run_instances


def test_a_repeated_launch_finds_its_instance_though_another_subnet_now_has_more_room(
        net: Network, monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler retried before EC2 lists its instance: the pick has moved on (the first launch took an
    address), yet the repeat gets the first instance, not a second one nor an error."""
    second = net.ec2.create_subnet(VpcId=net.vpc, CidrBlock="10.42.1.0/24", AvailabilityZone="us-east-1a")
    pair = sorted([net.subnets["a-small"], second["Subnet"]["SubnetId"]])
    monkeypatch.setenv("SKIFF_NODE_SUBNET_IDS", ",".join(pair))
    monkeypatch.setattr(net.ec2, "run_instances", with_client_tokens(net.ec2))
    launch = {"claim_name": "default-x", "claim_uid": "uid-1", "nodepool": "default", "instance_type": "c5.large",
              "zone": "us-east-1a", "capacity_type": "on-demand", "launch_template": {"name": LAUNCH_TEMPLATE}}
    first = aws.launch(net.ec2, **launch)
    assert aws.pick_subnet(net.ec2, "us-east-1a") == pair[1]  # the other one has more room now
    again = aws.launch(net.ec2, **launch)
    assert again.instance_id == first.instance_id
    assert [i["SubnetId"] for i in instances(net.ec2)] == [pair[0]]
