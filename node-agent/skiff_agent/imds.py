"""The instance's facts from EC2 instance metadata (IMDSv2), as kubelet's AWS provider reads them.

Why this exists: on AWS the agent learns who it is from the instance itself: its id, zone, region,
type, private address and DNS name. IMDSv2 (a session token from a PUT, then GETs carrying it) is the
only version the launch template allows.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass

IMDS = "http://169.254.169.254"


@dataclass(frozen=True)
class InstanceFacts:
    instance_id: str
    zone: str
    region: str
    instance_type: str
    private_ip: str
    private_dns: str

    @property
    def provider_id(self) -> str:
        return f"aws:///{self.zone}/{self.instance_id}"


def read(base: str = IMDS, timeout: float = 2.0) -> InstanceFacts:
    """Read the facts; OSError when there is no metadata service (not on EC2)."""
    token_req = urllib.request.Request(f"{base}/latest/api/token", method="PUT",
                                       headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
    with urllib.request.urlopen(token_req, timeout=timeout) as r:  # noqa: S310 - the link-local IMDS
        token = r.read().decode()

    def get(path: str) -> str:
        req = urllib.request.Request(f"{base}/latest/meta-data/{path}",
                                     headers={"X-aws-ec2-metadata-token": token})
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310
            return str(r.read().decode()).strip()

    zone = get("placement/availability-zone")
    try:
        region = get("placement/region")
    except OSError:
        region = zone[:-1]
    return InstanceFacts(instance_id=get("instance-id"), zone=zone, region=region,
                         instance_type=get("instance-type"), private_ip=get("local-ipv4"),
                         private_dns=get("local-hostname"))
