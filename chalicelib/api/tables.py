"""Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` asks for.

kubectl sends `Accept: application/json;as=Table;g=meta.k8s.io;v=v1` and prints whatever columns
the server returns (priority 1 columns only with `-o wide`), so the familiar
`NAME READY STATUS RESTARTS AGE` output comes from here, per kind, as kube-apiserver renders it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chalicelib.types.registry import ResourceInfo

Obj = dict[str, Any]
Column = tuple[str, str, int, Callable[[Obj], Any]]  # name, type, priority, cell


def wants_table(accept: str) -> bool:
    return "as=table" in accept.lower().replace(" ", "")


def age(ts: str | None) -> str:
    """Kubernetes' HumanDuration of the time since `ts` ("5s", "3m2s", "4h", "12d")."""
    if not ts:
        return "<unknown>"
    try:
        then = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<invalid>"
    s = int((datetime.now(UTC) - then).total_seconds())
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 48:
        return f"{h}h{m % 60}m" if h < 8 and m % 60 else f"{h}h"
    d = h // 24
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    return f"{d}d" if d < 365 * 2 else f"{d // 365}y"


def _md(o: Obj) -> Obj:
    return o.get("metadata") or {}


def _spec(o: Obj) -> Obj:
    return o.get("spec") or {}


def _status(o: Obj) -> Obj:
    return o.get("status") or {}


def _containers(o: Obj) -> list[Obj]:
    return list(((_spec(o).get("template") or {}).get("spec") or {}).get("containers") or [])


def _pod_status(o: Obj) -> str:
    st = _status(o)
    reason = st.get("reason") or st.get("phase") or "Unknown"
    for cs in st.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
    if _md(o).get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def _pod_ready(o: Obj) -> str:
    statuses = _status(o).get("containerStatuses") or []
    total = len(_spec(o).get("containers") or [])
    return f"{sum(1 for c in statuses if c.get('ready'))}/{total}"


def _node_status(o: Obj) -> str:
    ready = next((c for c in _status(o).get("conditions") or [] if c.get("type") == "Ready"), None)
    text = "Unknown" if ready is None or ready.get("status") == "Unknown" else \
        ("Ready" if ready.get("status") == "True" else "NotReady")
    return text + (",SchedulingDisabled" if _spec(o).get("unschedulable") else "")


def _address(o: Obj, kind: str) -> str:
    return next((a.get("address", "") for a in _status(o).get("addresses") or [] if a.get("type") == kind),
                "<none>")


def _selector(o: Obj) -> str:
    sel = _spec(o).get("selector") or {}
    labels = sel.get("matchLabels") if "matchLabels" in sel or "matchExpressions" in sel else sel
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or "<none>"


def _ports(o: Obj) -> str:
    ports = _spec(o).get("ports") or []
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


_NAME: Column = ("Name", "string", 0, lambda o: _md(o).get("name", ""))
_AGE: Column = ("Age", "string", 0, lambda o: age(_md(o).get("creationTimestamp")))

COLUMNS: dict[str, list[Column]] = {
    "core/pods": [
        _NAME,
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, _pod_status),
        ("Restarts", "string", 0,
         lambda o: str(sum(int(c.get("restartCount") or 0) for c in _status(o).get("containerStatuses") or []))),
        _AGE,
        ("IP", "string", 1, lambda o: _status(o).get("podIP") or "<none>"),
        ("Node", "string", 1, lambda o: _spec(o).get("nodeName") or "<none>"),
        ("Nominated Node", "string", 1, lambda o: _status(o).get("nominatedNodeName") or "<none>"),
        ("Readiness Gates", "string", 1, lambda o: "<none>"),
    ],
    "apps/deployments": [
        _NAME,
        ("Ready", "string", 0,
         lambda o: f"{_status(o).get('readyReplicas', 0)}/{_spec(o).get('replicas', 0)}"),
        ("Up-to-date", "integer", 0, lambda o: _status(o).get("updatedReplicas", 0)),
        ("Available", "integer", 0, lambda o: _status(o).get("availableReplicas", 0)),
        _AGE,
        ("Containers", "string", 1, lambda o: ",".join(c.get("name", "") for c in _containers(o))),
        ("Images", "string", 1, lambda o: ",".join(c.get("image", "") for c in _containers(o))),
        ("Selector", "string", 1, _selector),
    ],
    "apps/replicasets": [
        _NAME,
        ("Desired", "integer", 0, lambda o: _spec(o).get("replicas", 0)),
        ("Current", "integer", 0, lambda o: _status(o).get("replicas", 0)),
        ("Ready", "integer", 0, lambda o: _status(o).get("readyReplicas", 0)),
        _AGE,
        ("Containers", "string", 1, lambda o: ",".join(c.get("name", "") for c in _containers(o))),
        ("Images", "string", 1, lambda o: ",".join(c.get("image", "") for c in _containers(o))),
        ("Selector", "string", 1, _selector),
    ],
    "core/nodes": [
        _NAME,
        ("Status", "string", 0, _node_status),
        ("Roles", "string", 0, lambda o: "<none>"),
        _AGE,
        ("Version", "string", 0, lambda o: (_status(o).get("nodeInfo") or {}).get("kubeletVersion", "")),
        ("Internal-IP", "string", 1, lambda o: _address(o, "InternalIP")),
        ("External-IP", "string", 1, lambda o: _address(o, "ExternalIP")),
        ("OS-Image", "string", 1, lambda o: (_status(o).get("nodeInfo") or {}).get("osImage", "<unknown>")),
        ("Kernel-Version", "string", 1,
         lambda o: (_status(o).get("nodeInfo") or {}).get("kernelVersion", "<unknown>")),
        ("Container-Runtime", "string", 1,
         lambda o: (_status(o).get("nodeInfo") or {}).get("containerRuntimeVersion", "<unknown>")),
    ],
    "core/namespaces": [_NAME, ("Status", "string", 0, lambda o: _status(o).get("phase", "")), _AGE],
    "core/services": [
        _NAME,
        ("Type", "string", 0, lambda o: _spec(o).get("type", "ClusterIP")),
        ("Cluster-IP", "string", 0, lambda o: _spec(o).get("clusterIP") or "<none>"),
        ("External-IP", "string", 0, lambda o: "<none>"),
        ("Port(s)", "string", 0, _ports),
        _AGE,
        ("Selector", "string", 1, _selector),
    ],
    "core/configmaps": [_NAME, ("Data", "integer", 0,
                                lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})), _AGE],
    "core/events": [
        ("Last Seen", "string", 0, lambda o: age(o.get("lastTimestamp") or _md(o).get("creationTimestamp"))),
        ("Type", "string", 0, lambda o: o.get("type", "")),
        ("Reason", "string", 0, lambda o: o.get("reason", "")),
        ("Object", "string", 0, lambda o: f"{(o.get('involvedObject') or {}).get('kind', '').lower()}/"
                                          f"{(o.get('involvedObject') or {}).get('name', '')}"),
        ("Message", "string", 0, lambda o: o.get("message", "")),
    ],
    "coordination.k8s.io/leases": [_NAME, ("Holder", "string", 0, lambda o: _spec(o).get("holderIdentity", "")),
                                   _AGE],
    "skiff.io/nodepools": [
        _NAME,
        ("Nodes", "integer", 0, lambda o: _status(o).get("nodes", 0)),
        ("CPU", "string", 0, lambda o: str(_status(o).get("cpu", "0"))),
        ("Capacity", "string", 0, lambda o: _spec(o).get("capacityType", "")),
        _AGE,
        ("Instance Types", "string", 1, lambda o: ",".join(_spec(o).get("instanceTypes") or [])),
        ("Zones", "string", 1, lambda o: ",".join(_spec(o).get("zones") or []) or "<all>"),
    ],
    "skiff.io/nodeclaims": [
        _NAME,
        ("Type", "string", 0, lambda o: _spec(o).get("instanceType", "")),
        ("Capacity", "string", 0, lambda o: _spec(o).get("capacityType", "")),
        ("Zone", "string", 0, lambda o: _spec(o).get("zone", "")),
        ("Node", "string", 0, lambda o: _status(o).get("nodeName") or "<none>"),
        ("Phase", "string", 0, lambda o: _status(o).get("phase", "")),
        _AGE,
        ("Instance ID", "string", 1, lambda o: _status(o).get("instanceID") or "<none>"),
        ("NodePool", "string", 1, lambda o: _spec(o).get("nodePool", "")),
    ],
}


def render(res: ResourceInfo, items: list[Obj], list_meta: Obj, *, wide: bool = True) -> Obj:
    """A Table of `items` with the kind's columns; rows carry the objects' metadata."""
    columns = COLUMNS.get(res.key, [_NAME, _AGE])
    rows = []
    for obj in items:
        rows.append({
            "cells": [cell(obj) for _, _, _, cell in columns],
            "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                       "metadata": obj.get("metadata") or {}},
        })
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [
            {"name": name, "type": typ, "format": "name" if name == "Name" else "", "description": name,
             "priority": prio} for name, typ, prio, _ in columns],
        "rows": rows,
    }
