"""NodePools as the planner sees them, and the status the provisioner writes back on them.

Why this exists: a NodePool's spec names what may be bought, but what can be bought right now also
depends on EC2 (which types the region has, which zones, which of them have a configured subnet), on
the pool's recent capacity errors (kept in status.unavailableOfferings, since a handler remembers
nothing), and on what the pool already holds (limits count launched and launching nodes). This
module turns all of that into a PoolView, and keeps the pool's status (nodes, cpu, Ready, unavailable
offerings) true to the claims.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from chalicelib import errors, settings
from chalicelib.controllers.replicaset import parse_time
from chalicelib.provisioner import aws, catalogue, prices
from chalicelib.provisioner.context import Pass, deleting, name_of, stamp
from chalicelib.provisioner.fit import PodNeeds
from chalicelib.provisioner.planner import InFlight, Offering, PoolView
from chalicelib.types import skiff
from chalicelib.types.quantity import QuantityError, format_quantity, parse_quantity

Obj = dict[str, Any]
OFFERING_UNAVAILABLE_SECONDS = 180.0
IN_FLIGHT_PHASES = ("Pending", "Launched")


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _unavailable(pool: Obj, now: datetime) -> list[Obj]:
    """status.unavailableOfferings whose time is not up yet."""
    out = []
    for entry in (pool.get("status") or {}).get("unavailableOfferings") or []:
        until = parse_time(entry.get("until"))
        if until is not None and until > now:
            out.append(entry)
    return out


def _offering(p: Pass, type_name: str, zone: str, capacity_type: str) -> Offering | None:
    described = catalogue.describe(p.ec2, [type_name]).get(type_name)
    if described is None:
        return None
    return Offering(described, zone, capacity_type, prices.price(type_name, capacity_type) or 0.0)


def pool_claims(claims: list[Obj], pool: str) -> list[Obj]:
    return [c for c in claims if _spec(c).get("nodePool") == pool and not deleting(c)]


def claim_vcpus(p: Pass, claim: Obj) -> int:
    name = str(_spec(claim).get("instanceType") or "")
    described = catalogue.describe(p.ec2, [name]).get(name)
    return described.vcpus if described else 0


def view(p: Pass, pool: Obj, claims: list[Obj], pending: dict[str, PodNeeds]) -> PoolView:
    spec = _spec(pool)
    name = name_of(pool)
    capacity_type = str(spec.get("capacityType") or "on-demand")
    zones = list(spec.get("zones") or aws.region_zones(p.ec2))
    with_subnet = aws.subnet_zones(p.ec2)
    if with_subnet is not None:  # SKIFF_NODE_SUBNET_IDS: only where a node can get an address
        zones = [z for z in zones if z in with_subnet]
    types = catalogue.describe(p.ec2, [t for t in spec.get("instanceTypes") or [] if prices.price(t, capacity_type)])
    blocked = {(e.get("instanceType"), e.get("zone"), e.get("capacityType")) for e in _unavailable(pool, p.now)}
    offerings = [Offering(t, zone, capacity_type, prices.price(t.name, capacity_type) or 0.0)
                 for t in types.values() for zone in zones if (t.name, zone, capacity_type) not in blocked]
    mine = pool_claims(claims, name)
    limits = spec.get("limits") or {}
    nodes_left = None if limits.get("maxNodes") is None else int(limits["maxNodes"]) - len(mine)
    cpu_left = None
    if limits.get("cpu") is not None:
        try:
            cpu_left = int(parse_quantity(limits["cpu"]) * 1000) - 1000 * sum(claim_vcpus(p, c) for c in mine)
        except QuantityError:
            cpu_left = 0
    inflight = []
    for claim in mine:
        cspec = _spec(claim)
        if (claim.get("status") or {}).get("phase") not in IN_FLIGHT_PHASES:
            continue
        offering = _offering(p, str(cspec.get("instanceType")), str(cspec.get("zone")), str(cspec.get("capacityType")))
        if offering is not None:
            on_it = tuple(pending[u] for u in cspec.get("podUIDs") or [] if u in pending)
            inflight.append(InFlight(name_of(claim), offering, on_it))
    return PoolView(name=name, offerings=offerings, labels=dict(spec.get("labels") or {}),
                    taints=list(spec.get("taints") or []),
                    max_pods=int(spec.get("maxPodsPerNode") or skiff.DEFAULT_MAX_PODS_PER_NODE),
                    region=settings.region(), nodes_left=nodes_left, cpu_left_milli=cpu_left, inflight=inflight)


def mark_unavailable(p: Pass, pool_name: str, instance_type: str, zone: str, capacity_type: str) -> None:
    """Set an offering aside for OFFERING_UNAVAILABLE_SECONDS (written at once: the next pass may be
    another invocation)."""
    until = stamp(p.now + timedelta(seconds=OFFERING_UNAVAILABLE_SECONDS))
    for _attempt in range(5):
        pool = p.client.get("nodepools", None, pool_name)
        if pool is None:
            return
        status = copy.deepcopy(pool.get("status") or {})
        key = (instance_type, zone, capacity_type)
        kept = [e for e in _unavailable(pool, p.now)
                if (e.get("instanceType"), e.get("zone"), e.get("capacityType")) != key]
        kept.append({"instanceType": instance_type, "zone": zone, "capacityType": capacity_type, "until": until})
        status["unavailableOfferings"] = kept
        try:
            p.pools[pool_name] = p.client.update_status("nodepools", {**pool, "status": status})
            return
        except errors.Conflict:
            continue
    raise errors.Conflict("nodepools", pool_name, skiff.GROUP)


def _ready_condition(old: list[Obj], failed: list[Obj], now: datetime) -> Obj:
    if failed:
        message = str((failed[0].get("status") or {}).get("message") or "a launch failed")
        want = {"type": "Ready", "status": "False", "reason": "LaunchFailed", "message": message}
    else:
        want = {"type": "Ready", "status": "True", "reason": "Ready", "message": "nodes can be launched"}
    previous = next((c for c in old if c.get("type") == "Ready"), None)
    if previous is None or previous.get("status") != want["status"]:
        return {**want, "lastTransitionTime": stamp(now)}
    return {**want, "lastTransitionTime": previous.get("lastTransitionTime")}


def update_status(p: Pass) -> None:
    """nodes, cpu, Ready and the live unavailable offerings of every pool; written only when changed."""
    claims = p.claims()
    for name in list(p.pools):
        pool = p.client.get("nodepools", None, name)
        if pool is None:
            continue
        mine = pool_claims(claims, name)
        failed = [c for c in mine if (c.get("status") or {}).get("phase") == "Failed"]
        status = copy.deepcopy(pool.get("status") or {})
        status["nodes"] = len(mine)
        status["cpu"] = format_quantity(Decimal(sum(claim_vcpus(p, c) for c in mine)))
        status["conditions"] = [_ready_condition(status.get("conditions") or [], failed, p.now)]
        offerings = _unavailable(pool, p.now)
        if offerings:
            status["unavailableOfferings"] = offerings
            p.due_in(min((parse_time(e["until"]) or p.now) - p.now for e in offerings).total_seconds())
        else:
            status.pop("unavailableOfferings", None)
        if status != (pool.get("status") or {}):
            p.pools[name] = p.client.update_status("nodepools", {**pool, "status": status})
