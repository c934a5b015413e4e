"""From stream records and the clock to controller syncs.

A stream record only says which keys may need work (invariant 4): the records of a batch become a
de-duplicated, ordered set of sync tasks, each run against the current state. Running the same
batch twice, out of order, or after a crash converges to the same result. Conflicts are retried;
any other failure is raised after every task had its turn, so the event source retries the batch.
The resync does the same for every object, and advances time-based work (availability after
minReadySeconds, progress deadlines, node heartbeats).

Both run only the controllers `SKIFF_CONTROLLERS` names (settings.controllers(), all by default), so a
deployment can give the scheduler a function (a stream reader) of its own: each sync belongs to one
controller (CONTROLLER_OF) and the others' syncs are dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import errors, settings
from chalicelib.controllers import deployment, gc, namespace, nodelifecycle, replicaset
from chalicelib.controllers.client import Client
from chalicelib.provisioner import pending
from chalicelib.provisioner import reconcile as provisioner
from chalicelib.scheduler import handler as scheduler
from chalicelib.store import locks

Obj = dict[str, Any]
log = logging.getLogger("skiff.controllers")
CONFLICT_RETRIES = 5


@dataclass(frozen=True, order=True)
class Task:
    order: int  # owners before dependents, so a Deployment's new ReplicaSet gets its pods in one pass
    controller: str
    namespace: str
    name: str
    extra: str = ""


SCHEDULE = Task(6, "schedule", "", "")
"""One scheduling pass over all pending pods (one snapshot for the whole batch)."""
PROVISION = Task(7, "provision", "", "")

CONTROLLER_OF = {
    "deployment": "deployment",
    "replicaset": "replicaset",
    "adopt-pod": "replicaset",
    "owner-gone": "gc",
    "owner-finalizer": "gc",
    "namespace": "namespace",
    "node": "nodelifecycle",
    "schedule": "schedule",
    "provision": "provisioner",
}
"""Which controller (a name SKIFF_CONTROLLERS may list, settings.CONTROLLERS) each kind of sync belongs to."""

# A function whose SKIFF_CONTROLLERS names no controller fails while it starts (Lambda's init, `skiff up`)
# with the valid names, rather than failing every batch it is given.
settings.controllers()


def enabled(tasks: Iterable[Task], controllers: Collection[str]) -> set[Task]:
    """The tasks whose controller is one of `controllers`."""
    return {t for t in tasks if CONTROLLER_OF[t.controller] in controllers}


def _frees_capacity(old: Obj | None, new: Obj | None) -> bool:
    """A bound pod that finished or went: unschedulable pods may fit now."""
    if old is None or not (old.get("spec") or {}).get("nodeName"):
        return False
    return new is None or (new.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _image(record: Obj, which: str) -> Obj | None:
    image = (record.get("dynamodb") or {}).get(which)
    if not image or "body" not in image:
        return None
    try:
        body = json.loads(image["body"]["S"])
    except (KeyError, TypeError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def _controller_ref(obj: Obj | None) -> Obj | None:
    for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def tasks_for(record: Obj) -> set[Task]:
    """The syncs one stream record calls for."""
    keys = (record.get("dynamodb") or {}).get("Keys") or {}
    kind = (keys.get("kind") or {}).get("S", "")
    new, old = _image(record, "NewImage"), _image(record, "OldImage")
    current = new or old
    if current is None:
        return set()
    md = current.get("metadata") or {}
    ns, name = md.get("namespace") or "", md.get("name") or ""
    out: set[Task] = set()
    if kind == "apps/deployments":
        out.add(Task(1, "deployment", ns, name))
    elif kind == "apps/replicasets":
        out.add(Task(2, "replicaset", ns, name))
        for obj in (new, old):
            ref = _controller_ref(obj)
            if ref and ref.get("kind") == "Deployment":
                out.add(Task(1, "deployment", ns, ref["name"]))
    elif kind == "core/pods":
        for obj in (new, old):
            ref = _controller_ref(obj)
            if ref and ref.get("kind") == "ReplicaSet":
                out.add(Task(2, "replicaset", ns, ref["name"]))
        if new is not None and _controller_ref(new) is None:
            out.add(Task(2, "adopt-pod", ns, name))
        if new is not None and scheduler.is_pending(new) or _frees_capacity(old, new):
            out.add(SCHEDULE)
    elif kind == "core/namespaces":
        if md.get("deletionTimestamp"):
            out.add(Task(5, "namespace", "", name))
    elif kind == "core/nodes" or kind == "coordination.k8s.io/leases" and ns == nodelifecycle.LEASE_NAMESPACE:
        out.add(Task(4, "node", "", name))
    if kind in ("apps/deployments", "apps/replicasets", "core/pods", "core/configmaps", "core/services"):
        plural = kind.split("/", 1)[1]
        if new is None and md.get("uid"):
            out.add(Task(3, "owner-gone", ns, md["uid"]))
        elif md.get("deletionTimestamp") and {"orphan", "foregroundDeletion"} & set(md.get("finalizers") or []):
            out.add(Task(3, "owner-finalizer", ns, name, plural))
        if new is None:
            # A dependent went: an owner waiting in the foreground may now go too.
            for owner in md.get("ownerReferences") or []:
                owner_plural = gc.OWNER_KINDS.get(owner.get("kind", ""))
                if owner_plural:
                    out.add(Task(3, "owner-finalizer", ns, owner.get("name", ""), owner_plural))
    return out


def _adopt_pod(client: Client, ns: str, name: str, now: datetime | None) -> None:
    """An orphan pod: sync every ReplicaSet in its namespace whose selector matches it."""
    from chalicelib.api.selectors import selector_from_label_selector

    pod = client.get("pods", ns, name)
    if pod is None or _controller_ref(pod) is not None:
        return
    labels = (pod.get("metadata") or {}).get("labels") or {}
    for rs in client.list_objects("replicasets", ns):
        if selector_from_label_selector((rs.get("spec") or {}).get("selector")).matches(labels):
            replicaset.sync(client, ns, rs["metadata"]["name"], now=now)


def run(task: Task, client: Client, now: datetime | None = None) -> None:
    handlers: dict[str, Callable[[], object]] = {
        "deployment": lambda: deployment.sync(client, task.namespace, task.name, now=now),
        "replicaset": lambda: replicaset.sync(client, task.namespace, task.name, now=now),
        "adopt-pod": lambda: _adopt_pod(client, task.namespace, task.name, now),
        "owner-gone": lambda: gc.owner_gone(client, task.namespace, task.name),
        "owner-finalizer": lambda: gc.sync_owner(client, task.extra, task.namespace, task.name),
        "namespace": lambda: namespace.sync(client, task.name),
        "node": lambda: nodelifecycle.sync(client, task.name, now=now),
        "schedule": lambda: scheduler.schedule_pending(client, now=now),
        "provision": lambda: provisioner.reconcile(client, now=now),
    }
    lease_key = f"{task.controller}/{task.namespace}/{task.name}/{task.extra}"
    with locks.lease(lease_key):
        for attempt in range(CONFLICT_RETRIES):
            try:
                handlers[task.controller]()
                return
            except errors.Conflict:
                if attempt == CONFLICT_RETRIES - 1:
                    raise
            except errors.AlreadyExists:
                return  # someone else created it: the next sync sees it


def run_all(tasks: Iterable[Task], client: Client | None = None, now: datetime | None = None, *,
            retry_held: bool = True) -> None:
    """Run tasks in order; raise the first failure after all had their turn (the batch is retried).

    A task whose key is being synced elsewhere is a failure to retry when `retry_held` (a stream
    batch must not lose its hint); the resync passes False, as it comes again anyway."""
    client = client or Client()
    failures: list[tuple[Task, Exception]] = []
    for task in sorted(set(tasks)):
        try:
            run(task, client, now)
        except locks.Held as e:
            log.info("sync %s %s/%s is running elsewhere", task.controller, task.namespace, task.name)
            if retry_held:
                failures.append((task, e))
        except Exception as e:  # noqa: BLE001 - collected and re-raised below
            log.exception("sync %s %s/%s failed", task.controller, task.namespace, task.name)
            failures.append((task, e))
    if failures:
        task, first = failures[0]
        raise RuntimeError(f"{len(failures)} sync(s) failed, first {task.controller} "
                           f"{task.namespace}/{task.name}: {first}") from first


def provisioner_wanted(records: Iterable[Obj]) -> bool:
    """Whether a batch concerns capacity: a pod the scheduler found no room for, capacity freed, or a
    node, NodePool or NodeClaim changed (the provisioner's stream handler filters on this, as an
    event source mapping's filter criteria would)."""
    for record in records:
        keys = (record.get("dynamodb") or {}).get("Keys") or {}
        kind = (keys.get("kind") or {}).get("S", "")
        if kind in ("core/nodes", "skiff.io/nodepools", "skiff.io/nodeclaims"):
            return True
        if kind == "core/pods":
            new, old = _image(record, "NewImage"), _image(record, "OldImage")
            if new is not None and pending.is_pending_unschedulable(new) or _frees_capacity(old, new):
                return True
    return False


def handle_records(records: Iterable[Obj], client: Client | None = None, *,
                   controllers: Collection[str] | None = None) -> None:
    """The stream handler: a batch of DynamoDB stream records (Lambda's event["Records"]), synced by
    `controllers` (default: settings.controllers())."""
    wanted = settings.controllers() if controllers is None else controllers
    tasks: set[Task] = set()
    for record in records:
        tasks |= tasks_for(record)
    tasks = enabled(tasks, wanted)
    if tasks:
        run_all(tasks, client)


def resync(client: Client | None = None, now: datetime | None = None, *,
           controllers: Collection[str] | None = None) -> None:
    """The periodic handler: every object gets a sync from each of `controllers` (default:
    settings.controllers()) that acts on it, whatever records were lost."""
    wanted = settings.controllers() if controllers is None else controllers
    client = client or Client()
    tasks: set[Task] = set()
    if "namespace" in wanted:
        for ns in client.list_objects("namespaces"):
            name = ns["metadata"]["name"]
            if ns["metadata"].get("deletionTimestamp"):
                tasks.add(Task(5, "namespace", "", name))
    if "deployment" in wanted:
        for d in client.list_objects("deployments"):
            tasks.add(Task(1, "deployment", d["metadata"]["namespace"], d["metadata"]["name"]))
    if "replicaset" in wanted:
        for rs in client.list_objects("replicasets"):
            tasks.add(Task(2, "replicaset", rs["metadata"]["namespace"], rs["metadata"]["name"]))
    if "nodelifecycle" in wanted:
        for node in client.list_objects("nodes"):
            tasks.add(Task(4, "node", "", node["metadata"]["name"]))
    tasks |= {SCHEDULE, PROVISION}
    try:
        run_all(enabled(tasks, wanted), client, now, retry_held=False)
    finally:
        if "gc" in wanted:
            for ns in client.list_objects("namespaces"):
                gc.sweep(client, ns["metadata"]["name"])
