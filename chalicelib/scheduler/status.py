"""What a filter says about a node, in the shape of kube-scheduler's framework.Status.

A filter answers None (the node fits) or a reason string, the way the FailedScheduling message
counts it. Upstream also gives each rejection a code: Unschedulable (freeing capacity or preempting
might help) or UnschedulableAndUnresolvable (only a different node would). A provisioner needs that
difference, so a reason of type `Unresolvable` carries the second code while still being the plain
string the message counts; `Reasons` carries several reasons one plugin gives for one node.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from chalicelib.scheduler.snapshot import NodeInfo, PodInfo, Snapshot


class Unresolvable(str):
    """A reason whose status is UnschedulableAndUnresolvable: more capacity would not help."""

    __slots__ = ()


class Reasons(tuple[str, ...]):
    """Several reasons from one plugin for one node, e.g. "Insufficient cpu" and "Insufficient memory"."""

    __slots__ = ()


FilterResult = str | Reasons | None
Rejections = dict[str, str | Reasons]  # node name -> why it was rejected


class Skip:
    """PreFilter/PreScore's Skip status: the plugin has nothing to do for this pod."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SKIP"


SKIP: Final = Skip()


class Uniform(int):
    """A PreScore answer meaning every node gets this (already normalised) score: no per-node work."""

    __slots__ = ()


def reasons_of(result: str | Reasons) -> tuple[str, ...]:
    """The reason strings of one node's rejection."""
    return tuple(result) if isinstance(result, Reasons) else (result,)


def is_unresolvable(result: str | Reasons) -> bool:
    """UnschedulableAndUnresolvable: as upstream, one unresolvable reason makes the whole status so."""
    return any(isinstance(r, Unresolvable) for r in reasons_of(result))


def filter_each(check: Callable[[PodInfo, NodeInfo, Snapshot], FilterResult], pod: PodInfo,
                nodes: Sequence[NodeInfo], snapshot: Snapshot) -> tuple[list[NodeInfo], Rejections]:
    """A plugin's `filter` over many nodes: (the nodes that fit, in order; node -> rejection of the rest)."""
    passed: list[NodeInfo] = []
    rejected: Rejections = {}
    for node in nodes:
        result = check(pod, node, snapshot)
        if result is None:
            passed.append(node)
        else:
            rejected[node.name] = result
    return passed, rejected
