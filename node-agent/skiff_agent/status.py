"""A pod's status from what its containers are doing: phase, conditions, container statuses.

Why this exists: this is kubelet's status manager in small. The phase follows kubelet's rules
(init containers first; Always keeps a pod Running while it restarts; OnFailure and Never end it
Succeeded or Failed), Ready follows readiness, and containerStatuses carry state, lastState,
restartCount, ready, started and imageID. Pure functions, so each rule is tested on its own; the
pod worker writes the result only when it differs from what it wrote last (no write when nothing
changed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
OWN_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")


@dataclass
class ContainerView:
    """One container of the pod as the status shows it."""

    name: str
    image: str
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    image_id: str = ""
    container_id: str = ""
    sidecar: bool = False

    def as_status(self) -> Obj:
        out: Obj = {"name": self.name, "image": self.image, "imageID": self.image_id, "ready": self.ready,
                    "restartCount": self.restart_count, "started": self.started, "state": self.state,
                    "lastState": self.last_state}
        if self.container_id:
            out["containerID"] = self.container_id
        return out

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def terminated(self) -> Obj | None:
        return self.state.get("terminated")

    @property
    def ever_terminated(self) -> bool:
        return "terminated" in self.state or "terminated" in self.last_state


def phase(restart_policy: str, init: Sequence[ContainerView], sidecars_done: bool, initialized: bool,
          containers: Sequence[ContainerView]) -> str:
    """kubelet's getPhase."""
    if not initialized:
        if restart_policy == "Never" and any(
                not c.sidecar and c.terminated and c.terminated.get("exitCode") != 0 for c in init):
            return "Failed"
        return "Pending"
    del sidecars_done
    running = waiting = stopped = succeeded = 0
    for c in containers:
        if c.running:
            running += 1
        elif c.terminated is not None:
            stopped += 1
            if c.terminated.get("exitCode") == 0:
                succeeded += 1
        elif "terminated" in c.last_state:
            stopped += 1
            if c.last_state["terminated"].get("exitCode") == 0:
                succeeded += 1
        else:
            waiting += 1
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(kind: str, ok: bool, before: dict[str, Obj], now: str, reason: str = "") -> Obj:
    status = "True" if ok else "False"
    old = before.get(kind) or {}
    since = old.get("lastTransitionTime") if old.get("status") == status and old.get("lastTransitionTime") else now
    out: Obj = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": since}
    if reason and not ok:
        out["reason"] = reason
    return out


def conditions(existing: Sequence[Obj], *, sandbox_ready: bool, initialized: bool, containers_ready: bool,
               pod_phase: str, now: str) -> list[Obj]:
    """The pod's conditions: those we own recomputed, others (PodScheduled, readiness gates) kept."""
    before = {str(c.get("type")): c for c in existing}
    finished = pod_phase in ("Succeeded", "Failed")
    reason_ready = "PodCompleted" if finished else "ContainersNotReady"
    mine = [
        _condition("PodReadyToStartContainers", sandbox_ready, before, now),
        _condition("Initialized", initialized, before, now,
                   "PodCompleted" if finished else "ContainersNotInitialized"),
        _condition("ContainersReady", containers_ready and not finished, before, now, reason_ready),
        _condition("Ready", containers_ready and not finished, before, now, reason_ready),
    ]
    kept = [c for c in existing if c.get("type") not in OWN_CONDITIONS]
    if "PodScheduled" not in before:  # bound by spec.nodeName, not by the scheduler: kubelet says so itself
        kept.insert(0, {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now})
    return kept + mine


def comparable(status: Obj) -> Obj:
    """The status without the fields that change on every computation (for 'did anything change')."""
    out = dict(status)
    out["conditions"] = [{k: v for k, v in c.items() if k != "lastProbeTime"} for c in status.get("conditions") or []]
    return out
