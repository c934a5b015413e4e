"""The worker fleet's side: the image registry, the agent's wheel in S3, the node role and instance
profile, a security group, and the launch template the provisioner launches from.

A node's role can pull images, ship container logs to its group, read its bootstrap token and the
agent wheel, and nothing else: it has no access to the control plane's tables (nodes talk to the API).
The launch template requires IMDSv2 with a hop limit of 1, so containers on Docker's bridge cannot
reach the instance's credentials.
"""

from __future__ import annotations

import base64
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from skiff_deploy import iam
from skiff_deploy.config import StackSettings
from skiff_deploy.network import Network

AGENT_SERVICE = """[Unit]
Description=Skiff node agent
After=docker.service network-online.target
Requires=docker.service
Wants=network-online.target

[Service]
EnvironmentFile=/etc/skiff/agent.env
ExecStart=/opt/skiff/venv/bin/skiff-agent
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
"""


def user_data(*, region: str, cluster: str, api_url: str, bucket: str, wheel_key: str, token_parameter: str) -> str:
    """The node's boot script (Amazon Linux 2023): Docker, Python 3.11, the agent from S3, its settings
    (the bootstrap token read from SSM, kept in a root-only file), and a systemd unit that keeps it up."""
    wheel = wheel_key.rsplit("/", 1)[-1]
    q = shlex.quote
    return f"""#!/bin/bash
set -euo pipefail
exec > >(tee -a /var/log/skiff-bootstrap.log) 2>&1
dnf install -y docker python3.11 python3.11-pip
systemctl enable --now docker
install -d -m 755 /opt/skiff
aws s3 cp --region {q(region)} {q(f"s3://{bucket}/{wheel_key}")} {q(f"/opt/skiff/{wheel}")}
python3.11 -m venv /opt/skiff/venv
/opt/skiff/venv/bin/pip install --quiet {q(f"/opt/skiff/{wheel}")}
install -d -m 700 /etc/skiff
BOOTSTRAP_TOKEN=$(aws ssm get-parameter --region {q(region)} --name {q(token_parameter)} --with-decryption \\
  --query Parameter.Value --output text)
umask 077
cat > /etc/skiff/agent.env <<ENV
SKIFF_API_URL={api_url}
SKIFF_BOOTSTRAP_TOKEN=$BOOTSTRAP_TOKEN
SKIFF_CLUSTER_NAME={cluster}
AWS_REGION={region}
ENV
umask 022
cat > /etc/systemd/system/skiff-agent.service <<'UNIT'
{AGENT_SERVICE}UNIT
systemctl daemon-reload
systemctl enable --now skiff-agent
"""


@dataclass(frozen=True)
class Fleet:
    repository: aws.ecr.Repository
    bucket: aws.s3.Bucket
    wheel: aws.s3.BucketObjectv2
    node_role: aws.iam.Role
    instance_profile: aws.iam.InstanceProfile
    security_group: aws.ec2.SecurityGroup
    launch_template: aws.ec2.LaunchTemplate


def registry(s: StackSettings, tags: dict[str, str]) -> aws.ecr.Repository:
    repo = aws.ecr.Repository("images", name=s.cluster, image_tag_mutability="MUTABLE",
                              image_scanning_configuration={"scan_on_push": True},
                              encryption_configurations=[{"encryption_type": "AES256"}],
                              force_delete=True, tags=tags)
    aws.ecr.LifecyclePolicy("images-lifecycle", repository=repo.name, policy=json.dumps({"rules": [
        {"rulePriority": 1, "description": "untagged images go after a week",
         "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                       "countNumber": 7},
         "action": {"type": "expire"}},
        {"rulePriority": 2, "description": "keep the newest 200 images",
         "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 200},
         "action": {"type": "expire"}},
    ]}))
    return repo


def fleet(s: StackSettings, *, account: iam.Account, net: Network, tags: dict[str, str], wheel_path: Path,
          api_url: pulumi.Input[str], bootstrap_parameter: aws.ssm.Parameter,
          container_log_group: aws.cloudwatch.LogGroup) -> Fleet:
    repo = registry(s, tags)
    bucket = aws.s3.Bucket("artifacts", bucket_prefix=f"{s.cluster}-artifacts-", force_destroy=True, tags=tags)
    aws.s3.BucketPublicAccessBlock("artifacts-private", bucket=bucket.id, block_public_acls=True,
                                   block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True)
    aws.s3.BucketServerSideEncryptionConfiguration("artifacts-encryption", bucket=bucket.id, rules=[
        {"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}])
    # The key names the build (its hash is the folder's name): new agent code, new key, new template version.
    wheel_key = f"agent/{wheel_path.parent.name}/{wheel_path.name}"
    wheel = aws.s3.BucketObjectv2("agent-wheel", bucket=bucket.id, key=wheel_key,
                                  source=pulumi.FileAsset(str(wheel_path)), content_type="application/zip", tags=tags)

    node_role = iam.role("node-role", service="ec2.amazonaws.com", role_name=f"{s.cluster}-node",
                         description=f"Skiff {s.cluster} worker nodes: pull images, ship logs, read bootstrap",
                         tags=tags, statements=[
        iam.statement("ContainerLogs", ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                      [container_log_group.arn, container_log_group.arn.apply(lambda a: f"{a}:log-stream:*")]),
        iam.statement("RegistryLogin", ["ecr:GetAuthorizationToken"], ["*"]),
        iam.statement("PullImages", ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], [repo.arn]),
        iam.statement("BootstrapToken", ["ssm:GetParameter"], [bootstrap_parameter.arn]),
        iam.statement("AgentWheel", ["s3:GetObject"],
                      [pulumi.Output.concat("arn:", account.partition, ":s3:::", bucket.id, "/", wheel_key)]),
    ])
    profile = aws.iam.InstanceProfile("node-profile", name=f"{s.cluster}-node", role=node_role.name, tags=tags)
    group = aws.ec2.SecurityGroup("node-security-group", name=f"{s.cluster}-nodes", vpc_id=net.vpc_id,
                                  description=f"Skiff {s.cluster} worker nodes: outbound only",
                                  egress=[{"protocol": "-1", "from_port": 0, "to_port": 0,
                                           "cidr_blocks": ["0.0.0.0/0"], "ipv6_cidr_blocks": ["::/0"]}],
                                  tags={**tags, "Name": f"{s.cluster}-nodes"})
    script = pulumi.Output.all(api_url, bucket.id, bootstrap_parameter.name).apply(
        lambda a: base64.b64encode(user_data(region=account.region, cluster=s.cluster, api_url=a[0], bucket=a[1],
                                             wheel_key=wheel_key, token_parameter=a[2]).encode()).decode())
    template = aws.ec2.LaunchTemplate(
        "node-template", name=s.launch_template_name,
        description=f"Skiff {s.cluster} worker nodes (the provisioner launches them from $Default)",
        # Resolved by EC2 at each launch: nodes get the current AMI without a new template version.
        image_id=f"resolve:ssm:{s.ami_parameter}",
        iam_instance_profile={"arn": profile.arn},
        # Groups by id, no network interface: the provisioner names the subnet at the instance level
        # (RunInstances' SubnetId, from SKIFF_NODE_SUBNET_IDS), which EC2 refuses beside a template's
        # network interface; the subnet's own setting gives the node its public address.
        vpc_security_group_ids=[group.id],
        metadata_options={"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1,
                          "instance_metadata_tags": "disabled"},
        block_device_mappings=[{"device_name": "/dev/xvda",
                                "ebs": {"volume_size": 30, "volume_type": "gp3", "encrypted": "true",
                                        "delete_on_termination": "true"}}],
        user_data=script,
        update_default_version=True,  # the provisioner launches "$Default"
        tag_specifications=[{"resource_type": "instance", "tags": {**tags, "skiff:cluster": s.cluster}},
                            {"resource_type": "volume", "tags": {**tags, "skiff:cluster": s.cluster}}],
        tags=tags, opts=pulumi.ResourceOptions(depends_on=[wheel]))
    return Fleet(repository=repo, bucket=bucket, wheel=wheel, node_role=node_role, instance_profile=profile,
                 security_group=group, launch_template=template)
