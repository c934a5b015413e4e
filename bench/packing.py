"""Packing quality: the provisioner's plans and the scheduler's placements against lower bounds.

A seeded mixed workload (cpu requests from {100m, 250m, 500m, 1, 2}, memory from {128Mi, 512Mi, 1Gi,
2Gi, 4Gi}, drawn independently) is
  1. planned by the provisioner's pure entry point (planner.plan_pool, no AWS): for a single-type pool,
     nodes used / ceil(max(sum cpu / node cpu, sum memory / node memory, pods / maxPods)) with the
     node's allocatable as the planner computes it; for a multi-type pool, plan cost / the LP
     relaxation's cost (min sum x_t * price_t with sum x_t * cpu_t >= sum cpu and likewise memory,
     x_t >= 0 real; solved exactly by enumerating its vertices: one type, or two types both tight).
     The LP bound is not always attainable, so a ratio above 1 is an upper bound on the waste;
  2. scheduled in one pass onto a fixed set of equal nodes (Snapshot.add_pod after each decision):
     nodes with at least one pod, LeastAllocated (default_profile) versus MostAllocated
     (bin_packing_profile), each against the same lower bound.
vCPU and memory of the types used are hard-coded (EC2's figures); prices come from prices.json.
Run by hand: `.venv/bin/python bench/packing.py [--pods 500] [--seed 1] [--nodes 100]`.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.provisioner import fit, prices  # noqa: E402
from chalicelib.provisioner.catalogue import InstanceType, allocatable  # noqa: E402
from chalicelib.provisioner.planner import Offering, PoolView, plan_pool  # noqa: E402
from chalicelib.scheduler import PodInfo, Snapshot, bin_packing_profile, default_profile, schedule  # noqa: E402

MIB = 1024 * 1024
MAX_PODS = 110
CPUS = {"100m": 100, "250m": 250, "500m": 500, "1": 1000, "2": 2000}
MEMORIES = {"128Mi": 128 * MIB, "512Mi": 512 * MIB, "1Gi": 1024 * MIB, "2Gi": 2048 * MIB, "4Gi": 4096 * MIB}
# EC2 describe_instance_types figures (DefaultVCpus, SizeInMiB).
TYPES = {
    "c5.xlarge": (4, 8192), "c5.2xlarge": (8, 16384), "c5.4xlarge": (16, 32768),
    "m5.xlarge": (4, 16384), "m5.2xlarge": (8, 32768), "m5.4xlarge": (16, 65536),
    "r5.xlarge": (4, 32768), "r5.2xlarge": (8, 65536), "r5.4xlarge": (16, 131072),
}
SINGLE_TYPE = "m5.2xlarge"


def workload(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    pods = []
    for i in range(count):
        cpu, memory = rng.choice(list(CPUS)), rng.choice(list(MEMORIES))
        pods.append({"metadata": {"name": f"pod-{i:04d}", "namespace": "bench", "uid": f"uid-{i:04d}"},
                     "spec": {"containers": [{"name": "main", "image": "nginx",
                                              "resources": {"requests": {"cpu": cpu, "memory": memory}}}]},
                     "status": {"phase": "Pending"}})
    return pods


def pool_of(names: list[str]) -> PoolView:
    offerings = []
    for name in names:
        vcpus, memory = TYPES[name]
        offerings.append(Offering(InstanceType(name, vcpus, memory, "amd64"), "us-east-1a", "on-demand",
                                  prices.price(name, "on-demand") or 0.0))
    return PoolView(name="bench", offerings=offerings, labels={}, taints=[], max_pods=MAX_PODS,
                    region="us-east-1")


def nodes_bound(cpu: int, memory: int, pods: int, node_cpu: int, node_memory: int, node_pods: int) -> int:
    return max(math.ceil(cpu / node_cpu), math.ceil(memory / node_memory), math.ceil(pods / node_pods))


def lp_cost_bound(cpu: int, memory: int, pool: PoolView) -> float:
    """min sum x_t p_t s.t. sum x_t c_t >= cpu, sum x_t m_t >= memory, x >= 0 (vertex enumeration)."""
    kinds = []
    for o in pool.offerings:
        room = allocatable(o.instance_type, pool.max_pods)
        kinds.append((room.cpu_milli, room.memory_bytes, o.price))
    best = min(max(cpu / c, memory / m) * p for c, m, p in kinds)
    for i, (c1, m1, p1) in enumerate(kinds):
        for c2, m2, p2 in kinds[i + 1:]:
            det = c1 * m2 - c2 * m1
            if det == 0:
                continue
            x1, x2 = (cpu * m2 - c2 * memory) / det, (c1 * memory - cpu * m1) / det
            if x1 >= 0 and x2 >= 0:
                best = min(best, x1 * p1 + x2 * p2)
    return best


def provisioner_figures(pods: list[dict[str, Any]]) -> list[tuple[str, str]]:
    needs = [fit.needs(p) for p in pods]
    cpu, memory = sum(n.cpu_milli for n in needs), sum(n.memory_bytes for n in needs)
    rows = []

    single = pool_of([SINGLE_TYPE])
    plan = plan_pool(single, needs)
    room = allocatable(single.offerings[0].instance_type, MAX_PODS)
    bound = nodes_bound(cpu, memory, len(needs), room.cpu_milli, room.memory_bytes, room.pods)
    rows.append((f"provisioner, {SINGLE_TYPE} only: nodes / lower bound",
                 f"{len(plan.nodes)} / {bound} = {len(plan.nodes) / bound:.3f}"
                 f" (unplaced {len(plan.unplaced)})"))

    multi = pool_of(list(TYPES))
    plan = plan_pool(multi, needs)
    lp = lp_cost_bound(cpu, memory, multi)
    mix: dict[str, int] = {}
    for node in plan.nodes:
        mix[node.offering.instance_type.name] = mix.get(node.offering.instance_type.name, 0) + 1
    rows.append((f"provisioner, {len(TYPES)} types: $/h / LP bound",
                 f"{plan.cost:.4f} / {lp:.4f} = {plan.cost / lp:.3f} (unplaced {len(plan.unplaced)})"))
    rows.append(("  plan's nodes", ", ".join(f"{n} x{k}" for n, k in sorted(mix.items()))))
    return rows


def scheduler_figures(pods: list[dict[str, Any]], node_count: int) -> list[tuple[str, str]]:
    node_cpu, node_memory = "8", "32Gi"
    nodes = [{"metadata": {"name": f"node-{i:04d}", "labels": {
        "kubernetes.io/hostname": f"node-{i:04d}", "topology.kubernetes.io/zone": "zone-a"}},
        "spec": {}, "status": {"allocatable": {"cpu": node_cpu, "memory": node_memory, "pods": str(MAX_PODS)}}}
        for i in range(node_count)]
    needs = [fit.needs(p) for p in pods]
    bound = nodes_bound(sum(n.cpu_milli for n in needs), sum(n.memory_bytes for n in needs), len(needs),
                        8000, 32 * 1024 * MIB, MAX_PODS)
    rows = []
    for label, profile in (("LeastAllocated", default_profile(percentage_of_nodes_to_score=100)),
                           ("MostAllocated", bin_packing_profile(percentage_of_nodes_to_score=100))):
        snapshot = Snapshot.from_objects(nodes, [])
        unscheduled = 0
        for pod in pods:
            info = PodInfo(pod)
            decision = schedule(info, snapshot, profile)
            if decision.node is None:
                unscheduled += 1
            else:
                snapshot.add_pod(info, decision.node)
        used = sum(1 for n in snapshot.nodes if n.pods)
        rows.append((f"scheduler {label}, {node_count} x {node_cpu} cpu/{node_memory}: used / lower bound",
                     f"{used} / {bound} = {used / bound:.3f} (unscheduled {unscheduled})"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pods", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--nodes", type=int, default=100, help="equal nodes for the scheduler part")
    args = parser.parse_args()

    pods = workload(args.pods, args.seed)
    rows = [("command", " ".join([".venv/bin/python", "bench/packing.py", *sys.argv[1:]])),
            ("seed", str(args.seed)), ("pods", str(args.pods))]
    rows += provisioner_figures(pods)
    rows += scheduler_figures(pods, args.nodes)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
