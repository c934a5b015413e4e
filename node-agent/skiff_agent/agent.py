"""The agent: a node's heartbeat, the pods bound to it, and the workers that run them.

Why this exists: it ties the pieces together the way kubelet's sync loop does. It obtains its node
credential (a bootstrap token exchanged once, kept in the state directory), registers the Node and
keeps its Lease and conditions fresh, follows the pods bound here with a watch on
`spec.nodeName=<me>` and a periodic full list (so a dropped watch loses nothing), hands each pod to
its PodWorker, wakes workers on Docker's container events, and removes containers whose pods no
longer exist. When the API is unreachable the containers keep running and the workers keep
restarting them; statuses are written once it answers again.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from skiff_agent import configvolumes
from skiff_agent import labels as L
from skiff_agent.api import ApiError, ApiUnreachable, HTTPTransport
from skiff_agent.config import AgentConfig
from skiff_agent.node import HEALTHY, Condition, NodeReporter, RuntimeInfo
from skiff_agent.podworker import NodeContext, PodWorker
from skiff_agent.runtime import Runtime

log = logging.getLogger("skiff.agent")

Obj = dict[str, Any]
MEMORY_PRESSURE_BYTES = 100 * 1024 * 1024  # kubelet's default hard eviction threshold memory.available<100Mi
DISK_PRESSURE_FRACTION = 0.10  # nodefs.available<10%
WATCH_SECONDS = 300


def obtain_credential(config: AgentConfig) -> str:
    """The node token: given, kept from an earlier run, or exchanged for the bootstrap token now."""
    if config.node_token:
        return config.node_token
    path = config.credential_file
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    api = HTTPTransport(config.api_url, config.bootstrap_token, config.ca_file)
    body = {"apiVersion": "skiff.io/v1", "kind": "NodeCredentialRequest",
            "spec": {"nodeName": config.node.name, "instanceID": config.instance_id}}
    answer = api.request("POST", "/apis/skiff.io/v1/nodecredentialrequests", body=body)
    api.close()
    token = str(((answer or {}).get("status") or {}).get("token") or "")
    if not token:
        raise RuntimeError("the API answered the credential request without a token")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    tmp.replace(path)
    log.info("node %s: exchanged the bootstrap token for a node credential", config.node.name)
    return token


class Agent:
    """One node. `start()` runs it in background threads; `stop()` ends them, leaving containers running
    (a restarted agent adopts them)."""

    def __init__(self, config: AgentConfig, docker_client: Any, *, images: Any, logs: Any = None,
                 stream_name: Any = None, api: HTTPTransport | None = None) -> None:
        self.config = config
        self.name = config.node.name
        self.docker = docker_client
        self.api = api or HTTPTransport(config.api_url, obtain_credential(config), config.ca_file,
                                        pool_size=16)
        version = "unknown"
        try:
            version = str(docker_client.version().get("Version") or "unknown")
        except Exception:  # noqa: BLE001 - reported as unknown; Ready says whether Docker answers
            log.warning("could not ask Docker for its version")
        self._docker_ok = True
        self.reporter = NodeReporter(config.node, self.api, conditions=self.conditions, async_events=True,
                                     runtime=RuntimeInfo(container_runtime=f"docker://{version}",
                                                         os_image="Skiff node", kernel=os.uname().release))
        self.runtime = Runtime(docker_client, self.name, sandbox_image=config.sandbox_image,
                               host_port_address=config.host_port_address)
        self.context = NodeContext(node_name=self.name, host_ip=config.node.internal_ip or "127.0.0.1",
                                   api=self.api, runtime=self.runtime, images=images, events=self.reporter,
                                   logs=logs, stream_name=stream_name, configmaps=self._configmap,
                                   backoff_initial=config.backoff_seconds,
                                   volume_root=config.state_dir / "volumes")
        self.workers: dict[str, PodWorker] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.listed = threading.Event()  # the first full list of pods has been handled

    # --- lifecycle ---

    def start(self) -> Agent:
        for target, name in ((self._heartbeat_loop, "heartbeat"), (self._pods_loop, "pods"),
                             (self._docker_events_loop, "docker-events")):
            t = threading.Thread(target=target, name=f"agent-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        log.info("node agent %s started (API %s)", self.name, self.config.api_url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop within `timeout` seconds in all: workers finish the step they are in (a watch or a Docker
        event stream blocked in a read is left to end with the process)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            workers = list(self.workers.values())
        for w in workers:
            w.stop()
        for w in workers:
            w.join(max(0.0, deadline - time.monotonic()))
        for t in self._threads:
            if t.name == "agent-heartbeat":
                t.join(max(0.0, deadline - time.monotonic()))
        self.reporter.close()
        self.api.close()

    def wait(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(1.0)

    # --- the node ---

    def conditions(self) -> Sequence[Condition]:
        out = list(HEALTHY[:-1])
        try:
            with open("/proc/meminfo") as f:
                info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f if line.strip()}
            if info.get("MemAvailable", MEMORY_PRESSURE_BYTES + 1) < MEMORY_PRESSURE_BYTES:
                out[0] = ("MemoryPressure", "True", "KubeletHasInsufficientMemory",
                          "kubelet has insufficient memory available")
        except OSError:
            pass
        try:
            usage = shutil.disk_usage(self.config.state_dir if self.config.state_dir.exists() else "/")
            if usage.free < usage.total * DISK_PRESSURE_FRACTION:
                out[1] = ("DiskPressure", "True", "KubeletHasDiskPressure", "kubelet has disk pressure")
        except OSError:
            pass
        if self._docker_ok:
            out.append(HEALTHY[-1])
        else:
            out.append(("Ready", "False", "KubeletNotReady", "container runtime is down"))
        return out

    def _heartbeat_loop(self) -> None:
        failures = 0
        next_lease = next_status = 0.0
        while not self._stop.is_set():
            try:
                if not self.reporter.registered:
                    self.reporter.register()
                    self.reporter.event({"kind": "Node", "name": self.name, "uid": self.name}, "default",
                                        "Starting", "Starting kubelet.")
                now = time.monotonic()
                if now >= next_lease:
                    self.reporter.renew_lease()
                    next_lease = now + 10.0
                if now >= next_status:
                    self._docker_ok = self._ping_docker()
                    self.reporter.sync_status()
                    next_status = now + 10.0
                failures = 0
                self._stop.wait(max(0.1, min(next_lease, next_status) - time.monotonic()))
            except Exception as e:  # noqa: BLE001 - retried with back-off, logged loudly
                failures += 1
                level = logging.ERROR if isinstance(e, ApiError | OSError) else logging.CRITICAL
                log.log(level, "node %s: heartbeat failed (%d in a row): %s", self.name, failures, e)
                self._stop.wait(min(10.0, 2.0 ** failures / 2))

    def _ping_docker(self) -> bool:
        try:
            return bool(self.docker.ping())
        except Exception:  # noqa: BLE001 - Docker down: the node says NotReady
            return False

    # --- pods ---

    def _pods_loop(self) -> None:
        failures = 0
        selector = {"fieldSelector": f"spec.nodeName={self.name}"}
        while not self._stop.is_set():
            try:
                body = self.api.request("GET", "/api/v1/pods", query=selector)
                rv = str(((body or {}).get("metadata") or {}).get("resourceVersion") or "")
                self._reconcile((body or {}).get("items") or [])
                self.listed.set()
                failures = 0
                relist_at = time.monotonic() + self.config.resync_seconds
                while not self._stop.is_set() and time.monotonic() < relist_at and rv:
                    rv = self._watch(selector, rv, relist_at)
            except Exception as e:  # noqa: BLE001 - the API may be away: containers keep running
                failures += 1
                # one dropped connection is routine (the next list repairs it); a run of them is not
                level = logging.WARNING if isinstance(e, ApiUnreachable) and failures < 3 else logging.ERROR
                log.log(level, "node %s: following pods failed (%d in a row): %s", self.name, failures, e)
                self._stop.wait(min(10.0, 2.0 ** failures / 2))

    def _watch(self, selector: dict[str, str], rv: str, until: float) -> str:
        """Watch from rv until `until`; the last resourceVersion seen ("" to relist)."""
        seconds = max(1, min(WATCH_SECONDS, int(until - time.monotonic())))
        query = {**selector, "watch": "true", "resourceVersion": rv, "timeoutSeconds": str(seconds),
                 "allowWatchBookmarks": "true"}
        for event in self.api.watch("/api/v1/pods", query, timeout=seconds + 30):
            if self._stop.is_set():
                return ""
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                log.info("node %s: watch ended (%s); listing again", self.name, obj.get("message"))
                return ""
            rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
            if kind in ("ADDED", "MODIFIED"):
                self._upsert(obj)
            elif kind == "DELETED":
                self._deleted(str((obj.get("metadata") or {}).get("uid") or ""))
        return rv

    def _reconcile(self, pods: list[Obj]) -> None:
        present = set()
        for pod in pods:
            present.add(str((pod.get("metadata") or {}).get("uid") or ""))
            self._upsert(pod)
        with self._lock:
            missing = [uid for uid in self.workers if uid not in present]
        for uid in missing:
            self._deleted(uid)
        self._remove_orphans(present)

    def _upsert(self, pod: Obj) -> None:
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        if (pod.get("spec") or {}).get("nodeName") != self.name or not uid:
            return
        with self._lock:
            worker = self.workers.get(uid)
            if worker is not None and worker.finished:
                return
            if worker is None:
                worker = PodWorker(self.context, pod)
                self.workers[uid] = worker
                worker.start()
                return
        worker.update(pod)

    def _deleted(self, uid: str) -> None:
        with self._lock:
            worker = self.workers.get(uid)
        if worker is not None:
            worker.gone()

    def _remove_orphans(self, present: set[str]) -> None:
        """Containers of pods that no longer exist (deleted while the agent was away) are stopped."""
        with self._lock:
            known = present | set(self.workers)
            for uid, w in list(self.workers.items()):
                if w.finished:
                    del self.workers[uid]
        orphans = [r for r in self.runtime.containers() if r.pod_uid and r.pod_uid not in known]
        for r in orphans:
            log.warning("node %s: removing container %s of pod %s/%s, which no longer exists", self.name,
                        r.id[:12], r.labels.get(L.POD_NAMESPACE), r.labels.get(L.POD_NAME))
            grace = min(30, int(r.labels.get(L.GRACE, "30") or 30))
            if r.running:
                self.runtime.stop(r.id, grace)
            self.runtime.remove(r.id)
        for uid in {r.pod_uid for r in orphans}:
            for volume in self.runtime.volumes(uid):
                self.runtime.remove_volume(volume)
            configvolumes.remove(self.context.volume_root / uid)

    def _configmap(self, namespace: str, name: str) -> Obj | None:
        try:
            return dict(self.api.request("GET", f"/api/v1/namespaces/{quote(namespace)}/configmaps/{quote(name)}"))
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    # --- Docker's events wake the pod they concern ---

    def _docker_events_loop(self) -> None:
        while not self._stop.is_set():
            try:
                events = self.docker.events(decode=True, filters={"type": "container", "label": f"{L.NODE}={self.name}",
                                                                  "event": ["die", "start", "oom"]})
                for ev in events:
                    if self._stop.is_set():
                        events.close()
                        return
                    uid = ((ev.get("Actor") or {}).get("Attributes") or {}).get(L.POD_UID, "")
                    with self._lock:
                        worker = self.workers.get(uid)
                    if worker is not None:
                        worker.wake()
            except Exception as e:  # noqa: BLE001 - Docker restarting: workers still resync on their own
                log.warning("node %s: Docker events stopped (%s); reconnecting", self.name, e)
                self._stop.wait(2.0)

    def stats(self) -> Obj:
        return {"name": self.name, "pods": len(self.workers), "status_writes": dict(self.context.status_writes),
                "lease_renewals": self.reporter.lease_renewals}
