"""Invariant 4: the controllers converge to the same state however the stream delivers its records.

A scenario (create a Deployment, scale it, change its image) is driven through the real stream of
the objects table and the real stream runner, with the controllers' handler wrapped to deliver each
batch twice, in reverse order, or to crash half-way and be retried; and the stream is replayed from
the start at the end. The end state (ignoring generated names, uids and times) is the same each time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.controllers import dispatch
from chalicelib.controllers.client import Client
from chalicelib.store.models import ObjectRecord
from skiff.streams import StreamRunner
from tests.conftest import APIClient

DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
Handler = Callable[[dict[str, Any], Any], None]


def deployment() -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}}


def drain(runner: StreamRunner, limit: int = 200) -> None:
    """Deliver records until the controllers stop writing (a fixpoint)."""
    for _ in range(limit):
        if runner.run_once() == 0:
            return
    raise AssertionError("the controllers never settled")


def end_state(admin: APIClient) -> dict[str, Any]:
    dep = admin.get(f"{DEPLOYS}/web")[1]
    rs_items = admin.get("/apis/apps/v1/namespaces/default/replicasets")[1]["items"]
    pods = admin.get("/api/v1/namespaces/default/pods")[1]["items"]
    keep = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas",
            "observedGeneration")
    return {
        "deployment": {"spec.replicas": dep["spec"]["replicas"],
                       "revision": dep["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision"),
                       "status": {k: dep.get("status", {}).get(k) for k in keep}},
        "replicasets": sorted(
            (rs["metadata"]["name"], rs["spec"]["replicas"], rs.get("status", {}).get("replicas"),
             rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision"))
            for rs in rs_items),
        "pods per owner": sorted(
            (p["metadata"]["ownerReferences"][0]["name"], p["spec"]["containers"][0]["image"]) for p in pods),
    }


def run_scenario(admin: APIClient, tmp_path: Path, wrap: Callable[[Handler], Handler]) -> dict[str, Any]:
    def handler(event: dict[str, Any], context: Any) -> None:
        dispatch.handle_records(event["Records"], Client())

    runner = StreamRunner("controllers", ObjectRecord.Meta.table_name, wrap(handler), batch_size=7,
                          batching_window_seconds=0, max_retry_attempts=5,
                          failure_destination=tmp_path / "failed.jsonl", checkpoint_path=tmp_path / "cp.json")
    admin.post(DEPLOYS, deployment())
    drain(runner)
    admin.patch(f"{DEPLOYS}/web", {"spec": {"replicas": 5}})
    drain(runner)
    admin.patch(f"{DEPLOYS}/web", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "busybox:2"}]}}}}, content_type="application/strategic-merge-patch+json")
    drain(runner)
    assert runner.failed_records == 0
    state = end_state(admin)
    # A full replay of the stream from its start changes nothing.
    replay = StreamRunner("replay", ObjectRecord.Meta.table_name, handler, batch_size=50,
                          batching_window_seconds=0, failure_destination=tmp_path / "failed-replay.jsonl",
                          checkpoint_path=tmp_path / "replay.json")
    drain(replay)
    assert end_state(admin) == state
    return state


def plain(handler: Handler) -> Handler:
    return handler


def twice(handler: Handler) -> Handler:
    def run(event: dict[str, Any], context: Any) -> None:
        handler(event, context)
        handler(event, context)
    return run


def reversed_batches(handler: Handler) -> Handler:
    def run(event: dict[str, Any], context: Any) -> None:
        handler({"Records": list(reversed(event["Records"]))}, context)
    return run


def crash_once_midway(handler: Handler) -> Handler:
    """The first invocations die after some of their writes landed; the runner retries them."""
    crashes = {"left": 3}

    def run(event: dict[str, Any], context: Any) -> None:
        if crashes["left"] > 0 and len(event["Records"]) > 1:
            crashes["left"] -= 1
            handler({"Records": event["Records"][: len(event["Records"]) // 2]}, context)
            raise RuntimeError("handler crashed mid-batch")
        handler(event, context)
    return run


@contextlib.contextmanager
def fresh_store() -> Iterator[APIClient]:
    """A new in-process moto AWS with Skiff's tables, its own admin, and clean per-process caches."""
    from moto import mock_aws

    from chalicelib import bootstrap
    from chalicelib.api import auth
    from chalicelib.api.auth import issue_token
    from chalicelib.store import objects
    from chalicelib.store.models import ALL_MODELS, ensure_tables

    with mock_aws():
        objects._known_head.clear()
        for m in ALL_MODELS:
            m._connection = None
        ensure_tables()
        bootstrap._done = False
        auth._cache.clear()
        bootstrap.ensure_builtin_objects()
        yield APIClient(issue_token("admin"))
    bootstrap._done = False
    auth._cache.clear()


def test_same_end_state_however_the_stream_delivers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    states: dict[str, dict[str, Any]] = {}
    for wrap in (plain, twice, reversed_batches, crash_once_midway):
        with fresh_store() as admin:
            states[wrap.__name__] = run_scenario(admin, tmp_path / wrap.__name__, wrap)
    baseline = states["plain"]
    assert baseline["deployment"]["spec.replicas"] == 5 and baseline["deployment"]["revision"] == "2"
    assert len(baseline["replicasets"]) == 2
    for name, state in states.items():
        assert state == baseline, f"{name} delivery ended elsewhere"
