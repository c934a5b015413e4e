"""Node capacity reservations: binding a pod and reserving its node's capacity commit together.

Each node has an allocation item (cpu millicores, memory bytes, pod count, and the uids of the pods
reserved). A binding adds the pod's requests with a condition that the totals stay within the node's
allocatable and that the pod is not already counted, in the same DynamoDB transaction that sets the
pod's spec.nodeName. However many scheduler invocations bind at once, the transactions serialise on
the allocation item and no node is ever overcommitted (invariant 5). The pod's write that makes it
finished (phase Succeeded or Failed) or deletes it subtracts the same amounts in its own transaction,
so capacity is freed exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.scheduler.resources import CPU, MEMORY, PODS, pod_count, pod_resources, resource_list
from chalicelib.store.models import AllocationRecord
from chalicelib.store.objects import ExtraOp

Obj = Mapping[str, Any]
FINISHED = ("Succeeded", "Failed")


class Insufficient(Exception):
    """The pod asks for more of a resource (args[0]) than the node has in all."""


def requests(pod: Obj) -> tuple[int, int]:
    """The pod's cpu (millicores) and memory (bytes) requests, as the scheduler counts them."""
    res, _, _ = pod_resources(pod.get("spec") or {})
    return res.get(CPU, 0), res.get(MEMORY, 0)


def allocatable(node: Obj) -> tuple[int | None, int | None, int | None]:
    """cpu, memory and pods the node offers (None where it declares nothing: not limited)."""
    status = node.get("status") or {}
    values = {**(status.get("capacity") or {}), **(status.get("allocatable") or {})}
    resources = resource_list(values)
    return (resources.get(CPU) if CPU in values else None,
            resources.get(MEMORY) if MEMORY in values else None,
            pod_count(values.get(PODS)) if PODS in values else None)


def reserve(pod: Obj, node: Obj) -> ExtraOp:
    """The transaction item that reserves `pod`'s requests on `node`, or fails its condition."""
    uid = str((pod.get("metadata") or {}).get("uid"))
    cpu, memory = requests(pod)
    alloc_cpu, alloc_memory, alloc_pods = allocatable(node)
    name = str((node.get("metadata") or {}).get("name"))
    rec = AllocationRecord(name)
    condition = AllocationRecord.uids.does_not_exist() | ~AllocationRecord.uids.contains(uid)
    for resource, attr, need, limit in (("cpu", AllocationRecord.cpu_m, cpu, alloc_cpu),
                                        ("memory", AllocationRecord.memory, memory, alloc_memory),
                                        ("pods", AllocationRecord.pods, 1, alloc_pods)):
        if limit is None:
            continue
        if need > limit:
            raise Insufficient(resource)
        # The total after this pod must stay within what the node offers.
        condition &= attr.does_not_exist() | (attr <= limit - need)
    actions: list[Action] = [AllocationRecord.cpu_m.add(cpu), AllocationRecord.memory.add(memory),
                             AllocationRecord.pods.add(1), AllocationRecord.uids.add({uid})]

    def op(t: TransactWrite) -> None:
        t.update(rec, actions=actions, condition=condition)

    return op


def release(pod: Obj) -> list[ExtraOp]:
    """The transaction item that gives `pod`'s reservation back, if it holds one."""
    node = (pod.get("spec") or {}).get("nodeName")
    uid = str((pod.get("metadata") or {}).get("uid"))
    if not node:
        return []
    try:
        rec = AllocationRecord.get(node, consistent_read=True)
    except DoesNotExist:
        return []
    if uid not in (rec.uids or set()):
        return []  # bound without a reservation (e.g. before the node declared capacity)
    cpu, memory = requests(pod)
    actions: list[Action] = [AllocationRecord.cpu_m.add(-cpu), AllocationRecord.memory.add(-memory),
                             AllocationRecord.pods.add(-1), AllocationRecord.uids.delete({uid})]

    def op(t: TransactWrite) -> None:
        t.update(AllocationRecord(node), actions=actions, condition=AllocationRecord.uids.contains(uid))

    return [op]


def pod_write_ops(old: Obj, new: Obj | None) -> list[ExtraOp]:
    """For a pod write: free its reservation when it finishes or goes (once, in the same transaction)."""
    old_phase = (old.get("status") or {}).get("phase")
    if old_phase in FINISHED:
        return []  # already freed when it finished
    if new is not None and (new.get("status") or {}).get("phase") not in FINISHED:
        return []
    return release(old)


def usage(node: str) -> tuple[int, int, int, set[str]]:
    """What is reserved on `node`: cpu millicores, memory bytes, pods, and their uids."""
    try:
        rec = AllocationRecord.get(node, consistent_read=True)
    except DoesNotExist:
        return 0, 0, 0, set()
    return int(rec.cpu_m or 0), int(rec.memory or 0), int(rec.pods or 0), set(rec.uids or set())
