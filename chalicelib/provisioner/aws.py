"""The provisioner's EC2 calls, in one place: client, tags, provider IDs, subnets, launch, terminate, look-up.

Why this exists: every EC2 call the provisioner makes has an idempotency or consistency concern
(a retried launch must not launch twice; a just-launched instance may not be listed yet; a missing
instance may already be gone), so those rules live beside the calls instead of in each caller.
The client is created on first use, never at import (Chalice's habit), and honours AWS_ENDPOINT_URL
as botocore does natively, so locally it talks to moto.

Subnets: with SKIFF_NODE_SUBNET_IDS set, a node goes into one of those subnets in its zone (the one with
the most free addresses), and zones without one are not offered. Without it, EC2 picks the zone's default
subnet, which is in the default VPC: a launch template whose security group is in another VPC needs the
setting. The template must name its security groups directly (SecurityGroupIds), not in a network
interface: EC2 refuses an instance-level SubnetId beside a template's network interface.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib import settings

EC2Client = Any  # botocore's generated client class is not importable for annotations
TAG_CLUSTER = "skiff:cluster"
TAG_NODEPOOL = "skiff:nodepool"
TAG_NODECLAIM = "skiff:nodeclaim"

# run_instances errors that say "not this offering, not now" (Karpenter's unfulfillable-capacity
# codes): the offering is set aside for a while and the pods are planned onto another one.
CAPACITY_ERRORS = frozenset({
    "InsufficientInstanceCapacity", "InsufficientCapacity", "UnfulfillableCapacity", "Unsupported",
    "MaxSpotInstanceCountExceeded", "VcpuLimitExceeded", "InsufficientFreeAddressesInSubnet",
    "SpotMaxPriceTooLow", "NoConfiguredSubnetInZone",
})
NO_SUBNET_IN_ZONE = "NoConfiguredSubnetInZone"
"""Not EC2's: a claim's zone has none of SKIFF_NODE_SUBNET_IDS (the list changed while it waited).
Handled as EC2's capacity errors are: the offering is set aside and the pods are planned again."""
GONE_STATES = frozenset({"shutting-down", "terminated"})
SUBNET_CACHE_SECONDS = 60.0
"""How long described subnets (zone, free addresses) are trusted; launches in between count themselves."""
_ZONES: dict[tuple[str, str | None], tuple[str, ...]] = {}
_SUBNETS: dict[tuple[str, str | None, tuple[str, ...]], tuple[float, dict[str, dict[str, int]]]] = {}


def cluster_name() -> str:
    return os.environ.get("SKIFF_CLUSTER_NAME", "skiff")


@functools.cache
def _client(region: str, endpoint: str | None) -> EC2Client:
    import boto3

    return boto3.client("ec2", region_name=region)


def ec2_client() -> EC2Client:
    """The process's EC2 client (one per region and endpoint), created on first use."""
    return _client(settings.region(), os.environ.get("AWS_ENDPOINT_URL"))


def reset() -> None:
    """Forget cached clients, zones and subnets (tests that start a fresh moto)."""
    _client.cache_clear()
    _ZONES.clear()
    _SUBNETS.clear()


def provider_id(zone: str, instance_id: str) -> str:
    """The Node's spec.providerID for an instance, as the AWS cloud provider writes it."""
    return f"aws:///{zone}/{instance_id}"


def error_code(error: ClientError) -> str:
    return str((error.response.get("Error") or {}).get("Code") or "")


@dataclass(frozen=True)
class Instance:
    instance_id: str
    state: str
    zone: str
    instance_type: str
    claim: str  # the skiff:nodeclaim tag
    client_token: str
    launched_at: datetime | None

    @property
    def gone(self) -> bool:
        return self.state in GONE_STATES


def _instance(raw: dict[str, Any]) -> Instance:
    tags = {t.get("Key"): t.get("Value") for t in raw.get("Tags") or []}
    launched = raw.get("LaunchTime")
    if isinstance(launched, datetime) and launched.tzinfo is None:
        launched = launched.replace(tzinfo=UTC)
    return Instance(instance_id=raw["InstanceId"], state=(raw.get("State") or {}).get("Name", ""),
                    zone=(raw.get("Placement") or {}).get("AvailabilityZone", ""),
                    instance_type=raw.get("InstanceType", ""), claim=str(tags.get(TAG_NODECLAIM) or ""),
                    client_token=str(raw.get("ClientToken") or ""),
                    launched_at=launched if isinstance(launched, datetime) else None)


def cluster_instances(ec2: EC2Client) -> list[Instance]:
    """Every instance tagged with this cluster, whatever its state."""
    return list(_described(ec2, [{"Name": f"tag:{TAG_CLUSTER}", "Values": [cluster_name()]}]))


def _described(ec2: EC2Client, filters: list[dict[str, Any]]) -> Iterator[Instance]:
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Filters": filters}
        if token:
            kwargs["NextToken"] = token
        page = ec2.describe_instances(**kwargs)
        for reservation in page.get("Reservations") or []:
            for raw in reservation.get("Instances") or []:
                yield _instance(raw)
        token = page.get("NextToken")
        if not token:
            return


def claim_instance(instances: list[Instance], claim_name: str, claim_uid: str) -> Instance | None:
    """The live instance launched for this claim (same name tag and ClientToken = the claim's uid).

    Matching the token as well as the name keeps a claim re-created under an old name from adopting
    the instance of its predecessor."""
    for inst in instances:
        if inst.claim == claim_name and inst.client_token == claim_uid and not inst.gone:
            return inst
    return None


class SubnetsMissing(ValueError):
    """SKIFF_NODE_SUBNET_IDS names a subnet that does not exist: a mistake in the deployment, not a
    capacity problem, so nothing is launched until it is fixed."""


def _subnets(ec2: EC2Client) -> dict[str, dict[str, int]] | None:
    """zone -> {subnet id: free addresses} for SKIFF_NODE_SUBNET_IDS, described at most every
    SUBNET_CACHE_SECONDS per process; None when the setting is unset."""
    ids = settings.node_subnet_ids()
    if not ids:
        return None
    key = (settings.region(), os.environ.get("AWS_ENDPOINT_URL"), ids)
    cached = _SUBNETS.get(key)
    if cached is None or time.monotonic() - cached[0] > SUBNET_CACHE_SECONDS:
        zones: dict[str, dict[str, int]] = {}
        found: set[str] = set()
        # A filter rather than SubnetIds=: then the missing ones can be named (EC2's NotFound names one).
        pages = ec2.get_paginator("describe_subnets").paginate(Filters=[{"Name": "subnet-id", "Values": list(ids)}])
        for page in pages:
            for raw in page.get("Subnets") or []:
                found.add(raw["SubnetId"])
                free = int(raw.get("AvailableIpAddressCount") or 0)
                zones.setdefault(raw["AvailabilityZone"], {})[raw["SubnetId"]] = free
        missing = [i for i in ids if i not in found]
        if missing:
            raise SubnetsMissing(f"SKIFF_NODE_SUBNET_IDS names subnets that {settings.region()} does not have: "
                                 f"{', '.join(missing)}")
        cached = (time.monotonic(), zones)
        _SUBNETS[key] = cached
    return cached[1]


def subnet_zones(ec2: EC2Client) -> frozenset[str] | None:
    """The zones nodes can be launched in: those with a configured subnet; None (any zone) when
    SKIFF_NODE_SUBNET_IDS is unset."""
    zones = _subnets(ec2)
    return None if zones is None else frozenset(zones)


def pick_subnet(ec2: EC2Client, zone: str) -> str | None:
    """The configured subnet in `zone` with the most free addresses (ties: the lowest id); None when
    SKIFF_NODE_SUBNET_IDS is unset. A ClientError NO_SUBNET_IN_ZONE when the zone has none."""
    zones = _subnets(ec2)
    if zones is None:
        return None
    free = zones.get(zone)
    if not free:
        raise ClientError({"Error": {"Code": NO_SUBNET_IN_ZONE, "Message": (
            f"none of the subnets in SKIFF_NODE_SUBNET_IDS is in {zone}")}}, "RunInstances")
    return min(free, key=lambda subnet: (-free[subnet], subnet))


def _took_address(subnet_id: str) -> None:
    """A node now holds one of the subnet's addresses: the next pick, before the next describe, knows it."""
    for _described_at, zones in _SUBNETS.values():
        for free in zones.values():
            if subnet_id in free:
                free[subnet_id] = max(0, free[subnet_id] - 1)


def launch(ec2: EC2Client, *, claim_name: str, claim_uid: str, nodepool: str, instance_type: str, zone: str,
           capacity_type: str, launch_template: dict[str, Any]) -> Instance:
    """run_instances for one NodeClaim. ClientToken is the claim's uid: EC2 answers a repeated call
    with the instance of the first one, so a retried handler never launches twice. With
    SKIFF_NODE_SUBNET_IDS set, the instance goes into the zone's configured subnet with most room."""
    template: dict[str, str] = {"Version": str(launch_template.get("version") or "$Default")}
    if launch_template.get("id"):
        template["LaunchTemplateId"] = str(launch_template["id"])
    else:
        template["LaunchTemplateName"] = str(launch_template.get("name") or "")
    tags = [{"Key": TAG_CLUSTER, "Value": cluster_name()}, {"Key": TAG_NODEPOOL, "Value": nodepool},
            {"Key": TAG_NODECLAIM, "Value": claim_name}, {"Key": "Name", "Value": f"{cluster_name()}/{claim_name}"}]
    kwargs: dict[str, Any] = {
        "MinCount": 1, "MaxCount": 1, "ClientToken": claim_uid, "LaunchTemplate": template,
        "InstanceType": instance_type, "Placement": {"AvailabilityZone": zone},
        "TagSpecifications": [{"ResourceType": "instance", "Tags": tags},
                              {"ResourceType": "volume", "Tags": tags}],
    }
    if capacity_type == "spot":
        kwargs["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": {
            "SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"}}
    subnet = pick_subnet(ec2, zone)
    if subnet is None:
        return _instance(ec2.run_instances(**kwargs)["Instances"][0])
    # The template's security groups apply in the subnet.
    try:
        out = ec2.run_instances(**kwargs, SubnetId=subnet)
    except ClientError as e:
        if error_code(e) == "InsufficientFreeAddressesInSubnet":
            _SUBNETS.clear()  # our count was stale: describe again before the next pick
        if error_code(e) != "IdempotentParameterMismatch":
            raise
        out = _repeat_launch(ec2, kwargs, zone, subnet, e)
    _took_address(subnet)
    return _instance(out["Instances"][0])


def _repeat_launch(ec2: EC2Client, kwargs: dict[str, Any], zone: str, tried: str, mismatch: ClientError) -> Any:
    """This ClientToken launched before (EC2 does not list the instance yet), into another of the zone's
    subnets, picked when the free counts were different: the call that repeats that one gets its instance."""
    for other in sorted(set((_subnets(ec2) or {}).get(zone) or {}) - {tried}):
        try:
            return ec2.run_instances(**kwargs, SubnetId=other)
        except ClientError as e:
            if error_code(e) != "IdempotentParameterMismatch":
                raise
    raise mismatch


def terminate(ec2: EC2Client, instance_id: str) -> None:
    """Terminate an instance; one that no longer exists is already where we want it."""
    try:
        ec2.terminate_instances(InstanceIds=[instance_id])
    except ClientError as e:
        if error_code(e) not in ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"):
            raise


def region_zones(ec2: EC2Client) -> tuple[str, ...]:
    """The region's availability zones (for a NodePool that names none), cached per process."""
    key = (settings.region(), os.environ.get("AWS_ENDPOINT_URL"))
    if key not in _ZONES:
        out = ec2.describe_availability_zones(Filters=[{"Name": "state", "Values": ["available"]}])
        _ZONES[key] = tuple(sorted(z["ZoneName"] for z in out.get("AvailabilityZones") or []
                                   if z.get("ZoneType", "availability-zone") == "availability-zone"))
    return _ZONES[key]
