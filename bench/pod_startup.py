"""Pod startup on a real node agent and local Docker (issue 5): latency, writes per pod, the agent's cost.

Starts a local cluster (`skiff up --detach`, a temporary SKIFF_HOME) and measures:
  1. pod startup latency: the create request sent -> a watch on the pods delivers phase=Running with every
     container running, image present; p50/p99 against Kubernetes' SLO (p99 <= 5 s) and our target
     (p99 <= 2 s), and as a ratio to `docker run -d` of the same image and command. Pods are created all
     at once (N concurrent creates from a thread pool, kube's density style) and at a fixed rate, bound
     with spec.nodeName (no scheduler), then all at once again through the scheduler (no nodeName);
  2. writes per pod lifecycle (create -> Running -> delete): the agent's status writes
     (`agent.context.status_writes`), its confirm-delete and its Events, counted on its API transport;
     and, from the API side, resourceVersion changes per pod seen by a watch;
  3. the agent's own RSS and CPU, in a separate `python -m skiff_agent.main` process: idle, during the
     startup of N pods, and while steady with N running pods.
Run by hand: `.venv/bin/python bench/pod_startup.py [--pods 50] [--agents 1]`; it prints its figures.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "node-agent"))

from benchlib import free_port, percentile  # noqa: E402

from skiff_agent import labels as L  # noqa: E402
from skiff_agent.api import ApiError, HTTPTransport  # noqa: E402

IMAGE = "skiff-test/busybox:1"
COMMAND = ["sleep", "3600"]
SLO_P99, TARGET_P99, TARGET_WRITES = 5.0, 2.0, 3
Obj = dict[str, Any]


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (f"p50 {statistics.median(values):.2f} s, p99 {percentile(values, 0.99):.2f} s, "
            f"max {max(values):.2f} s (n={len(values)})")


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


# --- the cluster ---


@dataclass
class Cluster:
    url: str
    home: Path
    aws_endpoint: str
    token: str
    env: dict[str, str]

    @property
    def ca_file(self) -> str:
        return str(self.home / "apiserver.crt")

    def api(self, pool_size: int = 64) -> HTTPTransport:
        return HTTPTransport(self.url, self.token, self.ca_file, timeout=60.0, pool_size=pool_size)

    def node_token(self, node: str) -> str:
        env = {**self.env, "AWS_ENDPOINT_URL": self.aws_endpoint, "AWS_ACCESS_KEY_ID": "skiff-local",
               "AWS_SECRET_ACCESS_KEY": "skiff-local"}
        out = subprocess.run([sys.executable, "-m", "skiff.cli", "token", "create", "--role", "node", "--node", node],
                             capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
        if out.returncode != 0:
            raise RuntimeError(f"skiff token create failed: {out.stderr}")
        return out.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def local_cluster() -> Iterator[Cluster]:
    home = Path(tempfile.mkdtemp(prefix="skiff-bench-home-"))
    port, aws_port = free_port(), free_port()
    env = {**os.environ, "SKIFF_HOME": str(home), "SKIFF_STREAM_BATCH_WINDOW_SECONDS": "0.2"}
    env.pop("AWS_ENDPOINT_URL", None)
    try:
        # no nodes of skiff up's own: the benchmark's agents are the cluster's only nodes
        up = subprocess.run([sys.executable, "-m", "skiff.cli", "up", "--detach", "--port", str(port),
                             "--aws-port", str(aws_port), "--nodes", "0", "--node-runtime", "hollow"],
                            capture_output=True, text=True, env=env, timeout=180, cwd=ROOT)
        if up.returncode != 0:
            raise RuntimeError(f"skiff up failed:\n{up.stdout}\n{up.stderr}")
        kubeconfig = Path(up.stdout.strip().splitlines()[-1].split("=", 1)[1])
        token = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]
        yield Cluster(url=f"https://127.0.0.1:{port}", home=home, aws_endpoint=f"http://127.0.0.1:{aws_port}",
                      token=token, env=env)
    finally:
        subprocess.run([sys.executable, "-m", "skiff.cli", "down"], env=env, capture_output=True, timeout=60,
                       cwd=ROOT)


def remove_node_containers(docker_client: Any, node: str) -> None:
    for c in docker_client.containers.list(all=True, filters={"label": f"{L.NODE}={node}"}):
        with contextlib.suppress(Exception):
            c.remove(force=True)
    for v in docker_client.volumes.list(filters={"label": f"{L.NODE}={node}"}):
        with contextlib.suppress(Exception):
            v.remove(force=True)


def wait_node_ready(api: HTTPTransport, node: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ApiError):
            obj = api.request("GET", f"/api/v1/nodes/{node}")
            conds = {c.get("type"): c.get("status") for c in (obj.get("status") or {}).get("conditions") or []}
            if conds.get("Ready") == "True":
                return
        time.sleep(0.5)
    raise RuntimeError(f"node {node} did not become Ready within {timeout:.0f} s")


# --- the pods and the watch that times them ---


@dataclass
class PodTrack:
    sent: float = 0.0  # wall clock, the create request sent
    uid: str = ""
    running_at: float = 0.0  # wall clock, the watch delivered Running
    deleted_at: float = 0.0
    rvs: list[str] = field(default_factory=list)  # resourceVersions seen, in order
    changes: Counter[str] = field(default_factory=Counter)  # what each rv change was (API side)
    bound: bool = False  # spec.nodeName seen
    trace: list[str] = field(default_factory=list)  # one line per resourceVersion change
    last_status: Obj = field(default_factory=dict)


def is_running(pod: Obj) -> bool:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    return (status.get("phase") == "Running" and len(statuses) == len((pod.get("spec") or {}).get("containers") or [])
            and all("running" in (s.get("state") or {}) for s in statuses))


class PodWatch:
    """Watches one namespace's pods (re-watching from the last resourceVersion) and records, per pod, when
    Running arrived and every resourceVersion change, classified by who most likely made it."""

    def __init__(self, api: HTTPTransport, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.pods: dict[str, PodTrack] = defaultdict(PodTrack)
        self.lock = threading.Lock()
        self._stop = threading.Event()
        listed = api.request("GET", f"/api/v1/namespaces/{namespace}/pods")
        self._rv = str(listed["metadata"]["resourceVersion"])
        self._thread = threading.Thread(target=self._run, name="bench-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            query = {"watch": "true", "resourceVersion": self._rv, "timeoutSeconds": "20"}
            try:
                for event in self.api.watch(f"/api/v1/namespaces/{self.namespace}/pods", query, timeout=60):
                    arrived = time.time()
                    obj = event.get("object") or {}
                    md = obj.get("metadata") or {}
                    if event.get("type") == "ERROR":
                        raise RuntimeError(f"watch error: {obj.get('message')}")
                    self._rv = str(md.get("resourceVersion") or self._rv)
                    if event.get("type") != "BOOKMARK":
                        self._record(str(event.get("type")), obj, arrived)
                    if self._stop.is_set():
                        return
            except Exception as e:  # noqa: BLE001 - a dropped watch resumes from the last rv
                if self._stop.is_set():
                    return
                print(f"  (watch restarted: {e})", file=sys.stderr)
                time.sleep(0.2)

    def _record(self, kind: str, obj: Obj, arrived: float) -> None:
        md = obj.get("metadata") or {}
        with self.lock:
            track = self.pods[str(md.get("name"))]
            previous = track.rvs[-1] if track.rvs else None
            rv = str(md.get("resourceVersion") or "")
            if rv != previous or kind == "DELETED":
                track.rvs.append(rv)
                if kind == "ADDED":
                    track.changes["create"] += 1
                elif kind == "DELETED":
                    track.changes["removed (confirm-delete)"] += 1
                elif md.get("deletionTimestamp") and not track.changes["delete request"]:
                    track.changes["delete request"] += 1
                elif not track.bound and (obj.get("spec") or {}).get("nodeName"):
                    track.changes["binding"] += 1
                else:
                    track.changes["status (node)"] += 1
                status = obj.get("status") or {}
                states = ",".join("/".join(s.get("state") or {}) for s in status.get("containerStatuses") or [])
                conds = ",".join(f"{c.get('type')}={c.get('status')}" for c in status.get("conditions") or [])
                changed = sorted(diff_paths(track.last_status, status))
                track.last_status = status
                track.trace.append(f"+{arrived - track.sent:.3f} s {kind} rv={rv} "
                                   f"node={(obj.get('spec') or {}).get('nodeName')} "
                                   f"deleting={bool(md.get('deletionTimestamp'))} phase={status.get('phase')} "
                                   f"containers=[{states}] conditions=[{conds}] status changed: {changed}")
            track.bound = track.bound or bool((obj.get("spec") or {}).get("nodeName"))
            track.uid = str(md.get("uid") or track.uid)
            if kind != "DELETED" and not track.running_at and is_running(obj):
                track.running_at = arrived
            if kind == "DELETED":
                track.deleted_at = arrived

    def wait(self, names: list[str], what: Callable[[PodTrack], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if all(what(self.pods[n]) for n in names):
                    return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        self._stop.set()


def diff_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """The dotted paths where two JSON values differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in set(old) | set(new):
            out += diff_paths(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out += diff_paths(a, b, f"{prefix}[{i}]")
        return out
    return [] if old == new else [prefix or "."]


def pod_manifest(name: str, node: str | None) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": IMAGE, "command": COMMAND,
                                 "imagePullPolicy": "IfNotPresent"}],
                 "terminationGracePeriodSeconds": 0, "restartPolicy": "Always"}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "startup-bench"}},
            "spec": spec}


@dataclass
class RunResult:
    label: str
    names: list[str]
    watch: PodWatch
    started: float  # wall clock of the first create
    all_running: float  # wall clock when the last pod was seen Running (0: not all did)

    def latencies(self) -> list[float]:
        return [self.watch.pods[n].running_at - self.watch.pods[n].sent for n in self.names
                if self.watch.pods[n].running_at]


def create_pods(api: HTTPTransport, namespace: str, prefix: str, count: int, nodes: list[str] | None,
                watch: PodWatch, *, rate: float = 0.0, timeout: float = 300) -> RunResult:
    """Create `count` pods, all at once from a thread pool (rate 0) or one every 1/rate s, and wait until
    the watch has seen each Running."""
    names = [f"{prefix}-{i:03d}" for i in range(count)]

    def create(i: int) -> None:
        name = names[i]
        node = nodes[i % len(nodes)] if nodes else None
        with watch.lock:
            watch.pods[name].sent = time.time()
        api.request("POST", f"/api/v1/namespaces/{namespace}/pods", body=pod_manifest(name, node))

    started = time.time()
    if rate <= 0:
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(create, range(count)))
    else:
        with ThreadPoolExecutor(8) as pool:
            futures = []
            for i in range(count):
                delay = started + i / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(create, i))
            for f in futures:
                f.result()
    ok = watch.wait(names, lambda t: bool(t.running_at), timeout)
    last = max((watch.pods[n].running_at for n in names), default=0.0) if ok else 0.0
    if not ok:
        missing = [n for n in names if not watch.pods[n].running_at]
        print(f"  WARNING: {len(missing)} pods not Running after {timeout:.0f} s: {missing[:5]}")
    return RunResult(label=prefix, names=names, watch=watch, started=started, all_running=last)


def delete_pods(api: HTTPTransport, namespace: str, names: list[str], watch: PodWatch, grace: int | None,
                timeout: float = 120) -> bool:
    """Delete the pods: with grace None a plain DELETE (a pod whose terminationGracePeriodSeconds is 0 is
    removed at once, as in Kubernetes, and the node only cleans up); with a grace period > 0 the deletion
    is graceful and the node confirms it once the containers are gone."""
    query = {} if grace is None else {"gracePeriodSeconds": str(grace)}

    errors: Counter[str] = Counter()

    def delete(name: str) -> None:
        for _ in range(5):
            try:
                api.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", query=query)
                return
            except ApiError as e:
                errors[f"{e.status} {e.reason}"] += 1
                if e.status != 409:
                    return

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(delete, names))
    if errors:
        print(f"  NOTE: DELETE answered errors (a 409 is retried, up to 5 times): {dict(errors)}")
    ok = watch.wait(names, lambda t: bool(t.deleted_at), timeout)
    if not ok:
        print(f"  WARNING: {sum(1 for n in names if not watch.pods[n].deleted_at)} pods not gone after {timeout:.0f} s")
    return ok


def make_namespace(api: HTTPTransport, name: str) -> None:
    api.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": name}})


def report_latency(result: RunResult, how: str, docker_p50: float) -> dict[str, float]:
    lat = result.latencies()
    print(f"\n[{result.label}] {how}")
    print(f"  create -> Running (watch): {summary(lat)}")
    if not lat:
        return {}
    p50, p99 = statistics.median(lat), percentile(lat, 0.99)
    wall = result.all_running - result.started if result.all_running else float("nan")
    print(f"  first create -> last pod Running: {wall:.2f} s ({len(lat) / wall:.1f} pods/s)")
    print(f"  SLO p99 <= {SLO_P99:.0f} s: {verdict(p99 <= SLO_P99)}; target p99 <= {TARGET_P99:.0f} s: "
          f"{verdict(p99 <= TARGET_P99)}; p50 / docker run p50 (same concurrency) = {p50 / docker_p50:.1f}x")
    return {"p50": p50, "p99": p99, "wall": wall}


def api_side_writes(result: RunResult) -> None:
    """Writes per pod from resourceVersion changes the watch saw: everything after the create that the
    user did not make (binding by the scheduler, status by the node, the node's confirm-delete)."""
    per: Counter[str] = Counter()
    node_writes = []
    for n in result.names:
        changes = result.watch.pods[n].changes
        per.update(changes)
        node_writes.append(changes["status (node)"] + changes["removed (confirm-delete)"])
    count = len(result.names)
    print("  API side, resourceVersion changes per pod (watch):",
          ", ".join(f"{k} {v / count:.2f}" for k, v in sorted(per.items())))
    print(f"  node's writes to the pod (status + confirm-delete) from the watch: "
          f"mean {statistics.mean(node_writes):.2f}, max {max(node_writes)}")
    worst = result.names[node_writes.index(max(node_writes))]
    print(f"  the pod with the most ({worst}), every change the watch saw (sent at "
          f"{result.watch.pods[worst].sent:.3f}):")
    for line in result.watch.pods[worst].trace:
        print(f"    {line}")


# --- the in-process agent: its status writes, its API calls, and where its time goes ---


class CountingTransport:
    """The agent's API transport, counting calls by method and kind of path, per pod name."""

    def __init__(self, inner: HTTPTransport) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.per_pod: dict[str, Counter[str]] = defaultdict(Counter)
        self.status_sent: dict[str, list[tuple[float, float]]] = defaultdict(list)  # name -> (start, end)
        self.lock = threading.Lock()

    def request(self, method: str, path: str, **kw: Any) -> Any:
        parts = path.strip("/").split("/")
        pod = ""
        kind = "/".join(p for p in parts if p in ("pods", "nodes", "leases", "events", "configmaps", "status"))
        if "pods" in parts and parts.index("pods") + 1 < len(parts):
            pod = parts[parts.index("pods") + 1]
            kind = "pods/status" if parts[-1] == "status" else "pods/<name>"
        elif parts[-1] == "events":
            pod = str(((kw.get("body") or {}).get("involvedObject") or {}).get("name") or "")
        start = time.time()
        try:
            return self.inner.request(method, path, **kw)
        finally:
            end = time.time()
            with self.lock:
                self.calls[f"{method} {kind}"] += 1
                if pod:
                    self.per_pod[pod][f"{method} {kind}"] += 1
                    if kind == "pods/status":
                        self.status_sent[pod].append((start, end))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Timeline:
    """Agent-side timestamps per pod name: first seen by the agent's watch, sandbox created, container
    created+started, by wrapping the agent's methods."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.sandbox: dict[str, tuple[float, float]] = {}
        self.run: dict[str, tuple[float, float]] = {}

    def install(self, agent: Any) -> None:
        upsert, create_sandbox, run = agent._upsert, agent.runtime.create_sandbox, agent.runtime.run

        def timed_upsert(pod: Obj) -> None:
            self.seen.setdefault(str((pod.get("metadata") or {}).get("name")), time.time())
            upsert(pod)

        def timed_sandbox(pod: Obj, *a: Any, **kw: Any) -> str:
            start = time.time()
            out = create_sandbox(pod, *a, **kw)
            self.sandbox.setdefault(str((pod.get("metadata") or {}).get("name")), (start, time.time()))
            return str(out)

        def timed_run(kwargs: Obj) -> str:
            start = time.time()
            out = run(kwargs)
            labels = kwargs.get("labels") or {}
            if labels.get(L.CONTAINER) != L.SANDBOX:  # create_sandbox runs its container through run() too
                self.run.setdefault(str(labels.get(L.POD_NAME)), (start, time.time()))
            return str(out)

        agent._upsert = timed_upsert
        agent.runtime.create_sandbox = timed_sandbox
        agent.runtime.run = timed_run


def report_split(result: RunResult, timeline: Timeline, transports: list[CountingTransport]) -> None:
    steps: dict[str, list[float]] = defaultdict(list)
    status_sent = {n: s for t in transports for n, s in t.status_sent.items()}
    for n in result.names:
        t = result.watch.pods[n]
        if not (t.running_at and n in timeline.seen and n in timeline.sandbox and n in timeline.run
                and status_sent.get(n)):
            continue
        status_start, status_end = status_sent[n][0]
        steps["create sent -> agent's watch delivers the pod"].append(timeline.seen[n] - t.sent)
        steps["agent has pod -> sandbox create starts (worker start, queueing)"].append(
            timeline.sandbox[n][0] - timeline.seen[n])
        steps["sandbox: docker create+start+inspect"].append(timeline.sandbox[n][1] - timeline.sandbox[n][0])
        steps["sandbox done -> container create starts (image check, spec)"].append(
            timeline.run[n][0] - timeline.sandbox[n][1])
        steps["container: docker create+start"].append(timeline.run[n][1] - timeline.run[n][0])
        steps["container started -> status PATCH sent (events, inspect)"].append(status_start - timeline.run[n][1])
        steps["status PATCH round trip"].append(status_end - status_start)
        steps["status PATCH answered -> bench watch delivers Running"].append(t.running_at - status_end)
    counted = len(next(iter(steps.values()))) if steps else 0
    print(f"  agent-side split (in-process timing, {counted} pods; the first status write), p50 / p99:")
    for k, v in steps.items():
        print(f"    {k:66} {statistics.median(v) * 1000:7.0f} ms / {percentile(v, 0.99) * 1000:7.0f} ms")


def report_agent_writes(result: RunResult, agents: list[Any], transports: list[CountingTransport]) -> None:
    status_writes: dict[str, int] = {}
    for a in agents:
        status_writes.update(a.context.status_writes)
    uid_to_name = {result.watch.pods[n].uid: n for n in result.names}
    per_pod_status = [status_writes.get(uid, 0) for uid in uid_to_name]
    per_pod: dict[str, Counter[str]] = defaultdict(Counter)
    for t in transports:
        for name, c in t.per_pod.items():
            per_pod[name].update(c)
    confirms = [per_pod[n]["DELETE pods/<name>"] for n in result.names]
    events = [per_pod[n]["POST events"] for n in result.names]
    total = [s + c for s, c in zip(per_pod_status, confirms, strict=True)]
    print("  node agent, from agent.context.status_writes and its transport (in-process):")
    print(f"    status writes per pod: mean {statistics.mean(per_pod_status):.2f}, max {max(per_pod_status)}")
    print(f"    + confirm-delete: mean {statistics.mean(confirms):.2f} -> status + confirm: mean "
          f"{statistics.mean(total):.2f}, max {max(total)} (target <= {TARGET_WRITES}: "
          f"{verdict(max(total) <= TARGET_WRITES)}; status alone: {verdict(max(per_pod_status) <= TARGET_WRITES)})")
    print(f"    Events posted per pod: mean {statistics.mean(events):.2f}, max {max(events)}; "
          f"all node writes per pod: mean {statistics.mean(total) + statistics.mean(events):.2f}")
    kinds: Counter[str] = Counter()
    for n in result.names:
        kinds.update(per_pod[n])
    print("    agent API calls per pod by kind:",
          ", ".join(f"{k} {v / len(result.names):.2f}" for k, v in sorted(kinds.items())))


# --- docker run, the baseline ---


def docker_baseline(count: int, tag: str) -> tuple[list[float], list[float]]:
    """`docker run -d` (the CLI) of the same image and command, time from the call to the container
    running (the CLI returns once it started; inspect confirms): sequential, then `count` at once."""
    def one(i: int, label: str) -> float:
        start = time.time()
        out = subprocess.run(["docker", "run", "-d", "--label", f"skiff-bench={tag}", "--name",
                              f"bench-{tag}-{label}-{i}", IMAGE, *COMMAND], capture_output=True, text=True)
        took = time.time() - start
        cid = out.stdout.strip()
        state = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", cid], capture_output=True,
                               text=True).stdout.strip()
        if out.returncode != 0 or state != "true":
            raise RuntimeError(f"docker run failed: {out.stderr}")
        return took

    try:
        sequential = [one(i, "seq") for i in range(count)]
        remove_bench_containers(tag)
        with ThreadPoolExecutor(count) as pool:
            concurrent = list(pool.map(lambda i: one(i, "par"), range(count)))
    finally:
        remove_bench_containers(tag)
    return sequential, concurrent


def remove_bench_containers(tag: str) -> None:
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=skiff-bench={tag}"], capture_output=True,
                         text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


# --- the agent as its own process ---


class ProcStat:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.tick = os.sysconf("SC_CLK_TCK")

    def cpu(self) -> float:
        """User + system CPU seconds the process has used (all threads)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.tick

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


def start_agent_process(cluster: Cluster, node: str, ip: str, state_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SKIFF_API_URL": cluster.url, "SKIFF_CA_FILE": cluster.ca_file,
           "SKIFF_NODE_TOKEN": cluster.node_token(node), "SKIFF_NODE_NAME": node, "SKIFF_NODE_IP": ip,
           "SKIFF_NODE_CPU": "16", "SKIFF_NODE_MEMORY": "32Gi", "SKIFF_STATE_DIR": str(state_dir),
           "SKIFF_CONTAINER_LOGS": "off", "SKIFF_NODE_TAINTS": "skiff.io/bench=true:NoSchedule",
           "PYTHONPATH": str(ROOT / "node-agent")}
    env.pop("AWS_ENDPOINT_URL", None)
    log = (state_dir / "agent.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "skiff_agent.main"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=ROOT)


# --- main ---


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--agents", type=int, default=1, help="in-process agents (nodes) for parts 1 and 2")
    parser.add_argument("--rate", type=float, default=1.0, help="pods/s for the fixed-rate run (0: skip it)")
    parser.add_argument("--steady", type=float, default=60.0, help="seconds of steady state for the CPU figure")
    parser.add_argument("--no-scheduler", action="store_true", help="skip the run through the scheduler")
    parser.add_argument("--delete-grace", type=int, default=1,
                        help="gracePeriodSeconds of the deletes after the burst, scheduler and process runs")
    args = parser.parse_args()

    import docker

    from skiff.testimage import ensure_test_image
    from skiff_agent.runtime import PAUSE_IMAGE, build_pause_image

    logging.getLogger("skiff").addHandler(AGENT_LOGS)
    logging.getLogger("skiff").propagate = False
    client = docker.from_env(timeout=120)
    ensure_test_image(client, IMAGE)
    try:
        client.api.inspect_image(PAUSE_IMAGE)
    except docker.errors.ImageNotFound:
        build_pause_image(client, PAUSE_IMAGE)

    print(f"pods: {args.pods}, in-process agents: {args.agents}, machine: {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; image {IMAGE} present (no pulls); each pod = pause sandbox + "
          f"1 container `{' '.join(COMMAND)}`, terminationGracePeriodSeconds 0; deletes with gracePeriodSeconds="
          f"{args.delete_grace} (graceful: the node confirms) except after the fixed-rate run")
    tag = uuid.uuid4().hex[:6]
    seq, par = docker_baseline(args.pods, tag)
    print(f"\n[docker run -d] CLI call -> container running, {IMAGE} {' '.join(COMMAND)}")
    print(f"  sequential: {summary(seq)}")
    print(f"  {args.pods} at once (thread pool): {summary(par)}")
    docker_seq_p50, docker_par_p50 = statistics.median(seq), statistics.median(par)

    # Each part on a fresh cluster, so that no figure depends on what ran before it.
    parts: list[tuple[str, Callable[[Cluster, list[str]], None]]] = [
        ("agent process", lambda c, nodes: run_agent_process(c, client, args, nodes, docker_par_p50)),
        ("in-process agent, spec.nodeName",
         lambda c, nodes: run_in_process(c, client, args, nodes, docker_seq_p50, docker_par_p50, scheduler=False)),
    ]
    if not args.no_scheduler:
        parts.append(("in-process agent, through the scheduler",
                      lambda c, nodes: run_in_process(c, client, args, nodes, docker_seq_p50, docker_par_p50,
                                                      scheduler=True)))
    failed = 0
    for title, part in parts:
        nodes: list[str] = []
        AGENT_LOGS.counts.clear()
        print(f"\n=== {title} (fresh cluster) ===")
        try:
            with local_cluster() as cluster:
                try:
                    part(cluster, nodes)
                finally:
                    for n in nodes:
                        remove_node_containers(client, n)
        except Exception as e:  # noqa: BLE001 - reported; the next part still runs
            failed += 1
            print(f"  FAILED: {type(e).__name__}: {e}")
        if AGENT_LOGS.counts:
            print("  in-process agent log records (not shown):",
                  ", ".join(f"{k} {v}" for k, v in sorted(AGENT_LOGS.counts.items())))
    return 1 if failed else 0


class CountingLogHandler(logging.Handler):
    """Counts the in-process agent's warnings and errors by logger and first words, instead of printing
    hundreds of tracebacks when the API times out."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        words = " ".join(str(record.msg).split()[:4])
        self.counts[f"{record.levelname} {record.name} '{words}'"] += 1


AGENT_LOGS = CountingLogHandler()


def run_in_process(cluster: Cluster, client: Any, args: argparse.Namespace, nodes: list[str],
                   docker_seq_p50: float, docker_par_p50: float, *, scheduler: bool) -> None:
    from skiff_agent.agent import Agent
    from skiff_agent.config import AgentConfig
    from skiff_agent.images import ImageConfig, ImagePuller
    from skiff_agent.node import GIB, NodeConfig

    api = cluster.api()
    agents, transports = [], []
    timeline = Timeline()
    for i in range(args.agents):
        name = f"bench-{uuid.uuid4().hex[:6]}"
        nodes.append(name)
        token = cluster.node_token(name)
        node = NodeConfig(name=name, cpu_milli=16000, memory_bytes=32 * GIB, internal_ip=f"127.0.0.{20 + i}")
        config = AgentConfig(api_url=cluster.url, node=node, ca_file=cluster.ca_file, node_token=token,
                             host_port_address=node.internal_ip, container_logs=False,
                             state_dir=cluster.home / f"agent-{name}")
        transport = CountingTransport(HTTPTransport(cluster.url, token, cluster.ca_file, pool_size=16))
        agent = Agent(config, client, images=ImagePuller(client, ImageConfig(region="us-east-1")),
                      api=transport)  # type: ignore[arg-type]
        timeline.install(agent)
        agents.append(agent.start())
        transports.append(transport)
    try:
        for a in agents:
            wait_node_ready(api, a.name)
            a.listed.wait(30)
        if scheduler:
            run_scheduler(api, args, docker_par_p50)
            return
        make_namespace(api, "bench-burst")
        watch = PodWatch(api, "bench-burst")
        burst = create_pods(api, "bench-burst", "burst", args.pods, nodes, watch)
        report_latency(burst, f"{args.pods} pods created at once (thread pool of {args.pods}), spec.nodeName "
                       f"-> {len(nodes)} in-process agent(s); docker baseline: {args.pods} at once", docker_par_p50)
        report_split(burst, timeline, transports)
        delete_pods(api, "bench-burst", burst.names, watch, args.delete_grace)
        time.sleep(1.0)  # the confirm-deletes' own calls finish
        report_agent_writes(burst, agents, transports)
        api_side_writes(burst)
        watch.stop()

        if args.rate > 0:
            make_namespace(api, "bench-rate")
            watch = PodWatch(api, "bench-rate")
            paced = create_pods(api, "bench-rate", "rate", args.pods, nodes, watch, rate=args.rate)
            report_latency(paced, f"{args.pods} pods at {args.rate:g}/s, spec.nodeName; docker baseline: sequential",
                           docker_seq_p50)
            delete_pods(api, "bench-rate", paced.names, watch, None)
            print("  deleted with a plain DELETE (terminationGracePeriodSeconds 0: removed at once):")
            report_agent_writes(paced, agents, transports)
            api_side_writes(paced)
            watch.stop()
    finally:
        for a in agents:
            a.stop()
        for n in nodes:
            remove_node_containers(client, n)
            with contextlib.suppress(ApiError):  # no second node for the scheduler to see later
                api.request("DELETE", f"/api/v1/nodes/{n}")


def run_scheduler(api: HTTPTransport, args: argparse.Namespace, docker_par_p50: float) -> None:
    make_namespace(api, "bench-sched")
    watch = PodWatch(api, "bench-sched")
    sched = create_pods(api, "bench-sched", "sched", args.pods, None, watch)
    placed = Counter(str(api.request("GET", f"/api/v1/namespaces/bench-sched/pods/{n}")["spec"].get("nodeName"))
                     for n in sched.names)
    report_latency(sched, f"{args.pods} pods created at once, no nodeName: through the scheduler "
                   f"(placed: {dict(placed)}); docker baseline: {args.pods} at once", docker_par_p50)
    delete_pods(api, "bench-sched", sched.names, watch, args.delete_grace)
    api_side_writes(sched)
    watch.stop()
    names = [n["metadata"]["name"] for n in api.request("GET", "/api/v1/nodes")["items"]]
    print(f"  nodes in the cluster at the end: {names}")


def run_agent_process(cluster: Cluster, client: Any, args: argparse.Namespace, nodes: list[str],
                      docker_par_p50: float) -> None:
    api = cluster.api()
    name = f"bench-proc-{uuid.uuid4().hex[:6]}"
    nodes.append(name)
    state_dir = Path(tempfile.mkdtemp(prefix="skiff-bench-agent-"))
    proc = start_agent_process(cluster, name, "127.0.0.40", state_dir)
    try:
        stat = ProcStat(proc.pid)
        wait_node_ready(api, name)
        time.sleep(5)  # imports done, first list and lease behind it
        idle_cpu0, idle_t0 = stat.cpu(), time.monotonic()
        time.sleep(30)
        idle_cpu = (stat.cpu() - idle_cpu0) / (time.monotonic() - idle_t0) * 60
        idle_rss = stat.rss_mib()
        make_namespace(api, "bench-proc")
        watch = PodWatch(api, "bench-proc")
        cpu0 = stat.cpu()
        result = create_pods(api, "bench-proc", "proc", args.pods, [name], watch)
        startup_cpu = stat.cpu() - cpu0
        report_latency(result, f"{args.pods} pods at once, spec.nodeName -> the agent as its own process "
                       f"(no GIL shared with the benchmark); docker baseline: {args.pods} at once", docker_par_p50)
        time.sleep(10)  # let the first resyncs after startup pass
        steady_cpu0, steady_t0 = stat.cpu(), time.monotonic()
        time.sleep(args.steady)
        steady_cpu = (stat.cpu() - steady_cpu0) / (time.monotonic() - steady_t0) * 60
        busy_rss = stat.rss_mib()
        cpu0, t0 = stat.cpu(), time.monotonic()
        delete_pods(api, "bench-proc", result.names, watch, args.delete_grace)
        delete_cpu, delete_wall = stat.cpu() - cpu0, time.monotonic() - t0
        watch.stop()
        print(f"  agent process ({sys.executable} -m skiff_agent.main, pid {proc.pid}), from /proc/<pid>/status "
              f"VmRSS and /proc/<pid>/stat utime+stime:")
        print(f"    RSS idle {idle_rss:.1f} MiB; with {args.pods} running pods {busy_rss:.1f} MiB "
              f"(+{(busy_rss - idle_rss) / args.pods * 1024:.0f} KiB per pod)")
        print(f"    CPU idle {idle_cpu:.2f} s/min; steady with {args.pods} pods {steady_cpu:.2f} s/min "
              f"({steady_cpu / 60 * 100:.1f}% of one core, measured over {args.steady:.0f} s)")
        wall = result.all_running - result.started if result.all_running else float("nan")
        print(f"    CPU during the startup of {args.pods} pods: {startup_cpu:.2f} s over {wall:.1f} s wall "
              f"({startup_cpu / args.pods * 1000:.0f} ms per pod); during their deletion {delete_cpu:.2f} s "
              f"over {delete_wall:.1f} s")
        api_side_writes(result)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        remove_node_containers(client, name)
        print(f"  (agent log: {state_dir / 'agent.log'})")


if __name__ == "__main__":
    sys.exit(main())
