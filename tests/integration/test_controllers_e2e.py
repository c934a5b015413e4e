"""Controllers end to end through the local runtime (stream runner + resync), driven by kubectl.

The fake kubelet stands in for the scheduler and the node agent until those exist: it binds pods
and reports them ready through the API, as a node would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client, config

from tests.conftest import LiveCluster
from tests.integration.fake_kubelet import FakeKubelet

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: {replicas}
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxSurge: 1, maxUnavailable: 1}}}}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: main, image: "busybox:{tag}"}}]
"""


def api_client(live: LiveCluster, token: str | None = None) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(live.kubeconfig), client_configuration=cfg)
    if token:
        cfg.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(cfg)


def node_token(live: LiveCluster, node: str) -> str:
    out = subprocess.run([sys.executable, "-m", "skiff.cli", "token", "create", "--role", "node", "--node", node],
                         env={**os.environ, "SKIFF_HOME": str(live.home)}, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture(scope="module")
def kubelet(live: LiveCluster) -> Iterator[FakeKubelet]:
    with FakeKubelet(api_client(live), api_client(live, node_token(live, "fake-node")), "fake-node",
                     ready_delay=0.5) as k:
        yield k
    assert not k.errors, k.errors


def pods(live: LiveCluster, ns: str) -> list[dict]:
    return json.loads(live.kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]


def wait_for(predicate, timeout: float = 60, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_deployment_lifecycle(live: LiveCluster, kubelet: FakeKubelet) -> None:
    ns = "e2e-deploy"
    live.kubectl("create", "namespace", ns)
    live.kubectl("apply", "-f", "-", input=DEPLOYMENT.format(ns=ns, replicas=5, tag="1.36"))
    live.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=90s", timeout=120)
    assert len(pods(live, ns)) == 5

    # Image change: watch every moment of the rollout from the outside.
    violations: list[str] = []
    stop = threading.Event()

    def observe() -> None:
        while not stop.is_set():
            current = [p for p in pods(live, ns) if not p["metadata"].get("deletionTimestamp")]
            ready = [p for p in current if any(c["type"] == "Ready" and c["status"] == "True"
                                               for c in p.get("status", {}).get("conditions", []))]
            if len(current) > 5 + 1:
                violations.append(f"{len(current)} pods > replicas + maxSurge")
            if len(ready) < 5 - 1:
                violations.append(f"{len(ready)} ready < replicas - maxUnavailable")
            time.sleep(0.1)

    watcher = threading.Thread(target=observe, daemon=True)
    watcher.start()
    live.kubectl("set", "image", "-n", ns, "deployment/web", "main=busybox:1.37")
    live.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=120s", timeout=150)
    stop.set()
    watcher.join()
    assert not violations, violations[:5]
    images = {p["spec"]["containers"][0]["image"] for p in pods(live, ns) if not p["metadata"].get("deletionTimestamp")}
    assert images == {"busybox:1.37"}
    history = live.kubectl("rollout", "history", "-n", ns, "deployment/web").stdout
    assert "1" in history and "2" in history

    live.kubectl("rollout", "undo", "-n", ns, "deployment/web")
    live.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=120s", timeout=150)
    dep = json.loads(live.kubectl("get", "deployment", "web", "-n", ns, "-o", "json").stdout)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.36"

    live.kubectl("scale", "-n", ns, "deployment/web", "--replicas=2")
    wait_for(lambda: len([p for p in pods(live, ns) if not p["metadata"].get("deletionTimestamp")]) == 2,
             what="scale down to 2")

    live.kubectl("rollout", "restart", "-n", ns, "deployment/web")
    live.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=120s", timeout=150)

    def replicasets() -> list[str]:
        items = json.loads(live.kubectl("get", "replicasets", "-n", ns, "-o", "json").stdout)["items"]
        return sorted(rs["metadata"]["name"] for rs in items)

    live.kubectl("rollout", "pause", "-n", ns, "deployment/web")
    before = replicasets()
    live.kubectl("set", "image", "-n", ns, "deployment/web", "main=busybox:1.38")
    time.sleep(3)
    assert replicasets() == before, "a paused deployment rolls nothing out"
    live.kubectl("rollout", "resume", "-n", ns, "deployment/web")
    live.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=120s", timeout=150)
    assert len(replicasets()) == len(before) + 1

    describe = live.kubectl("describe", "deployment", "web", "-n", ns).stdout
    assert "ScalingReplicaSet" in describe

    live.kubectl("delete", "deployment", "web", "-n", ns, timeout=120)
    wait_for(lambda: not pods(live, ns) and not json.loads(
        live.kubectl("get", "replicasets", "-n", ns, "-o", "json").stdout)["items"], what="everything gone")


def test_namespace_deletion_removes_contents(live: LiveCluster, kubelet: FakeKubelet) -> None:
    ns = "e2e-ns"
    live.kubectl("create", "namespace", ns)
    live.kubectl("apply", "-f", "-", input=DEPLOYMENT.format(ns=ns, replicas=2, tag="1.36"))
    live.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=90s", timeout=120)
    live.kubectl("delete", "namespace", ns, "--timeout=90s", timeout=120)
    assert live.kubectl("get", "namespace", ns, check=False).returncode != 0
