"""Deployment status and conditions (upstream's progress.go and the status half of sync.go).

What a Deployment's status says is computed here from the ReplicaSets, without I/O: the replica
counters `kubectl rollout status` compares, the Available condition, the Progressing condition with
its reasons (NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetUpdated, NewReplicaSetAvailable,
ProgressDeadlineExceeded, DeploymentPaused, DeploymentResumed) and timestamps, and when the
controller should look again for a progress deadline. deployment.py decides when to write it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chalicelib.controllers import rollout as ro

Obj = dict[str, Any]

# Condition types and reasons, as upstream spells them (kubectl and dashboards match on them).
AVAILABLE, PROGRESSING, REPLICA_FAILURE = "Available", "Progressing", "ReplicaFailure"
RS_UPDATED = "ReplicaSetUpdated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"


# --- conditions ---


def get_condition(status: Obj, kind: str) -> Obj | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def new_condition(kind: str, status: str, reason: str, message: str, now: datetime) -> Obj:
    stamp = ro.format_time(now)
    return {"type": kind, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": stamp,
            "reason": reason, "message": message}


def set_condition(status: Obj, cond: Obj) -> None:
    """Add or replace; the same status and reason leave it untouched, the same status keeps its transition."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
        return
    cond = dict(cond)
    if current is not None and current.get("status") == cond["status"]:
        cond["lastTransitionTime"] = current.get("lastTransitionTime")
    status["conditions"] = [*(c for c in status.get("conditions") or [] if c.get("type") != cond["type"]), cond]


def remove_condition(status: Obj, kind: str) -> None:
    if "conditions" in status:
        status["conditions"] = [c for c in status["conditions"] if c.get("type") != kind]


# --- status ---


def has_progress_deadline(d: Obj) -> bool:
    deadline = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return deadline is not None and deadline != ro.MAX_INT32


def calculate_status(all_rss: list[Obj], new_rs: Obj | None, d: Obj, working: Obj) -> Obj:
    """The status the ReplicaSets add up to, with `working`'s conditions and a fresh Available one."""
    available = sum(ro.status_int(rs, "availableReplicas") for rs in all_rss)
    total = sum(ro.spec_replicas(rs) for rs in all_rss)
    status: Obj = {
        "observedGeneration": int((d.get("metadata") or {}).get("generation") or 0),
        "replicas": sum(ro.status_int(rs, "replicas") for rs in all_rss),
        "updatedReplicas": ro.status_int(new_rs, "replicas") if new_rs is not None else 0,
        "readyReplicas": sum(ro.status_int(rs, "readyReplicas") for rs in all_rss),
        "availableReplicas": available,
        "unavailableReplicas": max(0, total - available),
        "conditions": [dict(c) for c in working.get("conditions") or []],
    }
    if working.get("collisionCount") is not None:
        status["collisionCount"] = working["collisionCount"]
    return status


def with_availability(status: Obj, d: Obj, now: datetime) -> Obj:
    if status["availableReplicas"] >= ro.spec_replicas(d) - ro.max_unavailable(d):
        set_condition(status, new_condition(AVAILABLE, "True", MIN_AVAILABLE, "Deployment has minimum availability.",
                                            now))
    else:
        set_condition(status, new_condition(AVAILABLE, "False", MIN_UNAVAILABLE,
                                            "Deployment does not have minimum availability.", now))
    return status


def compact(status: Obj | None) -> Obj:
    """A status as Go serialises it: zero counters and empty lists omitted (they are `omitempty`)."""
    out: Obj = {}
    for key, value in (status or {}).items():
        if key == "collisionCount":
            if value is not None:
                out[key] = value
        elif value not in (None, 0, [], {}):
            out[key] = value
    return out


def deployment_complete(d: Obj, status: Obj) -> bool:
    replicas = ro.spec_replicas(d)
    return (int(status.get("updatedReplicas") or 0) == replicas and int(status.get("replicas") or 0) == replicas
            and int(status.get("availableReplicas") or 0) == replicas
            and int(status.get("observedGeneration") or 0) >= int((d.get("metadata") or {}).get("generation") or 0))


def deployment_progressing(old: Obj, new: Obj) -> bool:
    """Any progress between two statuses: more updated, ready or available pods, or fewer old ones."""
    def get(s: Obj, key: str) -> int:
        return int(s.get(key) or 0)
    return (get(new, "updatedReplicas") > get(old, "updatedReplicas")
            or get(new, "replicas") - get(new, "updatedReplicas") < get(old, "replicas") - get(old, "updatedReplicas")
            or get(new, "readyReplicas") > get(old, "readyReplicas")
            or get(new, "availableReplicas") > get(old, "availableReplicas"))


def seconds_to_deadline(d: Obj, cond: Obj, now: datetime) -> float | None:
    """Seconds left before the Progressing condition's last update is progressDeadlineSeconds old."""
    since = ro.parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    deadline = int((d.get("spec") or {}).get("progressDeadlineSeconds") or 0)
    return since.timestamp() + deadline - now.timestamp()


def deployment_timed_out(d: Obj, status: Obj, now: datetime) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    left = seconds_to_deadline(d, cond, now)
    return left is not None and left < 0


def paused_condition(d: Obj, working: Obj, now: datetime) -> None:
    """Progressing Unknown on pause and on resume, so a paused time never counts against the deadline."""
    if not has_progress_deadline(d):
        return
    cond = get_condition(working, PROGRESSING)
    if cond is not None and cond.get("reason") == TIMED_OUT:
        return  # a reported lack of progress is not overwritten
    paused = bool((d.get("spec") or {}).get("paused"))
    paused_cond = cond is not None and cond.get("reason") == PAUSED
    if paused and not paused_cond:
        set_condition(working, new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused", now))
    elif not paused and paused_cond:
        set_condition(working, new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed", now))


def replica_failures(all_rss: list[Obj], new_rs: Obj | None) -> list[Obj]:
    """ReplicaFailure conditions of the new ReplicaSet, else of any, as Deployment conditions."""
    for group in ([new_rs] if new_rs is not None else [], all_rss):
        found = [{"type": c.get("type"), "status": c.get("status"),
                  "lastUpdateTime": c.get("lastTransitionTime"), "lastTransitionTime": c.get("lastTransitionTime"),
                  "reason": c.get("reason"), "message": c.get("message")}
                 for rs in group for c in (rs.get("status") or {}).get("conditions") or []
                 if c.get("type") == REPLICA_FAILURE]
        if found:
            return found
    return []


def rollout_status(d: Obj, all_rss: list[Obj], new_rs: Obj | None, *, working: Obj, observed: Obj,
                   now: datetime) -> Obj:
    """The status during a rollout (syncRolloutStatus): counters, Available, and Progressing by what
    changed since `observed` (the status last written), starting from `working`'s conditions."""
    status = with_availability(calculate_status(all_rss, new_rs, d, working), d, now)
    deadline = has_progress_deadline(d)
    if not deadline:
        remove_condition(status, PROGRESSING)
    current = get_condition(working, PROGRESSING)
    complete_before = (status["replicas"] == status["updatedReplicas"] and current is not None
                       and current.get("reason") == NEW_RS_AVAILABLE)
    subject = f'ReplicaSet "{ro.name(new_rs)}"' if new_rs is not None else f'Deployment "{ro.name(d)}"'
    if deadline and not complete_before:
        if deployment_complete(d, status):
            set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE,
                                                f"{subject} has successfully progressed.", now))
        elif deployment_progressing(observed, status):
            # Progress refreshes lastUpdateTime even with the same reason (upstream special-cases it too).
            cond = new_condition(PROGRESSING, "True", RS_UPDATED, f"{subject} is progressing.", now)
            if current is not None:
                if current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(status, PROGRESSING)
            set_condition(status, cond)
        elif deployment_timed_out(d, status, now):
            set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT,
                                                f"{subject} has timed out progressing.", now))
    failures = replica_failures(all_rss, new_rs)
    if failures:
        set_condition(status, failures[0])
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def min_ready_resync(d: Obj, all_rss: Sequence[Obj | None]) -> float | None:
    """Pods ready but not yet available turn available after minReadySeconds: look again then."""
    min_ready = int((d.get("spec") or {}).get("minReadySeconds") or 0)
    waiting = any(ro.status_int(rs, "readyReplicas") > ro.status_int(rs, "availableReplicas")
                  for rs in all_rss if rs is not None)
    return float(min_ready) if min_ready and waiting else None


def resync_after(d: Obj, status: Obj, all_rss: list[Obj], now: datetime) -> float | None:
    """When to look again: just after the progress deadline (requeueStuckDeployment), or minReadySeconds."""
    wait = min_ready_resync(d, all_rss)
    cond = get_condition(status, PROGRESSING)
    if has_progress_deadline(d) and cond is not None and not deployment_complete(d, status) \
            and cond.get("reason") not in (TIMED_OUT, NEW_RS_AVAILABLE, PAUSED):
        left = seconds_to_deadline(d, cond, now)
        if left is not None:
            after = max(left, 0.0) + 1.0
            wait = after if wait is None else min(wait, after)
    return wait
