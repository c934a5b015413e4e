"""The control plane's Lambda functions: the API, the stream handlers and the resync, each with its own
role (only the tables, stream, EC2 and log actions it uses), its own log group, and for the stream
handlers an event source mapping with filter criteria, bisect-on-error, bounded retries and record
age, and an SQS queue that receives what could not be processed.

The stream handlers and the resync come from the Chalice app's declarations (chalice_app), so names,
handler strings, batch sizes and schedules follow app.py.

Stream readers: DynamoDB Streams serves at most two readers per shard without throttling. By default
there are two: the controllers (which also schedule) and the provisioner. `skiff:splitControllers`
gives the scheduler a function of its own: the controllers' handler deployed twice, once on pod records
with SKIFF_CONTROLLERS=schedule and once with every other controller (chalicelib.settings.controllers).
Scheduling passes then never wait behind ReplicaSet and Deployment syncs in the same batch, nor these
behind a scheduling pass, at the price of a third reader: AWS throttles the stream's GetRecords
beyond two, Lambda retries, and every reader's records come a little later (docs/deploy-aws.md).

The launchers (the provisioner and the resync) get the nodes' subnets (SKIFF_NODE_SUBNET_IDS): they
launch each node into one of them, in the security group's VPC, whichever VPC the stack uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from skiff_deploy import chalice_app, iam
from skiff_deploy.config import StackSettings

WORKLOAD_KINDS = ("apps/deployments", "apps/replicasets", "core/pods", "core/configmaps", "core/services")
"""Kinds whose records the ReplicaSet, Deployment, garbage-collector and scheduler syncs react to."""
NAMESPACE_KINDS = ("core/namespaces",)
NODE_KINDS = ("core/nodes",)
LEASE_KIND = "coordination.k8s.io/leases"
PROVISIONER_KINDS = ("core/nodes", "core/pods", "skiff.io/nodeclaims", "skiff.io/nodepools")
"""chalicelib.controllers.dispatch.provisioner_wanted's kinds."""

BATCH_RETRIES = 5
MAX_RECORD_AGE_SECONDS = 3600
"""A hint older than an hour is dropped to the failure queue; the resync covers what it was about."""
DATA_TABLES = ("objects", "changes", "locks", "allocations")
"""What the controllers, scheduler and provisioner use; only the API reads tokens."""

EC2_LAUNCHER_ACTIONS = ("ec2:RunInstances", "ec2:CreateTags", "ec2:TerminateInstances")
SCHEDULER_KINDS = ("core/pods",)
"""The only records chalicelib.controllers.dispatch schedules on (a pending pod, or one that freed capacity)."""
SCHEDULER = "schedule"


@dataclass(frozen=True)
class StreamFunction:
    name: str  # the function's name after "<cluster>-"
    chalice_name: str  # the Chalice handler it runs ("controllers", "provisioner")
    kinds: tuple[str, ...]
    node_leases: bool = False  # also the Leases in kube-node-lease (node heartbeats)
    launches_nodes: bool = False
    timeout: int = 120
    controllers: tuple[str, ...] = ()  # SKIFF_CONTROLLERS; empty: not set, every controller


def _lease_namespace() -> str:
    from chalicelib.controllers.nodelifecycle import LEASE_NAMESPACE

    return str(LEASE_NAMESPACE)


def _controller_names() -> tuple[str, ...]:
    from chalicelib.settings import CONTROLLERS

    return tuple(str(c) for c in CONTROLLERS)


def stream_functions(split: bool) -> list[StreamFunction]:
    """The stream's readers: controllers and provisioner (two, the most a shard serves without
    throttling), or with `split` a scheduler besides them (three)."""
    provisioner = StreamFunction("provisioner", "provisioner", PROVISIONER_KINDS, launches_nodes=True)
    controller_kinds = WORKLOAD_KINDS + NAMESPACE_KINDS + NODE_KINDS
    if not split:
        return [StreamFunction("controllers", "controllers", controller_kinds, node_leases=True), provisioner]
    # The provisioner's stream handler is its own (app.on_capacity_change); the controllers' handler only
    # runs it from the resync, so naming it here would change nothing.
    rest = tuple(c for c in _controller_names() if c not in (SCHEDULER, "provisioner"))
    return [StreamFunction("controllers", "controllers", controller_kinds, node_leases=True, controllers=rest),
            StreamFunction("scheduler", "controllers", SCHEDULER_KINDS, controllers=(SCHEDULER,)),
            provisioner]


def filter_patterns(fn: StreamFunction) -> list[dict[str, Any]]:
    """Lambda filter criteria on the record's key (patterns are OR'ed). Events, the most frequent
    writes, match none: no controller acts on them."""
    patterns: list[dict[str, Any]] = [{"dynamodb": {"Keys": {"kind": {"S": sorted(fn.kinds)}}}}]
    if fn.node_leases:
        patterns.append({"dynamodb": {"Keys": {"kind": {"S": [LEASE_KIND]},
                                               "key": {"S": [{"prefix": f"{_lease_namespace()}/"}]}}}})
    return patterns


@dataclass
class ControlPlane:
    stream: dict[str, aws.lambda_.Function]
    scheduled: dict[str, aws.lambda_.Function]
    mappings: dict[str, aws.lambda_.EventSourceMapping]
    failures: aws.sqs.Queue


def _table_statements(tables: dict[str, aws.dynamodb.Table], names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [iam.statement("Tables", iam.TABLE_READ_WRITE, [tables[n].arn for n in names])]


def _launcher_statements(s: StackSettings, account: iam.Account, launch_template: aws.ec2.LaunchTemplate,
                         security_group: aws.ec2.SecurityGroup, node_role: aws.iam.Role) -> list[dict[str, Any]]:
    """What chalicelib.provisioner.aws does: run_instances from the template with the cluster's tags,
    terminate_instances on the cluster's instances, and the describes it plans with."""
    ec2 = lambda resource: account.arn("ec2", resource)  # noqa: E731
    tagged = {"StringEquals": {"aws:RequestTag/skiff:cluster": s.cluster}}
    return [
        iam.statement("LaunchFromTemplate", ["ec2:RunInstances"], [
            launch_template.id.apply(lambda i: ec2(f"launch-template/{i}")),
            security_group.id.apply(lambda i: ec2(f"security-group/{i}")),
            ec2("subnet/*"), ec2("network-interface/*"), ec2("spot-instances-request/*"),
            account.arn("ec2", "image/*", account=False),
        ]),
        iam.statement("LaunchTaggedInstances", ["ec2:RunInstances"], [ec2("instance/*"), ec2("volume/*")], tagged),
        iam.statement("TagAtLaunch", ["ec2:CreateTags"], [ec2("instance/*"), ec2("volume/*")],
                      {"StringEquals": {"ec2:CreateAction": "RunInstances"}}),
        iam.statement("TerminateClusterInstances", ["ec2:TerminateInstances"], [ec2("instance/*")],
                      {"StringEquals": {"ec2:ResourceTag/skiff:cluster": s.cluster}}),
        iam.statement("Describe", ["ec2:DescribeInstances", "ec2:DescribeInstanceTypes",
                                   "ec2:DescribeAvailabilityZones", "ec2:DescribeSubnets"], ["*"]),
        iam.statement("PassNodeRole", ["iam:PassRole"], [node_role.arn],
                      {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}),
        # The template's image is "resolve:ssm:<parameter>": the launcher reads the parameter.
        iam.statement("ResolveImage", ["ssm:GetParameters"],
                      [account.arn("ssm", f"parameter{s.ami_parameter}", account=False)]),
    ]


class Builder:
    """Makes functions that share the bundle, the environment, the failure queue and the tags."""

    def __init__(self, s: StackSettings, *, bundle: pulumi.Archive, tables: dict[str, aws.dynamodb.Table],
                 tags: dict[str, str]) -> None:
        self.s, self.bundle, self.tables, self.tags = s, bundle, tables, tags
        self.environment: dict[str, pulumi.Input[str]] = {
            "SKIFF_TABLE_PREFIX": s.table_prefix,
            "SKIFF_CLUSTER_NAME": s.cluster,
            # Chalice reads the stream ARN when app.py is imported (on_dynamodb_record), in every function.
            "SKIFF_OBJECTS_STREAM_ARN": tables["objects"].stream_arn,
        }
        self.log_groups: dict[str, aws.cloudwatch.LogGroup] = {}

    def function(self, name: str, *, handler: str, timeout: int, statements: list[dict[str, Any]],
                 description: str, environment: dict[str, pulumi.Input[str]] | None = None) -> aws.lambda_.Function:
        """A function with its role and log group; `environment` adds to the shared variables."""
        s, tags = self.s, self.tags
        full = f"{s.cluster}-{name}"
        group = aws.cloudwatch.LogGroup(f"{name}-logs", name=f"/aws/lambda/{full}",
                                        retention_in_days=s.log_retention_days, tags=tags)
        self.log_groups[name] = group
        logs = iam.statement("OwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                             [group.arn.apply(lambda a: f"{a}:*")])
        role = iam.role(f"{name}-role", service="lambda.amazonaws.com", role_name=full, tags=tags,
                        description=f"Skiff {s.cluster}: {description}", statements=[logs, *statements])
        return aws.lambda_.Function(
            name, name=full, description=f"Skiff {s.cluster}: {description}", role=role.arn,
            runtime=s.lambda_runtime, architectures=["x86_64"], handler=handler, code=self.bundle,
            memory_size=s.lambda_memory_mb, timeout=timeout, tags=tags,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables={**self.environment, **(environment or {})}),
            # The log group must exist before Lambda would create it without a retention.
            opts=pulumi.ResourceOptions(depends_on=[group, role]))

    def api(self, container_log_group: aws.cloudwatch.LogGroup) -> aws.lambda_.Function:
        return self.function("api", handler=chalice_app.API_HANDLER, timeout=30,
                             description="Kubernetes API (API Gateway)", statements=[
            *_table_statements(self.tables, ("objects", "changes", "tokens", "locks", "allocations")),
            # A node's credential exchange checks the instance it claims to be.
            iam.statement("VerifyNodes", ["ec2:DescribeInstances"], ["*"]),
            iam.statement("PodLogs", ["logs:GetLogEvents", "logs:FilterLogEvents", "logs:DescribeLogStreams"],
                          [container_log_group.arn, container_log_group.arn.apply(lambda a: f"{a}:log-stream:*")]),
        ])

    def controllers(self, *, account: iam.Account, launch_template: aws.ec2.LaunchTemplate,
                    security_group: aws.ec2.SecurityGroup, node_role: aws.iam.Role,
                    node_subnet_ids: pulumi.Input[list[str]]) -> ControlPlane:
        """The stream functions with their mappings, and the scheduled ones with their rules."""
        s, tags, tables = self.s, self.tags, self.tables
        # Where the launchers put nodes: the network's subnets, which are in the security group's VPC.
        launcher_env: dict[str, pulumi.Input[str]] = {
            "SKIFF_NODE_SUBNET_IDS": pulumi.Output.from_input(node_subnet_ids).apply(lambda ids: ",".join(ids))}
        objects = tables["objects"]
        failures = aws.sqs.Queue("stream-failures", name=f"{s.cluster}-stream-failures",
                                 message_retention_seconds=14 * 24 * 3600, sqs_managed_sse_enabled=True, tags=tags)
        handlers = {h.name: h for h in chalice_app.stream_handlers()}
        launcher = _launcher_statements(s, account, launch_template, security_group, node_role)
        stream_read = [
            iam.statement("ReadObjectsStream", iam.STREAM_READ,
                          [objects.stream_arn, objects.arn.apply(lambda a: f"{a}/stream/*")]),
            iam.statement("FailureDestination", ["sqs:SendMessage"], [failures.arn]),
        ]
        stream: dict[str, aws.lambda_.Function] = {}
        mappings: dict[str, aws.lambda_.EventSourceMapping] = {}
        for spec in stream_functions(s.split_controllers):
            handler = handlers[spec.chalice_name]
            # Lambda keeps 256 characters of description: the controllers it runs, or else the kinds it reads.
            runs = f"running {', '.join(spec.controllers)}" if spec.controllers else f"({', '.join(spec.kinds)})"
            environment = {**(launcher_env if spec.launches_nodes else {}),
                           **({"SKIFF_CONTROLLERS": ",".join(spec.controllers)} if spec.controllers else {})}
            fn = self.function(spec.name, handler=handler.handler, timeout=spec.timeout,
                               description=f"stream handler {spec.chalice_name} {runs}",
                               statements=[*_table_statements(tables, DATA_TABLES), *stream_read,
                                           *(launcher if spec.launches_nodes else [])],
                               environment=environment)
            stream[spec.name] = fn
            mappings[spec.name] = aws.lambda_.EventSourceMapping(
                f"{spec.name}-stream", function_name=fn.arn, event_source_arn=objects.stream_arn,
                starting_position=handler.starting_position, batch_size=handler.batch_size,
                maximum_batching_window_in_seconds=handler.batching_window_seconds,
                bisect_batch_on_function_error=True, maximum_retry_attempts=BATCH_RETRIES,
                maximum_record_age_in_seconds=MAX_RECORD_AGE_SECONDS,
                destination_config={"on_failure": {"destination_arn": failures.arn}},
                filter_criteria={"filters": [{"pattern": json.dumps(p, sort_keys=True)}
                                             for p in filter_patterns(spec)]},
                tags=tags)

        scheduled: dict[str, aws.lambda_.Function] = {}
        for sched in chalice_app.scheduled_handlers():
            # The resync runs every sync, the provisioner's included, so it needs what both need.
            fn = self.function(sched.name, handler=sched.handler, timeout=120,
                               description=f"scheduled {sched.name} ({sched.schedule_expression})",
                               statements=[*_table_statements(tables, DATA_TABLES), *launcher],
                               environment=launcher_env)
            scheduled[sched.name] = fn
            rule = aws.cloudwatch.EventRule(f"{sched.name}-schedule", name=f"{s.cluster}-{sched.name}",
                                            schedule_expression=sched.schedule_expression, tags=tags)
            aws.cloudwatch.EventTarget(f"{sched.name}-target", rule=rule.name, arn=fn.arn)
            aws.lambda_.Permission(f"{sched.name}-invoke", action="lambda:InvokeFunction", function=fn.name,
                                   principal="events.amazonaws.com", source_arn=rule.arn)
        return ControlPlane(stream=stream, scheduled=scheduled, mappings=mappings, failures=failures)
