"""A stand-in for the scheduler and the node agent in controller tests (the real ones come later).

It binds unscheduled pods to its node (as the scheduler would, with an admin token), reports them
Running and Ready through `/status` with a node token (as the agent will, under NodeRestriction),
and confirms graceful deletions with grace period 0. Named for what it is: no container runs.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException


class FakeKubelet:
    def __init__(self, admin: client.ApiClient, node_api: client.ApiClient, node: str,
                 ready_delay: float = 0.0) -> None:
        self.admin = client.CoreV1Api(admin)
        self.node = client.CoreV1Api(node_api)
        self.name = node
        self.ready_delay = ready_delay
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.errors: list[str] = []

    def __enter__(self) -> FakeKubelet:
        try:
            self.node.create_node({"metadata": {"name": self.name, "labels": {"kubernetes.io/hostname": self.name}}})
        except ApiException as e:
            if e.status != 409:
                raise
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        seen: dict[str, float] = {}
        while not self._stop.is_set():
            try:
                self._step(seen)
            except ApiException as e:
                if e.status not in (404, 409):
                    self.errors.append(f"{e.status}: {e.body}")
            except Exception as e:  # noqa: BLE001 - reported by the test, not lost with the thread
                self.errors.append(repr(e))
            time.sleep(0.2)

    def _step(self, seen: dict[str, float]) -> None:
        for pod in self.admin.list_pod_for_all_namespaces().items:
            md, spec = pod.metadata, pod.spec
            if md.deletion_timestamp:
                if spec.node_name == self.name:
                    self.node.delete_namespaced_pod(md.name, md.namespace, grace_period_seconds=0)
                continue
            if not spec.node_name:
                self.admin.create_namespaced_pod_binding(md.name, md.namespace, {
                    "apiVersion": "v1", "kind": "Binding", "metadata": {"name": md.name},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": self.name}}, _preload_content=False)
                continue
            if spec.node_name != self.name:
                continue
            ready = any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
            first = seen.setdefault(md.uid, time.monotonic())
            if not ready and time.monotonic() - first >= self.ready_delay:
                self._report_ready(pod)

    def _report_ready(self, pod: Any) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        statuses = [{"name": c.name, "ready": True, "started": True, "restartCount": 0, "image": c.image,
                     "imageID": "", "state": {"running": {"startedAt": now}}} for c in pod.spec.containers]
        conditions = [{"type": t, "status": "True", "lastTransitionTime": now}
                      for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]
        self.node.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace, {"status": {
            "phase": "Running", "conditions": conditions, "containerStatuses": statuses, "startTime": now,
            "hostIP": "127.0.0.1", "podIP": "10.0.0.1"}})
