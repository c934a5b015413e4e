"""How fast is Skiff's API, what does each write cost in DynamoDB, and where does a resource type saturate?

Skiff puts a Kubernetes API in front of DynamoDB: every write is a read of the resource type's revision
counter plus one three-item transaction, every list is two counter reads around a query. This script
measures what that design costs, so that changes to the API or the store can be judged by numbers:

1. API latency (p50/p99) of create, get, list (100 objects), merge patch and watch delivery, over the
   local server's HTTPS with keep-alive connections (one per worker thread), at concurrency 1 and 8;
2. the same operations done with raw boto3 calls against the same DynamoDB (moto server), alternated
   with the API calls on the same workers, and the ratio API p50 / raw p50;
3. DynamoDB requests and capacity units per create, update and delete (counted by hooking botocore's
   `before-call` on the store's own clients), priced as DynamoDB bills them;
4. the revision counter's saturation curve: writes/s and retries per write with K writers of one type;
5. a check that moto's cost per write does not grow with the tables' items and history (moto's own
   TransactWriteItems deep-copies the tables; skiff's moto server skips that copy), since every local
   figure above contains moto's cost.

It starts its own local clusters (`skiff up --detach`, on free ports in a temporary SKIFF_HOME), a fresh
one per concurrency level and per saturation point so that each starts from the same state, and stops
each one, also on Ctrl-C. Run it by hand: `.venv/bin/python bench/api_latency.py [--n N]`. It asserts
nothing about time; it prints tables, and docs/benchmarks.md records a run and explains them.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import urllib3
import yaml
from benchlib import free_port
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parent.parent
Obj = dict[str, Any]
Item = dict[str, dict[str, Any]]  # a DynamoDB item in wire format: {"name": {"S": "value"}}

RAW_KIND = "bench/raw-configmaps"
"""Partition of the raw baseline's objects: the same tables as the API, not visible through it."""

TARGET_RATIO = 2.0
TARGET_P99_MS = 100.0


# ----------------------------------------------------------------------------------------------------
# The local cluster


class ClusterError(Exception):
    """The local cluster could not be started."""


@dataclass(frozen=True)
class Cluster:
    home: Path
    url: str  # from the kubeconfig: https://127.0.0.1:<port> (the local API serves TLS)
    ca_pem: str | None  # the kubeconfig's certificate-authority-data, decoded
    aws_port: int
    token: str
    table_prefix: str

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"


@dataclass(frozen=True)
class ClusterOptions:
    watch_poll: float | None = None  # SKIFF_WATCH_POLL_SECONDS for the server; None: its default


def cluster_env(home: Path, options: ClusterOptions) -> dict[str, str]:
    env = {**os.environ, "SKIFF_HOME": str(home)}
    env.pop("AWS_ENDPOINT_URL", None)  # the cluster sets its own (its moto server)
    if options.watch_poll is not None:
        env["SKIFF_WATCH_POLL_SECONDS"] = str(options.watch_poll)
    return env


def read_kubeconfig(path: Path, port: int, aws_port: int, home: Path) -> Cluster:
    kubeconfig = yaml.safe_load(path.read_text())
    entry = kubeconfig["clusters"][0]["cluster"]
    if not entry["server"].endswith(f":{port}"):
        raise ClusterError(f"the kubeconfig points at {entry['server']}, not at port {port}")
    ca = entry.get("certificate-authority-data")
    return Cluster(home=home, url=entry["server"], ca_pem=base64.b64decode(ca).decode() if ca else None,
                   aws_port=aws_port, token=kubeconfig["users"][0]["user"]["token"],
                   table_prefix=os.environ.get("SKIFF_TABLE_PREFIX", "skiff"))


def start_cluster(home: Path, options: ClusterOptions, port: int, aws_port: int) -> Cluster:
    """`skiff up --detach`: its last stdout line is `export KUBECONFIG=<path>`."""
    cmd = [sys.executable, "-m", "skiff.cli", "up", "--detach", "--port", str(port), "--aws-port", str(aws_port)]
    try:
        up = subprocess.run(cmd, cwd=REPO, env=cluster_env(home, options), capture_output=True, text=True,
                            timeout=120)
    except subprocess.TimeoutExpired as e:
        raise ClusterError("`skiff up --detach` did not return within 120 s") from e
    lines = up.stdout.strip().splitlines()
    if up.returncode != 0 or not lines or not lines[-1].startswith("export KUBECONFIG="):
        raise ClusterError(f"`skiff up --detach` failed ({up.returncode}):\n{up.stdout}\n{up.stderr}")
    return read_kubeconfig(Path(lines[-1].split("=", 1)[1]), port, aws_port, home)


def stop_cluster(home: Path, options: ClusterOptions) -> None:
    subprocess.run([sys.executable, "-m", "skiff.cli", "down"], cwd=REPO, env=cluster_env(home, options),
                   capture_output=True, timeout=60)


@contextmanager
def local_cluster(options: ClusterOptions) -> Iterator[Cluster]:
    """A fresh local cluster on free ports in a temporary SKIFF_HOME, stopped on the way out."""
    with tempfile.TemporaryDirectory(prefix="skiff-bench-") as tmp:
        home = Path(tmp)
        try:
            yield start_cluster(home, options, free_port(), free_port())
        finally:
            stop_cluster(home, options)


def use_cluster_in_process(cluster: Cluster) -> None:
    """Point this process's chalicelib (PynamoDB) at the cluster's moto server, dropping cached clients."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    os.environ.update({"AWS_ENDPOINT_URL": cluster.aws_endpoint, "AWS_ACCESS_KEY_ID": "skiff-local",
                       "AWS_SECRET_ACCESS_KEY": "skiff-local", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_REGION": "us-east-1", "SKIFF_TABLE_PREFIX": cluster.table_prefix})
    from chalicelib.store.models import ALL_MODELS

    for model in ALL_MODELS:
        model.Meta.max_pool_connections = 64  # the saturation run has up to 32 writer threads
        model._connection = None


# ----------------------------------------------------------------------------------------------------
# Statistics and tables


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile of `samples` (seconds in, seconds out)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    def line(row: list[str]) -> str:
        padded = [c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        return "  ".join(padded)

    lines = [line(r) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------
# Clients: the API over HTTP, and raw DynamoDB


class ApiError(Exception):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status

    @property
    def label(self) -> str:
        return f"HTTP {self.status}" if self.status else "error"


def error_label(e: Exception) -> str:
    """How a failed call is counted: its HTTP status, or its DynamoDB error code."""
    if isinstance(e, ApiError):
        return e.label
    if isinstance(e, ClientError):
        return str(e.response.get("Error", {}).get("Code", "ClientError"))
    return type(e).__name__


def count_errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(errors.items())) or "0"


class Api:
    """One keep-alive connection to the API (one per worker thread)."""

    def __init__(self, cluster: Cluster, read_timeout: float = 60) -> None:
        self.auth = f"Bearer {cluster.token}"
        url = urllib3.util.parse_url(cluster.url)
        common: Obj = {"maxsize": 1, "block": True, "retries": False,
                       "timeout": urllib3.Timeout(connect=5, read=read_timeout)}
        self.pool: urllib3.HTTPConnectionPool
        if url.scheme == "https":
            self.pool = urllib3.HTTPSConnectionPool(url.host or "127.0.0.1", url.port, cert_reqs="CERT_REQUIRED",
                                                    ca_cert_data=cluster.ca_pem, **common)
        else:
            self.pool = urllib3.HTTPConnectionPool(url.host or "127.0.0.1", url.port, **common)

    def call(self, method: str, path: str, body: Obj | None = None, *,
             ctype: str = "application/json", expect: tuple[int, ...] = (200, 201)) -> bytes:
        headers = {"Authorization": self.auth, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = ctype
        r = self.pool.request(method, path, body=data, headers=headers)
        if r.status not in expect:
            raise ApiError(f"{method} {path} answered {r.status}: {r.data[:400]!r}", r.status)
        return r.data

    def json(self, method: str, path: str, body: Obj | None = None, **kw: Any) -> Obj:
        data: Obj = json.loads(self.call(method, path, body, **kw))
        return data

    def stream_lines(self, path: str) -> Iterator[tuple[bytes, float]]:
        """GET `path` and yield each line of the body with the time it arrived.

        Works for a long-poll (the body ends when events are ready) and for the local server's
        streamed watch (a chunked body that stays open until timeoutSeconds).
        """
        r = self.pool.request("GET", path, headers={"Authorization": self.auth, "Accept": "application/json"},
                              preload_content=False)
        complete = False
        try:
            if r.status != 200:
                raise ApiError(f"GET {path} answered {r.status}: {r.read()[:400]!r}", r.status)
            pending = b""
            chunks = r.read_chunked() if r.chunked else iter([r.read()])
            for chunk in chunks:
                arrived = time.perf_counter()
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield line, arrived
            complete = True
        finally:
            if not complete:
                r.close()  # the stream is still open: do not hand its connection to the next request
            r.release_conn()


def dynamodb_client(endpoint: str, pool: int = 10) -> Any:
    """A boto3 client configured like PynamoDB's (no parameter validation, standard retries)."""
    session = boto3.session.Session(aws_access_key_id="skiff-local", aws_secret_access_key="skiff-local",
                                    region_name="us-east-1")
    config = BotoConfig(parameter_validation=False, max_pool_connections=pool,
                        retries={"mode": "standard", "total_max_attempts": 4})
    return session.client("dynamodb", endpoint_url=endpoint, config=config)


_client_lock = threading.Lock()  # botocore client creation is not thread safe


_raw_known_head: dict[str, int] = {}
"""The raw baseline's guess of each type's counter, shared by its workers as the API server's
threads share chalicelib.store.objects._known_head."""


class RawStore:
    """The DynamoDB calls Skiff's store makes for each operation, done directly with boto3.

    Writes follow the store's algorithm: the first attempt guesses the counter from the last commit
    this process saw (no read); a retry, or a write with no guess, reads it (GetItem).
    """

    def __init__(self, cluster: Cluster, kind: str = RAW_KIND) -> None:
        with _client_lock:
            self.db = dynamodb_client(cluster.aws_endpoint)
        self.objects = f"{cluster.table_prefix}-objects"
        self.changes = f"{cluster.table_prefix}-changes"
        self.kind = kind
        self.retries = 0

    def get_item(self, table_name: str, key: Item) -> Item | None:
        item: Item | None = self.db.get_item(TableName=table_name, Key=key, ConsistentRead=True).get("Item")
        return item

    def head(self) -> int:
        """The type's latest revision; 1 (the store's GENESIS_REV) before its first write."""
        item = self.get_item(self.changes, {"kind": {"S": self.kind}, "rev": {"N": "0"}})
        return int(item["head"]["N"]) if item and "head" in item else 1

    def _transact(self, key: str, body: str, event: str, current: int, expected_rv: int | None) -> None:
        new = str(current + 1)
        counter: Obj = {"TableName": self.changes, "Key": {"kind": {"S": self.kind}, "rev": {"N": "0"}},
                        "UpdateExpression": "SET #h = :new", "ExpressionAttributeNames": {"#h": "head"},
                        "ExpressionAttributeValues": {":new": {"N": new}}}
        if current > 1:
            counter["ConditionExpression"] = "#h = :cur"
            counter["ExpressionAttributeValues"][":cur"] = {"N": str(current)}
        else:
            counter["ConditionExpression"] = "attribute_not_exists(#h)"
        change = {"TableName": self.changes, "ConditionExpression": "attribute_not_exists(#r)",
                  "ExpressionAttributeNames": {"#r": "rev"},
                  "Item": {"kind": {"S": self.kind}, "rev": {"N": new}, "event": {"S": event},
                           "key": {"S": key}, "body": {"S": body},
                           "expires": {"N": str(int(time.time()) + 3600)}}}
        obj: Obj = {"TableName": self.objects,
                    "Item": {"kind": {"S": self.kind}, "key": {"S": key}, "rv": {"N": new},
                             "body": {"S": body}}}
        if expected_rv is None:
            obj.update(ConditionExpression="attribute_not_exists(#k)", ExpressionAttributeNames={"#k": "key"})
        else:
            obj.update(ConditionExpression="#v = :v", ExpressionAttributeNames={"#v": "rv"},
                       ExpressionAttributeValues={":v": {"N": str(expected_rv)}})
        self.db.transact_write_items(TransactItems=[{"Update": counter}, {"Put": change}, {"Put": obj}])

    def write(self, key: str, obj: Obj, event: str, expected_rv: int | None) -> None:
        """(Guessed or read) counter + transaction, retried like the store when the revision was taken."""
        for attempt in range(60):
            guessed = _raw_known_head.get(self.kind) if attempt == 0 else None
            current = guessed if guessed is not None else self.head()
            stored = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(current + 1)}}
            try:
                self._transact(key, json.dumps(stored, separators=(",", ":")), event, current, expected_rv)
                _raw_known_head[self.kind] = max(current + 1, _raw_known_head.get(self.kind, 0))
                return
            except ClientError as e:
                # [counter, change, object]: the first two failing means another writer took the revision.
                codes = [r.get("Code") or "None" for r in e.response.get("CancellationReasons") or []]
                if len(codes) != 3 or (codes[:2] == ["None", "None"] and "TransactionConflict" not in codes):
                    raise
                self.retries += 1
                _raw_known_head.pop(self.kind, None)
                if guessed is None:  # as the store: a stale guess is retried at once, a lost race backs off
                    time.sleep(random.uniform(0, min(0.05, 0.002 * (attempt + 1))))
        raise RuntimeError("raw write: the counter stayed contended")

    def create(self, namespace: str, obj: Obj) -> None:
        self.get_item(self.objects, {"kind": {"S": "core/namespaces"}, "key": {"S": f"/{namespace}"}})
        self.write(f"{namespace}/{obj['metadata']['name']}", obj, "ADDED", None)

    def get(self, namespace: str, name: str) -> Item | None:
        return self.get_item(self.objects, {"kind": {"S": self.kind}, "key": {"S": f"{namespace}/{name}"}})

    def list_namespace(self, namespace: str) -> list[Item]:
        self.head()
        items: list[Item] = []
        kwargs: Obj = {"TableName": self.objects, "ConsistentRead": True,
                       "KeyConditionExpression": "#p = :p AND begins_with(#k, :k)",
                       "ExpressionAttributeNames": {"#p": "kind", "#k": "key"},
                       "ExpressionAttributeValues": {":p": {"S": self.kind}, ":k": {"S": f"{namespace}/"}}}
        while True:
            page = self.db.query(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        self.head()
        return items

    def merge_patch(self, namespace: str, name: str, data: dict[str, str]) -> None:
        item = self.get(namespace, name)
        if item is None:
            raise RuntimeError(f"raw patch: {namespace}/{name} does not exist")
        obj = json.loads(item["body"]["S"])
        obj["data"] = {**(obj.get("data") or {}), **data}
        self.write(f"{namespace}/{name}", obj, "MODIFIED", int(item["rv"]["N"]))


# ----------------------------------------------------------------------------------------------------
# The tables' state, and housekeeping outside the timed sections


@dataclass(frozen=True)
class TableState:
    items: int  # items in the objects and changes tables
    history: int  # records in the objects table's stream: every write ever made to it

    def __str__(self) -> str:
        return f"{self.items}/{self.history}"


class Tables:
    """The cluster's tables as moto holds them.

    moto's own TransactWriteItems deep-copies every table it touches (to roll back on failure), and a
    table's copy includes its stream, which keeps every change ever made (the objects table has one):
    a write's cost would grow with the items plus the stream's history. skiff.motoserver skips that
    copy; the figures here are reported with that state all the same, and part 5 checks it.
    """

    def __init__(self, cluster: Cluster) -> None:
        self.db = dynamodb_client(cluster.aws_endpoint)
        with _client_lock:
            self.streams = boto3.session.Session(
                aws_access_key_id="skiff-local", aws_secret_access_key="skiff-local", region_name="us-east-1",
            ).client("dynamodbstreams", endpoint_url=cluster.aws_endpoint)
        self.objects = f"{cluster.table_prefix}-objects"
        self.changes = f"{cluster.table_prefix}-changes"

    def state(self) -> TableState:
        return TableState(self.count(self.objects) + self.count(self.changes), self.stream_records())

    def count(self, table_name: str) -> int:
        total = 0
        kwargs: Obj = {"TableName": table_name, "Select": "COUNT"}
        while True:
            page = self.db.scan(**kwargs)
            total += page["Count"]
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def stream_records(self) -> int:
        arn = self.db.describe_table(TableName=self.objects)["Table"].get("LatestStreamArn")
        if not arn:
            return 0
        total = 0
        for shard in self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            it = self.streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                                 ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while it:
                page = self.streams.get_records(ShardIterator=it, Limit=1000)
                if not page["Records"]:
                    break
                total += len(page["Records"])
                it = page.get("NextShardIterator")
        return total

    def _batch(self, table_name: str, requests: list[Obj]) -> None:
        for i in range(0, len(requests), 25):
            pending: Obj = {table_name: requests[i:i + 25]}
            while pending:
                pending = self.db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    def compact(self, kind: str) -> None:
        """Delete the type's change-log records (what TTL does on AWS); its counter (rev 0) stays."""
        keys: list[Item] = []
        kwargs: Obj = {"TableName": self.changes, "KeyConditionExpression": "#p = :p AND #r > :z",
                       "ExpressionAttributeValues": {":p": {"S": kind}, ":z": {"N": "0"}},
                       "ExpressionAttributeNames": {"#p": "kind", "#r": "rev"}, "ProjectionExpression": "#p, #r"}
        while True:
            page = self.db.query(**kwargs)
            keys.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        self._batch(self.changes, [{"DeleteRequest": {"Key": k}} for k in keys])

    def fill(self, kind: str, count: int, body: str) -> list[Item]:
        """Put `count` filler objects with BatchWriteItem (moto copies no table for it); their keys."""
        items = [{"kind": {"S": kind}, "key": {"S": f"filler/{uuid.uuid4().hex}"}, "rv": {"N": "2"},
                  "body": {"S": body}} for _ in range(count)]
        self._batch(self.objects, [{"PutRequest": {"Item": it}} for it in items])
        return [{"kind": it["kind"], "key": it["key"]} for it in items]

    def remove(self, keys: list[Item]) -> None:
        self._batch(self.objects, [{"DeleteRequest": {"Key": k}} for k in keys])


# ----------------------------------------------------------------------------------------------------
# 1 + 2: latency of the API and of the raw DynamoDB calls


@dataclass
class Samples:
    api: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    raw_retries: int = 0
    api_errors: dict[str, int] = field(default_factory=dict)  # failed calls, not in the latencies
    raw_errors: dict[str, int] = field(default_factory=dict)
    before: TableState | None = None
    after: TableState | None = None


def run_threads(count: int, work: Callable[[int], None]) -> None:
    """Run work(0..count-1) on `count` threads; re-raise the first failure."""
    failures: list[BaseException] = []

    def wrapped(w: int) -> None:
        try:
            work(w)
        except BaseException as e:  # noqa: BLE001 - reported in the main thread
            failures.append(e)

    threads = [threading.Thread(target=wrapped, args=(w,), daemon=True) for w in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]


Op = Callable[[int], object]


def measure_pair(concurrency: int, n: int, make_ops: Callable[[], tuple[Op, Op, RawStore]]) -> Samples:
    """n API calls and n raw calls, alternated on each of `concurrency` workers (each does its share).

    Alternating keeps both under the same load and the same table sizes: moto copies whole tables on
    every transaction, so a write's cost grows with the tables during a phase.
    """
    out = Samples()
    lock = threading.Lock()
    barrier = threading.Barrier(concurrency)

    def work(w: int) -> None:
        api_op, raw_op, raw = make_ops()
        api_t: list[float] = []
        raw_t: list[float] = []
        failed: list[tuple[dict[str, int], str]] = []
        barrier.wait()
        for i in range(w, n, concurrency):
            pairs = [(api_op, api_t, out.api_errors), (raw_op, raw_t, out.raw_errors)]
            for op, times, errors in (pairs if i % 2 == 0 else reversed(pairs)):
                t0 = time.perf_counter()
                try:
                    op(i)
                except (ApiError, ClientError, RuntimeError) as e:  # counted and shown, not timed
                    failed.append((errors, error_label(e)))
                    continue
                times.append(time.perf_counter() - t0)
        with lock:
            out.api.extend(api_t)
            out.raw.extend(raw_t)
            out.raw_retries += raw.retries
            for errors, label in failed:
                errors[label] = errors.get(label, 0) + 1

    run_threads(concurrency, work)
    return out


def configmap(name: str, labels: dict[str, str] | None = None) -> Obj:
    """The small ConfigMap the latency runs create (187 bytes as sent, about 370 as stored)."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"app": "bench", **(labels or {})}},
            "data": {"greeting": "hello", "config.yaml": "replicas: 3\nimage: nginx:1.27\nport: 8080\n"}}


@dataclass
class LatencyBench:
    cluster: Cluster
    n: int
    ns: str
    list_ns: str
    template: Obj  # a configmap as the API stored it: the raw baseline writes the same bytes
    tables: Tables
    results: dict[tuple[str, int], Samples]

    def path(self, ns: str, name: str = "") -> str:
        return f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")

    def raw_obj(self, name: str) -> Obj:
        md = {k: v for k, v in self.template["metadata"].items() if k != "resourceVersion"}
        return {**self.template, "metadata": {**md, "name": name, "uid": str(uuid.uuid4())}}

    def run(self, op: str, c: int, make_ops: Callable[[], tuple[Op, Op, RawStore]]) -> None:
        before = self.tables.state()
        samples = measure_pair(c, self.n, make_ops)
        samples.before, samples.after = before, self.tables.state()
        self.results[(op, c)] = samples
        print(f"  {op:<7} c={c}: API p50 {ms(percentile(samples.api, 50))} ms, raw p50 "
              f"{ms(percentile(samples.raw, 50))} ms (items/history {before} -> {samples.after})", flush=True)

    def op_create(self, c: int) -> None:
        def make_ops() -> tuple[Op, Op, RawStore]:
            api, raw = Api(self.cluster), RawStore(self.cluster)
            return (lambda i: api.call("POST", self.path(self.ns), configmap(f"c{c}-{i}")),
                    lambda i: raw.create(self.ns, self.raw_obj(f"c{c}-{i}")), raw)
        self.run("create", c, make_ops)

    def op_get(self, c: int) -> None:
        def make_ops() -> tuple[Op, Op, RawStore]:
            api, raw = Api(self.cluster), RawStore(self.cluster)
            return (lambda i: api.call("GET", self.path(self.ns, f"c{c}-{i}")),
                    lambda i: raw.get(self.ns, f"c{c}-{i}"), raw)
        self.run("get", c, make_ops)

    def op_patch(self, c: int) -> None:
        def make_ops() -> tuple[Op, Op, RawStore]:
            api, raw = Api(self.cluster), RawStore(self.cluster)
            return (lambda i: api.call("PATCH", self.path(self.ns, f"c{c}-{i}"), {"data": {"n": str(i)}},
                                       ctype="application/merge-patch+json"),
                    lambda i: raw.merge_patch(self.ns, f"c{c}-{i}", {"n": str(i)}), raw)
        self.run("patch", c, make_ops)

    def op_list(self, c: int) -> None:
        def make_ops() -> tuple[Op, Op, RawStore]:
            api, raw = Api(self.cluster), RawStore(self.cluster)
            return (lambda i: api.call("GET", self.path(self.list_ns)),
                    lambda i: raw.list_namespace(self.list_ns), raw)
        self.run("list", c, make_ops)

    def compact(self) -> None:
        self.tables.compact("core/configmaps")
        self.tables.compact(RAW_KIND)


def prepare_latency(cluster: Cluster, n: int, results: dict[tuple[str, int], Samples]) -> LatencyBench:
    """Two fresh namespaces; the list one holds exactly 100 configmaps through the API and 100 raw."""
    api, raw = Api(cluster), RawStore(cluster)
    suffix = uuid.uuid4().hex[:6]
    ns, list_ns = f"bench-{suffix}", f"bench-list-{suffix}"
    for name in (ns, list_ns):
        api.call("POST", "/api/v1/namespaces",
                 {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    template = api.json("POST", f"/api/v1/namespaces/{ns}/configmaps", configmap("template"))
    bench = LatencyBench(cluster, n, ns, list_ns, template, Tables(cluster), results)
    for i in range(100):
        api.call("POST", bench.path(list_ns), configmap(f"item-{i:03d}"))
        raw.create(list_ns, bench.raw_obj(f"item-{i:03d}"))
    listed = api.json("GET", bench.path(list_ns))
    if len(listed["items"]) != 100 or len(raw.list_namespace(list_ns)) != 100:
        raise RuntimeError(f"the list namespace holds {len(listed['items'])} objects, not 100")
    for i in range(5):  # warm both paths (connections, imports, caches)
        api.call("GET", bench.path(list_ns, f"item-{i:03d}"))
        raw.get(list_ns, f"item-{i:03d}")
    bench.compact()
    return bench


# ---- watch delivery


@dataclass
class WatchResult:
    latencies: list[float] = field(default_factory=list)  # arrival - write start (the definition)
    after_write: list[float] = field(default_factory=list)  # arrival - the create's response
    missed: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # failed creates (nothing to watch for)
    before: TableState | None = None
    after: TableState | None = None


Arrivals = queue.Queue[tuple[str, float]]
"""(object name, arrival time) from a watcher to its writer."""


def watch_delivery(bench: LatencyBench, c: int, timeout: float = 30) -> WatchResult:
    """c writer/watcher pairs. A writer creates an object labelled for its pair and waits until its
    watcher (long-polling `?watch=true&resourceVersion=R` with that label) has it:
    latency = arrival - write start.
    """
    listed = Api(bench.cluster).json("GET", bench.path(bench.ns) + "?limit=1")
    start_rv = listed["metadata"]["resourceVersion"]
    result = WatchResult(before=bench.tables.state())
    lock = threading.Lock()
    barrier = threading.Barrier(2 * c)

    def watcher(pair: int, expected: int, arrivals: Arrivals, done: threading.Event) -> None:
        api = Api(bench.cluster)
        barrier.wait()
        try:
            watch_until(api, pair, start_rv, expected, arrivals, done)
        except BaseException:
            arrivals.put(("", -1.0))  # wake the writer: its watcher is gone
            raise

    def watch_until(api: Api, pair: int, rv: str, expected: int, arrivals: Arrivals,
                    done: threading.Event) -> None:
        seen = 0
        while seen < expected and not done.is_set():  # re-watch from the last revision when a watch ends
            path = (f"{bench.path(bench.ns)}?watch=true&resourceVersion={rv}"
                    f"&labelSelector=bench-pair%3D{pair}&timeoutSeconds=20")
            for line, arrived in api.stream_lines(path):
                event = json.loads(line)
                if event["type"] == "ERROR":
                    raise ApiError(f"watch from {rv} failed: {event['object'].get('message')}")
                rv = event["object"]["metadata"]["resourceVersion"]
                if event["type"] == "ADDED":
                    arrivals.put((event["object"]["metadata"]["name"], arrived))
                    seen += 1
                if seen >= expected:
                    break

    def writer(pair: int, expected: int, arrivals: Arrivals, done: threading.Event) -> None:
        api = Api(bench.cluster)
        mine: list[float] = []
        delivery: list[float] = []
        missed = 0
        errors: dict[str, int] = {}
        barrier.wait()
        try:
            for i in range(expected):
                name = f"w{c}-{pair}-{i}"
                t0 = time.perf_counter()
                try:
                    api.call("POST", bench.path(bench.ns), configmap(name, {"bench-pair": str(pair)}))
                except ApiError as e:
                    errors[e.label] = errors.get(e.label, 0) + 1
                    continue
                written = time.perf_counter()
                try:
                    got, arrived = arrivals.get(timeout=timeout)
                    while got != name:
                        if arrived < 0:
                            raise ApiError(f"the watcher of pair {pair} failed")
                        got, arrived = arrivals.get(timeout=timeout)
                    mine.append(arrived - t0)
                    delivery.append(arrived - written)  # negative when the event beat the response
                except queue.Empty:
                    missed += 1
        finally:
            done.set()  # the watcher stops at the end of its current stream
        with lock:
            result.latencies.extend(mine)
            result.after_write.extend(delivery)
            result.missed += missed
            for label, count in errors.items():
                result.errors[label] = result.errors.get(label, 0) + count

    def pair_work(w: int) -> None:
        pair, role = divmod(w, 2)
        expected = len(range(pair, bench.n, c))
        (watcher if role == 0 else writer)(pair, expected, channels[pair], events[pair])

    channels: list[Arrivals] = [queue.Queue() for _ in range(c)]
    events = [threading.Event() for _ in range(c)]
    run_threads(2 * c, pair_work)
    result.after = bench.tables.state()
    print(f"  watch   c={c}: p50 {ms(percentile(result.latencies, 50))} ms, missed {result.missed} "
          f"(items/history {result.before} -> {result.after})", flush=True)
    return result


def run_latency(cluster: Cluster, n: int, c: int, results: dict[tuple[str, int], Samples]) -> LatencyBench:
    """Every operation at concurrency c, in this order, on one fresh cluster."""
    print(f"1+2. latency at concurrency {c}, API and raw DynamoDB ({n} samples each) ...", flush=True)
    bench = prepare_latency(cluster, n, results)
    bench.op_create(c)
    bench.op_get(c)
    bench.op_patch(c)
    bench.compact()
    bench.op_list(c)
    return bench


@dataclass
class LatencyResults:
    ops: dict[tuple[str, int], Samples] = field(default_factory=dict)
    watches: dict[int, WatchResult] = field(default_factory=dict)


def yes_no(ok: bool) -> str:
    return "yes" if ok else "NO"


def latency_report(res: LatencyResults) -> str:
    rows = []
    for (op, c), s in sorted(res.ops.items(), key=lambda kv: (kv[0][1], OPS.index(kv[0][0]))):
        api50, api99, raw50 = percentile(s.api, 50), percentile(s.api, 99), percentile(s.raw, 50)
        ratio = api50 / raw50
        rows.append([op, c, len(s.api), ms(api50), ms(api99), ms(raw50), ms(percentile(s.raw, 99)),
                     f"{ratio:.2f}", yes_no(ratio <= TARGET_RATIO), yes_no(api99 * 1000 < TARGET_P99_MS),
                     s.raw_retries, f"{count_errors(s.api_errors)} / {count_errors(s.raw_errors)}",
                     f"{s.before} -> {s.after}"])
    for c, w in sorted(res.watches.items()):
        api99 = percentile(w.latencies, 99)
        rows.append(["watch", c, len(w.latencies), ms(percentile(w.latencies, 50)), ms(api99), "-", "-", "-",
                     "-", yes_no(api99 * 1000 < TARGET_P99_MS and not w.missed), "-",
                     f"{count_errors(w.errors)}, missed {w.missed}", f"{w.before} -> {w.after}"])
        rows.append(["(after write)", c, len(w.after_write), ms(percentile(w.after_write, 50)),
                     ms(percentile(w.after_write, 99)), "-", "-", "-", "-", "-", "-", "-", "-"])
    return table(["op", "conc", "samples", "API p50 ms", "API p99 ms", "raw p50 ms", "raw p99 ms",
                  "API/raw p50", "ratio<=2", "p99<100ms", "raw retries", "errors API / raw",
                  "items/history"], rows)


OPS = ["create", "get", "patch", "list"]


# ----------------------------------------------------------------------------------------------------
# 3: DynamoDB requests and capacity units per write, counted on the store's own clients


def store_clients() -> list[Any]:
    """The botocore clients behind chalicelib's PynamoDB models (one per model connection)."""
    from chalicelib.store.models import ALL_MODELS

    clients = (m._get_connection().connection.client for m in ALL_MODELS)
    return list({id(c): c for c in clients}.values())


KEY_ATTRS = {"objects": ("kind", "key"), "changes": ("kind", "rev")}


def attr_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value, per 'DynamoDB item sizes and formats' (wire format in)."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        digits = v.lstrip("-").replace(".", "").strip("0")
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(base64.b64decode(v))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(attr_size(e) + 1 for e in v)
    if kind == "M":
        return 3 + sum(len(k.encode()) + attr_size(e) + 1 for k, e in v.items())
    if kind in ("SS", "NS", "BS"):
        return sum(attr_size({kind[0]: e}) for e in v)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: Item | None) -> int:
    return sum(len(name.encode()) + attr_size(v) for name, v in (item or {}).items())


@dataclass
class Call:
    operation: str
    wcu: float = 0.0
    rcu: float = 0.0
    sizes: list[int] = field(default_factory=list)  # per written item: max(before, after) bytes
    counter_read: bool = False  # a GetItem of a type's revision counter (changes table, rev 0)
    failed: bool = False


class CapacityMeter:
    """Counts the DynamoDB calls made by PynamoDB's clients (botocore `before-call`) and prices them.

    Transactional writes cost 2 WCU per 1 KB per item, on the larger of the item before and after
    the write (a delete on the item removed); strongly consistent reads cost 1 RCU per 4 KB (a
    query on the total of the items it returns), at least 1. Item sizes before and after a write
    are read with a separate client that the meter does not count.
    """

    def __init__(self, cluster: Cluster) -> None:
        self.clients = store_clients()
        self.side = dynamodb_client(cluster.aws_endpoint)
        self.prefix = cluster.table_prefix
        self.calls: list[Call] = []
        self._pending: list[tuple[str, Item, int, bool]] = []  # table, key, size before, is_update

    def __enter__(self) -> CapacityMeter:
        for c in self.clients:
            c.meta.events.register("before-call.dynamodb", self._before, unique_id="bench-meter-before")
            c.meta.events.register("after-call.dynamodb", self._after, unique_id="bench-meter-after")
        return self

    def __exit__(self, *exc: object) -> None:
        for c in self.clients:
            c.meta.events.unregister("before-call.dynamodb", unique_id="bench-meter-before")
            c.meta.events.unregister("after-call.dynamodb", unique_id="bench-meter-after")

    def take(self) -> list[Call]:
        calls, self.calls = self.calls, []
        return calls

    def _key(self, table_name: str, item: Item) -> Item:
        return {a: item[a] for a in KEY_ATTRS[table_name.removeprefix(f"{self.prefix}-")]}

    def _current(self, table_name: str, key: Item) -> Item | None:
        item: Item | None = self.side.get_item(TableName=table_name, Key=key, ConsistentRead=True).get("Item")
        return item

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        call = Call(model.name)
        if model.name == "GetItem":
            request = json.loads(params["body"])
            call.counter_read = request["TableName"] == f"{self.prefix}-changes" and \
                request["Key"].get("rev") == {"N": "0"}
        if model.name == "TransactWriteItems":
            self._pending = []
            for entry in json.loads(params["body"])["TransactItems"]:
                ((action, op),) = entry.items()
                key = self._key(op["TableName"], op["Item"]) if action == "Put" else op["Key"]
                before = item_size(self._current(op["TableName"], key))
                size = max(before, item_size(op["Item"])) if action == "Put" else before
                self._pending.append((op["TableName"], key, size, action == "Update"))
        self.calls.append(call)

    def _after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        call = self.calls[-1]
        call.failed = "Error" in parsed
        if model.name == "TransactWriteItems":
            for table_name, key, size, is_update in self._pending:
                if is_update:
                    size = max(size, item_size(self._current(table_name, key)))
                call.sizes.append(size)
                call.wcu += 2 * math.ceil(max(size, 1) / 1024)
        elif model.name == "GetItem":
            call.rcu = math.ceil(max(item_size(parsed.get("Item")), 1) / 4096)
        elif model.name == "Query":
            call.rcu = math.ceil(max(sum(item_size(i) for i in parsed.get("Items", [])), 1) / 4096)


def typical_pod(name: str, namespace: str) -> Obj:
    """A Deployment's running nginx Pod as a kubelet reports it (no managedFields), about 3 KB."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "generateName": "web-7c5ddbdf54-", "namespace": namespace, "uid": str(uuid.uuid4()),
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app": "web", "pod-template-hash": "7c5ddbdf54"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7c5ddbdf54",
                                 "uid": str(uuid.uuid4()), "controller": True, "blockOwnerDeletion": True}]},
        "spec": {
            "containers": [{
                "name": "nginx", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "MODE", "value": "production"}, {"name": "LOG_LEVEL", "value": "info"}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"},
                                   "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1,
                                   "failureThreshold": 3},
                "volumeMounts": [{"name": "kube-api-access-x7k2p", "readOnly": True,
                                  "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "nodeName": "node-1", "schedulerName": "default-scheduler",
            "securityContext": {}, "priority": 0, "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "tolerations": [{"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": "NoExecute",
                             "tolerationSeconds": 300} for t in ("not-ready", "unreachable")],
            "volumes": [{"name": "kube-api-access-x7k2p", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                    "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}]},
        "status": {
            "phase": "Running", "hostIP": "10.0.1.17", "podIP": "10.244.1.23",
            "podIPs": [{"ip": "10.244.1.23"}],
            "startTime": "2026-01-01T00:00:01Z", "qosClass": "Burstable",
            "conditions": [{"type": t, "status": "True", "lastProbeTime": None,
                            "lastTransitionTime": "2026-01-01T00:00:03Z"}
                           for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "containerStatuses": [{
                "name": "nginx", "ready": True, "started": True, "restartCount": 0, "image": "nginx:1.27",
                "imageID": "docker.io/library/nginx@sha256:" + "0" * 64,
                "containerID": "containerd://" + "a" * 64,
                "state": {"running": {"startedAt": "2026-01-01T00:00:02Z"}}, "lastState": {}}]}}


def configmap_of_size(name: str, namespace: str, size: int) -> Obj:
    """A ConfigMap whose compact JSON (with a resourceVersion of 6 digits) is `size` bytes."""
    obj: Obj = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()),
                             "creationTimestamp": "2026-01-01T00:00:00Z", "resourceVersion": "100000"},
                "data": {"payload": ""}}
    obj["data"]["payload"] = "x" * (size - len(json.dumps(obj, separators=(",", ":"))))
    del obj["metadata"]["resourceVersion"]
    return obj


@dataclass
class CostRow:
    obj: str
    operation: str
    calls: list[Call]

    def cells(self) -> list[Any]:
        ops: dict[str, int] = {}
        for c in self.calls:
            ops[c.operation] = ops.get(c.operation, 0) + 1
        sizes = "+".join(str(s) for c in self.calls for s in c.sizes) or "-"
        wcu = sum(c.wcu for c in self.calls)
        rcu = sum(c.rcu for c in self.calls)
        counter = "read" if any(c.counter_read for c in self.calls) else "guessed"
        return [self.obj, self.operation, len(self.calls), ", ".join(f"{k} {v}" for k, v in ops.items()),
                counter if "TransactWriteItems" in ops else "-", sizes, f"{wcu:g}", f"{rcu:g}"]


def forget_counter_guesses() -> None:
    """Make this process's next write of each type read the counter, as a fresh Lambda's first does."""
    from chalicelib.store import objects as store

    known = getattr(store, "_known_head", None)  # the store's guesses, if it still makes them
    if isinstance(known, dict):
        known.clear()


def store_costs(cluster: Cluster, ns: str) -> list[CostRow]:
    """create (with no counter guess), update and delete of three objects through chalicelib.store."""
    from chalicelib.store import objects as store

    cases = [("ConfigMap, small (latency runs)", "core/configmaps", {**configmap("cost-small"),
                                                                    "metadata": {"name": "cost-small",
                                                                                 "namespace": ns}}),
             ("ConfigMap, 1 KB JSON", "core/configmaps", configmap_of_size("cost-1k", ns, 1024)),
             ("Pod, typical (running, ~3 KB)", "core/pods", typical_pod("web-7c5ddbdf54-x2x9q", ns))]
    rows: list[CostRow] = []
    with CapacityMeter(cluster) as meter:
        for label, kind, obj in cases:
            key = store.object_key(ns, obj["metadata"]["name"])
            size = len(json.dumps(obj, separators=(",", ":")))
            label = f"{label}: {size} B"
            forget_counter_guesses()
            stored = store.create(kind, key, obj)
            rows.append(CostRow(label, "create", meter.take()))
            changed = {**stored, "metadata": {**stored["metadata"], "labels": {"touched": "yes"}}}
            stored = store.update(kind, key, changed, int(stored["metadata"]["resourceVersion"]))
            rows.append(CostRow(label, "update", meter.take()))
            store.delete(kind, key, stored, int(stored["metadata"]["resourceVersion"]))
            rows.append(CostRow(label, "delete", meter.take()))
    return rows


def api_costs(cluster: Cluster, bench: LatencyBench) -> list[CostRow]:
    """Each verb through the API's own handler, in this process, so its DynamoDB calls can be counted."""
    from chalicelib.api.http import Request
    from chalicelib.api.server import handle

    headers = {"authorization": f"Bearer {cluster.token}", "content-type": "application/json"}
    base = bench.path(bench.ns)

    def call(method: str, path: str, body: Obj | None = None, ctype: str = "application/json") -> None:
        req = Request(method=method, path=path, headers={**headers, "content-type": ctype},
                      body=json.dumps(body).encode() if body is not None else b"")
        resp = handle(req)
        if resp.status >= 300:
            raise ApiError(f"in-process {method} {path} answered {resp.status}: {resp.encoded()[:300]}")

    label = "ConfigMap, small (latency runs)"
    steps: list[tuple[str, Callable[[], None]]] = [
        ("create", lambda: call("POST", base, configmap("cost-api"))),
        ("get", lambda: call("GET", f"{base}/cost-api")),
        ("list (100 objects)", lambda: call("GET", bench.path(bench.list_ns))),
        ("patch (merge)", lambda: call("PATCH", f"{base}/cost-api", {"data": {"n": "1"}},
                                       "application/merge-patch+json")),
        ("delete", lambda: call("DELETE", f"{base}/cost-api")),
    ]
    # Warm up: the token lookup (cached 10 s), the built-in namespaces, and the counter guess for
    # configmaps (the steady state of a process that writes the type).
    call("POST", base, configmap("cost-warmup"))
    call("DELETE", f"{base}/cost-warmup")
    rows: list[CostRow] = []
    with CapacityMeter(cluster) as meter:
        for name, step in steps:
            step()
            rows.append(CostRow(label, name, meter.take()))
    return rows


def cost_report(rows: list[CostRow]) -> str:
    return table(["object", "operation", "requests", "by operation", "counter", "written item sizes (B)",
                  "WCU", "RCU"], [r.cells() for r in rows])


# ----------------------------------------------------------------------------------------------------
# 4: the revision counter's saturation


@dataclass
class SaturationPoint:
    kind: str
    threads: int
    seconds: float
    commits: int
    transactions: int
    busy: int
    latencies: list[float]
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def writes_per_s(self) -> float:
        return self.commits / self.seconds

    @property
    def retries_per_write(self) -> float:
        return (self.transactions - self.commits) / self.commits if self.commits else math.nan


class TransactionCounter:
    """Counts TransactWriteItems calls on the store's clients (thread safe)."""

    def __init__(self) -> None:
        self.clients = store_clients()
        self.count = 0
        self._lock = threading.Lock()

    def _hook(self, **_: Any) -> None:
        with self._lock:
            self.count += 1

    def __enter__(self) -> TransactionCounter:
        for c in self.clients:
            c.meta.events.register("before-call.dynamodb.TransactWriteItems", self._hook,
                                   unique_id="bench-txn")
        return self

    def __exit__(self, *exc: object) -> None:
        for c in self.clients:
            c.meta.events.unregister("before-call.dynamodb.TransactWriteItems", unique_id="bench-txn")


def saturate(threads: int, seconds: float) -> SaturationPoint:
    from chalicelib.store import objects as store

    kind = f"bench/saturation-{threads}-{uuid.uuid4().hex[:6]}"
    lock = threading.Lock()
    totals = {"commits": 0, "busy": 0}
    latencies: list[float] = []
    errors: dict[str, int] = {}
    barrier = threading.Barrier(threads + 1)
    deadline = [0.0]

    def writer(w: int) -> None:
        mine: list[float] = []
        busy = 0
        failed: list[str] = []
        barrier.wait()
        i = 0
        while time.perf_counter() < deadline[0]:
            t0 = time.perf_counter()
            try:
                store.create(kind, f"sat/{w}-{i}", {"metadata": {"name": f"{w}-{i}"}, "data": {"k": "v"}})
                mine.append(time.perf_counter() - t0)
            except store.StoreBusy:
                busy += 1
            except Exception as e:  # noqa: BLE001 - counted and shown with the point
                failed.append(type(e).__name__)
            i += 1
        with lock:
            totals["commits"] += len(mine)
            totals["busy"] += busy
            latencies.extend(mine)
            for name in failed:
                errors[name] = errors.get(name, 0) + 1

    with TransactionCounter() as txns:
        pool = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(threads)]
        for t in pool:
            t.start()
        started = time.perf_counter()
        deadline[0] = started + seconds
        barrier.wait()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - started
    return SaturationPoint(kind, threads, elapsed, totals["commits"], txns.count, totals["busy"], latencies,
                           errors)


def run_saturation(options: ClusterOptions, thread_counts: list[int], seconds: float) -> list[SaturationPoint]:
    """One fresh cluster per point: moto's write cost grows with history, which would tilt the curve."""
    print(f"4. revision counter saturation ({seconds:g} s per point, a fresh cluster each) ...", flush=True)
    points = []
    for k in thread_counts:
        with local_cluster(options) as cluster:
            use_cluster_in_process(cluster)
            point = saturate(k, seconds)
        points.append(point)
        print(f"  K={k}: {point.writes_per_s:.1f} writes/s, {point.retries_per_write:.2f} retries/write",
              flush=True)
    return points


def saturation_report(points: list[SaturationPoint]) -> str:
    peak = max((p.writes_per_s for p in points), default=1.0) or 1.0
    rows = [[p.threads, p.commits, f"{p.writes_per_s:.1f}", f"{p.retries_per_write:.2f}", p.busy,
             count_errors(p.errors), ms(percentile(p.latencies, 50)), ms(percentile(p.latencies, 99)),
             "#" * max(1, round(30 * p.writes_per_s / peak))] for p in points]
    return table(["K threads", "commits", "writes/s", "retries/write", "429s (busy)", "other errors",
                  "write p50 ms", "write p99 ms", "curve"], rows)


CEILING_NOTE = """\
Analytical ceiling on real DynamoDB (an ESTIMATE from DynamoDB's documented limits, not a measurement):
  - Every write of a resource type updates ONE item, the type's revision counter, in a transaction:
    2 WCU per write on one item, and an item is served by one partition (at most 1000 WCU/s):
    <= ~500 writes/s per resource type, whatever the number of writers.
  - The type's change records share the counter's partition key and are appended at the end of its
    key range (rising revisions). If they stay on the counter's partition, each write puts
    2 + 2*ceil(change record KB) WCU there: ~250 writes/s for small objects (<1 KB), ~166 for
    1-2 KB, ~125 for a ~3 KB Pod.
  - The optimistic loop is tighter still: a write commits only with the counter value the previous
    commit left, which it must have guessed (the store remembers its own last commit) or read, so at
    most one commit per TransactWriteItems round trip (~10-20 ms: 50-100 writes/s) while guesses
    hit, and per GetItem + TransactWriteItems (~40-70 writes/s) when writers in different Lambdas
    interleave. Beyond that, writers add retries (cancelled transactions, whose capacity is likely
    billed too), not throughput."""


# ----------------------------------------------------------------------------------------------------
# 5: moto's cost per transaction against table size


@dataclass
class MotoRow:
    label: str
    state: TableState
    write_p50: float
    get_p50: float


def moto_row(label: str, tables: Tables, raw: RawStore, samples: int = 30) -> MotoRow:
    """Raw write (the store's algorithm: 3-item transaction) and GetItem p50, with the tables as they are."""
    state = tables.state()
    tag = uuid.uuid4().hex[:6]
    writes, gets = [], []
    for i in range(samples):
        t0 = time.perf_counter()
        raw.write(f"bench-moto/{tag}-{i}", configmap(f"{tag}-{i}"), "ADDED", None)
        writes.append(time.perf_counter() - t0)
    for i in range(samples):
        t0 = time.perf_counter()
        raw.get("bench-moto", f"{tag}-{i}")
        gets.append(time.perf_counter() - t0)
    row = MotoRow(label, state, percentile(writes, 50), percentile(gets, 50))
    print(f"  {label}: items/history {state}: write p50 {ms(row.write_p50)} ms, get p50 {ms(row.get_p50)} ms",
          flush=True)
    return row


def moto_history_effect(options: ClusterOptions, filler: int = 2000) -> list[MotoRow]:
    """The same raw write on a fresh cluster, with `filler` more objects, with them deleted again, and
    after another put-and-delete round: the items return to where they were, the history does not."""
    print("5. moto's write cost vs items and history (a fresh cluster) ...", flush=True)
    with local_cluster(options) as cluster:
        tables, raw = Tables(cluster), RawStore(cluster, kind="bench/moto-history")
        body = json.dumps(configmap("filler"))
        rows = [moto_row("fresh cluster", tables, raw)]
        keys = tables.fill("bench/filler", filler, body)
        rows.append(moto_row(f"+{filler} objects (BatchWriteItem)", tables, raw))
        tables.remove(keys)
        rows.append(moto_row(f"the {filler} deleted again", tables, raw))
        tables.remove(tables.fill("bench/filler", filler, body))
        rows.append(moto_row(f"another {filler} put and deleted", tables, raw))
    return rows


def moto_report(rows: list[MotoRow]) -> str:
    return table(["tables", "items/history", "raw write p50 ms", "raw GetItem p50 ms"],
                 [[r.label, r.state, ms(r.write_p50), ms(r.get_p50)] for r in rows])


# ----------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--n", type=int, default=300, help="samples per operation and concurrency (default 300)")
    p.add_argument("--concurrency", default="1,8", help="comma-separated worker counts (default 1,8)")
    p.add_argument("--saturation-threads", default="1,2,4,8,16,32", help="writer counts for part 4")
    p.add_argument("--saturation-seconds", type=float, default=4.0, help="length of each saturation point")
    p.add_argument("--watch-poll", type=float, default=None,
                   help="SKIFF_WATCH_POLL_SECONDS for the cluster (default: the server's own, 0.1 s)")
    p.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    return p.parse_args(argv)


def ints(csv: str) -> list[int]:
    return [int(x) for x in csv.split(",") if x.strip()]


def to_json(latency: LatencyResults, costs: list[CostRow], points: list[SaturationPoint],
            moto: list[MotoRow]) -> Obj:
    def pcts(xs: list[float]) -> Obj:
        return {"n": len(xs), "p50_ms": percentile(xs, 50) * 1000, "p99_ms": percentile(xs, 99) * 1000}

    return {
        "latency": [{"op": op, "concurrency": c, "api": pcts(s.api), "raw": pcts(s.raw),
                     "raw_retries": s.raw_retries, "api_errors": s.api_errors, "raw_errors": s.raw_errors,
                     "items_history": [str(s.before), str(s.after)]}
                    for (op, c), s in latency.ops.items()],
        "watch": [{"concurrency": c, **pcts(w.latencies), "after_write": pcts(w.after_write), "missed": w.missed,
                   "errors": w.errors}
                  for c, w in latency.watches.items()],
        "costs": [dict(zip(["object", "operation", "requests", "by_operation", "counter", "sizes", "wcu", "rcu"],
                           r.cells(), strict=True)) for r in costs],
        "saturation": [{"threads": p.threads, "writes_per_s": p.writes_per_s,
                        "retries_per_write": p.retries_per_write, "busy": p.busy, "commits": p.commits,
                        "errors": p.errors,
                        "write_p50_ms": percentile(p.latencies, 50) * 1000,
                        "write_p99_ms": percentile(p.latencies, 99) * 1000} for p in points],
        "moto": [{"tables": r.label, "items_history": str(r.state), "write_p50_ms": r.write_p50 * 1000,
                  "get_p50_ms": r.get_p50 * 1000} for r in moto],
    }


def run(args: argparse.Namespace, options: ClusterOptions) -> Obj:
    latency = LatencyResults()
    costs: list[CostRow] = []
    for c in ints(args.concurrency):
        with local_cluster(options) as cluster:  # a fresh cluster per concurrency: the same history
            print(f"  cluster: API on {cluster.url}, moto on {cluster.aws_endpoint}", flush=True)
            use_cluster_in_process(cluster)
            bench = run_latency(cluster, args.n, c, latency.ops)
            latency.watches[c] = watch_delivery(bench, c)
            if not costs:
                print("3. DynamoDB requests and capacity per operation ...", flush=True)
                costs = store_costs(cluster, bench.ns) + api_costs(cluster, bench)
    points = run_saturation(options, ints(args.saturation_threads), args.saturation_seconds)
    moto = moto_history_effect(options)
    print("\n== 1+2. Latency: the API over HTTPS keep-alive vs the raw DynamoDB calls it needs")
    print(f"   targets: API/raw p50 <= {TARGET_RATIO:g} and API p99 < {TARGET_P99_MS:g} ms; "
          "items/history = items in both tables / records in the objects table's stream")
    print(latency_report(latency))
    print("\n== 3. DynamoDB requests and capacity units (store functions, then API verbs run in-process)")
    print(cost_report(costs))
    print("\n== 4. Revision counter saturation: K writers creating objects of ONE type through the store")
    print(saturation_report(points))
    print("\n" + CEILING_NOTE)
    print("\n== 5. Check: moto's cost per write against the tables' items and the objects stream's history")
    print(moto_report(moto))
    return to_json(latency, costs, points, moto)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = ClusterOptions(watch_poll=args.watch_poll)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    print(f"Skiff API benchmark: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, n={args.n}, "
          f"load average {os.getloadavg()[0]:.2f} (other work on the machine skews every figure)", flush=True)
    started = time.monotonic()
    try:
        figures = run(args, options)
    except ClusterError as e:
        print(f"api_latency: the local cluster could not start: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; the local cluster was stopped", file=sys.stderr)
        return 130
    print(f"\nran {time.monotonic() - started:.0f} s; load average now {os.getloadavg()[0]:.2f}")
    if args.json:
        figures["args"] = {k: str(v) for k, v in vars(args).items()}
        args.json.write_text(json.dumps(figures, indent=2))
        print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
