"""Scheduling throughput with binding against the local store: N pods on M hollow nodes (issue 4, Measure).

Why this exists: the decision alone (bench/scheduler_decision.py) says how fast the plugins choose; a
pod is only scheduled once its binding is committed, and every binding is a DynamoDB transaction that
also reserves the node's capacity (invariant 5) and goes through the pod type's revision counter
(invariant 3). This measures what the whole pass achieves against the store the local runtime uses:
a moto server started here (`python -m skiff.motoserver`, requests serialised as in `skiff up`).

The nodes are hollow in the kubemark sense reduced to objects: Node objects with allocatable, labels
and taints, no heartbeat threads and no Leases (a hollow node's own traffic is not what is measured).
Nodes, pods and their namespace are written straight into the store in batches (admission applied,
resourceVersions and the revision counter set as writes would set them; no change-log records, so
no watch sees them) because creating them is not what is measured. Then
`chalicelib.scheduler.handler.schedule_pending(Client())` passes run, timed, until every pod is bound;
each binding is the real one (pods/binding with its reservation, plus the Scheduled event).
Every DynamoDB call is counted by operation, so the figures say what one binding costs the store.

The workload is bench/scheduler_decision.py's (same nodes, same pods), so the two figures compare.
Run by hand: `.venv/bin/python bench/scheduler_throughput.py [--pods 10000] [--nodes 5000]
[--mix plain|mixed] [--profile default|bin-packing] [--decision]`; --decision also runs the
decision-alone benchmark on the same workload for the comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from benchlib import free_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
KUBE_SCHEDULER_THRESHOLD = 680  # pods/s, scheduler_perf, 10000 pods on 5000 nodes
NAMESPACE = "bench"


def start_moto(port: int, log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "wb")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen([sys.executable, "-m", "skiff.motoserver", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1):  # noqa: S310 - loopback
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"moto server did not start; see {log}")


class CallCounter:
    """Counts every botocore API call of this process by operation name."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.enabled = False

    def install(self) -> None:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        counter = self

        def counted(client: Any, operation: str, params: Any) -> Any:
            if counter.enabled:
                counter.calls[operation] += 1
            return original(client, operation, params)

        BaseClient._make_api_call = counted  # type: ignore[method-assign]


def load_batch(kind: str, namespace: str | None, objects: list[dict[str, Any]]) -> None:
    """Admit `objects` as a create would and write them in batches, advancing `kind`'s counter past them."""
    from chalicelib.api import admission
    from chalicelib.controllers.client import resource
    from chalicelib.store import objects as store
    from chalicelib.store.models import COUNTER_REV, ChangeRecord, ObjectRecord

    res = resource(kind)
    rev = store.head(res.key)
    with ObjectRecord.batch_write() as batch:
        for obj in objects:
            admitted = admission.prepare_create(res, obj, namespace)
            status = obj.get("status")
            if status is not None:  # a node's allocatable, as its agent would report it
                admitted["status"] = {**(admitted.get("status") or {}), **status}
            rev += 1
            admitted["metadata"]["resourceVersion"] = str(rev)
            key = store.object_key(namespace, admitted["metadata"]["name"])
            batch.save(ObjectRecord(res.key, key, rv=rev, body=store.dumps(admitted)))
    ChangeRecord(res.key, COUNTER_REV, head=rev).save()
    store._known_head.pop(res.key, None)


def decision_alone(args: argparse.Namespace) -> None:
    cmd = [sys.executable, str(ROOT / "bench" / "scheduler_decision.py"), "--pods", str(args.pods),
           "--nodes", str(args.nodes), "--mix", args.mix, "--profile", args.profile]
    print(f"\n== decision alone (bench/scheduler_decision.py): {' '.join(cmd[1:])}", flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--mix", choices=("plain", "mixed"), default="plain")
    parser.add_argument("--profile", choices=("default", "bin-packing"), default="default")
    parser.add_argument("--events", choices=("on", "off"), default="on",
                        help="off: bind without the Scheduled event (what the binding alone costs)")
    parser.add_argument("--decision", action="store_true", help="also run the decision-alone benchmark")
    parser.add_argument("--json", type=Path, help="write the figures to this file as well")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="skiff-bench-"))
    port = free_port()
    moto = start_moto(port, work / "moto.log")
    os.environ.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench",
                       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_REGION": "us-east-1"})
    try:
        return run(args)
    finally:
        moto.terminate()
        moto.wait(10)


def run(args: argparse.Namespace) -> int:
    # chalicelib reads the environment (endpoint, region, table names) when imported: only now.
    from bench.scheduler_decision import make_nodes, make_pod
    from chalicelib.bootstrap import ensure_builtin_objects
    from chalicelib.controllers import events
    from chalicelib.controllers.client import Client
    from chalicelib.scheduler import handler
    from chalicelib.scheduler.framework import bin_packing_profile, default_profile
    from chalicelib.store.models import AllocationRecord, ensure_tables

    counter = CallCounter()
    counter.install()
    t0 = time.perf_counter()
    ensure_tables()
    ensure_builtin_objects()
    client = Client()
    client.create("namespaces", None, {"metadata": {"name": NAMESPACE}})
    nodes = make_nodes(args.nodes)
    for node in nodes:
        node["metadata"]["annotations"] = {"skiff.io/hollow": "true"}
    load_batch("nodes", None, nodes)
    pods = [make_pod(i, args.mix)[1] for i in range(args.pods)]
    for i, pod in enumerate(pods):
        pod["metadata"]["name"] = f"pod-{i:05d}"
        pod.pop("status", None)
    load_batch("pods", NAMESPACE, pods)
    print(f"loaded {args.nodes} hollow Node objects (no heartbeats) and {args.pods} pending pods "
          f"({args.mix} mix) into a fresh moto store in {time.perf_counter() - t0:.1f} s", flush=True)

    if args.events == "off":
        events.record = lambda *a, **kw: None  # type: ignore[assignment]
    make_profile = bin_packing_profile if args.profile == "bin-packing" else default_profile
    profile = make_profile()
    bound = 0
    passes: list[tuple[int, int, float, float]] = []  # bound, unschedulable, seconds, CPU seconds here
    counter.enabled = True
    while True:
        t, c = time.perf_counter(), time.process_time()
        result = handler.schedule_pending(Client(), profile=profile)
        passes.append((len(result.bound), len(result.unschedulable), time.perf_counter() - t,
                       time.process_time() - c))
        bound += len(result.bound)
        print(f"  pass {len(passes)}: bound {len(result.bound)}, unschedulable {len(result.unschedulable)}, "
              f"{passes[-1][2]:.1f} s", flush=True)
        if not result.bound:
            break
    counter.enabled = False
    # the last pass bound nothing: it is the "anything left?" check, not part of the work (its few
    # requests are counted all the same)
    work_seconds = sum(p[2] for p in passes if p[0])
    cpu = sum(p[3] for p in passes if p[0])
    calls = sum(counter.calls.values())
    unschedulable = passes[-1][1]

    # afterwards, from the store: every pod bound once, no node overcommitted
    stored = Client().list_objects("pods", NAMESPACE)
    on_nodes = Counter(p["spec"].get("nodeName") for p in stored if p["spec"].get("nodeName"))
    reserved = {r.node: int(r.pods or 0) for r in AllocationRecord.scan()}
    assert all(reserved.get(n) == c for n, c in on_nodes.items()), "reservations differ from bindings"
    assert sum(on_nodes.values()) == bound

    rate = bound / work_seconds if work_seconds else 0.0
    print(f"\n== with binding ({args.pods} pods, {args.nodes} nodes, {args.mix}, {profile.name}, "
          f"events {args.events})")
    print(f"bound {bound} pods in {work_seconds:.1f} s over {sum(1 for p in passes if p[0])} pass(es): "
          f"{rate:.0f} pods/s ({bound / cpu if cpu else 0:.0f} pods per CPU-second of this process; "
          f"moto runs in another); {unschedulable} left unschedulable")
    print(f"DynamoDB requests: {calls} ({calls / max(1, bound):.2f} per binding)")
    for op, n in counter.calls.most_common():
        print(f"  {op:22s} {n:7d}  {n / max(1, bound):6.2f} per binding")
    print(f"nodes used: {len(on_nodes)}, most pods on one node: {max(on_nodes.values(), default=0)}")
    verdict = "above" if rate >= KUBE_SCHEDULER_THRESHOLD else "below"
    print(f"kube-scheduler's scheduler_perf threshold for this workload: {KUBE_SCHEDULER_THRESHOLD} pods/s; "
          f"this is {rate / KUBE_SCHEDULER_THRESHOLD:.2f}x of it ({verdict})")
    if args.json:
        args.json.write_text(json.dumps({
            "pods": args.pods, "nodes": args.nodes, "mix": args.mix, "profile": profile.name,
            "events": args.events, "bound": bound, "seconds": work_seconds, "pods_per_second": rate,
            "requests": dict(counter.calls), "requests_per_binding": calls / max(1, bound),
            "passes": passes}, indent=1))
    if args.decision:
        decision_alone(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
