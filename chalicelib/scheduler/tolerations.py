"""Whether a pod's tolerations tolerate a node's taints, as v1helper and Toleration.ToleratesTaint say.

Three plugins ask it: TaintToleration (filter and score), NodeUnschedulable (a pod that tolerates
node.kubernetes.io/unschedulable:NoSchedule ignores spec.unschedulable) and PodTopologySpread (with
nodeTaintsPolicy Honor). Tolerations and taints stay the API's dicts: no parsing per scheduling cycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE = "NoSchedule", "PreferNoSchedule", "NoExecute"
DO_NOT_SCHEDULE_EFFECTS = frozenset({NO_SCHEDULE, NO_EXECUTE})
TAINT_NODE_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"

Taint = Mapping[str, Any]
Toleration = Mapping[str, Any]


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    """Toleration.ToleratesTaint: an empty effect matches every effect, an empty key (with Exists)
    every key; operator Exists ignores the value, Equal (the default) compares it."""
    effect = toleration.get("effect") or ""
    if effect and effect != (taint.get("effect") or ""):
        return False
    key = toleration.get("key") or ""
    if key and key != (taint.get("key") or ""):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerates_taint(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    """v1helper.TolerationsTolerateTaint."""
    return any(tolerates(t, taint) for t in tolerations)


def first_untolerated(taints: Sequence[Taint], tolerations: Sequence[Toleration]) -> Taint | None:
    """v1helper.FindMatchingUntoleratedTaint over the given (already effect-filtered) taints."""
    for taint in taints:
        if not tolerates_taint(tolerations, taint):
            return taint
    return None


def taint_key(taints: Iterable[Taint]) -> tuple[tuple[str, str, str], ...]:
    """A hashable identity for a list of taints, so answers can be cached per distinct list."""
    return tuple((t.get("key") or "", t.get("value") or "", t.get("effect") or "") for t in taints)
