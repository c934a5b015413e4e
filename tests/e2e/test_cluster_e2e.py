"""End to end through kubectl against `skiff up` with real node agents: deploy an image pushed with `skiff
image push`, scale beyond capacity (the provisioner launches an instance whose agent registers), roll out
without dropping below replicas - maxUnavailable ready pods, lose a node agent (its pods come back
elsewhere after their toleration), and delete everything (no container left)."""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.request
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Cluster
from tests.waiting import wait_until

ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def ready(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or [])


@pytest.fixture(scope="module")
def images(cluster: Cluster, docker_client: Any) -> dict[str, str]:
    """Two versions of a small web image in the cluster's ECR repository."""
    from skiff.testimage import ensure_test_image

    base = ensure_test_image(docker_client)
    del base
    refs = {}
    for version in ("v1", "v2"):
        container = docker_client.containers.create("skiff-test/busybox:1", ["sh", "-c",
                                                    f"echo 'e2e {version}' > /var/www/index.html"])
        try:
            container.start()
            container.wait(timeout=30)
            container.commit(repository="skiff-e2e-web", tag=version)
        finally:
            container.remove(force=True)
        pushed = cluster.skiff("image", "push", f"skiff-e2e-web:{version}", f"e2e/web:{version}")
        assert pushed.returncode == 0, pushed.stderr
        refs[version] = pushed.stdout.strip()
        assert refs[version] == f"{ECR}/e2e/web:{version}"
    return refs


def deployment(name: str, image: str, replicas: int, *, cpu: str = "50m", host_port: int | None = None,
               toleration: int | None = None, max_surge: int = 1, max_unavailable: int = 1) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "web", "image": image, "command": ["httpd", "-f", "-p", "8080", "-h", "/var/www"],
        "ports": [{"containerPort": 8080, **({"hostPort": host_port} if host_port else {})}],
        "resources": {"requests": {"cpu": cpu, "memory": "16Mi"}},
        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}
    spec: dict[str, Any] = {"terminationGracePeriodSeconds": 1, "containers": [container]}
    if toleration is not None:
        spec["tolerations"] = [{"key": f"node.kubernetes.io/{k}", "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": toleration} for k in ("unreachable", "not-ready")]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


def pods_of(cluster: Cluster, app: str) -> list[dict[str, Any]]:
    return list(cluster.json("get", "pods", "-l", f"app={app}").get("items") or [])


def node_ips(cluster: Cluster) -> dict[str, str]:
    out = {}
    for node in cluster.json("get", "nodes")["items"]:
        for a in node["status"].get("addresses") or []:
            if a["type"] == "InternalIP":
                out[node["metadata"]["name"]] = a["address"]
    return out


def test_deploy_an_image_pushed_to_the_cluster_and_reach_it(cluster: Cluster, images: dict[str, str]) -> None:
    name = f"hello-{uuid.uuid4().hex[:4]}"
    cluster.apply(deployment(name, images["v1"], 2, host_port=18090, max_surge=0))
    cluster.kubectl("rollout", "status", f"deployment/{name}", "--timeout=120s", timeout=130)
    pods = pods_of(cluster, name)
    assert len(pods) == 2 and all(ready(p) for p in pods)
    ips = node_ips(cluster)
    assert len({p["spec"]["nodeName"] for p in pods}) == 2, "a hostPort keeps the replicas on different nodes"
    for pod in pods:
        url = f"http://{ips[pod['spec']['nodeName']]}:18090/"
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - the node's loopback address
            assert r.read().decode().strip() == "e2e v1"
    cluster.kubectl("delete", "deployment", name)


def test_scaling_beyond_capacity_launches_a_node_whose_agent_registers(cluster: Cluster,
                                                                       images: dict[str, str]) -> None:
    before = {n["metadata"]["name"] for n in cluster.json("get", "nodes")["items"]}
    cluster.apply({"apiVersion": "skiff.io/v1", "kind": "NodePool", "metadata": {"name": "e2e"},
                   "spec": {"instanceTypes": ["c5.large"], "capacityType": "on-demand",
                            "launchTemplate": {"name": "skiff-node"}, "limits": {"maxNodes": 3},
                            "disruption": {"emptyAfterSeconds": 30}}})
    name = f"big-{uuid.uuid4().hex[:4]}"
    # each replica asks for most of a 2-vCPU node: the two nodes take two, the third needs a new instance
    cluster.apply(deployment(name, images["v1"], 3, cpu="1200m"))
    cluster.kubectl("rollout", "status", f"deployment/{name}", "--timeout=150s", timeout=160)
    pods = pods_of(cluster, name)
    used = {p["spec"]["nodeName"] for p in pods}
    new = used - before
    assert len(pods) == 3 and all(ready(p) for p in pods) and new, (used, before)
    claims = cluster.json("get", "nodeclaims")["items"]
    assert any((c.get("status") or {}).get("nodeName") in new for c in claims), claims
    node = cluster.json("get", "node", sorted(new)[0])
    assert node["metadata"]["labels"]["node.kubernetes.io/instance-type"] == "c5.large"
    assert node["spec"]["providerID"].startswith("aws:///")
    assert any(n["name"] in new and n.get("alive") for n in cluster.fleet()), "the new instance runs an agent"
    cluster.kubectl("delete", "deployment", name)
    cluster.kubectl("delete", "nodepool", "e2e")


def test_rolling_update_keeps_replicas_minus_max_unavailable_ready(cluster: Cluster, images: dict[str, str]) -> None:
    name = f"roll-{uuid.uuid4().hex[:4]}"
    cluster.apply(deployment(name, images["v1"], 3, max_surge=1, max_unavailable=1))
    cluster.kubectl("rollout", "status", f"deployment/{name}", "--timeout=120s", timeout=130)
    lowest: list[int] = []
    done = threading.Event()

    def watch_ready() -> None:
        while not done.is_set():
            proc = cluster.kubectl("get", "pods", "-l", f"app={name}", "-o", "json", check=False)
            if proc.returncode == 0:
                import json

                items = json.loads(proc.stdout)["items"]
                lowest.append(sum(1 for p in items if ready(p)))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch_ready, daemon=True)
    watcher.start()
    time.sleep(1)
    cluster.kubectl("set", "image", f"deployment/{name}", f"web={images['v2']}")
    cluster.kubectl("rollout", "status", f"deployment/{name}", "--timeout=150s", timeout=160)
    time.sleep(1)
    done.set()
    watcher.join(10)
    assert len(lowest) > 10, "the rollout was observed many times"
    assert min(lowest) >= 3 - 1, f"ready pods dropped to {min(lowest)} (samples: {lowest})"
    pods = pods_of(cluster, name)
    assert {p["spec"]["containers"][0]["image"] for p in pods if ready(p)} == {images["v2"]}
    cluster.kubectl("delete", "deployment", name)


def test_a_stopped_node_agent_has_its_pods_replaced_elsewhere(cluster: Cluster, images: dict[str, str]) -> None:
    name = f"heal-{uuid.uuid4().hex[:4]}"
    cluster.apply(deployment(name, images["v1"], 2, toleration=5))
    cluster.kubectl("rollout", "status", f"deployment/{name}", "--timeout=120s", timeout=130)
    victim_pod = pods_of(cluster, name)[0]
    victim = victim_pod["spec"]["nodeName"]
    agent = next(n for n in cluster.fleet() if n["name"] == victim)
    os.kill(int(agent["pid"]), signal.SIGSTOP)  # the agent hangs: no heartbeats, its containers keep running
    try:
        wait_until("the node NotReady", lambda: any(
            c["type"] == "Ready" and c["status"] != "True"
            for c in cluster.json("get", "node", victim)["status"]["conditions"]), timeout=60)

        def replaced() -> bool:
            pods = pods_of(cluster, name)
            live = [p for p in pods if ready(p) and p["spec"]["nodeName"] != victim]
            # (the ReplicaSet names pods by slot, so the replacement may carry the old name: compare uids)
            return len(live) == 2 and victim_pod["metadata"]["uid"] not in {p["metadata"]["uid"] for p in live}

        wait_until("two ready replicas on other nodes", replaced, timeout=90)
    finally:
        os.kill(int(agent["pid"]), signal.SIGCONT)
    wait_until("the node Ready again", lambda: any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in cluster.json("get", "node", victim)["status"]["conditions"]), timeout=60)
    cluster.kubectl("delete", "deployment", name)


def test_deleting_everything_leaves_no_container(cluster: Cluster, images: dict[str, str],
                                                 docker_client: Any) -> None:
    cluster.kubectl("create", "namespace", "e2e-gone")
    for i in range(2):
        manifest = deployment(f"gone-{i}", images["v1"], 2)
        manifest["metadata"]["namespace"] = "e2e-gone"
        cluster.apply(manifest)
    for i in range(2):
        cluster.kubectl("rollout", "status", f"deployment/gone-{i}", "-n", "e2e-gone", "--timeout=120s", timeout=130)
    nodes = [n["metadata"]["name"] for n in cluster.json("get", "nodes")["items"]]

    def containers() -> list[str]:
        return [c.name for n in nodes for c in docker_client.containers.list(
            all=True, filters={"label": f"io.skiff.node={n}"}) if c.labels.get("io.skiff.pod.namespace") == "e2e-gone"]

    assert containers()
    cluster.kubectl("delete", "namespace", "e2e-gone", timeout=120)
    wait_until("the namespace gone", lambda: cluster.kubectl("get", "namespace", "e2e-gone",
                                                             check=False).returncode != 0, timeout=90)
    wait_until("no container of its pods left", lambda: not containers(), timeout=60)
