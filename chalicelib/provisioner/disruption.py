"""Empty nodes go away: cordon, drain, terminate, once idle beyond the pool's emptyAfterSeconds.

Why this exists: a node launched for a burst keeps costing money after the burst. A handler cannot
remember when a node became empty, so the claim records it (status.emptySince, set the first time a
pass sees the node without pods, cleared when one arrives); the idle clock also never starts before
the registration grace is over, so a fresh node is not taken before the scheduler could bind the
pods it was launched for. When the time is up the node is cordoned (spec.unschedulable), its pods
are looked at again (a binding may have raced the cordon: then the node is uncordoned and kept),
and the claim is retired: instance terminated, Node and NodeClaim deleted. Pods that finished
(Succeeded, Failed) do not keep a node.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.controllers.replicaset import parse_time
from chalicelib.provisioner import lifecycle
from chalicelib.provisioner.context import Pass, active, deleting, name_of, stamp
from chalicelib.provisioner.pending import REGISTERED_GRACE_SECONDS
from chalicelib.types import skiff

Obj = dict[str, Any]


def _cordon(p: Pass, node: Obj, unschedulable: bool) -> Obj:
    if bool((node.get("spec") or {}).get("unschedulable")) == unschedulable:
        return node
    return p.client.patch("nodes", None, name_of(node), {"spec": {"unschedulable": unschedulable or None}})


def remove_empty(p: Pass) -> None:
    for claim in p.claims():
        status = claim.get("status") or {}
        pool = p.pools.get(str((claim.get("spec") or {}).get("nodePool") or ""))
        if deleting(claim) or pool is None or status.get("phase") != "Registered":
            continue
        node = next((n for n in p.nodes if name_of(n) == status.get("nodeName")), None)
        if node is None:
            continue
        if any(active(pod) for pod in p.pods_on(name_of(node))):
            if status.get("emptySince"):
                lifecycle.set_status(p, claim, emptySince=None)
            continue
        since = parse_time(status.get("emptySince"))
        if since is None:
            since = p.now
            claim = lifecycle.set_status(p, claim, emptySince=stamp(p.now))
        registered = parse_time(status.get("registeredAt")) or since
        start = max(since, registered + timedelta(seconds=REGISTERED_GRACE_SECONDS))
        idle_for = float(((pool.get("spec") or {}).get("disruption") or {}).get(
            "emptyAfterSeconds", skiff.DEFAULT_EMPTY_AFTER_SECONDS))
        left = idle_for - (p.now - start).total_seconds()
        if left > 0:
            p.due_in(left)
            continue
        node = _cordon(p, node, True)
        bound = p.client.list_objects("pods", None, field_selector=f"spec.nodeName={name_of(node)}")
        if any(active(pod) for pod in bound):  # a pod was bound before the cordon took: keep the node
            _cordon(p, node, False)
            lifecycle.set_status(p, claim, emptySince=None)
            continue
        lifecycle.retire(p, claim, "Disrupted", f"node {name_of(node)} was empty for {int(idle_for)}s")
