"""SKIFF_CONTROLLERS: a function runs only the controllers it names, so the scheduler can have a stream
function of its own while another runs the rest, and together they do what one function did.

The stream tests drive the real objects stream with two stream runners, as two Lambda functions on the
same stream would be; the resync tests call the periodic handler with a subset.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import pytest

from chalicelib import settings
from chalicelib.controllers import dispatch
from chalicelib.controllers.client import Client
from chalicelib.store.models import ObjectRecord
from skiff.streams import StreamRunner
from tests.conftest import APIClient

REPO = Path(__file__).resolve().parents[2]
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
PODS = "/api/v1/namespaces/default/pods"
ALL = frozenset(settings.CONTROLLERS)
SCHEDULER = frozenset({"schedule"})
REST = ALL - SCHEDULER


# --- the setting ---------------------------------------------------------------------------------------

def test_unset_or_empty_means_every_controller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SKIFF_CONTROLLERS", raising=False)
    assert settings.controllers() == ALL
    monkeypatch.setenv("SKIFF_CONTROLLERS", " ")
    assert settings.controllers() == ALL


def test_names_are_comma_separated_with_spaces_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKIFF_CONTROLLERS", "schedule")
    assert settings.controllers() == {"schedule"}
    monkeypatch.setenv("SKIFF_CONTROLLERS", " replicaset, deployment ,gc,")
    assert settings.controllers() == {"replicaset", "deployment", "gc"}


def test_an_unknown_name_is_an_error_that_lists_the_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKIFF_CONTROLLERS", "schedule,scheduler")
    with pytest.raises(ValueError) as e:
        settings.controllers()
    assert "unknown controller(s) scheduler" in str(e.value)
    assert "valid names are deployment, replicaset, gc, namespace, nodelifecycle, schedule, provisioner" in str(e.value)


def test_a_function_with_an_unknown_name_fails_to_start() -> None:
    """Lambda imports app.py when the function starts: a bad name stops it there, with the valid names."""
    env = {**os.environ, "SKIFF_CONTROLLERS": "schedular"}
    out = subprocess.run([sys.executable, "-c", "import app"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode != 0
    assert "SKIFF_CONTROLLERS='schedular': unknown controller(s) schedular; valid names are deployment" in out.stderr
    env["SKIFF_CONTROLLERS"] = "schedule"
    ok = subprocess.run([sys.executable, "-c", "import app"], cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0, ok.stderr


def test_every_sync_belongs_to_a_controller_the_setting_can_name() -> None:
    assert set(dispatch.CONTROLLER_OF.values()) == ALL


# --- the stream handler ----------------------------------------------------------------------------------

def add_node(admin: APIClient, name: str) -> None:
    admin.post("/api/v1/nodes", {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}})
    resources = {"cpu": "4", "memory": "8Gi", "pods": "110"}
    admin.patch(f"/api/v1/nodes/{name}/status", {"status": {"capacity": resources, "allocatable": resources}})


def deployment(replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox",
                                                           "resources": {"requests": {"cpu": "100m"}}}]}}}}


def pods(admin: APIClient) -> dict[str, str | None]:
    """Each pod's node (None while unscheduled)."""
    return {p["metadata"]["name"]: p["spec"].get("nodeName") for p in admin.get(PODS)[1]["items"]}


def replicasets(admin: APIClient) -> list[str]:
    return [rs["metadata"]["name"] for rs in admin.get("/apis/apps/v1/namespaces/default/replicasets")[1]["items"]]


def runner(name: str, tmp_path: Path, handler: Callable[[dict[str, Any], Any], None]) -> StreamRunner:
    return StreamRunner(name, ObjectRecord.Meta.table_name, handler, batch_size=20, batching_window_seconds=0,
                        failure_destination=tmp_path / f"{name}-failed.jsonl",
                        checkpoint_path=tmp_path / f"{name}-cp.json")


def function(name: str, tmp_path: Path, controllers: Collection[str], log: list[str]) -> StreamRunner:
    """A stream function that runs `controllers`; its client's writes go to `log`."""
    def handler(event: dict[str, Any], context: Any) -> None:
        client = Client()
        try:
            dispatch.handle_records(event["Records"], client, controllers=controllers)
        finally:
            log.extend(client.action_strings())
    return runner(name, tmp_path, handler)


def drain(*runners: StreamRunner) -> None:
    for _ in range(100):
        if sum(r.run_once() for r in runners) == 0:
            assert all(r.failed_records == 0 for r in runners)
            return
    raise AssertionError("the stream functions never settled")


def test_a_scheduler_function_and_a_controllers_function_together_do_what_one_did(
        admin: APIClient, tmp_path: Path) -> None:
    add_node(admin, "n1")
    scheduler_writes: list[str] = []
    controllers_writes: list[str] = []
    scheduler = function("scheduler", tmp_path, SCHEDULER, scheduler_writes)
    controllers = function("controllers", tmp_path, REST, controllers_writes)
    admin.post(DEPLOYS, deployment(3))

    drain(scheduler)  # the scheduler alone: a Deployment is none of its business
    assert scheduler_writes == [] and replicasets(admin) == [] and pods(admin) == {}

    drain(controllers)  # the rest alone: a ReplicaSet and its pods, none of them bound
    assert len(replicasets(admin)) == 1
    assert list(pods(admin).values()) == [None] * 3
    assert not any(w.startswith("bind ") for w in controllers_writes)

    drain(scheduler, controllers)  # both: every pod bound, by the scheduler's function only
    assert list(pods(admin).values()) == ["n1"] * 3
    assert sorted(w for w in scheduler_writes if w.startswith("bind ")) == [f"bind pods default/{p}"
                                                                             for p in sorted(pods(admin))]
    assert {w.split()[1] for w in scheduler_writes} <= {"pods", "events"}
    assert not any(w.startswith("bind ") for w in controllers_writes)


def test_the_stream_handler_reads_the_setting_when_not_told(admin: APIClient, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    add_node(admin, "n1")
    app_handler = runner("app", tmp_path, lambda event, context: dispatch.handle_records(event["Records"]))
    monkeypatch.setenv("SKIFF_CONTROLLERS", "schedule")
    admin.post(DEPLOYS, deployment(2))
    drain(app_handler)
    assert replicasets(admin) == []
    monkeypatch.setenv("SKIFF_CONTROLLERS", "deployment,replicaset")
    admin.patch(f"{DEPLOYS}/web", {"spec": {"replicas": 1}})  # new records: the Deployment's change
    drain(app_handler)
    assert list(pods(admin).values()) == [None]
    monkeypatch.setenv("SKIFF_CONTROLLERS", "nodelifecycle, gc,schedule")
    admin.patch(f"{DEPLOYS}/web", {"metadata": {"labels": {"x": "1"}}})
    [pod] = pods(admin)
    admin.patch(f"{PODS}/{pod}", {"metadata": {"labels": {"touched": "yes"}}})  # a pod record: the scheduler's
    drain(app_handler)
    assert list(pods(admin).values()) == ["n1"]


# --- the resync -------------------------------------------------------------------------------------------

def test_the_resync_does_all_the_work_of_the_controllers_it_runs_and_nothing_else(admin: APIClient) -> None:
    add_node(admin, "n1")
    admin.post(DEPLOYS, deployment(2))

    client = Client()
    dispatch.resync(client, controllers=SCHEDULER)
    assert client.action_strings() == [] and replicasets(admin) == []

    client = Client()
    for _ in range(2):  # the first pass creates the ReplicaSet, the second (as any resync) its pods
        dispatch.resync(client, controllers=REST)
    assert len(replicasets(admin)) == 1 and list(pods(admin).values()) == [None, None]
    assert not any(w.startswith("bind ") for w in client.action_strings())

    client = Client()
    dispatch.resync(client, controllers=SCHEDULER)
    assert list(pods(admin).values()) == ["n1", "n1"]
    assert {w.split()[1] for w in client.action_strings()} <= {"pods", "events"}


def test_the_resync_without_gc_leaves_orphans_and_with_it_collects_them(admin: APIClient) -> None:
    code, owner = admin.post("/api/v1/namespaces/default/configmaps", {"metadata": {"name": "owner"}})
    assert code == 201
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    admin.post("/api/v1/namespaces/default/configmaps", {"metadata": {"name": "dependent", "ownerReferences": [ref]}})
    admin.delete("/api/v1/namespaces/default/configmaps/owner")  # no stream ran: the hint is lost

    dispatch.resync(Client(), controllers=REST - {"gc"})
    assert admin.get("/api/v1/namespaces/default/configmaps/dependent")[0] == 200
    dispatch.resync(Client(), controllers={"gc"})
    assert admin.get("/api/v1/namespaces/default/configmaps/dependent")[0] == 404
