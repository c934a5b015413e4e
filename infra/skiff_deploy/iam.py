"""IAM policy documents, least privilege: each statement names the actions a role uses and the
cluster's own resources by ARN (or, where EC2 cannot name them before they exist, by tag).

The few `"Resource": "*"` statements are the actions AWS does not scope by resource at all
(ec2:Describe*, ecr:GetAuthorizationToken); each carries a `why` below and the tests list them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

TABLE_READ_WRITE = [
    "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:Scan",
    "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable",
]
"""What PynamoDB does with a table; TransactWriteItems/TransactGetItems are authorised per item action."""
STREAM_READ = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
               "dynamodb:ListStreams"]
"""What Lambda's event source mapping does with the stream, as the function's role."""
UNSCOPABLE = {
    "ec2:DescribeInstances": "EC2 Describe* actions have no resource-level permissions",
    "ec2:DescribeInstanceTypes": "EC2 Describe* actions have no resource-level permissions",
    "ec2:DescribeAvailabilityZones": "EC2 Describe* actions have no resource-level permissions",
    "ec2:DescribeSubnets": "EC2 Describe* actions have no resource-level permissions",
    "ec2:DescribeImages": "EC2 Describe* actions have no resource-level permissions",
    "ecr:GetAuthorizationToken": "the registry login token is account-wide; ECR allows only \"*\" here",
}
"""Actions that AWS authorises only on "*" (the one exception the brief allows, and why)."""


@dataclass(frozen=True)
class Account:
    partition: str
    region: str
    account_id: str

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (f"arn:{self.partition}:{service}:{self.region if region else ''}:"
                f"{self.account_id if account else ''}:{resource}")


def statement(sid: str, actions: list[str], resources: list[Any], condition: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    if resources == ["*"]:
        bad = [a for a in actions if a not in UNSCOPABLE]
        assert not bad, f"{sid}: {bad} can be scoped to resources; give ARNs"
    out: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        out["Condition"] = condition
    return out


def document(statements: list[dict[str, Any]]) -> pulumi.Output[str]:
    """A policy document JSON string; resources may be Outputs (ARNs of resources being created)."""
    return pulumi.Output.from_input({"Version": "2012-10-17", "Statement": statements}).apply(
        lambda doc: json.dumps(doc, sort_keys=True))


def assume_role(service: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


def role(name: str, *, service: str, role_name: str, statements: list[dict[str, Any]], tags: dict[str, str],
         description: str) -> aws.iam.Role:
    """A role for `service` with one inline policy (no managed policies: they grant more than we use)."""
    r = aws.iam.Role(name, name=role_name, description=description, assume_role_policy=assume_role(service),
                     tags=tags)
    aws.iam.RolePolicy(f"{name}-policy", role=r.id, name="least-privilege", policy=document(statements))
    return r
