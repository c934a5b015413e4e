"""Controllers under load: a 100-replica Deployment, from apply to 100 pods created.

Runs the local stack in this process (moto server as a subprocess, the real stream runner with the
app's stream handler, the resync schedule) with hollow nodes (Node objects with capacity, no agent)
for the scheduler, and measures:
  - time from the Deployment's create to 100 pods existing, and to all of them bound;
  - stream lag per record: the record's ApproximateCreationDateTime to the handler returning;
  - handler invocations, and store writes (DynamoDB transactions) per pod, by resource type.
Run by hand: `.venv/bin/python bench/controllers.py [--replicas 100]`; it prints its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchlib import free_port, percentile


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=100)
    parser.add_argument("--window", type=float, default=1.0, help="stream batching window, seconds (AWS: 1)")
    parser.add_argument("--nodes", type=int, default=10, help="nodes (objects with capacity) for the scheduler")
    args = parser.parse_args()

    port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "skiff.motoserver", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "x",
                       "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
                       "SKIFF_TABLE_PREFIX": f"bench{port}"})
    time.sleep(1.5)
    try:
        return run(args.replicas, args.window, args.nodes)
    finally:
        moto.terminate()


def run(replicas: int, window: float, nodes: int) -> int:
    from chalicelib import bootstrap
    from chalicelib.api.auth import issue_token
    from chalicelib.api.http import Request
    from chalicelib.api.server import handle
    from chalicelib.controllers import dispatch
    from chalicelib.store import objects as store
    from chalicelib.store.models import ObjectRecord, ensure_tables
    from skiff.schedules import Schedule
    from skiff.streams import StreamRunner

    ensure_tables()
    bootstrap.ensure_builtin_objects()
    token = issue_token("admin")

    writes: Counter[str] = Counter()
    real_write = store._write

    def counting_write(kind: str, key: str, obj: dict[str, Any], **kw: Any) -> dict[str, Any]:
        out = real_write(kind, key, obj, **kw)
        writes[f"{kw.get('event')} {kind}"] += 1
        return out

    store._write = counting_write  # type: ignore[assignment]

    lags: list[float] = []
    invocations = 0

    def handler(event: dict[str, Any], context: Any) -> None:
        nonlocal invocations
        invocations += 1
        dispatch.handle_records(event["Records"])
        done = time.time()
        lags.extend(done - float(r["dynamodb"]["ApproximateCreationDateTime"]) for r in event["Records"])

    work = Path(tempfile.mkdtemp(prefix="skiff-bench-"))
    runner = StreamRunner("controllers", ObjectRecord.Meta.table_name, handler, batch_size=100,
                          batching_window_seconds=window, failure_destination=work / "failed.jsonl",
                          checkpoint_path=work / "cp.json")
    resync = Schedule("resync", lambda e, c: dispatch.resync(), 10)
    runner.start()
    resync.start()
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "big"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "big"}},
                     "template": {"metadata": {"labels": {"app": "big"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}}}
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    for i in range(nodes):  # hollow: objects with capacity, no agent
        handle(Request("POST", "/api/v1/nodes", headers=headers,
                       body=json.dumps({"metadata": {"name": f"node-{i}"}}).encode()))
        res = {"cpu": "64", "memory": "256Gi", "pods": "110"}
        handle(Request("PATCH", f"/api/v1/nodes/node-{i}/status",
                       headers={**headers, "content-type": "application/merge-patch+json"},
                       body=json.dumps({"status": {"capacity": res, "allocatable": res}}).encode()))
    time.sleep(3 * window + 1)
    writes.clear()
    start = time.monotonic()
    resp = handle(Request("POST", "/apis/apps/v1/namespaces/default/deployments", headers=headers,
                          body=json.dumps(body).encode()))
    assert resp.status == 201, resp.body
    created_at = bound_at = None
    while time.monotonic() - start < 300:
        items = handle(Request("GET", "/api/v1/namespaces/default/pods", headers=headers)).body["items"]
        if created_at is None and len(items) >= replicas:
            created_at = time.monotonic() - start
        if sum(1 for p in items if p["spec"].get("nodeName")) >= replicas:
            bound_at = time.monotonic() - start
            break
        time.sleep(0.1)
    time.sleep(3 * window + 1)  # let the status updates after the last pod settle
    runner.stop()
    resync.stop()
    if created_at is None or bound_at is None:
        print("FAILED: the pods were not all created and bound within 300 s")
        return 1
    pods = writes["ADDED core/pods"]
    # Everything but the user's own create and the pods' creates is overhead; the scheduler's share is
    # the binding (a pod update) and its Scheduled event per pod.
    overhead = sum(writes.values()) - pods - writes["ADDED apps/deployments"]
    scheduler = writes["MODIFIED core/pods"] + pods
    others = overhead - scheduler
    print(f"replicas: {replicas}, batching window: {window} s, machine: {os.cpu_count()} cores")
    print(f"apply -> {replicas} pods created: {created_at:.2f} s ({replicas / created_at:.1f} pods/s); "
          f"all bound by the scheduler: {bound_at:.2f} s")
    print(f"stream lag (record written -> handler done), {len(lags)} records: "
          f"p50 {statistics.median(lags) * 1000:.0f} ms, p99 {percentile(lags, 0.99) * 1000:.0f} ms")
    print(f"handler invocations: {invocations} ({invocations / max(1, pods):.2f} per pod)")
    print("store writes (one DynamoDB transaction each) by event and type:")
    for k, v in sorted(writes.items()):
        print(f"  {k:40} {v}")
    print(f"ReplicaSet/Deployment controller writes beyond the pods' own creates: {others} = "
          f"{others / max(1, pods):.2f} per pod (target <= 2)")
    print(f"scheduler writes (binding + Scheduled event): {scheduler} = {scheduler / max(1, pods):.2f} per pod")
    return 0


if __name__ == "__main__":
    sys.exit(main())
