"""Skiff on AWS: `pulumi up` deploys the control plane and the worker fleet, `pulumi destroy` removes them.

- DynamoDB tables from chalicelib's PynamoDB models (stream on objects, TTL on the change log, PITR)
- the Chalice app as Lambda functions: the API behind API Gateway, the stream handlers (controllers,
  provisioner, and with skiff:splitControllers a scheduler) on the objects stream, the resync on an
  EventBridge schedule
- the worker fleet: ECR, the node agent's wheel in S3, the node role, and the launch template the
  provisioner launches from
- the first admin token (SSM SecureString, hashed in the tokens table) and the nodes' bootstrap token

Settings: skiff_deploy/config.py and docs/deploy-aws.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pulumi
import pulumi_aws as aws

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent):  # skiff_deploy, and the repository (app.py, chalicelib)
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from skiff_deploy import alarms, bundle, config, functions, iam, network, nodes, tables, tokens  # noqa: E402
from skiff_deploy.api import api as make_api  # noqa: E402

settings = config.load()
region = aws.get_region()
account = iam.Account(partition=aws.get_partition().partition, region=region.region,
                      account_id=aws.get_caller_identity().account_id)
tags = {"skiff:cluster": settings.cluster, "pulumi:stack": pulumi.get_stack()}

build_dir = Path(settings.build_dir) if settings.build_dir else HERE / ".build"
lambda_zip = Path(settings.lambda_bundle) if settings.lambda_bundle else bundle.build_lambda_bundle(
    build_dir, python_version=settings.lambda_runtime.removeprefix("python"))
agent_wheel = Path(settings.agent_wheel) if settings.agent_wheel else bundle.build_agent_wheel(build_dir)

cluster_tables = tables.create(settings.table_prefix, tags)
container_logs = aws.cloudwatch.LogGroup("container-logs", name=f"/skiff/{settings.cluster}/containers",
                                         retention_in_days=settings.log_retention_days, tags=tags)
admin_token, admin_token_item = tokens.token("admin-token", cluster=settings.cluster, role="admin",
                                             table=cluster_tables["tokens"], tags=tags,
                                             description="first admin token (pulumi)")
bootstrap_token, bootstrap_token_item = tokens.token("bootstrap-token", cluster=settings.cluster, role="bootstrap",
                                                     table=cluster_tables["tokens"], tags=tags,
                                                     description="node bootstrap token (pulumi)")

builder = functions.Builder(settings, bundle=pulumi.FileArchive(str(lambda_zip)), tables=cluster_tables, tags=tags)
api_function = builder.api(container_logs)
gateway = make_api(settings, region=account.region, function=api_function, tags=tags)

net = network.network(settings, tags)
fleet = nodes.fleet(settings, account=account, net=net, tags=tags, wheel_path=agent_wheel, api_url=gateway.url,
                    bootstrap_parameter=bootstrap_token, container_log_group=container_logs)
control = builder.controllers(account=account, launch_template=fleet.launch_template,
                              security_group=fleet.security_group, node_role=fleet.node_role,
                              node_subnet_ids=net.subnet_ids)
cluster_alarms = alarms.alarms(settings.cluster, stream_functions=control.stream, failures=control.failures,
                               topic_arn=settings.alarm_topic_arn, tags=tags)

kubeconfig_command = gateway.url.apply(lambda url: (
    f"kubectl config set-cluster {settings.cluster} --server={url} && "
    f"kubectl config set-credentials {settings.cluster}-admin --token=\"$(aws ssm get-parameter "
    f"--region {account.region} --name /skiff/{settings.cluster}/admin-token --with-decryption "
    f"--query Parameter.Value --output text)\" && "
    f"kubectl config set-context {settings.cluster} --cluster={settings.cluster} --user={settings.cluster}-admin && "
    f"kubectl config use-context {settings.cluster}"))
node_pool = fleet.launch_template.name.apply(lambda name: "\n".join([
    "apiVersion: skiff.io/v1", "kind: NodePool", "metadata:", "  name: default", "spec:",
    f"  instanceTypes: [{', '.join(settings.instance_types)}]", "  capacityType: on-demand",
    "  launchTemplate:", f"    name: {name}", "  limits:", "    maxNodes: 5", "  disruption:",
    "    emptyAfterSeconds: 300", ""]))

pulumi.export("apiUrl", gateway.url)
pulumi.export("kubeconfigCommand", kubeconfig_command)
pulumi.export("adminTokenParameter", admin_token.name)
pulumi.export("bootstrapTokenParameter", bootstrap_token.name)
pulumi.export("launchTemplateName", fleet.launch_template.name)
pulumi.export("imageRepositoryUrl", fleet.repository.repository_url)
pulumi.export("containerLogGroup", container_logs.name)
pulumi.export("failureQueueUrl", control.failures.url)
pulumi.export("nodePoolManifest", node_pool)
pulumi.export("tables", {name: t.name for name, t in cluster_tables.items()})
