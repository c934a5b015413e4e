"""The ReplicaSet controller: keep `spec.replicas` pods of the template running, report status.

As kube-controller-manager's: it claims pods (adopts matching orphans, releases owned pods that stop
matching), creates missing pods with generateName and a controller ownerReference, deletes surplus
pods least valuable first (unscheduled, then pending, then not ready, then newest), and writes
status (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas honouring minReadySeconds,
observedGeneration) only when it changed. Reading the store directly (strongly consistent) replaces
upstream's informer caches and expectations.
"""

from __future__ import annotations

import copy
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from chalicelib import errors
from chalicelib.api.selectors import selector_from_label_selector
from chalicelib.controllers import events
from chalicelib.controllers.client import Client

Obj = dict[str, Any]
COMPONENT = "replicaset-controller"
BURST = 500
"""Most pods created or deleted in one sync, as upstream's burstReplicas."""


def slow_start_workers() -> int:
    """Concurrent creates per slow-start batch. 1 by default: every create of a type contends for its
    revision counter, and bench/controllers.py measured serial creates fastest locally (docs/benchmarks.md)."""
    return max(1, int(os.environ.get("SKIFF_CONTROLLER_WORKERS", "1")))


def controller_ref(obj: Obj) -> Obj | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def is_active(pod: Obj) -> bool:
    """Counts towards replicas: not being deleted and not finished."""
    return not (pod.get("metadata") or {}).get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def ready_condition(pod: Obj) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return dict(cond)
    return None


def is_ready(pod: Obj) -> bool:
    cond = ready_condition(pod)
    return bool(cond and cond.get("status") == "True")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def is_available(pod: Obj, min_ready_seconds: int, now: datetime) -> bool:
    """Ready for at least minReadySeconds (upstream's podutil.IsPodAvailable)."""
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_time((ready_condition(pod) or {}).get("lastTransitionTime"))
    return since is not None and (now - since).total_seconds() >= min_ready_seconds


def owner_reference(rs: Obj) -> Obj:
    md = rs["metadata"]
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": md["name"], "uid": md["uid"],
            "controller": True, "blockOwnerDeletion": True}


def _deletion_rank(pod: Obj) -> tuple[Any, ...]:
    """Lower sorts first = deleted first (upstream's ActivePods ordering, simplified)."""
    spec, status, md = pod.get("spec") or {}, pod.get("status") or {}, pod.get("metadata") or {}
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(status.get("phase") or "Pending", 0)
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or [])
    ready_since = (ready_condition(pod) or {}).get("lastTransitionTime") or ""
    created = md.get("creationTimestamp") or ""
    # Scheduled before unscheduled, running before pending, ready before not ready; among equals the
    # most recently ready and created go first, and more restarts go first.
    return (bool(spec.get("nodeName")), phase_rank, is_ready(pod), _inverse(ready_since), -restarts,
            _inverse(created), md.get("name") or "")


def _inverse(text: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in text)


_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def pod_name(rs: Obj, slot: int) -> str:
    """The name of the pod for `slot`: `<rs>-<5 chars>`, as generateName makes them, but derived from
    the ReplicaSet's uid and the slot, so two syncs racing (the stream handler and the resync, or a
    retried batch) create the same pod once and get 409 AlreadyExists for the second: no surplus."""
    digest = hashlib.sha256(f"{rs['metadata']['uid']}/{slot}".encode()).digest()
    suffix = "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:5])
    return f"{rs['metadata']['name'][:57]}-{suffix}"


def _free_names(rs: Obj, taken: set[str], count: int) -> list[str]:
    names: list[str] = []
    slot = 0
    while len(names) < count:
        name = pod_name(rs, slot)
        if name not in taken:
            names.append(name)
        slot += 1
    return names


def _new_pod(rs: Obj, name: str) -> Obj:
    template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
    md = dict(template.get("metadata") or {})
    md.pop("generateName", None)
    md["name"] = name
    md["namespace"] = rs["metadata"].get("namespace")
    md["ownerReferences"] = [owner_reference(rs)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": template.get("spec") or {}}


def sync(client: Client, namespace: str, name: str, *, now: datetime | None = None) -> float | None:
    """Converge one ReplicaSet; returns seconds until a pod may become available (a resync hint)."""
    rs = client.get("replicasets", namespace, name)
    if rs is None:
        return None
    now = now or datetime.now(UTC)
    md, spec = rs["metadata"], rs.get("spec") or {}
    selector = selector_from_label_selector(spec.get("selector"))
    uid = md["uid"]
    deleting = bool(md.get("deletionTimestamp"))
    owned: list[Obj] = []
    all_pods = client.list_objects("pods", namespace)
    taken = {p["metadata"]["name"] for p in all_pods}
    for pod in all_pods:
        ref = controller_ref(pod)
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if ref is not None and ref.get("uid") == uid:
            if selector.matches(labels):
                owned.append(pod)
            elif not deleting:
                _release(client, pod, uid)
        elif ref is None and not deleting and selector.matches(labels) and is_active(pod):
            owned.append(_adopt(client, rs, pod))
    active = [p for p in owned if is_active(p)]
    if not deleting:
        active = _manage(client, rs, active, taken)
    return _update_status(client, rs, owned, active, now)


def _adopt(client: Client, rs: Obj, pod: Obj) -> Obj:
    md = pod["metadata"]
    refs = list(md.get("ownerReferences") or []) + [owner_reference(rs)]
    return client.patch("pods", md.get("namespace"), md["name"],
                        {"metadata": {"ownerReferences": refs, "resourceVersion": md["resourceVersion"]}})


def _release(client: Client, pod: Obj, uid: str) -> None:
    md = pod["metadata"]
    refs = [r for r in md.get("ownerReferences") or [] if r.get("uid") != uid]
    client.patch("pods", md.get("namespace"), md["name"],
                 {"metadata": {"ownerReferences": refs or None, "resourceVersion": md["resourceVersion"]}})


def _manage(client: Client, rs: Obj, active: list[Obj], taken: set[str]) -> list[Obj]:
    """Create or delete pods so that `active` has spec.replicas; returns the new active set."""
    wanted = int((rs.get("spec") or {}).get("replicas", 1))
    diff = len(active) - wanted
    if diff < 0:
        names = _free_names(rs, taken, min(-diff, BURST))
        return active + _create_slow_start(client, rs, names)
    if diff > 0:
        doomed = sorted(active, key=_deletion_rank)[:min(diff, BURST)]
        for pod in doomed:
            pmd = pod["metadata"]
            if client.delete("pods", pmd.get("namespace"), pmd["name"], uid=pmd.get("uid")) is not None:
                events.record(client, rs, reason="SuccessfulDelete", component=COMPONENT,
                              message=f"Deleted pod: {pmd['name']}")
        gone = {p["metadata"]["name"] for p in doomed}
        return [p for p in active if p["metadata"]["name"] not in gone]
    return active


def _create_one(client: Client, rs: Obj, name: str) -> Obj | None:
    try:
        pod = client.create("pods", rs["metadata"].get("namespace"), _new_pod(rs, name))
    except errors.AlreadyExists:
        return None  # a concurrent sync of this ReplicaSet created it: counted next time
    events.record(client, rs, reason="SuccessfulCreate", component=COMPONENT,
                  message=f"Created pod: {pod['metadata']['name']}")
    return pod


def _create_slow_start(client: Client, rs: Obj, names: list[str]) -> list[Obj]:
    """Create pods in batches of 1, 2, 4, ... run concurrently, as upstream's slowStartBatch: a
    template that cannot be created fails once, not a hundred times."""
    created: list[Obj] = []
    batch, start = 1, 0
    with ThreadPoolExecutor(max_workers=slow_start_workers()) as pool:
        while start < len(names):
            chunk = names[start:start + batch]
            results = list(pool.map(lambda n: _create_one(client, rs, n), chunk))
            created.extend(p for p in results if p is not None)
            start += len(chunk)
            batch *= 2
    return created


def _update_status(client: Client, rs: Obj, owned: list[Obj], active: list[Obj], now: datetime) -> float | None:
    spec = rs.get("spec") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    status = dict(rs.get("status") or {})
    status.update({
        "replicas": len(active),
        "fullyLabeledReplicas": sum(1 for p in active if all(
            ((p.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in template_labels.items())),
        "readyReplicas": sum(1 for p in active if is_ready(p)),
        "availableReplicas": sum(1 for p in active if is_available(p, min_ready, now)),
        "observedGeneration": int(rs["metadata"].get("generation") or 1),
    })
    for zero in ("readyReplicas", "availableReplicas", "fullyLabeledReplicas"):
        if not status[zero]:
            status.pop(zero)  # omitted when 0, as upstream serialises it
    if status != (rs.get("status") or {}):
        client.update_status("replicasets", {**rs, "status": status})
    waiting = [p for p in active if is_ready(p) and not is_available(p, min_ready, now)]
    if not waiting:
        return None
    since = [parse_time((ready_condition(p) or {}).get("lastTransitionTime")) for p in waiting]
    due = [min_ready - (now - s).total_seconds() for s in since if s is not None]
    return max(0.0, min(due)) if due else float(min_ready)
