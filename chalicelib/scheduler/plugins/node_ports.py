"""NodePorts: a hostPort can be bound once per node, per protocol and host IP.

0.0.0.0 (the default hostIP) clashes with every address; TCP is the default protocol. Host ports of
sidecars count as containers' do (schedutil.GetHostPorts).
"""

from __future__ import annotations

from chalicelib.scheduler.snapshot import NodeInfo, PodInfo, Snapshot
from chalicelib.scheduler.status import SKIP, FilterResult, Skip

NAME = "NodePorts"
ERR_REASON = "node(s) didn't have free ports for the requested pod ports"


def pre_filter(pod: PodInfo, snapshot: Snapshot) -> Skip | None:
    return None if pod.host_ports else SKIP


def filter(pod: PodInfo, node: NodeInfo, snapshot: Snapshot) -> FilterResult:
    if not node.used_ports:
        return None
    for ip, protocol, port in pod.host_ports:
        if node.port_conflicts(ip, protocol, port):
            return ERR_REASON
    return None
