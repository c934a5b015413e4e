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
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from skiff_agent.api import MERGE_PATCH, ApiError, HTTPTransport, Transport, decode_response
from skiff_agent.node import (
    DEFAULT_MAX_PODS,
    HEALTHY,
    Condition,
    NodeConfig,
    NodeReporter,
    RuntimeInfo,
    stamp,
)

log = logging.getLogger("skiff.hollow")

Obj = dict[str, Any]
HOLLOW_CONDITIONS: tuple[Condition, ...] = (
    *HEALTHY[:-1],
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status (hollow node: no containers run)"),
)
KUBELET_VERSION = "v1.32.0-skiff-hollow"
HOLLOW_RUNTIME = RuntimeInfo(container_runtime="hollow://0.1.0", kubelet_version=KUBELET_VERSION,
                             os_image="Skiff hollow node", kernel="hollow",
                             annotations={"skiff.io/hollow": "true"},
                             ready_message="kubelet is posting ready status (hollow node: no containers run)")
FINISHED = ("Succeeded", "Failed")
POD_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")
__all__ = ["DEFAULT_MAX_PODS", "KUBELET_VERSION", "ApiError", "HTTPTransport", "HollowNode", "NodeConfig",
           "Transport", "decode_response"]


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
        self.reporter = NodeReporter(config, transport, runtime=HOLLOW_RUNTIME, conditions=lambda: HOLLOW_CONDITIONS,
                                     lease_duration_seconds=lease_duration_seconds,
                                     status_report_seconds=status_report_seconds, record_events=record_events)
        self._on_stop = on_stop
        self._reported: set[str] = set()  # pod uids reported Running and Ready
        self._ips: dict[str, str] = {}  # pod uid -> pod IP
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

    # --- registration and heartbeats (the shared NodeReporter; each a public step for tests) ---

    @property
    def registered(self) -> bool:
        return self.reporter.registered

    @property
    def orphaned(self) -> bool:
        return self.reporter.orphaned

    def node_object(self) -> Obj:
        return self.reporter.node_object()

    def register(self) -> None:
        """Create the Node, or take over the one this machine registered before (same providerID)."""
        self.reporter.register()
        self._sync_stats()
        self._event({"kind": "Node", "name": self.name, "uid": self.name}, "default", "Starting",
                    "Starting hollow kubelet (a simulated node: no containers run).")
        for duty in self._duties:
            duty.due = 0.0

    def sync_status(self) -> None:
        self.reporter.sync_status()
        self._sync_stats()

    def renew_lease(self) -> None:
        self.reporter.renew_lease()
        self._sync_stats()

    def _sync_stats(self) -> None:
        self.stats.lease_renewals = self.reporter.lease_renewals
        self.stats.status_reports = self.reporter.status_reports

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
        network = ipaddress.IPv4Network(self.reporter.pod_cidr or str(self.config.network()), strict=False)
        for host in network.hosts():
            if host == network.network_address + 1:
                continue  # the bridge's own address
            if str(host) not in taken:
                self._ips[uid] = str(host)
                return str(host)
        raise RuntimeError(f"hollow node {self.name}: no pod IP left in {network}")

    def _report_running(self, pod: Obj) -> None:
        md, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        now = stamp()
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
        self.reporter.event(involved, namespace, reason, message)

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
