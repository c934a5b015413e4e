"""The local cluster's machines: one hollow node for each running EC2 instance of the cluster.

Why this exists: in moto an EC2 instance is a record, not a machine (DESIGN.md, known constraints), so
an instance the provisioner launches would never boot, and no Node would ever register for it. The
Fleet plays the part of the instances booting and dying: every few seconds it lists the cluster's
instances (tag skiff:cluster=<SKIFF_CLUSTER_NAME>, state running) and keeps one node agent per
running instance, a `skiff.hollow.HollowNode` until the real agent exists, stopping it when its
instance is stopped or terminated (the machine is gone; its Node is left to whoever deletes Nodes,
as on EC2: the provisioner does for the instances it launched).

What each agent reports comes from where a real node's kubelet gets it. From EC2: the name (the
private DNS name, as EKS names nodes; the instance id when that is missing or taken), the zone and
the providerID aws:///<zone>/<instance-id> the provisioner waits for, the instance type, and vCPUs
and memory from describe_instance_types. Allocatable is the provisioner's own figure
(`chalicelib.provisioner.catalogue.allocatable`), so plans and placements agree. From the
NodeClaim named by the instance's skiff:nodeclaim tag (what Karpenter passes in user data): the
claim's labels and taints, so the node registers with them and is never briefly without them;
without a claim, the NodePool's (tag skiff:nodepool); skiff.io/nodepool and skiff.io/capacity-type
from the tags and the instance's lifecycle. Each agent gets its own node token, revoked when its
instance goes (the local runtime has the store, so the Fleet issues them itself).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skiff.hollow import DEFAULT_MAX_PODS, HollowNode, NodeConfig

log = logging.getLogger("skiff.fleet")

Obj = dict[str, Any]
TAG_CLUSTER = "skiff:cluster"  # the same tags as chalicelib.provisioner.aws (not imported: no chalicelib at import)
TAG_NODEPOOL = "skiff:nodepool"
TAG_NODECLAIM = "skiff:nodeclaim"
LABEL_NODEPOOL = "skiff.io/nodepool"
LABEL_CAPACITY_TYPE = "skiff.io/capacity-type"
POD_NETWORK = ipaddress.IPv4Network("10.128.0.0/9")  # a /24 of pod IPs per node: 32768 nodes


@dataclass(frozen=True)
class Instance:
    """What the Fleet needs to know about one EC2 instance."""

    instance_id: str
    instance_type: str
    zone: str
    private_dns: str
    private_ip: str
    tags: Mapping[str, str] = field(default_factory=dict)
    spot: bool = False

    @property
    def provider_id(self) -> str:
        return f"aws:///{self.zone}/{self.instance_id}"


@dataclass(frozen=True)
class Shape:
    """What a node offers: capacity, and allocatable after the system's reserve."""

    cpu_milli: int
    memory_bytes: int
    allocatable_cpu_milli: int
    allocatable_memory_bytes: int
    max_pods: int
    arch: str = "amd64"


@dataclass(frozen=True)
class Placement:
    """Labels and taints a node registers with (from its NodeClaim or NodePool), and its pod limit."""

    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Mapping[str, Any], ...] = ()
    max_pods: int = DEFAULT_MAX_PODS


TokenIssuer = Callable[[str], str]  # node name -> a node token
TokenRevoker = Callable[[str], None]
PlacementLookup = Callable[[Instance], Placement]
ShapeLookup = Callable[[Instance, int], Shape | None]  # (instance, max pods) -> shape; None: unknown type
NodeFactory = Callable[[NodeConfig, str], HollowNode]  # (config, node token) -> a node not yet started


def _issue_token(node: str) -> str:
    from chalicelib.api.auth import issue_token

    return issue_token("node", node=node, description=f"hollow node {node} (skiff fleet)")


def _revoke_token(token: str) -> None:
    from chalicelib.api.auth import revoke_token

    revoke_token(token)


def store_placement(instance: Instance) -> Placement:
    """The NodeClaim's labels and taints (else the NodePool's) and the pool's maxPodsPerNode, read from
    the store as the provisioner wrote them. Missing objects give an empty placement."""
    from chalicelib.controllers.client import Client

    client = Client()
    pool_name = instance.tags.get(TAG_NODEPOOL) or ""
    claim_name = instance.tags.get(TAG_NODECLAIM) or ""
    claim = client.get("nodeclaims", None, claim_name) if claim_name else None
    pool = client.get("nodepools", None, pool_name) if pool_name else None
    source = (claim or pool or {}).get("spec") or {}
    max_pods = int(((pool or {}).get("spec") or {}).get("maxPodsPerNode") or DEFAULT_MAX_PODS)
    return Placement(labels=dict(source.get("labels") or {}),
                     taints=tuple(dict(t) for t in source.get("taints") or []), max_pods=max_pods)


def ec2_shape(ec2: Any) -> ShapeLookup:
    """vCPUs and memory from describe_instance_types, allocatable as the provisioner plans it."""

    def shape(instance: Instance, max_pods: int) -> Shape | None:
        from chalicelib.provisioner import catalogue

        found = catalogue.describe(ec2, [instance.instance_type]).get(instance.instance_type)
        if found is None:
            return None
        alloc = catalogue.allocatable(found, max_pods)
        return Shape(cpu_milli=found.vcpus * 1000, memory_bytes=found.memory_mib * catalogue.MIB,
                     allocatable_cpu_milli=alloc.cpu_milli, allocatable_memory_bytes=alloc.memory_bytes,
                     max_pods=alloc.pods, arch=found.arch)

    return shape


def running_instances(ec2: Any, cluster_name: str) -> list[Instance]:
    """The cluster's running instances (every page of describe_instances)."""
    out: list[Instance] = []
    kwargs: dict[str, Any] = {"Filters": [{"Name": f"tag:{TAG_CLUSTER}", "Values": [cluster_name]},
                                          {"Name": "instance-state-name", "Values": ["running"]}]}
    while True:
        page = ec2.describe_instances(**kwargs)
        for reservation in page.get("Reservations") or []:
            for raw in reservation.get("Instances") or []:
                if ((raw.get("State") or {}).get("Name")) != "running":
                    continue
                out.append(Instance(
                    instance_id=raw["InstanceId"], instance_type=raw.get("InstanceType") or "",
                    zone=(raw.get("Placement") or {}).get("AvailabilityZone") or "",
                    private_dns=raw.get("PrivateDnsName") or "", private_ip=raw.get("PrivateIpAddress") or "",
                    tags={t["Key"]: t.get("Value") or "" for t in raw.get("Tags") or [] if "Key" in t},
                    spot=raw.get("InstanceLifecycle") == "spot"))
        token = page.get("NextToken")
        if not token:
            return out
        kwargs["NextToken"] = token


@dataclass(frozen=True)
class AgentSettings:
    """What every real node agent of the local fleet is given (what user data gives it on AWS)."""

    bootstrap_token: str
    home: Path
    registry_mirrors: str = ""
    docker_client: Any = None


@dataclass
class _Member:
    instance: Instance
    node: Any  # a HollowNode, or a skiff.agentproc.AgentProcess
    token: str
    subnet: int


class Fleet:
    """Keeps one hollow node per running instance of the cluster, until `stop()`."""

    def __init__(self, api_url: str, ca_file: Path | str, cluster_name: str = "skiff", *, ec2: Any = None,
                 poll_seconds: float = 5.0, node_options: Mapping[str, Any] | None = None,
                 issue_token: TokenIssuer = _issue_token, revoke_token: TokenRevoker = _revoke_token,
                 placement: PlacementLookup = store_placement, shape: ShapeLookup | None = None,
                 state_file: Path | None = None, region: str | None = None,
                 node_factory: NodeFactory | None = None, agents: AgentSettings | None = None) -> None:
        if ec2 is None:
            import boto3

            ec2 = boto3.client("ec2", region_name=region or os.environ.get("AWS_REGION")
                               or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
        self.api_url = api_url
        self.ca_file = Path(ca_file)
        self.cluster_name = cluster_name
        self.ec2 = ec2
        self.region = region or getattr(getattr(ec2, "meta", None), "region_name", None) or ""
        self.poll_seconds = poll_seconds
        self.node_options = dict(node_options or {})
        self._issue_token = issue_token
        self._revoke_token = revoke_token
        self._placement = placement
        self._shape = shape or ec2_shape(ec2)
        self._node_factory = node_factory or self._connect
        self.agents = agents  # None: hollow nodes; else a real agent process per instance
        self.state_file = state_file
        self._members: dict[str, _Member] = {}
        self._skipped: dict[str, str] = {}  # instance id -> why it has no node (logged once)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.syncs = 0
        self.sync_errors = 0

    # --- what is running ---

    @property
    def nodes(self) -> dict[str, Any]:
        """instance id -> its node (a HollowNode or an AgentProcess)."""
        with self._lock:
            return {i: m.node for i, m in self._members.items()}

    def node_for(self, instance_id: str) -> Any:
        with self._lock:
            member = self._members.get(instance_id)
        return member.node if member else None

    # --- lifecycle ---

    def start(self) -> Fleet:
        if self._thread is not None:
            raise RuntimeError("the fleet was started already")
        self._thread = threading.Thread(target=self._run, name="skiff-fleet", daemon=True)
        self._thread.start()
        log.info("fleet: one hollow node per running EC2 instance tagged %s=%s (every %.1fs)", TAG_CLUSTER,
                 self.cluster_name, self.poll_seconds)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop watching EC2 and stop every hollow node (their tokens are revoked)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        with self._lock:
            members = list(self._members.values())
            self._members.clear()
        self._shutdown(members, "the fleet is stopping", timeout)
        self._write_state()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync_once()
            except Exception:  # noqa: BLE001 - logged loudly; the next sync tries again
                self.sync_errors += 1
                log.exception("fleet: syncing hollow nodes with EC2 failed; retrying in %.1fs", self.poll_seconds)
            self._stop.wait(self.poll_seconds)

    def sync_once(self) -> dict[str, list[str]]:
        """One look at EC2: boot a hollow node for each new running instance, stop those whose instance
        is gone, restart any whose thread died. Returns the instance ids started and stopped."""
        running = {i.instance_id: i for i in running_instances(self.ec2, self.cluster_name)}
        started: list[str] = []
        gone: list[_Member] = []
        with self._lock:
            for instance_id in list(self._members):
                member = self._members[instance_id]
                if instance_id not in running:
                    gone.append(self._members.pop(instance_id))
                elif not member.node.alive and not member.node.stopped:
                    log.error("fleet: node %s (%s) died; starting it again", member.node.name, instance_id)
                    if self.agents is not None:  # the machine is still there: its new agent adopts what runs
                        member.node.restarts += 1
                        member.node.start()
                        continue
                    self._members.pop(instance_id)
                    gone.append(member)
        self._shutdown(gone, "its instance is no longer running")
        for instance_id, instance in running.items():
            if self._stop.is_set():
                break
            with self._lock:
                if instance_id in self._members:
                    continue
            try:
                if self._boot(instance):
                    started.append(instance_id)
            except Exception:  # noqa: BLE001 - one instance's trouble never stops the others
                log.exception("fleet: could not start a hollow node for %s", instance_id)
        for instance_id in set(self._skipped) - set(running):
            del self._skipped[instance_id]
        self.syncs += 1
        self._write_state()
        return {"started": started, "stopped": [m.instance.instance_id for m in gone]}

    def _connect(self, config: NodeConfig, token: str) -> HollowNode:
        return HollowNode.connect(self.api_url, token, self.ca_file, config, **self.node_options)

    def _lookup_placement(self, instance: Instance) -> Placement:
        try:
            return self._placement(instance)
        except Exception:  # noqa: BLE001 - the provisioner applies the claim's labels on registration anyway
            log.warning("fleet: could not read the NodeClaim/NodePool of %s; registering it with EC2's facts "
                        "only", instance.instance_id, exc_info=True)
            return Placement()

    def _node_name(self, instance: Instance) -> str:
        taken = {m.node.name for m in self._members.values()}
        name = instance.private_dns
        return name if name and name not in taken else instance.instance_id

    def _subnet(self) -> int:
        used = {m.subnet for m in self._members.values()}
        return next(i for i in range(POD_NETWORK.num_addresses // 256) if i not in used)

    def _boot(self, instance: Instance) -> bool:
        placement = self._lookup_placement(instance)
        shape = self._shape(instance, placement.max_pods)
        if shape is None:
            why = f"instance type {instance.instance_type!r} is not known to EC2's describe_instance_types"
            if self._skipped.get(instance.instance_id) != why:
                log.error("fleet: no hollow node for %s: %s", instance.instance_id, why)
                self._skipped[instance.instance_id] = why
            return False
        labels: dict[str, str] = {}
        if instance.tags.get(TAG_NODEPOOL):
            labels[LABEL_NODEPOOL] = instance.tags[TAG_NODEPOOL]
            labels[LABEL_CAPACITY_TYPE] = "spot" if instance.spot else "on-demand"
        labels.update(placement.labels)
        with self._lock:
            name = self._node_name(instance)
            subnet = self._subnet()
            pod_cidr = str(ipaddress.IPv4Network((int(POD_NETWORK.network_address) + subnet * 256, 24)))
            internal_ip = instance.private_ip
            if self.agents is not None:
                from skiff.agentproc import loopback_address

                internal_ip = loopback_address(subnet)  # the node's own address on this machine
            config = NodeConfig(
                name=name, provider_id=instance.provider_id, zone=instance.zone,
                region=self.region or instance.zone[:-1], instance_type=instance.instance_type,
                cpu_milli=shape.cpu_milli, memory_bytes=shape.memory_bytes, max_pods=shape.max_pods,
                allocatable_cpu_milli=shape.allocatable_cpu_milli,
                allocatable_memory_bytes=shape.allocatable_memory_bytes, labels=labels, taints=placement.taints,
                internal_ip=internal_ip, internal_dns=instance.private_dns, pod_cidr=pod_cidr,
                arch=shape.arch, machine_id=instance.instance_id)
            if self.agents is not None:
                token = ""  # the agent exchanges the bootstrap token for its credential itself
                node = self._agent(config, instance)
            else:
                token = self._issue_token(name)
                node = self._node_factory(config, token)
            self._members[instance.instance_id] = _Member(instance, node, token, subnet)
        node.start()
        self._skipped.pop(instance.instance_id, None)
        log.info("fleet: %s (%s in %s) booted %s node %s", instance.instance_id, instance.instance_type,
                 instance.zone, "hollow" if self.agents is None else "an agent for", name)
        return True

    def _agent(self, config: NodeConfig, instance: Instance) -> Any:
        from chalicelib import settings
        from skiff.agentproc import AgentProcess, agent_env

        assert self.agents is not None
        aws = {k: v for k, v in os.environ.items()
               if k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
        aws["AWS_REGION"] = self.region or settings.region()
        home = self.agents.home
        env = agent_env(config, api_url=self.api_url, ca_file=self.ca_file,
                        bootstrap_token=self.agents.bootstrap_token, instance_id=instance.instance_id,
                        state_dir=home / instance.instance_id, cluster_name=self.cluster_name,
                        registry_mirrors=self.agents.registry_mirrors, aws=aws)
        return AgentProcess(config, env, home / f"{instance.instance_id}.log", self.agents.docker_client)

    def _shutdown(self, members: list[_Member], why: str, timeout: float = 15.0) -> None:
        for member in members:  # signal them all first, then wait: stopping many takes one wait
            member.node.request_stop()
        for member in members:
            if not member.node.stop(timeout):
                log.error("fleet: hollow node %s did not stop within %.0fs", member.node.name, timeout)
            try:
                # a real agent's credential is the one it obtained by the bootstrap exchange: the machine is gone
                token = member.token or (member.node.credential() if hasattr(member.node, "credential") else "")
                if token:
                    self._revoke_token(token)
            except Exception:  # noqa: BLE001 - a token left behind is logged, not fatal
                log.exception("fleet: could not revoke the token of hollow node %s", member.node.name)
            log.info("fleet: stopped node %s (%s): %s", member.node.name, member.instance.instance_id, why)

    def describe(self) -> list[Obj]:
        with self._lock:
            members = list(self._members.values())
        return [{"instanceID": m.instance.instance_id, **m.node.describe()} for m in members]

    def _write_state(self) -> None:
        if self.state_file is None:
            return
        try:
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"cluster": self.cluster_name, "nodes": self.describe()}, indent=1))
            tmp.replace(self.state_file)
        except OSError:
            log.warning("fleet: could not write %s", self.state_file, exc_info=True)


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        log.error("fleet: %s=%r is not a number; using %s", name, os.environ.get(name), default)
        return default


def start_fleet(layout_home: Path, api_url: str, ca_file: Path, agents: AgentSettings | None = None) -> Fleet:
    """Start the local runtime's fleet: call after the tables exist and the API serves (the hollow nodes
    register through it), with the AWS environment (AWS_ENDPOINT_URL) already set; `stop()` it on the
    way down. Tunable by SKIFF_CLUSTER_NAME (default "skiff"), SKIFF_FLEET_POLL_SECONDS (5),
    SKIFF_HOLLOW_LEASE_SECONDS (10), SKIFF_HOLLOW_POD_POLL_SECONDS (1). Writes layout_home/fleet.json."""
    from chalicelib import settings

    options = {"lease_seconds": _env_float("SKIFF_HOLLOW_LEASE_SECONDS", 10.0),
               "pod_poll_seconds": _env_float("SKIFF_HOLLOW_POD_POLL_SECONDS", 1.0)}
    fleet = Fleet(api_url, ca_file, os.environ.get("SKIFF_CLUSTER_NAME", "skiff"),
                  poll_seconds=_env_float("SKIFF_FLEET_POLL_SECONDS", 5.0), node_options=options,
                  state_file=Path(layout_home) / "fleet.json", region=settings.region(), agents=agents)
    return fleet.start()
