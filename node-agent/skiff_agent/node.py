"""The node's side of the Node and Lease objects: registration, status heartbeats, lease renewal.

Why this exists: a kubelet registers its machine as a Node (capacity, allocatable after a system
reserve, addresses, well-known labels, providerID), keeps the node's conditions fresh, and renews
kube-node-lease/<name> every 10 s so the node lifecycle controller knows it is alive. The real agent
and the local runtime's hollow nodes do exactly the same, so both use this module; only what they
say about the machine (conditions, runtime version) differs.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import time
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from skiff_agent.api import MERGE_PATCH, ApiError, Transport

log = logging.getLogger("skiff.agent.node")

Obj = dict[str, Any]
KUBELET_VERSION = "v1.32.0-skiff"
LEASE_NAMESPACE = "kube-node-lease"
MIB = 1024 * 1024
GIB = 1024 * MIB
DEFAULT_MAX_PODS = 110
# A small system reserve for a node given only its capacity: what kubelet and the OS keep
# (--kube-reserved/--system-reserved and the eviction threshold of a typical node image).
DEFAULT_RESERVED_CPU_MILLI = 100
DEFAULT_RESERVED_MEMORY = 256 * MIB + 100 * MIB

# (type, status, reason, message) of one node condition
Condition = tuple[str, str, str, str]
HEALTHY: tuple[Condition, ...] = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


def stamp(t: datetime | None = None) -> str:
    return (t or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_stamp(t: datetime | None = None) -> str:
    return (t or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def milli(cpu_milli: int) -> str:
    return str(cpu_milli // 1000) if cpu_milli % 1000 == 0 else f"{cpu_milli}m"


def quantity_bytes(memory: int) -> str:
    return f"{memory // 1024}Ki" if memory % 1024 == 0 else str(memory)


@dataclass(frozen=True)
class NodeConfig:
    """What a node reports about itself (an instance's facts, as a kubelet finds them)."""

    name: str
    provider_id: str = ""
    zone: str = ""
    region: str = ""
    instance_type: str = ""
    cpu_milli: int = 2000
    memory_bytes: int = 8 * GIB
    max_pods: int = DEFAULT_MAX_PODS
    allocatable_cpu_milli: int | None = None  # None: capacity minus DEFAULT_RESERVED_CPU_MILLI
    allocatable_memory_bytes: int | None = None  # None: capacity minus DEFAULT_RESERVED_MEMORY
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Mapping[str, Any]] = ()
    internal_ip: str = ""
    internal_dns: str = ""
    pod_cidr: str = ""  # "": a /24 of 10.244.0.0/16 chosen from the name (may collide; the Fleet allocates)
    arch: str = "amd64"
    machine_id: str = ""

    def capacity(self) -> dict[str, str]:
        return {"cpu": milli(self.cpu_milli), "memory": quantity_bytes(self.memory_bytes),
                "pods": str(self.max_pods), "ephemeral-storage": quantity_bytes(20 * GIB)}

    def allocatable(self) -> dict[str, str]:
        cpu = self.allocatable_cpu_milli
        if cpu is None:
            cpu = max(0, self.cpu_milli - DEFAULT_RESERVED_CPU_MILLI)
        memory = self.allocatable_memory_bytes
        if memory is None:
            memory = max(0, self.memory_bytes - DEFAULT_RESERVED_MEMORY)
        return {"cpu": milli(cpu), "memory": quantity_bytes(memory), "pods": str(self.max_pods),
                "ephemeral-storage": quantity_bytes(18 * GIB)}

    def node_labels(self) -> dict[str, str]:
        """The labels a kubelet sets on its Node, then the ones it was started with."""
        labels = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": self.arch}
        if self.zone:
            labels["topology.kubernetes.io/zone"] = self.zone
        if self.region:
            labels["topology.kubernetes.io/region"] = self.region
        if self.instance_type:
            labels["node.kubernetes.io/instance-type"] = self.instance_type
        labels.update(self.labels)
        return labels

    def network(self) -> ipaddress.IPv4Network:
        if self.pod_cidr:
            return ipaddress.IPv4Network(self.pod_cidr, strict=False)
        index = zlib.crc32(self.name.encode()) % 256
        return ipaddress.IPv4Network(f"10.244.{index}.0/24")


@dataclass(frozen=True)
class RuntimeInfo:
    """What the node says about the software running it (Node.status.nodeInfo)."""

    container_runtime: str = "docker://unknown"
    kubelet_version: str = KUBELET_VERSION
    os_image: str = "Skiff node"
    kernel: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)
    ready_message: str = "kubelet is posting ready status"


class NodeReporter:
    """Registers one Node and keeps its status and Lease fresh. Each step is public so tests and the
    agent's loop can drive them one by one; failures raise (the caller retries with back-off)."""

    def __init__(self, config: NodeConfig, api: Transport, *, runtime: RuntimeInfo | None = None,
                 conditions: Callable[[], Sequence[Condition]] | None = None, lease_duration_seconds: int = 40,
                 status_report_seconds: float = 60.0, record_events: bool = True,
                 async_events: bool = False) -> None:
        self.config = config
        self.api = api
        self.runtime = runtime or RuntimeInfo()
        self._conditions = conditions or (lambda: HEALTHY)
        self.lease_duration_seconds = lease_duration_seconds
        self.status_report_seconds = status_report_seconds
        self.record_events = record_events
        self.async_events = async_events
        self._events: Any = None
        self.registered = False
        self.orphaned = False  # the Node was deleted under us: no more heartbeats
        self.uid = ""
        self.pod_cidr = ""
        self.lease_renewals = 0
        self.status_reports = 0
        self._lease: Obj | None = None
        self._last_report = float("-inf")
        self._last_conditions: tuple[Condition, ...] = ()
        self._boot_id = str(uuid.uuid4())

    @property
    def name(self) -> str:
        return self.config.name

    def node_object(self) -> Obj:
        """The Node this agent registers."""
        spec: Obj = {}
        if self.config.provider_id:
            spec["providerID"] = self.config.provider_id
        spec["podCIDR"] = str(self.config.network())
        if self.config.taints:
            spec["taints"] = [dict(t) for t in self.config.taints]
        md: Obj = {"name": self.name, "labels": self.config.node_labels()}
        if self.runtime.annotations:
            md["annotations"] = dict(self.runtime.annotations)
        return {"apiVersion": "v1", "kind": "Node", "metadata": md, "spec": spec}

    def register(self) -> Obj:
        """Create the Node, or take over the one this machine registered before (same providerID)."""
        path = f"/api/v1/nodes/{quote(self.name)}"
        try:
            node = self.api.request("POST", "/api/v1/nodes", body=self.node_object())
            log.info("node %s registered", self.name)
        except ApiError as e:
            if e.status != 409:
                raise
            node = self.api.request("GET", path)
            theirs = str((node.get("spec") or {}).get("providerID") or "")
            if theirs and self.config.provider_id and theirs != self.config.provider_id:
                raise RuntimeError(f"a Node named {self.name} already exists for {theirs}, not for "
                                   f"{self.config.provider_id}; this machine cannot register") from e
            labels = (node.get("metadata") or {}).get("labels") or {}
            missing = {k: v for k, v in self.config.node_labels().items() if labels.get(k) != v}
            if missing:
                node = self.api.request("PATCH", path, body={"metadata": {"labels": missing}},
                                        content_type=MERGE_PATCH)
            log.info("node %s: the Node existed already; taking it over", self.name)
        self.uid = str((node.get("metadata") or {}).get("uid") or "")
        self.pod_cidr = str((node.get("spec") or {}).get("podCIDR") or self.config.network())
        self.registered = True
        self.orphaned = False
        self.report_status(node)
        return node

    def sync_status(self) -> None:
        """Read the Node; write its status when something changed or the last report is getting old."""
        try:
            node = self.api.request("GET", f"/api/v1/nodes/{quote(self.name)}")
        except ApiError as e:
            if e.status == 404:
                self._orphan()
                return
            raise
        if (node.get("metadata") or {}).get("uid") != self.uid:
            self._orphan()  # deleted and created again by someone else
            return
        status = node.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        stale = time.monotonic() - self._last_report >= self.status_report_seconds
        current = tuple(self._conditions())
        mine = next((c[1] for c in current if c[0] == "Ready"), "Unknown")
        changed = status.get("allocatable") != self.config.allocatable() or \
            status.get("capacity") != self.config.capacity() or current != self._last_conditions
        if stale or changed or not ready or ready.get("status") != mine:
            self.report_status(node)

    def report_status(self, node: Obj) -> None:
        now = stamp()
        old = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
        current = tuple(self._conditions())
        conditions = []
        for kind, status, reason, message in current:
            before = old.get(kind) or {}
            since = before.get("lastTransitionTime") if before.get("status") == status else None
            if kind == "Ready" and status == "True":
                message = self.runtime.ready_message
            conditions.append({"type": kind, "status": status, "reason": reason, "message": message,
                               "lastHeartbeatTime": now, "lastTransitionTime": since or now})
        addresses = []
        if self.config.internal_ip:
            addresses.append({"type": "InternalIP", "address": self.config.internal_ip})
        if self.config.internal_dns:
            addresses.append({"type": "InternalDNS", "address": self.config.internal_dns})
        addresses.append({"type": "Hostname", "address": self.name})
        status_body = {
            "capacity": self.config.capacity(), "allocatable": self.config.allocatable(), "conditions": conditions,
            "addresses": addresses, "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"kubeletVersion": self.runtime.kubelet_version,
                         "kubeProxyVersion": self.runtime.kubelet_version,
                         "containerRuntimeVersion": self.runtime.container_runtime, "operatingSystem": "linux",
                         "architecture": self.config.arch, "osImage": self.runtime.os_image,
                         "kernelVersion": self.runtime.kernel, "machineID": self.config.machine_id or self.name,
                         "systemUUID": self.config.machine_id or self.name, "bootID": self._boot_id}}
        try:
            self.api.request("PATCH", f"/api/v1/nodes/{quote(self.name)}/status", body={"status": status_body},
                             content_type=MERGE_PATCH)
        except ApiError as e:
            if e.status == 404:
                self._orphan()
                return
            raise
        self._last_report = time.monotonic()
        self._last_conditions = current
        self.status_reports += 1

    def _orphan(self) -> None:
        if not self.orphaned:
            log.error("node %s: its Node was deleted while it ran; it stops heartbeating and does not "
                      "register again (as a kubelet would not until it restarts)", self.name)
        self.orphaned = True
        self._lease = None

    def renew_lease(self) -> None:
        """Create or renew kube-node-lease/<name> (the heartbeat the node lifecycle controller reads)."""
        if self.orphaned:
            return
        base = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"
        path = f"{base}/{quote(self.name)}"
        for attempt in range(2):
            if self._lease is None:
                try:
                    self._lease = self.api.request("GET", path)
                except ApiError as e:
                    if e.status != 404:
                        raise
                    self._lease = self.api.request("POST", base, body=self._new_lease())
                    self.lease_renewals += 1
                    return
            lease = dict(self._lease or {})
            lease["spec"] = {**(lease.get("spec") or {}), "holderIdentity": self.name,
                             "leaseDurationSeconds": self.lease_duration_seconds, "renewTime": micro_stamp()}
            try:
                self._lease = self.api.request("PUT", path, body=lease)
                self.lease_renewals += 1
                return
            except ApiError as e:
                self._lease = None
                if e.status not in (404, 409) or attempt:
                    raise

    def _new_lease(self) -> Obj:
        md: Obj = {"name": self.name, "namespace": LEASE_NAMESPACE}
        if self.uid:
            md["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self.uid}]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": md,
                "spec": {"holderIdentity": self.name, "leaseDurationSeconds": self.lease_duration_seconds,
                         "renewTime": micro_stamp()}}

    def event(self, involved: Obj, namespace: str, reason: str, message: str, kind: str = "Normal") -> None:
        """An Event from this kubelet; losing one is logged, never fatal. With `async_events` it is posted
        by a background thread, so a pod's start never waits for its Events."""
        if not self.record_events:
            return
        if self.async_events:
            if self._events is None:
                from concurrent.futures import ThreadPoolExecutor

                self._events = ThreadPoolExecutor(max_workers=2, thread_name_prefix="events")
            self._events.submit(self._post_event, involved, namespace, reason, message, kind)
            return
        self._post_event(involved, namespace, reason, message, kind)

    def close(self) -> None:
        """Drop Events not yet posted (the agent is stopping)."""
        if self._events is not None:
            self._events.shutdown(wait=False, cancel_futures=True)

    def _post_event(self, involved: Obj, namespace: str, reason: str, message: str, kind: str) -> None:
        now = stamp()
        event = {"apiVersion": "v1", "kind": "Event",
                 "metadata": {"name": f"{involved['name']}.{secrets.token_hex(8)}", "namespace": namespace},
                 "involvedObject": involved, "reason": reason, "message": message, "type": kind,
                 "source": {"component": "kubelet", "host": self.name}, "firstTimestamp": now,
                 "lastTimestamp": now, "count": 1, "reportingComponent": "kubelet", "reportingInstance": self.name}
        try:
            self.api.request("POST", f"/api/v1/namespaces/{quote(namespace)}/events", body=event)
        except Exception as e:  # noqa: BLE001 - an event is never worth stopping for
            log.warning("node %s: could not record event %s: %s", self.name, reason, e)
