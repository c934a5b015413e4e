"""The scheduler's sync: place every pending pod, or say why it cannot go anywhere.

A pass reads the nodes and pods once into a snapshot, decides pod by pod with the plugin framework,
binds through `pods/<name>/binding` (which reserves the node's capacity in the same transaction, so
concurrent passes never overcommit a node), and accounts each binding in the snapshot as
kube-scheduler's cache assumes a pod. A binding that loses the race for capacity is retried with the
node re-read. A pod that fits nowhere gets PodScheduled=False/Unschedulable with Kubernetes' message
and a FailedScheduling event, written only when the message changes. Unschedulable pods are tried
again on every pass: a pass runs when pods arrive, when a node is added or changes, when capacity
frees up, and on the periodic resync (which caps the back-off at the resync interval).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib import errors
from chalicelib.controllers import events
from chalicelib.controllers.client import Client
from chalicelib.scheduler.framework import (
    DEFAULT_SCHEDULER_NAME,
    Profile,
    bin_packing_profile,
    default_profile,
    schedule,
)
from chalicelib.scheduler.snapshot import Snapshot

Obj = dict[str, Any]
log = logging.getLogger("skiff.scheduler")
COMPONENT = "default-scheduler"
BIND_ATTEMPTS = 3


def profile_from_env() -> Profile:
    """SKIFF_SCHEDULER_SCORING=MostAllocated packs nodes (bin packing); LeastAllocated (default) spreads."""
    if os.environ.get("SKIFF_SCHEDULER_SCORING", "LeastAllocated") == "MostAllocated":
        return bin_packing_profile()
    return default_profile()


def is_pending(pod: Obj) -> bool:
    spec, md = pod.get("spec") or {}, pod.get("metadata") or {}
    return not spec.get("nodeName") and not md.get("deletionTimestamp") \
        and (spec.get("schedulerName") or DEFAULT_SCHEDULER_NAME) == DEFAULT_SCHEDULER_NAME \
        and (pod.get("status") or {}).get("phase", "Pending") == "Pending"


@dataclass
class PassResult:
    bound: dict[str, str] = field(default_factory=dict)  # "ns/name" -> node
    unschedulable: dict[str, str] = field(default_factory=dict)  # "ns/name" -> message


def schedule_pending(client: Client, *, profile: Profile | None = None, now: datetime | None = None) -> PassResult:
    """One scheduling pass over every pending pod, oldest (and highest priority) first."""
    profile = profile or profile_from_env()
    pods = client.list_objects("pods")
    nodes = client.list_objects("nodes")
    pending = sorted((p for p in pods if is_pending(p)),
                     key=lambda p: (-int((p.get("spec") or {}).get("priority") or 0),
                                    (p.get("metadata") or {}).get("creationTimestamp") or "",
                                    (p.get("metadata") or {}).get("name") or ""))
    result = PassResult()
    if not pending:
        return result
    snapshot = Snapshot.from_objects(nodes, pods, namespaces=client.list_objects("namespaces"))
    for pod in pending:
        md = pod["metadata"]
        key = f"{md.get('namespace')}/{md['name']}"
        node, message = _place(client, pod, snapshot, profile)
        if node is not None:
            result.bound[key] = node
        elif message is not None:
            result.unschedulable[key] = message
            _report_unschedulable(client, pod, message, now or datetime.now(UTC))
    return result


def _place(client: Client, pod: Obj, snapshot: Snapshot, profile: Profile) -> tuple[str | None, str | None]:
    """Decide and bind: (node, None) when bound, (None, why) when it fits nowhere, (None, None) when the
    pod went away or kept losing races (the next pass tries again). A lost race for a node's capacity
    re-reads that node and decides again."""
    md = pod["metadata"]
    for _ in range(BIND_ATTEMPTS):
        decision = schedule(pod, snapshot, profile)
        if decision.node is None:
            return None, decision.message
        try:
            client.bind(md["namespace"], md["name"], decision.node)
        except errors.Conflict as e:
            current = client.get("pods", md["namespace"], md["name"])
            if current is None or not is_pending(current):
                return (current or {}).get("spec", {}).get("nodeName"), None  # bound or gone meanwhile
            _refresh_node(client, snapshot, decision.node)
            log.info("binding %s/%s to %s lost a race (%s); deciding again", md["namespace"], md["name"],
                     decision.node, e.message)
            continue
        except errors.NotFound:
            return None, None  # the pod (or the node) went away
        snapshot.add_pod(pod, decision.node)
        events.record(client, pod, reason="Scheduled", component=COMPONENT,
                      message=f"Successfully assigned {md['namespace']}/{md['name']} to {decision.node}")
        return decision.node, None
    return None, None


def _refresh_node(client: Client, snapshot: Snapshot, node_name: str) -> None:
    """Account the pods bound to `node_name` meanwhile (what other schedulers placed there)."""
    for pod in client.list_objects("pods", field_selector=f"spec.nodeName={node_name}"):
        if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            md = pod["metadata"]
            if snapshot.pod(md.get("namespace") or "", md["name"]) is None:
                snapshot.add_pod(pod, node_name)


def _report_unschedulable(client: Client, pod: Obj, message: str, now: datetime) -> None:
    status = pod.get("status") or {}
    conditions = list(status.get("conditions") or [])
    current = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
    if current and current.get("status") == "False" and current.get("message") == message:
        return  # nothing new to say: no write
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                 "lastProbeTime": None,
                 "lastTransitionTime": current.get("lastTransitionTime") if current and
                 current.get("status") == "False" else stamp}
    md = pod["metadata"]
    body = {"metadata": {"resourceVersion": md["resourceVersion"]},
            "status": {"conditions": [c for c in conditions if c.get("type") != "PodScheduled"] + [condition]}}
    try:
        client.patch("pods", md["namespace"], md["name"], body, sub="status")
    except (errors.Conflict, errors.NotFound):
        return  # changed meanwhile: the next pass looks again
    events.record(client, pod, reason="FailedScheduling", component=COMPONENT, type_="Warning", message=message)
