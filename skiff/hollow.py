"""A hollow node: a simulated node agent that registers, heartbeats and "runs" pods without containers.

Why this exists: locally, moto's EC2 instances are records, not machines, and the real node agent
(`node-agent/`) is not there yet, so nothing would ever register a Node for an instance the
provisioner launches. A hollow node plays that agent's part the way kubemark's hollow kubelet does:
it speaks to the cluster only through the HTTP API with its own node token (so NodeRestriction,
invariant 6, applies to it exactly as to a real agent), registers its Node with capacity and
labels, renews its Lease in kube-node-lease, keeps the Ready condition's heartbeat, reports the pods
bound to it Running and Ready through /status (no container runs), and confirms graceful deletions
with grace period 0. It is also the cheap node of scale tests: one thread and a few requests a
second per node.

Failures never leave the node's thread: each duty (lease, status, pods) is retried on its own with
back-off and logged loudly, so a broken API or a rejected write shows up in the log, not as a dead
runtime. Like a kubelet, a hollow node never re-creates its Node once it is deleted while running
(the provisioner deletes the Node of an instance it terminates): it stops heartbeating and says so.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode

log = logging.getLogger("skiff.hollow")

Obj = dict[str, Any]
KUBELET_VERSION = "v1.32.0-skiff-hollow"
LEASE_NAMESPACE = "kube-node-lease"
MERGE_PATCH = "application/merge-patch+json"
MIB = 1024 * 1024
GIB = 1024 * MIB
DEFAULT_MAX_PODS = 110
# A small system reserve for a node given only its capacity: what kubelet and the OS keep
# (--kube-reserved/--system-reserved and the eviction threshold of a typical node image).
DEFAULT_RESERVED_CPU_MILLI = 100
DEFAULT_RESERVED_MEMORY = 256 * MIB + 100 * MIB
FINISHED = ("Succeeded", "Failed")
NODE_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status (hollow node: no containers run)"),
)
POD_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")


def _stamp(t: datetime | None = None) -> str:
    return (t or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_stamp(t: datetime | None = None) -> str:
    return (t or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _milli(cpu_milli: int) -> str:
    return str(cpu_milli // 1000) if cpu_milli % 1000 == 0 else f"{cpu_milli}m"


def _bytes(memory: int) -> str:
    return f"{memory // 1024}Ki" if memory % 1024 == 0 else str(memory)


# --- the API, as the node sees it ---


class ApiError(Exception):
    """A non-2xx answer from the API: the HTTP status and the Status message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class Transport(Protocol):
    """One API call: the decoded JSON answer, or ApiError."""

    def request(self, method: str, path: str, *, query: Mapping[str, str] | None = None, body: Any = None,
                content_type: str = "application/json") -> Any: ...


class HTTPTransport:
    """The API over HTTPS with a bearer token, trusting only the cluster's CA (the local API's
    self-signed certificate)."""

    def __init__(self, api_url: str, token: str, ca_file: Path | str, *, timeout: float = 15.0) -> None:
        import urllib3

        self.base = api_url.rstrip("/")
        self._token = token
        self._timeout = urllib3.Timeout(connect=5.0, read=timeout)
        self._http = urllib3.PoolManager(num_pools=1, maxsize=2, cert_reqs="CERT_REQUIRED", ca_certs=str(ca_file),
                                         retries=False)

    def request(self, method: str, path: str, *, query: Mapping[str, str] | None = None, body: Any = None,
                content_type: str = "application/json") -> Any:
        url = self.base + path + (f"?{urlencode(dict(query))}" if query else "")
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json",
                   "User-Agent": f"skiff-hollow/{KUBELET_VERSION}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        resp = self._http.request(method, url, body=data, headers=headers, timeout=self._timeout)
        return decode_response(resp.status, resp.data)

    def close(self) -> None:
        self._http.clear()


def decode_response(status: int, data: bytes | str) -> Any:
    """The JSON body of a 2xx answer; ApiError with the Status's reason and message otherwise."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    if 200 <= status < 300:
        return body
    if isinstance(body, dict):
        raise ApiError(status, str(body.get("reason") or ""), str(body.get("message") or text[:200]))
    raise ApiError(status, "", text[:200])


# --- what the node is ---


@dataclass(frozen=True)
class NodeConfig:
    """What a hollow node reports about itself (an instance's facts, as a kubelet would find them)."""

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
        return {"cpu": _milli(self.cpu_milli), "memory": _bytes(self.memory_bytes), "pods": str(self.max_pods),
                "ephemeral-storage": _bytes(20 * GIB)}

    def allocatable(self) -> dict[str, str]:
        cpu = self.allocatable_cpu_milli
        if cpu is None:
            cpu = max(0, self.cpu_milli - DEFAULT_RESERVED_CPU_MILLI)
        memory = self.allocatable_memory_bytes
        if memory is None:
            memory = max(0, self.memory_bytes - DEFAULT_RESERVED_MEMORY)
        return {"cpu": _milli(cpu), "memory": _bytes(memory), "pods": str(self.max_pods),
                "ephemeral-storage": _bytes(18 * GIB)}

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


@dataclass
class HollowStats:
    """What the node did, for tests, `skiff status` and the log."""

    lease_renewals: int = 0
    status_reports: int = 0
    pods_started: int = 0
    deletions_confirmed: int = 0
    errors: int = 0
    last_error: str = ""


class _Duty:
    """One periodic duty with its own schedule and back-off."""

    def __init__(self, name: str, every: float, action: Callable[[], None]) -> None:
        self.name, self.every, self.action = name, every, action
        self.due = 0.0
        self.failures = 0


class HollowNode:
    """A simulated node agent for one machine. `start()` runs it in a daemon thread; `stop()` ends it."""

    def __init__(self, config: NodeConfig, transport: Transport, *, lease_seconds: float = 10.0,
                 lease_duration_seconds: int = 40, status_seconds: float = 10.0, status_report_seconds: float = 60.0,
                 pod_poll_seconds: float = 1.0, record_events: bool = True,
                 on_stop: Callable[[HollowNode], None] | None = None) -> None:
        self.config = config
        self.api = transport
        self.lease_seconds = lease_seconds
        self.lease_duration_seconds = lease_duration_seconds
        self.status_report_seconds = status_report_seconds
        self.record_events = record_events
        self.stats = HollowStats()
        self.registered = False
        self.orphaned = False  # the Node was deleted under us: no more heartbeats
        self._on_stop = on_stop
        self._uid = ""
        self._pod_cidr = ""
        self._lease: Obj | None = None
        self._last_report = float("-inf")
        self._reported: set[str] = set()  # pod uids reported Running and Ready
        self._ips: dict[str, str] = {}  # pod uid -> pod IP
        self._boot_id = str(uuid.uuid4())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._duties = [_Duty("lease", lease_seconds, self.renew_lease),
                        _Duty("status", status_seconds, self.sync_status),
                        _Duty("pods", pod_poll_seconds, self.sync_pods)]

    @classmethod
    def connect(cls, api_url: str, token: str, ca_file: Path | str, config: NodeConfig, **options: Any) -> HollowNode:
        """A hollow node talking to the API at `api_url` with a node token."""
        return cls(config, HTTPTransport(api_url, token, ca_file), **options)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # --- lifecycle ---

    def start(self) -> HollowNode:
        if self._thread is not None:
            raise RuntimeError(f"hollow node {self.name} was started already")
        self._thread = threading.Thread(target=self._run, name=f"hollow-{self.name}", daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the thread to end without waiting (to stop many nodes with one wait)."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop heartbeating and reporting (the machine went away); True when the thread ended in time."""
        self._stop.set()
        if self._thread is None or self._thread is threading.current_thread():
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        log.info("hollow node %s starting (%s)", self.name, self.config.provider_id or "no provider ID")
        try:
            self._loop()
        except BaseException:  # noqa: BLE001 - a node's death is logged, never raised into the runtime
            log.critical("hollow node %s: its thread died; the node stops heartbeating", self.name, exc_info=True)
        finally:
            close = getattr(self.api, "close", None)
            if callable(close):
                close()
            log.info("hollow node %s stopped", self.name)
            if self._on_stop is not None:
                self._on_stop(self)

    def _loop(self) -> None:
        register_failures = 0
        while not self._stop.is_set():
            if not self.registered:
                try:
                    self.register()
                    register_failures = 0
                except Exception as e:  # noqa: BLE001 - retried with back-off, logged loudly
                    register_failures += 1
                    self._failed("register", e, register_failures)
                    self._stop.wait(_backoff(register_failures))
                    continue
            now = time.monotonic()
            for duty in self._duties:
                if self._stop.is_set() or now < duty.due:
                    continue
                if self.orphaned and duty.name != "pods":
                    duty.due = now + duty.every
                    continue
                try:
                    duty.action()
                    duty.failures = 0
                    duty.due = now + duty.every
                except Exception as e:  # noqa: BLE001 - retried with back-off, logged loudly
                    duty.failures += 1
                    self._failed(duty.name, e, duty.failures)
                    duty.due = now + min(duty.every, _backoff(duty.failures))
            wait = min(d.due for d in self._duties) - time.monotonic()
            self._stop.wait(max(0.01, wait))

    def _failed(self, what: str, error: Exception, failures: int) -> None:
        self.stats.errors += 1
        self.stats.last_error = f"{what}: {error!r}"
        if isinstance(error, ApiError):
            log.error("hollow node %s: %s failed (%d in a row): %s", self.name, what, failures, error)
        else:
            log.error("hollow node %s: %s failed (%d in a row)", self.name, what, failures, exc_info=error)

    # --- registration and heartbeats (each a public step, so tests can drive them one by one) ---

    def node_object(self) -> Obj:
        """The Node this agent registers."""
        spec: Obj = {}
        if self.config.provider_id:
            spec["providerID"] = self.config.provider_id
        spec["podCIDR"] = str(self.config.network())
        if self.config.taints:
            spec["taints"] = [dict(t) for t in self.config.taints]
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.name, "labels": self.config.node_labels(),
                             "annotations": {"skiff.io/hollow": "true"}},
                "spec": spec}

    def register(self) -> None:
        """Create the Node, or take over the one this machine registered before (same providerID)."""
        path = f"/api/v1/nodes/{quote(self.name)}"
        try:
            node = self.api.request("POST", "/api/v1/nodes", body=self.node_object())
            log.info("hollow node %s registered", self.name)
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
            log.info("hollow node %s: the Node existed already; taking it over", self.name)
        md = node.get("metadata") or {}
        self._uid = str(md.get("uid") or "")
        self._pod_cidr = str((node.get("spec") or {}).get("podCIDR") or self.config.network())
        self.registered = True
        self.orphaned = False
        self._report_status(node)
        self._event({"kind": "Node", "name": self.name, "uid": self.name}, "default", "Starting",
                    "Starting hollow kubelet (a simulated node: no containers run).")
        for duty in self._duties:
            duty.due = 0.0

    def sync_status(self) -> None:
        """Read the Node; write its status when something changed or the last report is getting old."""
        try:
            node = self.api.request("GET", f"/api/v1/nodes/{quote(self.name)}")
        except ApiError as e:
            if e.status == 404:
                self._orphan()
                return
            raise
        if (node.get("metadata") or {}).get("uid") != self._uid:
            self._orphan()  # deleted and created again by someone else
            return
        status = node.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        stale = time.monotonic() - self._last_report >= self.status_report_seconds
        changed = status.get("allocatable") != self.config.allocatable() or \
            status.get("capacity") != self.config.capacity()
        if stale or changed or not ready or ready.get("status") != "True":
            self._report_status(node)

    def _report_status(self, node: Obj) -> None:
        now = _stamp()
        old = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
        conditions = []
        for kind, status, reason, message in NODE_CONDITIONS:
            before = old.get(kind) or {}
            since = before.get("lastTransitionTime") if before.get("status") == status else None
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
            "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                         "containerRuntimeVersion": "hollow://0.1.0", "operatingSystem": "linux",
                         "architecture": self.config.arch, "osImage": "Skiff hollow node",
                         "kernelVersion": "hollow", "machineID": self.config.machine_id or self.name,
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
        self.stats.status_reports += 1

    def _orphan(self) -> None:
        if not self.orphaned:
            log.error("hollow node %s: its Node was deleted while it ran; it stops heartbeating and does not "
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
                    self.stats.lease_renewals += 1
                    return
            lease = dict(self._lease or {})
            lease["spec"] = {**(lease.get("spec") or {}), "holderIdentity": self.name,
                             "leaseDurationSeconds": self.lease_duration_seconds, "renewTime": _micro_stamp()}
            try:
                self._lease = self.api.request("PUT", path, body=lease)
                self.stats.lease_renewals += 1
                return
            except ApiError as e:
                self._lease = None
                if e.status not in (404, 409) or attempt:
                    raise

    def _new_lease(self) -> Obj:
        md: Obj = {"name": self.name, "namespace": LEASE_NAMESPACE}
        if self._uid:
            md["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self._uid}]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": md,
                "spec": {"holderIdentity": self.name, "leaseDurationSeconds": self.lease_duration_seconds,
                         "renewTime": _micro_stamp()}}

    # --- pods ---

    def sync_pods(self) -> None:
        """Report the pods bound here Running and Ready; confirm the graceful deletion of those going."""
        body = self.api.request("GET", "/api/v1/pods", query={"fieldSelector": f"spec.nodeName={self.name}"})
        seen: set[str] = set()
        for pod in (body or {}).get("items") or []:
            md, status = pod.get("metadata") or {}, pod.get("status") or {}
            uid = str(md.get("uid") or "")
            seen.add(uid)
            if status.get("podIP") and uid not in self._ips:
                self._ips[uid] = str(status["podIP"])  # reported before (by us, before a restart)
            if md.get("deletionTimestamp"):
                self._confirm_deletion(pod)
            elif status.get("phase") in FINISHED or self.orphaned:
                continue
            elif uid not in self._reported or not _running_ready(pod):
                self._report_running(pod)
        for uid in set(self._ips) - seen:
            del self._ips[uid]
        self._reported &= seen

    def _confirm_deletion(self, pod: Obj) -> None:
        md = pod["metadata"]
        path = f"/api/v1/namespaces/{quote(md['namespace'])}/pods/{quote(md['name'])}"
        try:
            self.api.request("DELETE", path, query={"gracePeriodSeconds": "0"},
                             body={"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                                   "preconditions": {"uid": md.get("uid")}})
        except ApiError as e:
            if e.status not in (404, 409):
                raise
            return
        self.stats.deletions_confirmed += 1
        log.debug("hollow node %s: confirmed the deletion of %s/%s", self.name, md["namespace"], md["name"])

    def _pod_ip(self, pod: Obj) -> str:
        if (pod.get("spec") or {}).get("hostNetwork"):
            return self.config.internal_ip or "127.0.0.1"
        uid = str(pod["metadata"].get("uid") or "")
        if uid in self._ips:
            return self._ips[uid]
        taken = set(self._ips.values())
        network = ipaddress.IPv4Network(self._pod_cidr or str(self.config.network()), strict=False)
        for host in network.hosts():
            if host == network.network_address + 1:
                continue  # the bridge's own address
            if str(host) not in taken:
                self._ips[uid] = str(host)
                return str(host)
        raise RuntimeError(f"hollow node {self.name}: no pod IP left in {network}")

    def _report_running(self, pod: Obj) -> None:
        md, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        now = _stamp()
        started = status.get("startTime") or now
        ip = self._pod_ip(pod)
        host_ip = self.config.internal_ip or "127.0.0.1"
        old = {c.get("type"): c for c in status.get("conditions") or []}
        conditions = [c for c in status.get("conditions") or [] if c.get("type") not in POD_CONDITIONS]
        for kind in POD_CONDITIONS:
            before = old.get(kind) or {}
            since = before.get("lastTransitionTime") if before.get("status") == "True" else None
            conditions.append({"type": kind, "status": "True", "lastProbeTime": None,
                               "lastTransitionTime": since or now})
        uid = str(md.get("uid") or "")

        def container_status(c: Obj, *, init: bool) -> Obj:
            state: Obj = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started,
                                         "finishedAt": started}} if init else {"running": {"startedAt": started}}
            return {"name": c.get("name"), "image": c.get("image"), "imageID": "",
                    "containerID": f"hollow://{uid}/{c.get('name')}", "ready": True,
                    "started": not init, "restartCount": 0, "state": state}

        body: Obj = {"status": {
            "phase": "Running", "conditions": conditions, "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
            "podIP": ip, "podIPs": [{"ip": ip}], "startTime": started,
            "containerStatuses": [container_status(c, init=False) for c in spec.get("containers") or []]}}
        if spec.get("initContainers"):
            body["status"]["initContainerStatuses"] = [container_status(c, init=True) for c in spec["initContainers"]]
        path = f"/api/v1/namespaces/{quote(md['namespace'])}/pods/{quote(md['name'])}/status"
        try:
            self.api.request("PATCH", path, body=body, content_type=MERGE_PATCH)
        except ApiError as e:
            if e.status in (404, 409):
                return  # gone or changed meanwhile: the next poll looks again
            raise
        first = uid not in self._reported
        self._reported.add(uid)
        if first and not _running_ready(pod):
            self.stats.pods_started += 1
            names = ", ".join(str(c.get("name")) for c in spec.get("containers") or [])
            self._event({"kind": "Pod", "name": md["name"], "namespace": md["namespace"], "uid": uid,
                         "apiVersion": "v1"}, md["namespace"], "Started",
                        f"Started container {names} (hollow node: nothing runs)")

    def _event(self, involved: Obj, namespace: str, reason: str, message: str) -> None:
        """An Event from this kubelet; losing one is logged, never fatal."""
        if not self.record_events:
            return
        now = _stamp()
        event = {"apiVersion": "v1", "kind": "Event",
                 "metadata": {"name": f"{involved['name']}.{secrets.token_hex(8)}", "namespace": namespace},
                 "involvedObject": involved, "reason": reason, "message": message, "type": "Normal",
                 "source": {"component": "kubelet", "host": self.name}, "firstTimestamp": now,
                 "lastTimestamp": now, "count": 1, "reportingComponent": "kubelet", "reportingInstance": self.name}
        try:
            self.api.request("POST", f"/api/v1/namespaces/{quote(namespace)}/events", body=event)
        except (ApiError, OSError) as e:
            log.warning("hollow node %s: could not record event %s: %s", self.name, reason, e)

    def describe(self) -> Obj:
        """A summary for status files and logs."""
        return {"name": self.name, "providerID": self.config.provider_id, "registered": self.registered,
                "orphaned": self.orphaned, "alive": self.alive, "stats": vars(self.stats).copy()}


def _running_ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _backoff(failures: int) -> float:
    return float(min(30, 2 ** min(failures - 1, 5)))
