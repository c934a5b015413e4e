"""The provisioner's whole path on the local runtime, through kubectl: pending pods that fit nowhere
make a NodePool launch EC2 instances (moto), each becomes a hollow node that registers, the pods land
there and run; scaled to zero, the empty nodes are retired and their instances terminated."""

from __future__ import annotations

import json
import time

import boto3

from tests.conftest import LiveCluster

POOL = """
apiVersion: skiff.io/v1
kind: NodePool
metadata: {name: e2e}
spec:
  instanceTypes: [c5.large]
  launchTemplate: {name: skiff-node}
  labels: {pool: e2e}
  taints: [{key: pool, value: e2e, effect: NoSchedule}]   # only this test's pods go there
  limits: {maxNodes: 4}
  disruption: {emptyAfterSeconds: 5}
"""

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: work, namespace: provisioning}
spec:
  replicas: 4
  selector: {matchLabels: {app: work}}
  template:
    metadata: {labels: {app: work}}
    spec:
      nodeSelector: {pool: e2e}
      tolerations: [{key: pool, operator: Equal, value: e2e, effect: NoSchedule}]
      containers: [{name: main, image: busybox, resources: {requests: {cpu: 700m, memory: 256Mi}}}]
"""


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_pending_pods_get_nodes_then_idle_nodes_go(live: LiveCluster) -> None:
    live.kubectl("apply", "-f", "-", input=POOL)
    live.kubectl("create", "namespace", "provisioning")
    live.kubectl("apply", "-f", "-", input=DEPLOYMENT)

    def pods() -> list[dict]:
        return json.loads(live.kubectl("get", "pods", "-n", "provisioning", "-o", "json").stdout)["items"]

    wait_for(lambda: len(pods()) == 4 and all(p["status"].get("phase") == "Running" for p in pods()), 120,
             "4 pods running on provisioned nodes")
    nodes = {p["spec"]["nodeName"] for p in pods()}
    # A c5.large fits two 700m pods: two instances when the four pods arrive in one batch; the
    # Deployment creates them over a second or two, so a batch may close early and add one more.
    assert 2 <= len(nodes) <= 3, nodes
    for name in nodes:
        node = json.loads(live.kubectl("get", "node", name, "-o", "json").stdout)
        assert node["metadata"]["labels"]["pool"] == "e2e"
        assert node["metadata"]["labels"]["node.kubernetes.io/instance-type"] == "c5.large"
        assert node["spec"]["providerID"].startswith("aws:///us-east-1")
    ec2 = boto3.client("ec2", endpoint_url=live.aws_endpoint, region_name="us-east-1",
                       aws_access_key_id="x", aws_secret_access_key="x")

    def running() -> int:
        res = ec2.describe_instances(Filters=[{"Name": "tag:skiff:nodepool", "Values": ["e2e"]},
                                              {"Name": "instance-state-name", "Values": ["running", "pending"]}])
        return sum(len(r["Instances"]) for r in res["Reservations"])

    claims = json.loads(live.kubectl("get", "nodeclaims", "-o", "json").stdout)["items"]
    assert running() == len([c for c in claims if c["spec"]["nodePool"] == "e2e"]) >= len(nodes)
    live.kubectl("scale", "-n", "provisioning", "deployment/work", "--replicas=0")
    wait_for(lambda: running() == 0, 120, "idle instances terminated")
    wait_for(lambda: not json.loads(live.kubectl("get", "nodes", "-l", "pool=e2e", "-o", "json").stdout)["items"],
             60, "their nodes removed")
