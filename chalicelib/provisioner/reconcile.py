"""The provisioner's entry points: one level-triggered pass over every NodePool and NodeClaim.

Why this exists: the stream handler (a pod became unschedulable, a node registered, a pod went away)
and the periodic resync both call `reconcile`; it reads the store and EC2, converges, and says when
it next needs to run. Order within a pass: finish deletions and follow claims (launch, register,
time out), terminate orphaned instances, remove idle empty nodes, plan and launch for pending pods,
then write pool status. One pass at a time per cluster (a lease in the store): two concurrent
passes could each see the same pods uncovered and, with different batches, plan different claims.
A held lease raises `locks.Held`, which the dispatcher treats as "running elsewhere".

A batch of pending pods closes one to two seconds after the last one arrived, which no stream record
announces; `reconcile_settled` runs passes until nothing is due within a few seconds, for an
invocation that may wait that long (a dedicated one: waiting in the controllers' stream handler
would hold up its shard).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from chalicelib.controllers.client import Client
from chalicelib.provisioner import aws, disruption, lifecycle, pools, provision
from chalicelib.provisioner.aws import EC2Client
from chalicelib.provisioner.context import Pass
from chalicelib.store import locks


def lease_key() -> str:
    return f"provisioner/{aws.cluster_name()}"


def reconcile(client: Client, *, now: datetime | None = None, ec2: EC2Client | None = None) -> float | None:
    """Converge all pools once; seconds until something is due (a batch closes, a timeout, an idle
    node's time), or None when nothing is waiting."""
    now = now or datetime.now(UTC)
    if not client.list_objects("nodepools") and not client.list_objects("nodeclaims"):
        return None  # no pool, nothing launched: nothing to do (and no EC2 call, no lease)
    with locks.lease(lease_key()):
        p = Pass.read(client, ec2 if ec2 is not None else aws.ec2_client(), now)
        lifecycle.converge(p)
        lifecycle.collect_orphans(p)
        disruption.remove_empty(p)
        provision.provision(p)
        pools.update_status(p)
        return p.due


def reconcile_settled(client: Client, *, ec2: EC2Client | None = None, max_wait_seconds: float = 12.0,
                      clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                      sleep: Callable[[float], None] = time.sleep) -> float | None:
    """Passes until nothing is due within `max_wait_seconds` of waiting in all (an open batch closes
    within 10 s); returns the last pass's answer."""
    waited = 0.0
    while True:
        due = reconcile(client, now=clock(), ec2=ec2)
        pause = max(0.1, due or 0.0)
        if due is None or waited + pause > max_wait_seconds:
            return due
        sleep(pause)
        waited += pause
