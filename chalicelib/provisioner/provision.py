"""From pending pods to NodeClaims to launched instances, claim first.

Why this exists: the order of writes is what makes provisioning safe to replay. Each planned node is
written as a NodeClaim under a name derived from what it is for (planner.PlannedNode.claim_name), and
only then launched with the claim's uid as ClientToken. A replayed pass plans the same nodes, gets 409
for names that exist, and launches those claims only if they have not been (EC2 would return the same
instance anyway). Pods placed onto a claim still in flight are added to its podUIDs, so they count as
covered. When EC2 has no capacity for an offering, the pool's status sets it aside and the pods are
planned again at once, up to MAX_ROUNDS times per pass.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from chalicelib import errors
from chalicelib.provisioner import lifecycle, planner, pools
from chalicelib.provisioner.context import FINALIZER, Pass, deleting
from chalicelib.provisioner.fit import needs
from chalicelib.provisioner.pending import closed_batches, covered, is_pending_unschedulable
from chalicelib.provisioner.planner import PlannedNode
from chalicelib.types import skiff

Obj = dict[str, Any]
log = logging.getLogger("skiff.provisioner")
MAX_ROUNDS = 3


def claim_object(node: PlannedNode) -> Obj:
    o = node.offering
    return {
        "apiVersion": f"{skiff.GROUP}/v1", "kind": "NodeClaim",
        "metadata": {"name": node.claim_name, "labels": {skiff.LABEL_NODEPOOL: node.pool},
                     "finalizers": [FINALIZER]},
        "spec": {"nodePool": node.pool, "instanceType": o.instance_type.name, "zone": o.zone,
                 "capacityType": o.capacity_type, "labels": dict(node.labels),
                 "taints": [dict(t) for t in node.taints], "podUIDs": node.pod_uids},
    }


def _create(p: Pass, node: PlannedNode) -> Obj | None:
    try:
        return p.client.create("nodeclaims", None, claim_object(node))
    except errors.AlreadyExists:
        return p.client.get("nodeclaims", None, node.claim_name)


def _extend(p: Pass, claim_name: str, uids: list[str]) -> None:
    claim = p.client.get("nodeclaims", None, claim_name)
    if claim is None or deleting(claim):
        return
    have = list((claim.get("spec") or {}).get("podUIDs") or [])
    added = [u for u in uids if u not in have]
    if added:
        claim = copy.deepcopy(claim)
        claim["spec"]["podUIDs"] = have + added
        p.client.update("nodeclaims", claim)


def provision(p: Pass) -> None:
    for _round in range(MAX_ROUNDS):
        claims = p.claims()
        pending = {str(pod["metadata"].get("uid")): pod for pod in p.pods if is_pending_unschedulable(pod)}
        cover, lapse = covered(claims, p.now)
        p.due_in(lapse)
        ready, wait = closed_batches([pod for uid, pod in pending.items() if uid not in cover], p.now)
        p.due_in(wait)
        if not ready:
            return
        by_uid = {uid: needs(pod) for uid, pod in pending.items()}
        views = [pools.view(p, pool, claims, by_uid) for pool in p.pools.values() if not deleting(pool)]
        plans = planner.plan(views, [by_uid[str(pod["metadata"].get("uid"))] for pod in ready])
        short_of_capacity = False
        for result in plans:
            for claim_name, uids in result.extend.items():
                _extend(p, claim_name, uids)
            for node in result.nodes:
                claim = _create(p, node)
                if claim is None or deleting(claim) or (claim.get("status") or {}).get("phase") != "Pending":
                    continue
                if lifecycle.launch(p, claim, p.pools[node.pool]) == "capacity":
                    short_of_capacity = True
        placed = {uid for r in plans for n in r.nodes for uid in n.pod_uids} | {
            uid for r in plans for uids in r.extend.values() for uid in uids}
        left = [pod for pod in ready if str(pod["metadata"].get("uid")) not in placed]
        if left:
            log.info("no node pool can take %d pending pod(s), e.g. %s/%s", len(left),
                     left[0]["metadata"].get("namespace"), left[0]["metadata"].get("name"))
        if not short_of_capacity:
            return
