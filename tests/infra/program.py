"""Runs infra/__main__.py under pulumi.runtime.Mocks and records what it declared.

Each resource's inputs are recorded as Pulumi resolved them (camelCase keys, Outputs resolved), so the
tests assert on plain dicts. The run happens inside @pulumi.runtime.test, which waits for every
registration to finish before returning.
"""

from __future__ import annotations

import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

INFRA = Path(__file__).resolve().parents[2] / "infra"
ACCOUNT = "123456789012"
REGION = "us-east-1"
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]


@dataclass
class Resource:
    type: str
    name: str
    inputs: dict[str, Any]


@dataclass
class Deployment:
    resources: list[Resource] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name: str) -> Resource:
        found = [r for r in self.resources if r.type == typ and r.name == name]
        assert len(found) == 1, f"{typ} {name}: found {len(found)} among {[(r.type, r.name) for r in self.resources]}"
        return found[0]

    def policy(self, role_name: str) -> dict[str, Any]:
        """The inline policy document of the role declared as `role_name`."""
        doc = self.one("aws:iam/rolePolicy:RolePolicy", f"{role_name}-policy").inputs["policy"]
        parsed: dict[str, Any] = json.loads(doc)
        return parsed


def _outputs(typ: str, name: str, inputs: dict[str, Any], ident: str) -> dict[str, Any]:
    """What AWS would compute: ARNs, URLs, stream ARNs."""
    short = typ.split(":")[-1]
    physical = inputs.get("name") or f"{name}-physical"
    out = dict(inputs)
    out.setdefault("name", physical)
    out["arn"] = f"arn:aws:{typ.split(':')[1].split('/')[0]}:{REGION}:{ACCOUNT}:{short.lower()}/{physical}"
    if short == "Table":
        out["arn"] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{physical}"
        if inputs.get("streamEnabled"):
            out["streamArn"] = f"{out['arn']}/stream/2026-01-01T00:00:00.000"
    elif short == "Function":
        out["arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}"
        out["invokeArn"] = (f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/"
                            f"{out['arn']}/invocations")
    elif short == "LogGroup":
        out["arn"] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{physical}"
    elif short == "Queue":
        out["arn"] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{physical}"
        out["url"] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{physical}"
    elif short == "Role":
        out["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{physical}"
    elif short == "Parameter":
        out["arn"] = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{physical}"
    elif short == "Repository":
        out["arn"] = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{physical}"
        out["repositoryUrl"] = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{physical}"
    elif short == "RestApi":
        out["executionArn"] = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{ident}"
    elif short == "Stage":
        out["invokeUrl"] = f"https://restapi.execute-api.{REGION}.amazonaws.com/{inputs.get('stageName')}"
    elif short == "Bucket":
        out["bucket"] = f"{inputs.get('bucketPrefix', '')}0001"
        ident = out["bucket"]
    elif short == "RandomPassword":
        out["result"] = "x" * int(inputs.get("length", 16))
    return out


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.deployment.resources.append(Resource(args.typ, args.name, dict(args.inputs)))
        ident = f"{args.name}-id"
        if args.typ == "aws:s3/bucket:Bucket":
            ident = f"{args.inputs.get('bucketPrefix', '')}0001"
        elif args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
            ident = "lt-0123456789abcdef0"
        elif args.typ == "aws:ec2/securityGroup:SecurityGroup":
            ident = "sg-0123456789abcdef0"
        return ident, _outputs(args.typ, args.name, args.inputs, ident)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        self.deployment.calls.append(args.token)
        answers: dict[str, dict[str, Any]] = {
            "aws:index/getRegion:getRegion": {"name": REGION, "region": REGION, "id": REGION,
                                              "endpoint": f"ec2.{REGION}.amazonaws.com", "description": "N. Virginia"},
            "aws:index/getPartition:getPartition": {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws",
                                                    "reverseDnsPrefix": "com.amazonaws"},
            "aws:index/getCallerIdentity:getCallerIdentity": {"accountId": ACCOUNT, "id": ACCOUNT,
                                                              "arn": f"arn:aws:iam::{ACCOUNT}:user/ci", "userId": "ci"},
            "aws:ec2/getVpc:getVpc": {"id": "vpc-0default", "default": True, "cidrBlock": "172.31.0.0/16"},
            "aws:ec2/getSubnets:getSubnets": {"id": REGION, "ids": ["subnet-b", "subnet-a"]},
            "aws:index/getAvailabilityZones:getAvailabilityZones": {"id": REGION, "names": ZONES, "zoneIds": ZONES},
        }
        if args.token not in answers:
            raise AssertionError(f"the program called {args.token}, which the mocks do not answer")
        return answers[args.token]


def run(config: dict[str, str]) -> Deployment:
    """Run the program with the given `skiff:` config and return what it declared and exported."""
    deployment = Deployment()
    pulumi.runtime.set_mocks(RecordingMocks(deployment), project="skiff", stack="test", preview=False)
    pulumi.runtime.set_all_config({f"skiff:{k}": v for k, v in config.items()})

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        names = runpy.run_path(str(INFRA / "__main__.py"), run_name="skiff_infra_program")
        wanted = {"kubeconfig_command": names["kubeconfig_command"], "node_pool": names["node_pool"],
                  "api_url": names["gateway"].url}

        def keep(values: list[Any]) -> None:
            deployment.values.update(zip(wanted, values, strict=True))

        return pulumi.Output.all(*wanted.values()).apply(keep)

    program()
    return deployment
