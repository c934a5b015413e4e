"""The node credential exchange: a bootstrap token plus a running instance of the cluster buys a node
token bound to that instance's node name.

Why this exists: every worker starts with the same bootstrap token (from SSM Parameter Store on AWS),
which may do exactly one thing: ask for its own node credential. The API checks with EC2 that the
instance named in the request is running (or starting), carries the cluster's tag, and that the node
name asked for is that instance's own (its private DNS name or its id), then issues a node token
bound to that name. From then on NodeRestriction (invariant 6) limits the node to its own objects,
as kubelet's TLS bootstrap does with a signed client certificate.

POST /apis/skiff.io/v1/nodecredentialrequests
  {"apiVersion": "skiff.io/v1", "kind": "NodeCredentialRequest",
   "spec": {"nodeName": "ip-10-0-1-5.ec2.internal", "instanceID": "i-0123..."}}
answers 201 with the same object and status.token.
"""

from __future__ import annotations

from typing import Any

from chalicelib import errors
from chalicelib.api.auth import Identity, issue_token
from chalicelib.api.http import Request, Response, ok

PATH = "/apis/skiff.io/v1/nodecredentialrequests"
ALIVE = ("pending", "running")


def exchange(req: Request, ident: Identity) -> Response:
    if ident.role not in ("bootstrap", "admin"):
        raise errors.Forbidden(f'User "{ident.user}" cannot create resource "nodecredentialrequests" in API group '
                               '"skiff.io": only a bootstrap token may request a node credential',
                               resource="nodecredentialrequests", group="skiff.io", name="")
    body = req.parsed_body()
    spec = body.get("spec") if isinstance(body, dict) else None
    if not isinstance(spec, dict):
        raise errors.BadRequest("a NodeCredentialRequest needs spec.nodeName and spec.instanceID")
    node, instance_id = spec.get("nodeName"), spec.get("instanceID")
    causes = []
    if not isinstance(node, str) or not node:
        causes.append(("spec.nodeName", "Required value"))
    if not isinstance(instance_id, str) or not instance_id.startswith("i-"):
        causes.append(("spec.instanceID", "Required value: an EC2 instance id (i-...)"))
    if causes:
        raise errors.Invalid("NodeCredentialRequest", "", [errors.Cause(f, m, "FieldValueRequired")
                                                           for f, m in causes], group="skiff.io")
    instance = _instance(str(instance_id))
    if instance is None:
        raise errors.Forbidden(f"instance {instance_id} is not a running instance of this cluster",
                               resource="nodecredentialrequests", group="skiff.io", name="")
    own_names = {str(n) for n in (instance.get("PrivateDnsName"), instance.get("InstanceId")) if n}
    if node not in own_names:
        raise errors.Forbidden(f"instance {instance_id} may register only as {' or '.join(sorted(own_names))}, "
                               f"not as {node}", resource="nodecredentialrequests", group="skiff.io", name="")
    token = issue_token("node", node=str(node), description=f"node credential for {instance_id}")
    return ok({"apiVersion": "skiff.io/v1", "kind": "NodeCredentialRequest",
               "spec": {"nodeName": node, "instanceID": instance_id},
               "status": {"token": token}}, status=201)


def _instance(instance_id: str) -> dict[str, Any] | None:
    """The instance, if it is alive and tagged with this cluster's name."""
    from botocore.exceptions import ClientError

    from chalicelib.provisioner import aws

    try:
        answer = aws.ec2_client().describe_instances(InstanceIds=[instance_id])
    except ClientError as e:
        if "NotFound" in e.response.get("Error", {}).get("Code", "") or \
                "Malformed" in e.response.get("Error", {}).get("Code", ""):
            return None
        raise
    for reservation in answer.get("Reservations") or []:
        for inst in reservation.get("Instances") or []:
            tags = {t["Key"]: t["Value"] for t in inst.get("Tags") or []}
            if (inst.get("State") or {}).get("Name") in ALIVE and tags.get(aws.TAG_CLUSTER) == aws.cluster_name():
                return dict(inst)
    return None
