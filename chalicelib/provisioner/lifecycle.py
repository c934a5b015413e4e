"""A NodeClaim from launch to removal: launch, registration, timeouts, termination, orphans.

Why this exists: the steps between "a node is needed" and "a node serves pods" are where a crash or
a replay could double-launch or leak an instance, so each is written to be repeated safely:
- Pending: launch with ClientToken = the claim's uid (EC2 returns the first instance on a repeat),
  after first looking for an instance already tagged with the claim (in case the status write after
  a launch was lost). Capacity errors set the offering aside on the pool and retire the claim, so its
  pods are planned elsewhere; any other error marks the claim Failed, retired after a back-off.
- Launched: registered when a Node with spec.providerID aws:///<zone>/<instance-id> appears (it then
  gets the claim's labels and taints); terminated and retired when none appears within the pool's
  registrationTimeoutSeconds.
- Any phase: a claim whose instance is gone, or whose pool is, is retired; so is a registered claim
  whose Node was deleted (kubectl delete node gives the instance back).
- Retiring is deletion behind the skiff.io/termination finalizer: terminate the instance, evict what
  is still bound to the node, delete the Node, then drop the finalizer. A claim deleted by hand goes
  the same way. Instances tagged for this cluster that no claim owns are terminated.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any, Literal

from botocore.exceptions import ClientError

from chalicelib.controllers.replicaset import parse_time
from chalicelib.provisioner import aws, pools
from chalicelib.provisioner.context import FINALIZER, Pass, active, deleting, name_of, stamp
from chalicelib.types import skiff

Obj = dict[str, Any]
UNREGISTERED_TAINT = "skiff.io/unregistered"  # a node agent may register with it; removed on registration
FAILED_BACKOFF_SECONDS = 60.0
# EC2 lists a new instance a little after run_instances returns; before this, "not listed" is no proof.
INSTANCE_LISTING_GRACE_SECONDS = 120.0
Outcome = Literal["launched", "capacity", "failed", "gone"]


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def set_status(p: Pass, claim: Obj, **changes: Any) -> Obj:
    status = {**_status(claim), **changes}
    status = {k: v for k, v in status.items() if v is not None}
    if status == _status(claim):
        return claim
    return p.client.update_status("nodeclaims", {**claim, "status": status})


def retire(p: Pass, claim: Obj, reason: str, message: str, *, warning: bool = False) -> None:
    """Delete the claim and finish its termination now."""
    p.event(claim, reason, message, warning=warning)
    md = claim["metadata"]
    marked = p.client.delete("nodeclaims", None, md["name"], uid=md.get("uid"))
    # Without the finalizer (a claim created by hand) the claim is gone already: clean up all the same.
    finalize(p, marked if marked is not None and deleting(marked) else claim)


def _instance_id(p: Pass, claim: Obj) -> str:
    instance_id = str(_status(claim).get("instanceID") or "")
    if not instance_id:
        found = aws.claim_instance(p.instances, name_of(claim), str(claim["metadata"].get("uid") or ""))
        instance_id = found.instance_id if found else ""
    return instance_id


def _claim_node(p: Pass, claim: Obj) -> Obj | None:
    node = p.node_by_provider_id(str(_status(claim).get("providerID") or ""))
    if node is None and _status(claim).get("nodeName"):
        node = next((n for n in p.nodes if name_of(n) == _status(claim)["nodeName"]), None)
    return node


def finalize(p: Pass, claim: Obj) -> None:
    """Terminate the instance, evict and delete the Node, drop the finalizer."""
    instance_id = _instance_id(p, claim)
    if instance_id:
        aws.terminate(p.ec2, instance_id)
    node = _claim_node(p, claim)
    if node is not None:
        for pod in p.pods_on(name_of(node)):
            md = pod["metadata"]
            if active(pod):
                p.client.delete("pods", md.get("namespace"), md["name"], grace_seconds=0, uid=md.get("uid"))
        p.client.delete("nodes", None, name_of(node), uid=node["metadata"].get("uid"))
        p.nodes = [n for n in p.nodes if name_of(n) != name_of(node)]
    fresh = p.client.get("nodeclaims", None, name_of(claim))
    if fresh is None or FINALIZER not in (fresh["metadata"].get("finalizers") or []):
        return
    fresh = copy.deepcopy(fresh)
    fresh["metadata"]["finalizers"] = [f for f in fresh["metadata"]["finalizers"] if f != FINALIZER]
    p.client.update("nodeclaims", fresh)


def launch(p: Pass, claim: Obj, pool: Obj) -> Outcome:
    """Launch the claim's instance (or find the one already launched) and record it."""
    spec, uid = _spec(claim), str(claim["metadata"].get("uid") or "")
    instance = aws.claim_instance(p.instances, name_of(claim), uid)
    if instance is None:
        try:
            instance = aws.launch(p.ec2, claim_name=name_of(claim), claim_uid=uid, nodepool=str(spec["nodePool"]),
                                  instance_type=str(spec["instanceType"]), zone=str(spec["zone"]),
                                  capacity_type=str(spec["capacityType"]),
                                  launch_template=dict(_spec(pool).get("launchTemplate") or {}))
        except ClientError as e:
            code = aws.error_code(e)
            detail = f"{code}: {(e.response.get('Error') or {}).get('Message') or e}"
            offering = f"{spec['instanceType']} in {spec['zone']} ({spec['capacityType']})"
            if code in aws.CAPACITY_ERRORS:
                pools.mark_unavailable(p, str(spec["nodePool"]), str(spec["instanceType"]), str(spec["zone"]),
                                       str(spec["capacityType"]))
                retire(p, claim, "InsufficientCapacity", f"{detail} ({offering}); planning again without it "
                       f"for {int(pools.OFFERING_UNAVAILABLE_SECONDS)}s", warning=True)
                return "capacity"
            set_status(p, claim, phase="Failed", failedAt=stamp(p.now), message=detail)
            p.event(claim, "LaunchFailed", f"launching {offering} failed: {detail}", warning=True)
            p.due_in(FAILED_BACKOFF_SECONDS)
            return "failed"
        p.instances.append(instance)
        p.event(claim, "Launched", f"launched {instance.instance_id} ({spec['instanceType']} in {spec['zone']})")
    set_status(p, claim, phase="Launched", instanceID=instance.instance_id, launchedAt=stamp(p.now),
               providerID=aws.provider_id(instance.zone or str(spec["zone"]), instance.instance_id),
               failedAt=None, message=None)
    p.due_in(float(_spec(pool).get("registrationTimeoutSeconds") or skiff.DEFAULT_REGISTRATION_TIMEOUT_SECONDS))
    return "launched"


def _register(p: Pass, claim: Obj, node: Obj) -> None:
    """Give the Node the claim's labels and taints (dropping the unregistered taint), then mark it."""
    spec = _spec(claim)
    labels = dict((node.get("metadata") or {}).get("labels") or {})
    want_labels = {**labels, **(spec.get("labels") or {})}
    taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("key") != UNREGISTERED_TAINT]
    have = {(t.get("key"), t.get("effect")) for t in taints}
    taints += [dict(t) for t in spec.get("taints") or [] if (t.get("key"), t.get("effect")) not in have]
    if want_labels != labels or taints != list((node.get("spec") or {}).get("taints") or []):
        p.client.patch("nodes", None, name_of(node),
                       {"metadata": {"labels": want_labels}, "spec": {"taints": taints or None}})
    set_status(p, claim, phase="Registered", nodeName=name_of(node), registeredAt=stamp(p.now))
    p.event(claim, "Registered", f"node {name_of(node)} registered")


def _instance_gone(p: Pass, claim: Obj) -> bool:
    instance_id = str(_status(claim).get("instanceID") or "")
    listed = next((i for i in p.instances if i.instance_id == instance_id), None)
    if listed is not None:
        return listed.gone
    launched = parse_time(_status(claim).get("launchedAt"))
    return launched is not None and (p.now - launched).total_seconds() > INSTANCE_LISTING_GRACE_SECONDS


def converge(p: Pass) -> None:
    """One step for every claim, according to its phase."""
    for claim in p.claims():
        phase = _status(claim).get("phase") or "Pending"
        pool = p.pools.get(str(_spec(claim).get("nodePool") or ""))
        if deleting(claim):
            finalize(p, claim)
            continue
        if FINALIZER not in (claim["metadata"].get("finalizers") or []):
            claim = copy.deepcopy(claim)
            claim["metadata"]["finalizers"] = [*(claim["metadata"].get("finalizers") or []), FINALIZER]
            claim = p.client.update("nodeclaims", claim)
        if pool is None or deleting(pool):
            retire(p, claim, "NodePoolGone", f"node pool {_spec(claim).get('nodePool')} is gone")
        elif phase == "Pending":
            launch(p, claim, pool)
        elif phase == "Failed":
            failed = parse_time(_status(claim).get("failedAt")) or p.now
            left = FAILED_BACKOFF_SECONDS - (p.now - failed).total_seconds()
            if left <= 0:
                retire(p, claim, "Retrying", "launch failed; its pods will be planned again")
            else:
                p.due_in(left)
        elif _instance_gone(p, claim):
            retire(p, claim, "InstanceTerminated", f"instance {_status(claim).get('instanceID')} is gone",
                   warning=True)
        elif phase == "Registered" and _claim_node(p, claim) is None:
            retire(p, claim, "NodeDeleted", f"node {_status(claim).get('nodeName')} was deleted")
        elif phase == "Launched":
            node = _claim_node(p, claim)
            if node is not None:
                _register(p, claim, node)
                continue
            timeout = float(_spec(pool).get("registrationTimeoutSeconds") or skiff.DEFAULT_REGISTRATION_TIMEOUT_SECONDS)
            launched = parse_time(_status(claim).get("launchedAt")) or p.now
            left = timeout - (p.now - launched).total_seconds()
            if left <= 0:
                retire(p, claim, "RegistrationTimeout", f"instance {_status(claim).get('instanceID')} registered "
                       f"no node within {int(timeout)}s", warning=True)
            else:
                p.due_in(left)


def collect_orphans(p: Pass) -> None:
    """Terminate this cluster's instances that no NodeClaim owns (their claim was deleted under them)."""
    owned = {(name_of(c), str(c["metadata"].get("uid") or "")) for c in p.claims()}
    for instance in p.instances:
        if instance.gone or not instance.claim or (instance.claim, instance.client_token) in owned:
            continue
        launched = instance.launched_at or p.now
        if p.now - launched < timedelta(seconds=INSTANCE_LISTING_GRACE_SECONDS):
            p.due_in(INSTANCE_LISTING_GRACE_SECONDS - (p.now - launched).total_seconds())
            continue
        aws.terminate(p.ec2, instance.instance_id)
