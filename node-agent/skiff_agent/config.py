"""The agent's configuration: where the API is, how it proves who it is, and what the machine is.

Why this exists: the same agent runs on an EC2 instance (facts from IMDSv2, a bootstrap token from
SSM put in its environment by user data) and locally under `skiff up` (facts from the environment the
local runtime sets from moto's instance). Everything comes from environment variables so user data
and the local runtime configure it the same way; a missing or malformed value is a ConfigError that
names the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skiff_agent import quantity
from skiff_agent.node import NodeConfig


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class AgentConfig:
    api_url: str
    node: NodeConfig
    instance_id: str = ""
    ca_file: str | None = None
    node_token: str = ""
    bootstrap_token: str = ""
    state_dir: Path = Path("/var/lib/skiff-agent")
    cluster_name: str = "skiff"
    region: str = "us-east-1"
    host_port_address: str = "0.0.0.0"
    sandbox_image: str = "skiff/pause:1"
    container_logs: bool = True
    backoff_seconds: float = 10.0
    resync_seconds: float = 30.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def credential_file(self) -> Path:
        return self.state_dir / f"{self.node.name}.token"


def _labels(text: str, var: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{var}: {item!r} is not key=value")
        out[key] = value
    return out


def _taints(text: str, var: str) -> list[dict[str, str]]:
    out = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        kv, sep, effect = item.rpartition(":")
        if not sep or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise ConfigError(f"{var}: {item!r} is not key[=value]:NoSchedule|PreferNoSchedule|NoExecute")
        key, _, value = kv.partition("=")
        taint = {"key": key, "effect": effect}
        if value:
            taint["value"] = value
        out.append(taint)
    return out


def _host_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 1024**3


def from_env(environ: Mapping[str, str] | None = None) -> AgentConfig:
    """The configuration from SKIFF_* variables (and IMDSv2 when SKIFF_NODE_NAME is not set)."""
    env = os.environ if environ is None else environ
    api_url = env.get("SKIFF_API_URL", "")
    if not api_url.startswith(("https://", "http://")):
        raise ConfigError("SKIFF_API_URL must be the cluster's API URL (https://...)")
    node_token, bootstrap = env.get("SKIFF_NODE_TOKEN", ""), env.get("SKIFF_BOOTSTRAP_TOKEN", "")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    name = env.get("SKIFF_NODE_NAME", "")
    instance_id = env.get("SKIFF_INSTANCE_ID", "")
    zone, instance_type, ip, dns = (env.get("SKIFF_ZONE", ""), env.get("SKIFF_INSTANCE_TYPE", ""),
                                    env.get("SKIFF_NODE_IP", ""), env.get("SKIFF_NODE_DNS", ""))
    if not name:
        from skiff_agent import imds

        try:
            facts = imds.read(env.get("SKIFF_IMDS_URL", imds.IMDS))
        except OSError as e:
            raise ConfigError(f"SKIFF_NODE_NAME is not set and the instance metadata service did not answer ({e}); "
                              "set SKIFF_NODE_NAME (and SKIFF_INSTANCE_ID, SKIFF_ZONE...) when not on EC2") from e
        name = facts.private_dns or facts.instance_id
        instance_id, zone, instance_type, ip, dns = (facts.instance_id, facts.zone, facts.instance_type,
                                                     facts.private_ip, facts.private_dns)
        region = facts.region or region
    try:
        cpu = quantity.cpu_milli(env.get("SKIFF_NODE_CPU") or str(os.cpu_count() or 1))
        memory = quantity.memory_bytes(env.get("SKIFF_NODE_MEMORY") or str(_host_memory()))
        alloc_cpu = quantity.cpu_milli(env["SKIFF_NODE_ALLOCATABLE_CPU"]) if env.get("SKIFF_NODE_ALLOCATABLE_CPU") \
            else None
        alloc_memory = quantity.memory_bytes(env["SKIFF_NODE_ALLOCATABLE_MEMORY"]) \
            if env.get("SKIFF_NODE_ALLOCATABLE_MEMORY") else None
        max_pods = int(env.get("SKIFF_NODE_MAX_PODS") or 110)
        backoff = float(env.get("SKIFF_BACKOFF_SECONDS") or 10)
        resync = float(env.get("SKIFF_AGENT_RESYNC_SECONDS") or 30)
    except ValueError as e:
        raise ConfigError(f"a SKIFF_NODE_* number is malformed: {e}") from e
    provider_id = env.get("SKIFF_PROVIDER_ID") or (f"aws:///{zone}/{instance_id}" if instance_id and zone else "")
    node = NodeConfig(name=name, provider_id=provider_id, zone=zone, region=region, instance_type=instance_type,
                      cpu_milli=cpu, memory_bytes=memory, max_pods=max_pods, allocatable_cpu_milli=alloc_cpu,
                      allocatable_memory_bytes=alloc_memory,
                      labels=_labels(env.get("SKIFF_NODE_LABELS", ""), "SKIFF_NODE_LABELS"),
                      taints=_taints(env.get("SKIFF_NODE_TAINTS", ""), "SKIFF_NODE_TAINTS"),
                      internal_ip=ip, internal_dns=dns, pod_cidr=env.get("SKIFF_POD_CIDR", ""),
                      machine_id=instance_id)
    if not node_token and not bootstrap and not Path(env.get("SKIFF_STATE_DIR", "/var/lib/skiff-agent"),
                                                         f"{name}.token").exists():
        raise ConfigError("set SKIFF_BOOTSTRAP_TOKEN (exchanged for a node credential) or SKIFF_NODE_TOKEN")
    if bootstrap and not instance_id and not node_token:
        raise ConfigError("exchanging SKIFF_BOOTSTRAP_TOKEN needs the instance id (SKIFF_INSTANCE_ID or IMDS)")
    return AgentConfig(
        api_url=api_url, node=node, instance_id=instance_id, ca_file=env.get("SKIFF_CA_FILE") or None,
        node_token=node_token, bootstrap_token=bootstrap,
        state_dir=Path(env.get("SKIFF_STATE_DIR", "/var/lib/skiff-agent")),
        cluster_name=env.get("SKIFF_CLUSTER_NAME", "skiff"), region=region,
        host_port_address=env.get("SKIFF_HOST_PORT_ADDRESS") or ip or "0.0.0.0",
        sandbox_image=env.get("SKIFF_SANDBOX_IMAGE", "skiff/pause:1"),
        container_logs=env.get("SKIFF_CONTAINER_LOGS", "cloudwatch") != "off",
        backoff_seconds=backoff, resync_seconds=resync)
