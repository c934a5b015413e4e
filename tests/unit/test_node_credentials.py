"""The node credential exchange: a bootstrap token and a live instance of the cluster buy a node token."""

from __future__ import annotations

import os
from typing import Any

import boto3
import pytest

from chalicelib.api.auth import issue_token
from chalicelib.provisioner import aws
from tests.conftest import APIClient

PATH = "/apis/skiff.io/v1/nodecredentialrequests"


@pytest.fixture
def ec2(cluster: None) -> Any:
    aws.reset()
    client = boto3.client("ec2", region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    yield client
    aws.reset()


def _instance(ec2: Any, cluster_name: str = "skiff") -> dict[str, Any]:
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    inst = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.medium",
                             TagSpecifications=[{"ResourceType": "instance",
                                                 "Tags": [{"Key": "skiff:cluster", "Value": cluster_name}]}])
    return dict(inst["Instances"][0])


def _request(node: str, instance_id: str) -> dict[str, Any]:
    return {"apiVersion": "skiff.io/v1", "kind": "NodeCredentialRequest",
            "spec": {"nodeName": node, "instanceID": instance_id}}


def test_bootstrap_token_buys_a_node_token_for_its_instance(ec2: Any) -> None:
    inst = _instance(ec2)
    bootstrap = APIClient(issue_token("bootstrap"))
    code, body = bootstrap.request("POST", PATH, _request(inst["PrivateDnsName"], inst["InstanceId"]))
    assert code == 201, body
    node = APIClient(body["status"]["token"])
    me = inst["PrivateDnsName"]
    code, created = node.request("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                                           "metadata": {"name": me}})
    assert code == 201, created
    code, other = node.request("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                                         "metadata": {"name": "someone-else"}})
    assert code == 403, other
    # the instance id is the other name an instance may take
    code, body = bootstrap.request("POST", PATH, _request(inst["InstanceId"], inst["InstanceId"]))
    assert code == 201, body


def test_bootstrap_token_may_do_nothing_else(ec2: Any) -> None:
    bootstrap = APIClient(issue_token("bootstrap"))
    code, body = bootstrap.request("GET", "/api/v1/pods")
    assert code == 403 and "bootstrap token may only request a node credential" in body["message"]
    code, body = bootstrap.request("POST", "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                                             "metadata": {"name": "n"}})
    assert code == 403


@pytest.mark.parametrize("case", ["other-name", "other-cluster", "terminated", "missing", "node-token"])
def test_exchange_refused(ec2: Any, case: str) -> None:
    inst = _instance(ec2, "another" if case == "other-cluster" else "skiff")
    name, instance_id = inst["PrivateDnsName"], inst["InstanceId"]
    token = issue_token("bootstrap")
    if case == "other-name":
        name = "ip-10-9-9-9.ec2.internal"
    elif case == "terminated":
        ec2.terminate_instances(InstanceIds=[instance_id])
    elif case == "missing":
        instance_id = "i-0123456789abcdef0"
    elif case == "node-token":
        token = issue_token("node", node=name)
    code, body = APIClient(token).request("POST", PATH, _request(name, instance_id))
    assert code == 403, body
    assert body["reason"] == "Forbidden"


def test_exchange_validates_the_request(ec2: Any) -> None:
    bootstrap = APIClient(issue_token("bootstrap"))
    code, body = bootstrap.request("POST", PATH, {"spec": {}})
    assert code == 422
    fields = {c["field"] for c in body["details"]["causes"]}
    assert fields == {"spec.nodeName", "spec.instanceID"}
    code, body = bootstrap.request("POST", PATH, {"kind": "NodeCredentialRequest"})
    assert code == 400
