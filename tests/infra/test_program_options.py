"""The program's options: split controllers, a new VPC, an existing VPC, another cluster name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.infra import program
from tests.infra.program import Deployment


@pytest.fixture(scope="module")
def split(lambda_bundle: Path, agent_wheel: Path) -> Deployment:
    return program.run({"lambdaBundle": str(lambda_bundle), "agentWheel": str(agent_wheel), "clusterName": "prod",
                        "splitControllers": "true", "createVpc": "true", "logRetentionDays": "30"})


def test_split_controllers_get_a_function_each_with_disjoint_filters(split: Deployment) -> None:
    mappings = {r.name: r.inputs for r in split.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")}
    assert set(mappings) == {"controllers-workloads-stream", "controllers-namespaces-stream",
                             "controllers-nodes-stream", "provisioner-stream"}
    seen: set[str] = set()
    for name in ("controllers-workloads-stream", "controllers-namespaces-stream", "controllers-nodes-stream"):
        kinds = {k for f in mappings[name]["filterCriteria"]["filters"]
                 for k in json.loads(f["pattern"])["dynamodb"]["Keys"]["kind"]["S"]}
        assert not kinds & seen, f"{name} repeats {kinds & seen}"
        seen |= kinds
    assert {"core/pods", "core/namespaces", "core/nodes", "coordination.k8s.io/leases"} <= seen


def test_cluster_name_prefixes_tables_functions_and_parameters(split: Deployment) -> None:
    tables = {r.inputs["name"] for r in split.of_type("aws:dynamodb/table:Table")}
    assert tables == {f"prod-{t}" for t in ("objects", "changes", "tokens", "locks", "allocations")}
    fns = {r.inputs["name"] for r in split.of_type("aws:lambda/function:Function")}
    assert all(f.startswith("prod-") for f in fns)
    assert {r.inputs["retentionInDays"] for r in split.of_type("aws:cloudwatch/logGroup:LogGroup")} == {30}
    command = split.values["kubeconfig_command"]
    assert "/skiff/prod/admin-token" in command


def test_a_new_vpc_has_public_subnets_in_several_zones(split: Deployment) -> None:
    [vpc] = split.of_type("aws:ec2/vpc:Vpc")
    subnets = split.of_type("aws:ec2/subnet:Subnet")
    assert len({s.inputs["availabilityZone"] for s in subnets}) == 3
    assert all(s.inputs["mapPublicIpOnLaunch"] for s in subnets)
    group = split.one("aws:ec2/securityGroup:SecurityGroup", "node-security-group").inputs
    assert group["vpcId"] == "vpc-id"


def test_an_existing_vpc_from_config(lambda_bundle: Path, agent_wheel: Path) -> None:
    d = program.run({"lambdaBundle": str(lambda_bundle), "agentWheel": str(agent_wheel),
                     "vpcId": "vpc-0existing", "subnetIds": json.dumps(["subnet-1", "subnet-2"]), "stage": "v1"})
    assert d.one("aws:ec2/securityGroup:SecurityGroup", "node-security-group").inputs["vpcId"] == "vpc-0existing"
    assert not d.of_type("aws:ec2/vpc:Vpc") and "aws:ec2/getVpc:getVpc" not in d.calls
    assert d.values["api_url"].endswith("/v1")
