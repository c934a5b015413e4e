"""What one provisioner pass has read, and the small helpers every step shares.

Why this exists: a pass reads the pools, pods, nodes and the cluster's instances once and hands
them to each step (claim lifecycle, scale-down, provisioning, pool status); each step re-reads only
what earlier steps change (the NodeClaims). Keeping that in one object keeps the steps' signatures
short and makes "seconds until something is due" a single running minimum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.controllers import events
from chalicelib.controllers.client import Client
from chalicelib.provisioner import aws
from chalicelib.provisioner.aws import EC2Client, Instance

Obj = dict[str, Any]
COMPONENT = "skiff-provisioner"
FINALIZER = "skiff.io/termination"
FINISHED_PHASES = ("Succeeded", "Failed")


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def name_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def active(pod: Obj) -> bool:
    """A pod that still runs or will run (finished pods hold nothing on a node)."""
    return (pod.get("status") or {}).get("phase") not in FINISHED_PHASES


@dataclass
class Pass:
    client: Client
    ec2: EC2Client
    now: datetime
    pools: dict[str, Obj] = field(default_factory=dict)
    pods: list[Obj] = field(default_factory=list)
    nodes: list[Obj] = field(default_factory=list)
    due: float | None = None
    _instances: list[Instance] | None = None

    @classmethod
    def read(cls, client: Client, ec2: EC2Client, now: datetime) -> Pass:
        state = cls(client=client, ec2=ec2, now=now)
        state.pools = {name_of(p): p for p in client.list_objects("nodepools")}
        state.pods = client.list_objects("pods")
        state.nodes = client.list_objects("nodes")
        return state

    @property
    def instances(self) -> list[Instance]:
        """The cluster's instances, described on first use (a pass with nothing to do asks EC2 nothing)."""
        if self._instances is None:
            self._instances = aws.cluster_instances(self.ec2)
        return self._instances

    def claims(self) -> list[Obj]:
        """The NodeClaims as they are now (steps change them, so this is read again each time)."""
        return self.client.list_objects("nodeclaims")

    def due_in(self, seconds: float | None) -> None:
        """Something needs looking at again after `seconds` (the pass's return value is the minimum)."""
        if seconds is None:
            return
        seconds = max(0.0, seconds)
        self.due = seconds if self.due is None else min(self.due, seconds)

    def node_by_provider_id(self, provider_id: str) -> Obj | None:
        for node in self.nodes:
            if provider_id and (node.get("spec") or {}).get("providerID") == provider_id:
                return node
        return None

    def pods_on(self, node_name: str) -> list[Obj]:
        return [p for p in self.pods if (p.get("spec") or {}).get("nodeName") == node_name]

    def event(self, obj: Obj, reason: str, message: str, *, warning: bool = False) -> None:
        events.record(self.client, obj, reason=reason, message=message, component=COMPONENT,
                      type_="Warning" if warning else "Normal")
