"""The node lifecycle controller: nodes that stop renewing their Lease lose their pods.

A node whose Lease (kube-node-lease/<node>) has not been renewed for the grace period (40 s by
default) gets condition Ready=Unknown and the `node.kubernetes.io/unreachable` taints (NoSchedule
and NoExecute). Its pods are deleted once the NoExecute taint is older than their toleration
(tolerationSeconds of a matching toleration, else the default of 300 s), so their ReplicaSets
replace them; a node that cannot confirm a graceful deletion would hold them forever, so they are
deleted with grace 0. A node that renews its Lease again loses the taints.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from chalicelib.controllers import events
from chalicelib.controllers.client import Client
from chalicelib.controllers.replicaset import parse_time

Obj = dict[str, Any]
COMPONENT = "node-controller"
UNREACHABLE = "node.kubernetes.io/unreachable"
LEASE_NAMESPACE = "kube-node-lease"


def grace_seconds() -> float:
    return float(os.environ.get("SKIFF_NODE_MONITOR_GRACE_SECONDS", "40"))


def default_toleration_seconds() -> float:
    return float(os.environ.get("SKIFF_DEFAULT_TOLERATION_SECONDS", "300"))


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _last_heartbeat(client: Client, node: Obj) -> datetime | None:
    name = node["metadata"]["name"]
    lease = client.get("leases", LEASE_NAMESPACE, name)
    times = []
    if lease is not None:
        times.append(parse_time((lease.get("spec") or {}).get("renewTime")))
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            times.append(parse_time(cond.get("lastHeartbeatTime")))
    times.append(parse_time(node["metadata"].get("creationTimestamp")))
    known = [t for t in times if t is not None]
    return max(known) if known else None


def toleration_seconds(pod: Obj) -> float | None:
    """How long `pod` tolerates the unreachable NoExecute taint (None: forever)."""
    for tol in (pod.get("spec") or {}).get("tolerations") or []:
        key_ok = tol.get("key") in (None, "", UNREACHABLE) if tol.get("operator") == "Exists" \
            else tol.get("key") == UNREACHABLE
        effect_ok = tol.get("effect") in (None, "", "NoExecute")
        if key_ok and effect_ok:
            secs = tol.get("tolerationSeconds")
            return None if secs is None else max(0.0, float(secs))
    return default_toleration_seconds()


def sync(client: Client, name: str, *, now: datetime | None = None) -> float | None:
    """Converge one node; returns seconds until something is due (a resync hint)."""
    node = client.get("nodes", None, name)
    if node is None:
        return None
    now = now or datetime.now(UTC)
    beat = _last_heartbeat(client, node)
    silent = (now - beat).total_seconds() if beat else float("inf")
    taints = list((node.get("spec") or {}).get("taints") or [])
    tainted = [t for t in taints if t.get("key") == UNREACHABLE]
    if silent <= grace_seconds():
        if tainted:
            _set_taints(client, node, [t for t in taints if t.get("key") != UNREACHABLE])
            events.record(client, node, reason="NodeReady", component=COMPONENT,
                          message=f"Node {name} status is now: NodeReady")
        return grace_seconds() - silent
    if not tainted:
        stamp = _stamp(now)
        node = _set_taints(client, node, taints + [
            {"key": UNREACHABLE, "effect": "NoSchedule", "timeAdded": stamp},
            {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": stamp}])
        _mark_unknown(client, node, now)
        events.record(client, node, reason="NodeNotReady", component=COMPONENT,
                      message=f"Node {name} status is now: NodeNotReady")
        tainted = [t for t in node["spec"]["taints"] if t.get("key") == UNREACHABLE]
    since = min((parse_time(t.get("timeAdded")) or now) for t in tainted if t.get("effect") == "NoExecute")
    return _evict(client, name, since, now)


def _set_taints(client: Client, node: Obj, taints: list[Obj]) -> Obj:
    md = node["metadata"]
    return client.patch("nodes", None, md["name"],
                        {"metadata": {"resourceVersion": md["resourceVersion"]}, "spec": {"taints": taints or None}})


def _mark_unknown(client: Client, node: Obj, now: datetime) -> None:
    conditions = [c for c in (node.get("status") or {}).get("conditions") or []]
    kinds = {c.get("type") for c in conditions} | {"Ready"}
    stamp = _stamp(now)
    updated = []
    for kind in sorted(kinds):
        old: Obj = next((c for c in conditions if c.get("type") == kind), {})
        moved = stamp if old.get("status") != "Unknown" else old.get("lastTransitionTime")
        updated.append({**old, "type": kind, "status": "Unknown", "reason": "NodeStatusUnknown",
                        "message": "Kubelet stopped posting node status.", "lastTransitionTime": moved,
                        "lastHeartbeatTime": old.get("lastHeartbeatTime")})
    fresh = client.get("nodes", None, node["metadata"]["name"]) or node
    client.update_status("nodes", {**fresh, "status": {**(fresh.get("status") or {}), "conditions": updated}})


def _evict(client: Client, node_name: str, since: datetime, now: datetime) -> float | None:
    tainted_for = (now - since).total_seconds()
    next_due: float | None = None
    for pod in client.list_objects("pods", None, field_selector=f"spec.nodeName={node_name}"):
        md = pod["metadata"]
        tolerate = toleration_seconds(pod)
        if tolerate is None:
            continue
        if tainted_for >= tolerate:
            if client.delete("pods", md.get("namespace"), md["name"], grace_seconds=0, uid=md.get("uid")):
                events.record(client, pod, reason="TaintManagerEviction", component=COMPONENT,
                              message=f"Marking for deletion Pod {md.get('namespace')}/{md['name']}")
        else:
            due = tolerate - tainted_for
            next_due = due if next_due is None else min(next_due, due)
    return next_due
