"""Scheduler decision throughput: N pending pods placed one by one on M nodes, decisions only.

No store and no bindings: the snapshot is built once from Node and Pod objects, then each pod is
scheduled and assumed into the snapshot (`Snapshot.add_pod`), as kube-scheduler's cache does before
the binding is written. kube-scheduler's own bar for this (scheduler_perf) is ~680 pods/s.
Run by hand: `.venv/bin/python bench/scheduler_decision.py [--pods 10000] [--nodes 5000]
[--mix plain|mixed] [--profile default|bin-packing] [--percentage 0] [--profile-top 25]`.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.scheduler import PodInfo, Snapshot, bin_packing_profile, default_profile, schedule  # noqa: E402

ZONES = ("zone-a", "zone-b", "zone-c")
CPUS, MEMORIES = ("100m", "250m", "500m"), ("128Mi", "256Mi", "512Mi")


def make_nodes(count: int) -> list[dict[str, Any]]:
    nodes = []
    for i in range(count):
        name = f"node-{i:05d}"
        spec: dict[str, Any] = {}
        if i % 100 == 7:  # 1% dedicated nodes
            spec["taints"] = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
        if i % 200 == 11:  # 0.5% cordoned
            spec["unschedulable"] = True
        nodes.append({
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "topology.kubernetes.io/zone": ZONES[i % len(ZONES)],
                "topology.kubernetes.io/region": "region-1", "pool": "general" if i % 10 else "batch"}},
            "spec": spec,
            "status": {"allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"}}})
    return nodes


def make_pod(i: int, mix: str) -> tuple[str, dict[str, Any]]:
    deployment = i // 100
    app = f"app-{deployment}"
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "nginx", "resources": {"requests": {
        "cpu": CPUS[deployment % 3], "memory": MEMORIES[deployment % 3]}}}]}
    kind = "plain"
    if mix == "mixed":
        selector = {"matchLabels": {"app": app}}
        slot = deployment % 20
        if slot < 4:  # 20%: spread across zones, hard
            kind = "zone-spread"
            spec["topologySpreadConstraints"] = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                                  "whenUnsatisfiable": "DoNotSchedule", "labelSelector": selector}]
        elif slot < 6:  # 10%: one per node
            kind = "anti-affinity"
            spec["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname", "labelSelector": selector}]}}
        elif slot < 8:  # 10%: pinned to a pool
            kind = "node-selector"
            spec["nodeSelector"] = {"pool": "general"}
        elif slot < 9:  # 5%: soft spread over nodes
            kind = "soft-spread"
            spec["topologySpreadConstraints"] = [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                  "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": selector}]
        elif slot < 10:  # 5%: prefer zone-a
            kind = "preferred-affinity"
            spec["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "preference": {"matchExpressions": [
                    {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zone-a"]}]}}]}}
    pod = {"metadata": {"name": f"{app}-{i % 100:03d}", "namespace": "bench", "labels": {"app": app}},
           "spec": spec, "status": {"phase": "Pending"}}
    return kind, pod


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--mix", choices=("plain", "mixed"), default="mixed")
    parser.add_argument("--profile", choices=("default", "bin-packing"), default="default")
    parser.add_argument("--percentage", type=int, default=0, help="percentageOfNodesToScore (0: adaptive)")
    parser.add_argument("--profile-top", type=int, default=0, help="print the N costliest functions")
    args = parser.parse_args()

    make_profile = bin_packing_profile if args.profile == "bin-packing" else default_profile
    profile = make_profile(percentage_of_nodes_to_score=args.percentage)
    nodes = make_nodes(args.nodes)
    pods = [make_pod(i, args.mix) for i in range(args.pods)]

    started = time.perf_counter()
    snapshot = Snapshot.from_objects(nodes, [])
    built = time.perf_counter() - started

    profiler = cProfile.Profile() if args.profile_top else None
    kinds: Counter[str] = Counter()
    seconds: dict[str, float] = dict.fromkeys(("plain",), 0.0)
    unscheduled: Counter[str] = Counter()
    evaluated = 0
    if profiler:
        profiler.enable()
    started, cpu_started = time.perf_counter(), time.process_time()
    for kind, pod in pods:
        t0 = time.perf_counter()
        info = PodInfo(pod)  # parsed once, as the scheduling queue's QueuedPodInfo is
        decision = schedule(info, snapshot, profile)
        if decision.node is not None:
            snapshot.add_pod(info, decision.node)
        else:
            unscheduled[kind] += 1
        seconds[kind] = seconds.get(kind, 0.0) + time.perf_counter() - t0
        kinds[kind] += 1
        evaluated += decision.evaluated
    elapsed, cpu_elapsed = time.perf_counter() - started, time.process_time() - cpu_started
    if profiler:
        profiler.disable()

    print(f"snapshot of {args.nodes} nodes built in {built * 1000:.0f} ms")
    print(f"{args.pods} pods on {args.nodes} nodes ({args.mix}, {profile.name}, "
          f"percentageOfNodesToScore={args.percentage or 'adaptive'}): {elapsed:.2f} s, "
          f"{args.pods / elapsed:.0f} pods/s ({args.pods / cpu_elapsed:.0f} pods per CPU-second), "
          f"{evaluated / args.pods:.0f} nodes filtered per pod")
    for kind in sorted(kinds):
        print(f"  {kind:20s} {kinds[kind]:6d} pods  {kinds[kind] / seconds[kind]:8.0f} pods/s"
              f"  unscheduled {unscheduled[kind]}")
    busiest = max(len(n.pods) for n in snapshot.nodes)
    used = sum(1 for n in snapshot.nodes if n.pods)
    print(f"nodes used: {used}, most pods on one node: {busiest}")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile_top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
