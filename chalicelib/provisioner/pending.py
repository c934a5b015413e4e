"""Which pods call for new capacity, and whether their batch has closed.

Why this exists: a pod that fits on no node is the provisioner's only reason to buy one, and buying
per pod would launch a node per replica of a scaled Deployment. Karpenter waits for a batch to
settle (1 s without a new pending pod, 10 s at most); a Lambda handler keeps nothing between
invocations, so the batch is read back from the pods themselves: the lastTransitionTime of their
PodScheduled=False condition is when each became pending (invariant 1). Pods the scheduler has
nominated for a node (preemption will make room) or that a NodeClaim in flight was launched for are
not pending capacity.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from chalicelib.controllers.replicaset import parse_time

Obj = dict[str, Any]

BATCH_IDLE_SECONDS = 1.0
BATCH_MAX_SECONDS = 10.0
# Condition times are stamped to the second, so an idle second is only certain after two.
TIME_RESOLUTION_SECONDS = 1.0
# A registered node's pods stay covered this long, so the scheduler can bind them before anyone
# concludes the node did not help them.
REGISTERED_GRACE_SECONDS = 30.0


def _scheduled_condition(pod: Obj) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled":
            return dict(cond)
    return None


def is_pending_unschedulable(pod: Obj) -> bool:
    """Not bound, not going away, not nominated, and the scheduler said it fits nowhere."""
    md, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    if spec.get("nodeName") or md.get("deletionTimestamp") or status.get("nominatedNodeName"):
        return False
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    cond = _scheduled_condition(pod)
    return cond is not None and cond.get("status") == "False" and cond.get("reason") == "Unschedulable"


def pending_since(pod: Obj) -> datetime | None:
    cond = _scheduled_condition(pod) or {}
    return parse_time(cond.get("lastTransitionTime")) or parse_time((pod.get("metadata") or {}).get(
        "creationTimestamp"))


def covered(claims: Iterable[Obj], now: datetime) -> tuple[set[str], float | None]:
    """UIDs of pods a NodeClaim in flight was launched for, and seconds until a cover lapses."""
    uids: set[str] = set()
    due: float | None = None
    for claim in claims:
        if (claim.get("metadata") or {}).get("deletionTimestamp"):
            continue
        status = claim.get("status") or {}
        if status.get("phase") == "Registered":
            registered = parse_time(status.get("registeredAt"))
            left = REGISTERED_GRACE_SECONDS - (now - registered).total_seconds() if registered else 0.0
            if left <= 0:
                continue
            due = left if due is None else min(due, left)
        uids.update((claim.get("spec") or {}).get("podUIDs") or [])
    return uids, due


def closed_batches(pods: list[Obj], now: datetime) -> tuple[list[Obj], float | None]:
    """The pods of every batch that has closed, and seconds until the open one closes (if any).

    Pods sorted by when they became pending form batches: a batch takes the next pod while the gap
    is at most BATCH_IDLE_SECONDS and the batch is younger than BATCH_MAX_SECONDS. Only the latest
    batch can still be open."""
    timed = sorted(((pending_since(p) or now, p) for p in pods), key=lambda tp: tp[0])
    batches: list[tuple[datetime, datetime, list[Obj]]] = []  # (first, last, pods)
    for when, pod in timed:
        if batches:
            first, last, members = batches[-1]
            if (when - last).total_seconds() <= BATCH_IDLE_SECONDS and \
                    (when - first).total_seconds() < BATCH_MAX_SECONDS:
                batches[-1] = (first, when, [*members, pod])
                continue
        batches.append((when, when, [pod]))
    ready: list[Obj] = []
    wait: float | None = None
    for i, (first, last, members) in enumerate(batches):
        if i < len(batches) - 1:
            ready.extend(members)
            continue
        idle_left = BATCH_IDLE_SECONDS + TIME_RESOLUTION_SECONDS - (now - last).total_seconds()
        max_left = BATCH_MAX_SECONDS - (now - first).total_seconds()
        left = min(idle_left, max_left)
        if left <= 0:
            ready.extend(members)
        else:
            wait = left
    return ready, wait
