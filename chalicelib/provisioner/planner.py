"""Packing pending pods onto the cheapest set of new nodes a NodePool allows.

Why this exists: this is where the money is decided. First-fit-decreasing, as Karpenter does it: pods
largest first; each goes onto the first open node that can still take it on at least one of that
node's remaining candidate offerings (instance type, zone, capacity type), narrowing the candidates
to those that hold everything placed so far; a pod that fits no open node opens a new one. Each new
node then takes its cheapest remaining candidate (ties go to the zone with fewest nodes, then by
name). Greedy narrowing tends towards big nodes, so the same packing is also run with new nodes held
to one instance type at a time (pods too big for it fall back to the open choice), and the plan
that places the most pods at the lowest hourly price wins. Nodes already launched or launching for
the pool (in-flight claims) are tried before new ones, so pods trickling in after a batch fill them.

Limits are applied to the finished plan in node order: a node that would take the pool past
maxNodes or its cpu limit is downsized to a cheaper candidate that fits the headroom, or dropped
(its pods stay pending). Everything here is pure: same input, same plan, same claim names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.provisioner import fit
from chalicelib.provisioner.catalogue import Allocatable, InstanceType, allocatable
from chalicelib.provisioner.fit import PodNeeds
from chalicelib.types import skiff

Obj = dict[str, Any]
MAX_VARIANTS = 12  # homogeneous variants tried besides the open one (cheapest per vCPU first)


@dataclass(frozen=True)
class Offering:
    instance_type: InstanceType
    zone: str
    capacity_type: str
    price: float

    @property
    def vcpus(self) -> int:
        return self.instance_type.vcpus


@dataclass
class PoolView:
    """What the planner needs of one NodePool, already resolved against EC2 and the store."""

    name: str
    offerings: list[Offering]  # available now (unavailable offerings left out)
    labels: Mapping[str, str]
    taints: Sequence[Obj]
    max_pods: int
    region: str
    nodes_left: int | None = None  # maxNodes minus the pool's nodes; None: no limit
    cpu_left_milli: int | None = None
    inflight: list[InFlight] = field(default_factory=list)

    def node_labels(self, offering: Offering) -> dict[str, str]:
        return {**self.labels, skiff.LABEL_NODEPOOL: self.name,
                skiff.LABEL_INSTANCE_TYPE: offering.instance_type.name, skiff.LABEL_ZONE: offering.zone,
                skiff.LABEL_REGION: self.region, skiff.LABEL_CAPACITY_TYPE: offering.capacity_type,
                skiff.LABEL_ARCH: offering.instance_type.arch, skiff.LABEL_OS: "linux"}


@dataclass(frozen=True)
class InFlight:
    """A claim of the pool not registered yet: its fixed offering and the pods already on it."""

    claim: str
    offering: Offering
    pods: tuple[PodNeeds, ...]


@dataclass(frozen=True)
class PlannedNode:
    pool: str
    offering: Offering
    pods: tuple[PodNeeds, ...]
    labels: Mapping[str, str]
    taints: Sequence[Obj]

    @property
    def pod_uids(self) -> list[str]:
        return sorted(p.uid for p in self.pods)

    @property
    def claim_name(self) -> str:
        """Deterministic: a replayed pass plans the same node under the same name and gets 409."""
        o = self.offering
        key = f"{o.instance_type.name}|{o.zone}|{o.capacity_type}|{','.join(self.pod_uids)}"
        return f"{self.pool[:200].rstrip('.-')}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


@dataclass
class Plan:
    nodes: list[PlannedNode] = field(default_factory=list)
    extend: dict[str, list[str]] = field(default_factory=dict)  # in-flight claim -> pod uids added
    unplaced: list[PodNeeds] = field(default_factory=list)

    @property
    def cost(self) -> float:
        return sum(n.offering.price for n in self.nodes)

    @property
    def placed(self) -> int:
        return sum(len(n.pods) for n in self.nodes) + sum(len(u) for u in self.extend.values())


class _Open:
    """A node being filled: its remaining candidate offerings and what it holds."""

    def __init__(self, candidates: list[Offering], claim: str | None = None) -> None:
        self.candidates = candidates
        self.claim = claim
        self.pods: list[PodNeeds] = []
        self.added: list[str] = []
        self.cpu = self.memory = 0
        self.ports: set[tuple[str, int]] = set()

    def add(self, pod: PodNeeds, *, new: bool = True) -> None:
        self.pods.append(pod)
        if new:
            self.added.append(pod.uid)
        self.cpu += pod.cpu_milli
        self.memory += pod.memory_bytes
        self.ports |= pod.host_ports


class _Packer:
    def __init__(self, pool: PoolView) -> None:
        self.pool = pool
        self.room: dict[str, Allocatable] = {o.instance_type.name: allocatable(o.instance_type, pool.max_pods)
                                             for o in pool.offerings}
        for f in pool.inflight:
            self.room.setdefault(f.offering.instance_type.name, allocatable(f.offering.instance_type, pool.max_pods))
        self.accepts: dict[tuple[str, Offering], bool] = {}

    def compatible(self, pod: PodNeeds, offering: Offering) -> bool:
        key = (pod.uid, offering)
        if key not in self.accepts:
            self.accepts[key] = fit.accepts(pod.pod, self.pool.node_labels(offering), self.pool.taints)
        return self.accepts[key]

    def fits(self, node: _Open, pod: PodNeeds, offering: Offering) -> bool:
        room = self.room[offering.instance_type.name]
        return (node.cpu + pod.cpu_milli <= room.cpu_milli and node.memory + pod.memory_bytes <= room.memory_bytes
                and len(node.pods) + 1 <= room.pods and not (node.ports & pod.host_ports)
                and self.compatible(pod, offering))

    def pack(self, pods: list[PodNeeds], only_type: str | None) -> tuple[list[_Open], list[_Open], list[PodNeeds]]:
        inflight = []
        for f in self.pool.inflight:
            node = _Open([f.offering], claim=f.claim)
            for p in f.pods:
                node.add(p, new=False)
            inflight.append(node)
        new: list[_Open] = []
        unplaced: list[PodNeeds] = []
        empty = _Open([])
        for pod in pods:
            for node in (*inflight, *new):
                candidates = [o for o in node.candidates if self.fits(node, pod, o)]
                if candidates:
                    node.candidates = candidates
                    node.add(pod)
                    break
            else:
                candidates = [o for o in self.pool.offerings if self.fits(empty, pod, o)]
                held = [o for o in candidates if o.instance_type.name == only_type]
                if held or candidates:
                    node = _Open(held or candidates)
                    node.add(pod)
                    new.append(node)
                else:
                    unplaced.append(pod)
        return inflight, new, unplaced

    def finish(self, inflight: list[_Open], new: list[_Open], unplaced: list[PodNeeds]) -> Plan:
        plan = Plan(unplaced=list(unplaced))
        plan.extend = {n.claim: list(n.added) for n in inflight if n.claim and n.added}
        zones: dict[str, int] = {}
        for f in self.pool.inflight:
            zones[f.offering.zone] = zones.get(f.offering.zone, 0) + 1
        nodes_left, cpu_left = self.pool.nodes_left, self.pool.cpu_left_milli
        for node in new:
            allowed = [o for o in node.candidates if cpu_left is None or o.vcpus * 1000 <= cpu_left]
            if not allowed or (nodes_left is not None and nodes_left <= 0):
                plan.unplaced.extend(node.pods)
                continue
            choice = min(allowed, key=lambda o: (o.price, zones.get(o.zone, 0), o.zone, o.instance_type.name))
            zones[choice.zone] = zones.get(choice.zone, 0) + 1
            if nodes_left is not None:
                nodes_left -= 1
            if cpu_left is not None:
                cpu_left -= choice.vcpus * 1000
            plan.nodes.append(PlannedNode(pool=self.pool.name, offering=choice, pods=tuple(node.pods),
                                          labels=self.pool.node_labels(choice), taints=list(self.pool.taints)))
        return plan


def _variants(pool: PoolView) -> list[str | None]:
    by_type: dict[str, float] = {}
    for o in pool.offerings:
        per_cpu = o.price / max(1, o.vcpus)
        by_type[o.instance_type.name] = min(by_type.get(o.instance_type.name, per_cpu), per_cpu)
    ranked = sorted(by_type, key=lambda name: (by_type[name], name))
    return [None, *ranked[:MAX_VARIANTS]]


def _order(pods: list[PodNeeds]) -> list[PodNeeds]:
    return sorted(pods, key=lambda p: (-p.cpu_milli, -p.memory_bytes, p.key, p.uid))


def plan_pool(pool: PoolView, pods: list[PodNeeds]) -> Plan:
    """The best plan for these pods in one pool (pods the pool cannot take come back unplaced)."""
    packer = _Packer(pool)
    ordered = _order(pods)
    best: Plan | None = None
    for only_type in _variants(pool):
        candidate = packer.finish(*packer.pack(ordered, only_type))
        if best is None or (-candidate.placed, round(candidate.cost, 6), len(candidate.nodes)) < \
                (-best.placed, round(best.cost, 6), len(best.nodes)):
            best = candidate
    return best or Plan(unplaced=ordered)


def plan(pools: list[PoolView], pods: list[PodNeeds]) -> list[Plan]:
    """Plans per pool, pools in name order; a pod goes to the first pool that can place it."""
    plans: list[Plan] = []
    remaining = list(pods)
    for pool in sorted(pools, key=lambda p: p.name):
        if not remaining:
            break
        result = plan_pool(pool, remaining)
        plans.append(result)
        placed = {uid for n in result.nodes for uid in n.pod_uids} | {
            uid for uids in result.extend.values() for uid in uids}
        remaining = [p for p in remaining if p.uid not in placed]
    return plans
