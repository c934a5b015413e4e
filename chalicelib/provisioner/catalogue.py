"""Instance types as the planner sizes them: vCPUs and memory from EC2, what a node keeps for itself.

Why this exists: the planner must know, before launching, how many pods a node of a given type will
take. EC2's describe_instance_types is the authority for vCPUs and memory (moto serves the same
figures), asked once per type per process; the answers never change. A node does not offer all of
it to pods: `allocatable` subtracts the reservation the EKS-optimised AMI makes for the kubelet and
the system (a share of each core; 255 MiB + 11 MiB per pod; a 100 MiB eviction threshold), and never
less than a node agent keeps back. The agent must report at least that much as status.allocatable,
or pods planned onto its node would not fit there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib import settings
from chalicelib.provisioner.aws import EC2Client, error_code

MIB = 1024 * 1024


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int
    arch: str  # x86_64 or arm64, as the kubernetes.io/arch label spells it (amd64 / arm64)


@dataclass(frozen=True)
class Allocatable:
    cpu_milli: int
    memory_bytes: int
    pods: int


# The least a node agent keeps back (Skiff's hollow node reserves 100m and 356 MiB): the estimate below
# never promises pods more than a node will report, or a pod planned onto it would not fit there.
MIN_RESERVED_CPU_MILLI = 100
MIN_RESERVED_MEMORY_MIB = 356


def _reserved_cpu_milli(vcpus: int) -> int:
    """kube-reserved cpu of the EKS AMI: 6% of the first core, 1% of the second, 0.5% of the next two,
    0.25% of every further one (at least MIN_RESERVED_CPU_MILLI)."""
    milli = 0.0
    for core in range(vcpus):
        milli += 60 if core == 0 else 10 if core == 1 else 5 if core < 4 else 2.5
    return max(MIN_RESERVED_CPU_MILLI, int(milli + 0.5))


def allocatable(instance_type: InstanceType, max_pods: int) -> Allocatable:
    """What pods may request on a node of this type running at most `max_pods` pods."""
    reserved_memory = max(MIN_RESERVED_MEMORY_MIB, 255 + 11 * max_pods + 100) * MIB
    return Allocatable(cpu_milli=instance_type.vcpus * 1000 - _reserved_cpu_milli(instance_type.vcpus),
                       memory_bytes=max(0, instance_type.memory_mib * MIB - reserved_memory),
                       pods=max_pods)


def _arch(raw: dict[str, Any]) -> str:
    archs = (raw.get("ProcessorInfo") or {}).get("SupportedArchitectures") or []
    if "arm64" in archs and "x86_64" not in archs:
        return "arm64"
    return "amd64"


_CACHE: dict[tuple[str, str | None, str], InstanceType | None] = {}


def _describe_one(ec2: EC2Client, name: str) -> InstanceType | None:
    try:
        out = ec2.describe_instance_types(InstanceTypes=[name])
    except ClientError as e:
        if error_code(e) == "InvalidInstanceType":
            return None
        raise
    for raw in out.get("InstanceTypes") or []:
        if raw.get("InstanceType") == name:
            return InstanceType(name=name, vcpus=int(raw["VCpuInfo"]["DefaultVCpus"]),
                                memory_mib=int(raw["MemoryInfo"]["SizeInMiB"]), arch=_arch(raw))
    return None


def describe(ec2: EC2Client, names: list[str]) -> dict[str, InstanceType]:
    """The named types this region has (unknown names are left out), cached per process.

    One type per call: a single unknown name fails a whole describe_instance_types call, and the
    cache makes the count of calls irrelevant after the first pass."""
    region, endpoint = settings.region(), os.environ.get("AWS_ENDPOINT_URL")
    out: dict[str, InstanceType] = {}
    for name in names:
        key = (region, endpoint, name)
        if key not in _CACHE:
            _CACHE[key] = _describe_one(ec2, name)
        found = _CACHE[key]
        if found is not None:
            out[name] = found
    return out


def reset() -> None:
    _CACHE.clear()
