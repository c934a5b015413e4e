"""Would a pod fit on a node that does not exist yet? The planner's small view of the scheduler's filters.

Why this exists: the planner asks, for nodes it has not launched, the questions kube-scheduler asks of
real ones: do the pod's requests fit what is left, do its host ports clash, does its nodeSelector and
required node affinity accept the node's labels, does it tolerate the node's NoSchedule/NoExecute
taints. Upstream Karpenter runs the scheduler's own code for this; this module is the narrow interface
the planner depends on (`needs`, `accepts`), written to the same rules (requests as
resourcehelper.PodRequests, taints and affinity as component-helpers), so it can be swapped for the
scheduler package's predicates without touching the planner. Inter-pod affinity and topology spread
are not simulated: a pod whose only obstacle is one of those gets a node, and the scheduler decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.scheduler import resources
from chalicelib.scheduler.tolerations import tolerates_taint

Obj = dict[str, Any]
HARD_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


@dataclass(frozen=True)
class PodNeeds:
    """What one pending pod asks of a node."""

    uid: str
    namespace: str
    name: str
    cpu_milli: int
    memory_bytes: int
    host_ports: frozenset[tuple[str, int]]  # (protocol, port); host IPs are ignored (conservative)
    pod: Obj

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def pod_requests(spec: Mapping[str, Any]) -> dict[str, int]:
    """cpu (millicores) and memory (bytes) as the scheduler counts them (scheduler.resources)."""
    requests = resources.pod_requests(spec)
    return {name: requests[name] for name in ("cpu", "memory") if name in requests}


def needs(pod: Obj) -> PodNeeds:
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    requests = pod_requests(spec)
    ports = set()
    containers = [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    for container in [*containers, *(spec.get("containers") or ())]:
        for port in container.get("ports") or ():
            if int(port.get("hostPort") or 0) > 0:
                ports.add((str(port.get("protocol") or "TCP"), int(port["hostPort"])))
    return PodNeeds(uid=str(md.get("uid") or ""), namespace=str(md.get("namespace") or ""),
                    name=str(md.get("name") or ""), cpu_milli=requests.get("cpu", 0),
                    memory_bytes=requests.get("memory", 0), host_ports=frozenset(ports), pod=pod)


# --- labels and taints ---


def _expression(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator = expr.get("key") or "", expr.get("operator")
    values = [str(v) for v in expr.get("values") or ()]
    have = labels.get(key)
    if operator == "In":
        return bool(values) and have in values
    if operator == "NotIn":
        return bool(values) and have not in values
    if operator == "Exists":
        return not values and key in labels
    if operator == "DoesNotExist":
        return not values and key not in labels
    if operator in ("Gt", "Lt") and len(values) == 1:
        try:
            number, bound = int(have or ""), int(values[0])
        except ValueError:
            return False
        return number > bound if operator == "Gt" else number < bound
    return False


def _term(term: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    expressions = term.get("matchExpressions") or ()
    if not expressions or term.get("matchFields"):
        # An empty term matches nothing; matchFields names the node, unknown before it registers.
        return False
    return all(_expression(e, labels) for e in expressions)


def selects(pod: Obj, labels: Mapping[str, str]) -> bool:
    """spec.nodeSelector AND any required nodeSelectorTerm accept a node with these labels."""
    spec = pod.get("spec") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != str(value):
            return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is None:
        return True
    return any(_term(t, labels) for t in required.get("nodeSelectorTerms") or ())


def tolerates(pod: Obj, taints: Sequence[Mapping[str, Any]]) -> bool:
    """The pod tolerates every NoSchedule and NoExecute taint (PreferNoSchedule does not block)."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or ()
    return all(tolerates_taint(tolerations, taint)
               for taint in taints if taint.get("effect") in HARD_EFFECTS)


def accepts(pod: Obj, labels: Mapping[str, str], taints: Sequence[Mapping[str, Any]]) -> bool:
    """A node with these labels and taints is one the scheduler could put this pod on (resources aside)."""
    return selects(pod, labels) and tolerates(pod, taints)
