"""Where the worker nodes run: an existing VPC and subnets from the stack config, a new VPC, or the
account's default VPC (the default: nodes need only outbound access, to the API, ECR, S3 and SSM).

Nodes get public addresses and no inbound rule; a NAT gateway would cost more than a small cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from skiff_deploy.config import StackSettings


@dataclass(frozen=True)
class Network:
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[list[str]]


def _new_vpc(s: StackSettings, tags: dict[str, str]) -> Network:
    vpc = aws.ec2.Vpc("vpc", cidr_block=s.vpc_cidr, enable_dns_hostnames=True, enable_dns_support=True,
                      tags={**tags, "Name": s.cluster})
    gateway = aws.ec2.InternetGateway("vpc-gateway", vpc_id=vpc.id, tags={**tags, "Name": s.cluster})
    routes = aws.ec2.RouteTable("vpc-public-routes", vpc_id=vpc.id,
                                routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
                                tags={**tags, "Name": f"{s.cluster}-public"})
    zones = aws.get_availability_zones(state="available").names[:3]
    subnets = []
    for i, zone in enumerate(zones):
        subnet = aws.ec2.Subnet(f"vpc-public-{zone}", vpc_id=vpc.id, availability_zone=zone,
                                cidr_block=f"{'.'.join(s.vpc_cidr.split('.')[:2])}.{i * 16}.0/20",
                                map_public_ip_on_launch=True, tags={**tags, "Name": f"{s.cluster}-{zone}"})
        aws.ec2.RouteTableAssociation(f"vpc-public-{zone}", subnet_id=subnet.id, route_table_id=routes.id)
        subnets.append(subnet.id)
    return Network(vpc_id=vpc.id, subnet_ids=pulumi.Output.all(*subnets))


def network(s: StackSettings, tags: dict[str, str]) -> Network:
    if s.vpc_id:
        return Network(vpc_id=s.vpc_id, subnet_ids=s.subnet_ids)
    if s.create_vpc:
        return _new_vpc(s, tags)
    vpc = aws.ec2.get_vpc(default=True)
    subnets = aws.ec2.get_subnets(filters=[{"name": "vpc-id", "values": [vpc.id]},
                                           {"name": "default-for-az", "values": ["true"]}])
    return Network(vpc_id=vpc.id, subnet_ids=sorted(subnets.ids))
