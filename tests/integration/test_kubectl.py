"""kubectl (the real v1.32 binary) against a live local cluster: what a CI pipeline would run."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.conftest import LiveCluster

ROOT = Path(__file__).resolve().parents[2]


def make_namespace(live: LiveCluster, name: str) -> None:
    live.kubectl("apply", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")


def deployment_yaml(name: str, replicas: int, image: str = "busybox:1.36") -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: main, image: "{image}"}}]
"""


def test_get_namespaces(live: LiveCluster) -> None:
    out = live.kubectl("get", "namespaces").stdout
    assert "default" in out and "kube-node-lease" in out and "Active" in out


def test_apply_with_default_validation_then_unchanged_then_configured(live: LiveCluster) -> None:
    make_namespace(live, "apply-test")
    out = live.kubectl("apply", "-n", "apply-test", "-f", str(ROOT / "examples/web.yaml")).stdout
    assert "deployment.apps/web created" in out and "configmap/web-config created" in out
    out = live.kubectl("apply", "-n", "apply-test", "-f", str(ROOT / "examples/web.yaml")).stdout
    assert "deployment.apps/web unchanged" in out
    changed = (ROOT / "examples/web.yaml").read_text().replace("replicas: 3", "replicas: 4")
    out = live.kubectl("apply", "-n", "apply-test", "-f", "-", input=changed).stdout
    assert "deployment.apps/web configured" in out
    dep = json.loads(live.kubectl("get", "-n", "apply-test", "deployment", "web", "-o", "json").stdout)
    assert dep["spec"]["replicas"] == 4
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}  # as the manifest says
    assert "kubectl.kubernetes.io/last-applied-configuration" in dep["metadata"]["annotations"]


def test_apply_refuses_unknown_fields(live: LiveCluster) -> None:
    bad = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: typo
dataa:
  k: v
"""
    proc = live.kubectl("apply", "-f", "-", input=bad, check=False)
    assert proc.returncode != 0
    assert 'unknown field "dataa"' in proc.stderr
    assert live.kubectl("get", "configmap", "typo", check=False).returncode != 0


def test_invalid_object_lists_causes(live: LiveCluster) -> None:
    bad = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: broken
spec:
  replicas: -2
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: b}}
    spec:
      containers: [{name: c, image: busybox, ports: [{containerPort: 70000}]}]
"""
    proc = live.kubectl("apply", "-f", "-", input=bad, check=False)
    assert proc.returncode != 0
    assert "is invalid" in proc.stderr
    assert "spec.replicas" in proc.stderr and "spec.template.metadata.labels" in proc.stderr
    assert "containerPort" in proc.stderr


def test_scale_label_patch_delete(live: LiveCluster) -> None:
    live.kubectl("apply", "-f", "-", input=deployment_yaml("sc", 1))
    live.kubectl("scale", "deployment", "sc", "--replicas=3")
    assert live.kubectl("get", "deployment", "sc", "-o", "jsonpath={.spec.replicas}").stdout == "3"
    live.kubectl("label", "deployment", "sc", "team=blue")
    live.kubectl("annotate", "deployment", "sc", "note=hello")
    live.kubectl("patch", "deployment", "sc", "-p", '{"spec":{"template":{"spec":{"containers":'
                 '[{"name":"main","image":"busybox:1.37"}]}}}}')
    live.kubectl("patch", "deployment", "sc", "--type=merge", "-p", '{"spec":{"minReadySeconds":3}}')
    live.kubectl("patch", "deployment", "sc", "--type=json", "-p",
                 '[{"op":"replace","path":"/spec/revisionHistoryLimit","value":4}]')
    dep = json.loads(live.kubectl("get", "deployment", "sc", "-o", "json").stdout)
    assert dep["metadata"]["labels"]["team"] == "blue" and dep["metadata"]["annotations"]["note"] == "hello"
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.37"
    assert dep["spec"]["minReadySeconds"] == 3 and dep["spec"]["revisionHistoryLimit"] == 4
    assert dep["metadata"]["generation"] == 5  # scale, image, minReadySeconds, revisionHistoryLimit
    assert "team=blue" in live.kubectl("get", "deployments", "-l", "team=blue", "--show-labels").stdout
    live.kubectl("delete", "deployment", "sc")
    assert live.kubectl("get", "deployment", "sc", check=False).returncode != 0


def test_get_pods_columns_selectors_and_chunks(live: LiveCluster) -> None:
    make_namespace(live, "chunks")
    for i in range(5):
        live.kubectl("apply", "-n", "chunks", "-f", "-", input=f"""
apiVersion: v1
kind: Pod
metadata: {{name: p{i}, labels: {{app: p, idx: i{i}}}}}
spec:
  containers: [{{name: c, image: busybox}}]
""")
    out = live.kubectl("get", "pods", "-n", "chunks", "--chunk-size=2").stdout
    lines = out.strip().splitlines()
    assert lines[0].split()[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [line.split()[0] for line in lines[1:]] == [f"p{i}" for i in range(5)]
    assert "Pending" in lines[1]
    out = live.kubectl("get", "pods", "-n", "chunks", "-l", "idx in (i1,i3)", "-o", "name").stdout
    assert out.split() == ["pod/p1", "pod/p3"]
    out = live.kubectl("get", "pods", "-A", "--field-selector", "metadata.name=p4", "-o", "name").stdout
    assert out.split() == ["pod/p4"]


def test_get_watch_prints_changes(live: LiveCluster) -> None:
    make_namespace(live, "watching")
    proc = subprocess.Popen(["kubectl", "--kubeconfig", str(live.kubeconfig), "get", "configmaps", "-n",
                             "watching", "-w", "--request-timeout=20s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        live.kubectl("apply", "-n", "watching", "-f", "-",
                     input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: seen-by-watch}\n")
        out, err = proc.communicate(timeout=40)
    finally:
        proc.kill()
    assert "seen-by-watch" in out, (out, err)


def test_rollout_status_follows_deployment_status(live: LiveCluster) -> None:
    live.kubectl("apply", "-f", "-", input=deployment_yaml("ro", 2))
    proc = subprocess.Popen(["kubectl", "--kubeconfig", str(live.kubeconfig), "rollout", "status",
                             "deployment/ro", "--timeout=40s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        dep = json.loads(live.kubectl("get", "deployment", "ro", "-o", "json").stdout)
        gen = dep["metadata"]["generation"]
        status = {"status": {"observedGeneration": gen, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
                             "availableReplicas": 2, "conditions": [
                                 {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                                 {"type": "Progressing", "status": "True",
                                  "reason": "NewReplicaSetAvailable"}]}}
        live.kubectl("patch", "deployment", "ro", "--subresource=status", "--type=merge", "-p", json.dumps(status))
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, (out, err)
    assert 'deployment "ro" successfully rolled out' in out


def test_explain_uses_our_openapi(live: LiveCluster) -> None:
    out = live.kubectl("explain", "deployment.spec.replicas").stdout
    assert "replicas" in out.lower()


def test_bad_token_is_unauthorized(live: LiveCluster) -> None:
    proc = live.kubectl("--token=skiff.not-a-token", "get", "pods", check=False)
    assert proc.returncode != 0 and "Unauthorized" in proc.stderr


def test_typed_create_commands(live: LiveCluster) -> None:
    """kubectl's create/run commands send protobuf bodies; the server must read them."""
    live.kubectl("create", "namespace", "typed")
    live.kubectl("create", "configmap", "cm", "-n", "typed", "--from-literal=a=b")
    live.kubectl("create", "deployment", "web", "-n", "typed", "--image=busybox:1.36", "--replicas=2")
    live.kubectl("run", "solo", "-n", "typed", "--image=busybox", "--labels=app=solo", "--", "sleep", "3600")
    assert live.kubectl("get", "configmap", "cm", "-n", "typed", "-o", "jsonpath={.data.a}").stdout == "b"
    assert live.kubectl("get", "deployment", "web", "-n", "typed", "-o", "jsonpath={.spec.replicas}").stdout == "2"
    pod = json.loads(live.kubectl("get", "pod", "solo", "-n", "typed", "-o", "json").stdout)
    assert pod["spec"]["containers"][0]["args"] == ["sleep", "3600"]
    assert pod["metadata"]["labels"] == {"app": "solo"}
