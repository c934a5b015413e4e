"""The Pulumi program under mocks: every resource the deployment needs, with the properties that matter."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra import program
from tests.infra.program import Deployment

STREAM_ARN = f"arn:aws:dynamodb:{program.REGION}:{program.ACCOUNT}:table/skiff-objects/stream/2026-01-01T00:00:00.000"


@pytest.fixture(scope="module")
def deployed(lambda_bundle: Path, agent_wheel: Path) -> Deployment:
    return program.run({"lambdaBundle": str(lambda_bundle), "agentWheel": str(agent_wheel)})


def _functions(d: Deployment) -> dict[str, dict[str, Any]]:
    return {r.name: r.inputs for r in d.of_type("aws:lambda/function:Function")}


# --- tables ---------------------------------------------------------------------------------------------

def test_tables_match_the_pynamodb_models(deployed: Deployment) -> None:
    from chalicelib.store.models import ALL_MODELS

    tables = {r.inputs["name"]: r.inputs for r in deployed.of_type("aws:dynamodb/table:Table")}
    assert set(tables) == {"skiff-objects", "skiff-changes", "skiff-tokens", "skiff-locks", "skiff-allocations"}
    for model in ALL_MODELS:
        table = tables["skiff-" + model.Meta.table_name.rsplit("-", 1)[1]]
        schema = model._get_schema()
        keys = {k["KeyType"]: k["AttributeName"] for k in schema["key_schema"]}
        assert table["hashKey"] == keys["HASH"] and table.get("rangeKey") == keys.get("RANGE")
        assert sorted((a["name"], a["type"]) for a in table["attributes"]) == sorted(
            (a["AttributeName"], a["AttributeType"]) for a in schema["attribute_definitions"])
        assert not table.get("globalSecondaryIndexes") and not schema["global_secondary_indexes"]
        assert table["billingMode"] == "PAY_PER_REQUEST"
        assert table["pointInTimeRecovery"] == {"enabled": True}


def test_objects_stream_carries_both_images_and_the_change_log_expires(deployed: Deployment) -> None:
    objects = deployed.one("aws:dynamodb/table:Table", "table-objects").inputs
    assert objects["streamEnabled"] is True and objects["streamViewType"] == "NEW_AND_OLD_IMAGES"
    changes = deployed.one("aws:dynamodb/table:Table", "table-changes").inputs
    assert changes["ttl"] == {"attributeName": "expires", "enabled": True}


# --- functions, stream mappings, schedule ---------------------------------------------------------------

def test_functions_run_the_chalice_handlers_with_the_stream_arn_in_their_environment(deployed: Deployment) -> None:
    fns = _functions(deployed)
    assert {n: f["handler"] for n, f in fns.items()} == {
        "api": "app.app", "controllers": "app.on_objects_change", "provisioner": "app.on_capacity_change",
        "resync": "app.resync"}
    import app

    for name, fn in fns.items():
        handler = fn["handler"].split(".", 1)[1]
        assert callable(getattr(app, handler)), f"{name}: app.{handler} is not a handler in app.py"
        env = fn["environment"]["variables"]
        assert env["SKIFF_OBJECTS_STREAM_ARN"] == STREAM_ARN
        assert env["SKIFF_TABLE_PREFIX"] == "skiff" and env["SKIFF_CLUSTER_NAME"] == "skiff"
        assert fn["runtime"] == "python3.11" and fn["code"].path.endswith(".zip")
    assert fns["api"]["timeout"] <= 30  # API Gateway gives up after 29 s


def test_stream_mappings_bisect_retry_a_bounded_number_of_times_and_send_failures_to_sqs(
        deployed: Deployment) -> None:
    queue_arn = f"arn:aws:sqs:{program.REGION}:{program.ACCOUNT}:skiff-stream-failures"
    mappings = {r.name: r.inputs for r in deployed.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")}
    assert set(mappings) == {"controllers-stream", "provisioner-stream"}
    for m in mappings.values():
        assert m["eventSourceArn"] == STREAM_ARN
        assert m["bisectBatchOnFunctionError"] is True
        assert 0 < m["maximumRetryAttempts"] <= 10
        assert 60 <= m["maximumRecordAgeInSeconds"] <= 24 * 3600
        assert m["destinationConfig"] == {"onFailure": {"destinationArn": queue_arn}}
        assert m["startingPosition"] == "LATEST" and m["batchSize"] == 100
        assert m["maximumBatchingWindowInSeconds"] == 1
        assert m["filterCriteria"]["filters"]


def _patterns(d: Deployment, mapping: str) -> list[dict[str, Any]]:
    inputs = d.one("aws:lambda/eventSourceMapping:EventSourceMapping", mapping).inputs
    return [json.loads(f["pattern"]) for f in inputs["filterCriteria"]["filters"]]


def _matches(pattern: Any, value: Any) -> bool:
    """Lambda's event filtering, for the forms the program uses (value lists and prefixes)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and _matches(p, value[k]) for k, p in pattern.items())
    return any(value == p or isinstance(p, dict) and str(value).startswith(p["prefix"]) for p in pattern)


def _record(kind: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    md = obj["metadata"]
    key = f"{md.get('namespace', '')}/{md['name']}"
    image = lambda o: {"kind": {"S": kind}, "key": {"S": key}, "body": {"S": json.dumps(o)}}  # noqa: E731
    out: dict[str, Any] = {"eventName": "MODIFY", "dynamodb": {"Keys": {"kind": {"S": kind}, "key": {"S": key}},
                                                               "NewImage": image(obj)}}
    if old is not None:
        out["dynamodb"]["OldImage"] = image(old)
    return out


def _records() -> list[dict[str, Any]]:
    """One record per kind of write the controllers, scheduler and provisioner react to, and some they don't."""
    owned = lambda kind, name: [{"kind": kind, "name": name, "controller": True, "uid": "u"}]  # noqa: E731
    pending = {"metadata": {"name": "p", "namespace": "default", "uid": "1",
                            "ownerReferences": owned("ReplicaSet", "r")},
               "spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Pending"}}
    unschedulable = {**pending, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}}
    return [
        _record("apps/deployments", {"metadata": {"name": "d", "namespace": "default"}}),
        _record("apps/replicasets", {"metadata": {"name": "r", "namespace": "default",
                                                  "ownerReferences": owned("Deployment", "d")}}),
        _record("core/pods", pending),
        _record("core/pods", unschedulable),
        _record("core/namespaces", {"metadata": {"name": "gone", "deletionTimestamp": "2026-01-01T00:00:00Z"}}),
        _record("core/nodes", {"metadata": {"name": "n1"}}),
        _record("coordination.k8s.io/leases", {"metadata": {"name": "n1", "namespace": "kube-node-lease"}}),
        _record("coordination.k8s.io/leases", {"metadata": {"name": "leader", "namespace": "default"}}),
        _record("core/configmaps", {"metadata": {"name": "c", "namespace": "default",
                                                 "deletionTimestamp": "2026-01-01T00:00:00Z",
                                                 "finalizers": ["foregroundDeletion"]}}),
        _record("skiff.io/nodepools", {"metadata": {"name": "default"}}),
        _record("skiff.io/nodeclaims", {"metadata": {"name": "default-abc"}}),
        _record("core/events", {"metadata": {"name": "e", "namespace": "default"}}),
    ]


def test_controller_filters_pass_every_record_a_controller_acts_on_and_no_events(deployed: Deployment) -> None:
    from chalicelib.controllers import dispatch

    patterns = _patterns(deployed, "controllers-stream")
    for record in _records():
        kind = record["dynamodb"]["Keys"]["kind"]["S"]
        passes = any(_matches(p, record) for p in patterns)
        assert passes == bool(dispatch.tasks_for(record)), f"{kind} {record['dynamodb']['Keys']['key']}"
    event = _records()[-1]
    assert not any(_matches(p, event) for p in patterns)


def test_provisioner_filter_passes_what_the_provisioner_wants(deployed: Deployment) -> None:
    from chalicelib.controllers import dispatch

    patterns = _patterns(deployed, "provisioner-stream")
    for record in _records():
        if dispatch.provisioner_wanted([record]):
            assert any(_matches(p, record) for p in patterns), record["dynamodb"]["Keys"]
    assert not any(_matches(p, _records()[-1]) for p in patterns)


def test_resync_runs_on_the_apps_schedule(deployed: Deployment) -> None:
    rule = deployed.one("aws:cloudwatch/eventRule:EventRule", "resync-schedule").inputs
    assert rule["scheduleExpression"] == "rate(1 minute)"
    target = deployed.one("aws:cloudwatch/eventTarget:EventTarget", "resync-target").inputs
    assert target["arn"].endswith(":function:skiff-resync")
    permission = deployed.one("aws:lambda/permission:Permission", "resync-invoke").inputs
    assert permission["principal"] == "events.amazonaws.com"


# --- API Gateway --------------------------------------------------------------------------------------------

def test_api_gateway_has_chalices_routes_and_invokes_the_api_function(deployed: Deployment) -> None:
    import app

    body = json.loads(deployed.one("aws:apigateway/restApi:RestApi", "api").inputs["body"])
    assert set(body["paths"]) == set(app.app.routes)
    invoke_arn = (f"arn:aws:apigateway:{program.REGION}:lambda:path/2015-03-31/functions/"
                  f"arn:aws:lambda:{program.REGION}:{program.ACCOUNT}:function:skiff-api/invocations")
    for methods in body["paths"].values():
        for method in ("get", "post", "put", "patch", "delete"):
            assert methods[method]["x-amazon-apigateway-integration"]["uri"] == invoke_arn
    assert deployed.one("aws:apigateway/stage:Stage", "api-stage").inputs["stageName"] == "api"
    permission = deployed.one("aws:lambda/permission:Permission", "api-invoke").inputs
    assert permission["principal"] == "apigateway.amazonaws.com" and permission["sourceArn"].endswith("/*/*")


# --- IAM ----------------------------------------------------------------------------------------------------

def _statements(d: Deployment, role: str) -> list[dict[str, Any]]:
    return list(d.policy(role)["Statement"])


def _actions(d: Deployment, role: str) -> set[str]:
    return {a for s in _statements(d, role) for a in s["Action"]}


ROLES = ("api-role", "controllers-role", "provisioner-role", "resync-role", "node-role")


def test_no_wildcard_resource_where_aws_allows_a_scoped_one(deployed: Deployment) -> None:
    from skiff_deploy.iam import UNSCOPABLE

    for role in ROLES:
        for s in _statements(deployed, role):
            assert s["Effect"] == "Allow"
            if "*" in s["Resource"]:
                assert s["Resource"] == ["*"] and set(s["Action"]) <= set(UNSCOPABLE), (role, s)
            for action in s["Action"]:
                assert "*" not in action, (role, action)


def test_each_function_gets_only_the_tables_it_uses(deployed: Deployment) -> None:
    def tables(role: str) -> set[str]:
        return {r.rsplit("/", 1)[1] for s in _statements(deployed, role) if s["Sid"] == "Tables" for r in s["Resource"]}

    assert tables("api-role") == {"skiff-objects", "skiff-changes", "skiff-tokens", "skiff-locks", "skiff-allocations"}
    for role in ("controllers-role", "provisioner-role", "resync-role"):
        assert tables(role) == {"skiff-objects", "skiff-changes", "skiff-locks", "skiff-allocations"}
    assert "dynamodb:GetRecords" not in _actions(deployed, "api-role")
    assert "dynamodb:GetRecords" in _actions(deployed, "controllers-role")


def test_only_the_launchers_touch_ec2_and_only_the_clusters_instances(deployed: Deployment) -> None:
    assert not {a for a in _actions(deployed, "controllers-role") if a.startswith(("ec2:", "iam:"))}
    assert {a for a in _actions(deployed, "api-role") if a.startswith("ec2:")} == {"ec2:DescribeInstances"}
    for role in ("provisioner-role", "resync-role"):
        by_sid = {s["Sid"]: s for s in _statements(deployed, role)}
        assert by_sid["TerminateClusterInstances"]["Condition"] == {
            "StringEquals": {"ec2:ResourceTag/skiff:cluster": "skiff"}}
        assert by_sid["LaunchTaggedInstances"]["Condition"] == {
            "StringEquals": {"aws:RequestTag/skiff:cluster": "skiff"}}
        template = ":launch-template/lt-0123456789abcdef0"
        assert any(r.endswith(template) for r in by_sid["LaunchFromTemplate"]["Resource"])
        assert by_sid["PassNodeRole"]["Resource"] == [f"arn:aws:iam::{program.ACCOUNT}:role/skiff-node"]


def test_api_reads_the_container_logs(deployed: Deployment) -> None:
    group = f"arn:aws:logs:{program.REGION}:{program.ACCOUNT}:log-group:/skiff/skiff/containers"
    by_sid = {s["Sid"]: s for s in _statements(deployed, "api-role")}
    assert set(by_sid["PodLogs"]["Action"]) == {"logs:GetLogEvents", "logs:FilterLogEvents", "logs:DescribeLogStreams"}
    assert set(by_sid["PodLogs"]["Resource"]) == {group, f"{group}:log-stream:*"}


def test_node_role_pulls_images_ships_logs_and_reads_its_bootstrap_and_nothing_else(deployed: Deployment) -> None:
    assert _actions(deployed, "node-role") == {
        "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams", "ecr:GetAuthorizationToken",
        "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ssm:GetParameter", "s3:GetObject"}
    by_sid = {s["Sid"]: s for s in _statements(deployed, "node-role")}
    assert by_sid["BootstrapToken"]["Resource"] == [
        f"arn:aws:ssm:{program.REGION}:{program.ACCOUNT}:parameter/skiff/skiff/bootstrap-token"]
    assert by_sid["PullImages"]["Resource"] == [f"arn:aws:ecr:{program.REGION}:{program.ACCOUNT}:repository/skiff"]
    [wheel] = by_sid["AgentWheel"]["Resource"]
    assert wheel.startswith("arn:aws:s3:::skiff-artifacts-0001/agent/") and wheel.endswith(".whl")
    trust = json.loads(deployed.one("aws:iam/role:Role", "node-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}


# --- the worker fleet ---------------------------------------------------------------------------------------

def _user_data(d: Deployment) -> str:
    return base64.b64decode(d.one("aws:ec2/launchTemplate:LaunchTemplate", "node-template").inputs["userData"]).decode()


def test_launch_template_is_the_one_nodepools_name_and_requires_imdsv2(deployed: Deployment) -> None:
    from skiff.local import LAUNCH_TEMPLATE

    lt = deployed.one("aws:ec2/launchTemplate:LaunchTemplate", "node-template").inputs
    assert lt["name"] == LAUNCH_TEMPLATE == "skiff-node"
    assert f"name: {LAUNCH_TEMPLATE}" in (Path(program.INFRA).parent / "examples/nodepool.yaml").read_text()
    assert lt["metadataOptions"]["httpTokens"] == "required"
    assert lt["metadataOptions"]["httpPutResponseHopLimit"] == 1  # containers cannot reach the credentials
    assert lt["imageId"] == "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    assert lt["iamInstanceProfile"]["arn"].endswith("skiff-node")
    assert lt["vpcSecurityGroupIds"] == ["sg-0123456789abcdef0"]
    assert lt["updateDefaultVersion"] is True  # the provisioner launches "$Default"


def test_user_data_installs_docker_and_the_agent_and_starts_it(deployed: Deployment, tmp_path: Path) -> None:
    script = _user_data(deployed)
    for expected in ("dnf install -y docker", "systemctl enable --now docker",
                     "aws s3 cp --region us-east-1 s3://skiff-artifacts-0001/agent/",
                     "--name /skiff/skiff/bootstrap-token --with-decryption",
                     "SKIFF_API_URL=https://restapi.execute-api.us-east-1.amazonaws.com/api",
                     "SKIFF_BOOTSTRAP_TOKEN=$BOOTSTRAP_TOKEN", "SKIFF_CLUSTER_NAME=skiff", "AWS_REGION=us-east-1",
                     "ExecStart=/opt/skiff/venv/bin/skiff-agent", "systemctl enable --now skiff-agent"):
        assert expected in script, expected
    path = tmp_path / "user-data.sh"
    path.write_text(script)
    done = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_agent_wheel_is_uploaded_where_the_user_data_fetches_it(deployed: Deployment, agent_wheel: Path) -> None:
    obj = deployed.one("aws:s3/bucketObjectv2:BucketObjectv2", "agent-wheel").inputs
    assert obj["key"].endswith("/" + agent_wheel.name) and obj["source"].path == str(agent_wheel)
    assert f"s3://skiff-artifacts-0001/{obj['key']}" in _user_data(deployed)


def test_registry_expires_old_images(deployed: Deployment) -> None:
    policy = json.loads(deployed.one("aws:ecr/lifecyclePolicy:LifecyclePolicy", "images-lifecycle").inputs["policy"])
    assert [r["action"]["type"] for r in policy["rules"]] == ["expire", "expire"]


def test_every_log_group_keeps_logs_for_a_bounded_time(deployed: Deployment) -> None:
    groups = {r.inputs["name"]: r.inputs for r in deployed.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert set(groups) == {"/skiff/skiff/containers", "/aws/lambda/skiff-api", "/aws/lambda/skiff-controllers",
                           "/aws/lambda/skiff-provisioner", "/aws/lambda/skiff-resync"}
    assert {g["retentionInDays"] for g in groups.values()} == {14}


def test_alarms_watch_stream_lag_and_the_failure_queue(deployed: Deployment) -> None:
    alarms = {r.name: r.inputs for r in deployed.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    for fn in ("controllers", "provisioner"):
        a = alarms[f"{fn}-iterator-age"]
        assert a["metricName"] == "IteratorAge" and a["dimensions"] == {"FunctionName": f"skiff-{fn}"}
    q = alarms["stream-failures-alarm"]
    assert q["metricName"] == "ApproximateNumberOfMessagesVisible" and q["threshold"] == 0
    assert q["dimensions"] == {"QueueName": "skiff-stream-failures"}


# --- tokens and outputs ---------------------------------------------------------------------------------------

def test_admin_token_is_a_securestring_and_its_hash_is_in_the_tokens_table(deployed: Deployment) -> None:
    parameter = deployed.one("aws:ssm/parameter:Parameter", "admin-token-parameter").inputs
    assert parameter["type"] == "SecureString" and parameter["name"] == "/skiff/skiff/admin-token"
    token = "skiff." + "x" * 43  # the mocks' RandomPassword result
    item = deployed.one("aws:dynamodb/tableItem:TableItem", "admin-token-item").inputs
    assert item["tableName"] == "skiff-tokens" and item["hashKey"] == "token_hash"
    stored = json.loads(item["item"])
    assert stored["token_hash"] == {"S": hashlib.sha256(token.encode()).hexdigest()}
    assert stored["role"] == {"S": "admin"} and "created" in stored
    assert token not in item["item"]


def test_bootstrap_token_is_registered_when_the_api_has_that_role(deployed: Deployment) -> None:
    from chalicelib.api.auth import ROLES

    parameter = deployed.one("aws:ssm/parameter:Parameter", "bootstrap-token-parameter").inputs
    assert parameter["type"] == "SecureString"
    items = [r for r in deployed.of_type("aws:dynamodb/tableItem:TableItem") if r.name == "bootstrap-token-item"]
    assert len(items) == (1 if "bootstrap" in ROLES else 0)


def test_outputs_give_the_api_url_and_a_kubeconfig_command(deployed: Deployment) -> None:
    url = deployed.values["api_url"]
    assert url == "https://restapi.execute-api.us-east-1.amazonaws.com/api"
    command = deployed.values["kubeconfig_command"]
    assert f"--server={url}" in command and "--name /skiff/skiff/admin-token --with-decryption" in command
    assert "kubectl config use-context skiff" in command
    assert "launchTemplate:\n    name: skiff-node" in deployed.values["node_pool"]


def test_default_network_is_the_default_vpc(deployed: Deployment) -> None:
    group = deployed.one("aws:ec2/securityGroup:SecurityGroup", "node-security-group").inputs
    assert group["vpcId"] == "vpc-0default" and not group.get("ingress")
    assert not deployed.of_type("aws:ec2/vpc:Vpc")


def test_the_launchers_launch_into_the_networks_subnets(deployed: Deployment) -> None:
    """The provisioner and the resync launch nodes; they name the subnets (the default VPC's, here), so
    nodes land in the security group's VPC. The others launch nothing and are not told."""
    fns = _functions(deployed)
    for name in ("provisioner", "resync"):
        assert fns[name]["environment"]["variables"]["SKIFF_NODE_SUBNET_IDS"] == "subnet-a,subnet-b"
        by_sid = {s["Sid"]: s for s in _statements(deployed, f"{name}-role")}
        assert "ec2:DescribeSubnets" in by_sid["Describe"]["Action"]
        assert any(r.endswith(":subnet/*") for r in by_sid["LaunchFromTemplate"]["Resource"])
    for name in ("api", "controllers"):
        assert "SKIFF_NODE_SUBNET_IDS" not in fns[name]["environment"]["variables"]
    template = deployed.one("aws:ec2/launchTemplate:LaunchTemplate", "node-template").inputs
    # RunInstances' SubnetId goes with groups named in the template, not with a network interface there.
    assert template["vpcSecurityGroupIds"] == ["sg-0123456789abcdef0"] and not template.get("networkInterfaces")


def test_by_default_one_function_runs_every_controller(deployed: Deployment) -> None:
    for fn in _functions(deployed).values():
        assert "SKIFF_CONTROLLERS" not in fn["environment"]["variables"]


def test_container_log_group_is_the_one_the_api_reads(deployed: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib import settings

    monkeypatch.setenv("SKIFF_CLUSTER_NAME", "skiff")
    assert deployed.one("aws:cloudwatch/logGroup:LogGroup", "container-logs").inputs["name"] == \
        settings.container_log_group()
