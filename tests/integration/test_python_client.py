"""The official `kubernetes` Python client against a live local cluster, including watch resumption
without gaps or duplicates while several writers commit concurrently."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.conftest import LiveCluster


@pytest.fixture(scope="module")
def api(live: LiveCluster) -> Iterator[client.ApiClient]:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(live.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as c:
        yield c


def test_configmap_crud_and_conflict(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    cm = core.create_namespaced_config_map("default", {"metadata": {"name": "py-cm"}, "data": {"a": "1"}})
    assert cm.metadata.uid and cm.data == {"a": "1"}
    stale_rv = cm.metadata.resource_version
    patched = core.patch_namespaced_config_map("py-cm", "default", {"data": {"a": "2"}})
    assert patched.data == {"a": "2"}
    cm.data = {"a": "3"}
    cm.metadata.resource_version = stale_rv
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("py-cm", "default", cm)
    assert e.value.status == 409
    names = [i.metadata.name for i in core.list_namespaced_config_map("default").items]
    assert "py-cm" in names
    core.delete_namespaced_config_map("py-cm", "default")
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("py-cm", "default")
    assert e.value.status == 404


def test_deployment_and_scale(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    body = {"metadata": {"name": "py-web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "py-web"}},
                     "template": {"metadata": {"labels": {"app": "py-web"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    dep = apps.create_namespaced_deployment("default", body)
    assert dep.spec.strategy.type == "RollingUpdate"
    apps.patch_namespaced_deployment_scale("py-web", "default", {"spec": {"replicas": 4}})
    assert apps.read_namespaced_deployment_scale("py-web", "default").spec.replicas == 4
    with pytest.raises(ApiException) as e:
        apps.create_namespaced_deployment("default", body)
    assert e.value.status == 409


def test_watch_stream_receives_events(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "py-watch"}})
    rv = core.list_namespaced_config_map("py-watch").metadata.resource_version
    core.create_namespaced_config_map("py-watch", {"metadata": {"name": "w1"}})
    events = []
    for ev in watch.Watch().stream(core.list_namespaced_config_map, "py-watch", resource_version=rv,
                                   timeout_seconds=5):
        events.append((ev["type"], ev["object"].metadata.name))
        if len(events) == 1:
            break
    assert events == [("ADDED", "w1")]


def test_watch_resumes_without_gaps_under_concurrent_writers(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "py-gapless"}})
    start = core.list_namespaced_config_map("py-gapless").metadata.resource_version
    writers, per_writer = 4, 15
    expected = {f"w{w}-{i}" for w in range(writers) for i in range(per_writer)}

    def write(w: int) -> None:
        for i in range(per_writer):
            core.create_namespaced_config_map("py-gapless", {"metadata": {"name": f"w{w}-{i}"}})

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    seen: list[str] = []
    revisions: list[int] = []
    rv = start
    deadline = time.monotonic() + 60
    while set(seen) != expected and time.monotonic() < deadline:
        # Each long-poll returns a batch; the client re-watches from the last resourceVersion it saw.
        for ev in watch.Watch().stream(core.list_namespaced_config_map, "py-gapless", resource_version=rv,
                                       timeout_seconds=2):
            assert ev["type"] == "ADDED"
            seen.append(ev["object"].metadata.name)
            rv = ev["object"].metadata.resource_version
            revisions.append(int(rv))
    for t in threads:
        t.join()
    assert sorted(seen) == sorted(expected), "every change delivered"
    assert len(seen) == len(set(seen)), "none delivered twice"
    assert revisions == sorted(revisions), "in commit order"
