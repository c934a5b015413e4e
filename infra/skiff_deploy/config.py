"""The stack's settings, read from `pulumi config` in one place (namespace `skiff`).

Every key has a default that deploys a working cluster, so `pulumi up` on a new stack needs only
`aws:region`. The keys and what they do are listed in docs/deploy-aws.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

DEFAULT_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
DEFAULT_LAUNCH_TEMPLATE = "skiff-node"
"""The name NodePools give in spec.launchTemplate (examples/nodepool.yaml, and `skiff up` locally)."""


@dataclass(frozen=True)
class StackSettings:
    cluster: str
    table_prefix: str
    stage: str
    vpc_id: str | None
    subnet_ids: list[str]
    create_vpc: bool
    vpc_cidr: str
    instance_types: list[str]
    ami_parameter: str
    launch_template_name: str
    log_retention_days: int
    lambda_memory_mb: int
    lambda_runtime: str
    split_controllers: bool
    agent_wheel: str | None
    lambda_bundle: str | None
    build_dir: str | None
    alarm_topic_arn: str | None


def load() -> StackSettings:
    cfg = pulumi.Config("skiff")
    cluster = cfg.get("clusterName") or "skiff"
    subnets = cfg.get_object("subnetIds") or []
    vpc_id = cfg.get("vpcId")
    if bool(vpc_id) != bool(subnets):
        raise ValueError("skiff:vpcId and skiff:subnetIds go together: set both (an existing VPC) or neither")
    return StackSettings(
        cluster=cluster,
        table_prefix=cfg.get("tablePrefix") or cluster,
        stage=cfg.get("stage") or "api",
        vpc_id=vpc_id,
        subnet_ids=[str(s) for s in subnets],
        create_vpc=cfg.get_bool("createVpc") or False,
        vpc_cidr=cfg.get("vpcCidr") or "10.42.0.0/16",
        instance_types=[str(t) for t in (cfg.get_object("instanceTypes") or ["m5.large", "c5.large"])],
        ami_parameter=cfg.get("amiParameter") or DEFAULT_AMI_PARAMETER,
        launch_template_name=cfg.get("launchTemplateName") or DEFAULT_LAUNCH_TEMPLATE,
        log_retention_days=cfg.get_int("logRetentionDays") or 14,
        lambda_memory_mb=cfg.get_int("lambdaMemoryMb") or 1024,
        lambda_runtime=cfg.get("lambdaRuntime") or "python3.11",
        split_controllers=cfg.get_bool("splitControllers") or False,
        agent_wheel=cfg.get("agentWheel"),
        lambda_bundle=cfg.get("lambdaBundle"),
        build_dir=cfg.get("buildDir"),
        alarm_topic_arn=cfg.get("alarmTopicArn"),
    )
