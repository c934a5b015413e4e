"""The program's options: split controllers (a scheduler function), a new VPC, an existing VPC, another
cluster name."""

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


def _env(d: Deployment, fn: str) -> dict[str, str]:
    return dict(d.one("aws:lambda/function:Function", fn).inputs["environment"]["variables"])


def test_split_controllers_give_the_scheduler_a_function_and_a_third_stream_reader(split: Deployment) -> None:
    from skiff_deploy.functions import SCHEDULER_KINDS

    mappings = {r.name: r.inputs for r in split.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")}
    assert set(mappings) == {"controllers-stream", "scheduler-stream", "provisioner-stream"}  # not four
    fns = {r.name: r.inputs for r in split.of_type("aws:lambda/function:Function")}
    assert fns["scheduler"]["handler"] == fns["controllers"]["handler"] == "app.on_objects_change"
    assert _env(split, "scheduler")["SKIFF_CONTROLLERS"] == "schedule"
    rest = _env(split, "controllers")["SKIFF_CONTROLLERS"].split(",")
    assert sorted(rest) == ["deployment", "gc", "namespace", "nodelifecycle", "replicaset"]
    for fn in ("provisioner", "resync"):  # they run every controller they have
        assert "SKIFF_CONTROLLERS" not in _env(split, fn)
    scheduler_kinds = {k for f in mappings["scheduler-stream"]["filterCriteria"]["filters"]
                       for k in json.loads(f["pattern"])["dynamodb"]["Keys"]["kind"]["S"]}
    assert scheduler_kinds == set(SCHEDULER_KINDS) == {"core/pods"}
    alarms = {r.name for r in split.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert {"controllers-iterator-age", "scheduler-iterator-age", "provisioner-iterator-age"} <= alarms


def test_split_functions_together_get_every_record_their_controllers_act_on(split: Deployment) -> None:
    """Each record reaches, through its mapping's filter, every function whose controllers have work in it."""
    from chalicelib import settings
    from chalicelib.controllers import dispatch
    from tests.infra.test_program import _matches, _patterns, _records

    runs = {fn: _env(split, fn)["SKIFF_CONTROLLERS"].split(",") for fn in ("controllers", "scheduler")}
    assert set(runs["controllers"]) | set(runs["scheduler"]) == set(settings.CONTROLLERS) - {"provisioner"}
    assert not set(runs["controllers"]) & set(runs["scheduler"])
    for fn, controllers in runs.items():
        patterns = _patterns(split, f"{fn}-stream")
        for record in _records():
            work = dispatch.enabled(dispatch.tasks_for(record), controllers)
            if work:
                assert any(_matches(p, record) for p in patterns), (fn, record["dynamodb"]["Keys"])
        assert not any(_matches(p, _records()[-1]) for p in patterns)  # Events reach neither
    pending_pod = next(r for r in _records() if r["dynamodb"]["Keys"]["kind"]["S"] == "core/pods")
    assert dispatch.enabled(dispatch.tasks_for(pending_pod), runs["scheduler"])  # the scheduler has work in one


def test_the_launchers_get_the_new_vpcs_subnets(split: Deployment) -> None:
    subnets = split.of_type("aws:ec2/subnet:Subnet")
    ids = {f"{s.name}-id" for s in subnets}  # the mocks' physical ids
    for fn in ("provisioner", "resync"):
        assert set(_env(split, fn)["SKIFF_NODE_SUBNET_IDS"].split(",")) == ids and len(ids) == 3
    for fn in ("api", "controllers", "scheduler"):
        assert "SKIFF_NODE_SUBNET_IDS" not in _env(split, fn)


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
    for fn in ("provisioner", "resync"):  # nodes go into those subnets, where the security group is
        assert _env(d, fn)["SKIFF_NODE_SUBNET_IDS"] == "subnet-1,subnet-2"
    assert not d.of_type("aws:ec2/vpc:Vpc") and "aws:ec2/getVpc:getVpc" not in d.calls
    assert d.values["api_url"].endswith("/v1")
