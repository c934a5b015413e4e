"""The garbage collector: dependents follow their owners, by ownerReferences.

- Background (the default): once an owner is gone, its dependents are deleted (a dependent with
  other owners only loses the reference).
- Foreground: an owner marked for deletion with the `foregroundDeletion` finalizer first has its
  dependents deleted; the finalizer is removed (and the owner goes) when none is left.
- Orphan: an owner with the `orphan` finalizer has its references removed from every dependent, then
  the finalizer is removed.
Dependents are found by listing the owner's namespace (kinds that carry ownerReferences), so a lost
stream record is repaired by the periodic sweep, which also deletes dependents of owners that no
longer exist.
"""

from __future__ import annotations

from typing import Any

from chalicelib.controllers.client import Client

Obj = dict[str, Any]
DEPENDENT_KINDS = ("replicasets", "pods", "configmaps", "services", "deployments")
MAX_DEPTH = 8
OWNER_KINDS = {"Deployment": "deployments", "ReplicaSet": "replicasets", "Pod": "pods", "ConfigMap": "configmaps",
               "Service": "services"}


def dependents(client: Client, namespace: str, uid: str) -> list[tuple[str, Obj]]:
    out: list[tuple[str, Obj]] = []
    for plural in DEPENDENT_KINDS:
        for obj in client.list_objects(plural, namespace):
            if any(r.get("uid") == uid for r in (obj.get("metadata") or {}).get("ownerReferences") or []):
                out.append((plural, obj))
    return out


def _drop_reference(client: Client, plural: str, obj: Obj, uid: str) -> None:
    md = obj["metadata"]
    refs = [r for r in md.get("ownerReferences") or [] if r.get("uid") != uid]
    client.patch(plural, md.get("namespace"), md["name"],
                 {"metadata": {"ownerReferences": refs or None, "resourceVersion": md["resourceVersion"]}})


def owner_gone(client: Client, namespace: str, uid: str, *, propagation: str = "Background") -> None:
    """The owner with `uid` no longer exists: delete (or release) what depended on it."""
    for plural, obj in dependents(client, namespace, uid):
        md = obj["metadata"]
        others = [r for r in md.get("ownerReferences") or [] if r.get("uid") != uid]
        if others:
            _drop_reference(client, plural, obj, uid)
        elif not md.get("deletionTimestamp"):
            client.delete(plural, md.get("namespace"), md["name"], propagation=propagation, uid=md.get("uid"))


def sync_owner(client: Client, plural: str, namespace: str | None, name: str, depth: int = 0) -> None:
    """An owner marked for deletion: carry out its foregroundDeletion or orphan finalizer.

    Foreground deletion tears the tree down bottom-up: each dependent is deleted in the foreground
    too and handled here depth-first, so a chain of owners goes in one pass."""
    owner = client.get(plural, namespace, name)
    if owner is None:
        return
    md = owner["metadata"]
    finalizers = list(md.get("finalizers") or [])
    if not md.get("deletionTimestamp") or not namespace:
        return
    uid = md["uid"]
    if "orphan" in finalizers:
        for dep_plural, obj in dependents(client, namespace, uid):
            _drop_reference(client, dep_plural, obj, uid)
        _remove_finalizer(client, plural, owner, "orphan")
        return
    if "foregroundDeletion" in finalizers:
        remaining = dependents(client, namespace, uid)
        for dep_plural, obj in remaining:
            dmd = obj["metadata"]
            if not dmd.get("deletionTimestamp"):
                client.delete(dep_plural, namespace, dmd["name"], propagation="Foreground", uid=dmd.get("uid"))
            if depth < MAX_DEPTH:
                sync_owner(client, dep_plural, namespace, dmd["name"], depth + 1)
        if not dependents(client, namespace, uid):
            _remove_finalizer(client, plural, owner, "foregroundDeletion")


def _remove_finalizer(client: Client, plural: str, owner: Obj, finalizer: str) -> None:
    md = owner["metadata"]
    left = [f for f in md.get("finalizers") or [] if f != finalizer]
    client.patch(plural, md.get("namespace"), md["name"],
                 {"metadata": {"finalizers": left or None, "resourceVersion": md["resourceVersion"]}})


def sweep(client: Client, namespace: str) -> None:
    """Periodic repair: dependents whose owners are all gone are deleted; pending finalizers progress."""
    uids: dict[str, str] = {}
    for plural in DEPENDENT_KINDS:
        for obj in client.list_objects(plural, namespace):
            md = obj["metadata"]
            uids[md["uid"]] = plural
            if md.get("deletionTimestamp") and {"orphan", "foregroundDeletion"} & set(md.get("finalizers") or []):
                sync_owner(client, plural, namespace, md["name"])
    for plural in DEPENDENT_KINDS:
        for obj in client.list_objects(plural, namespace):
            refs = (obj.get("metadata") or {}).get("ownerReferences") or []
            dead = [r for r in refs if r.get("kind") in OWNER_KINDS and r.get("uid") not in uids]
            if refs and len(dead) == len(refs):
                md = obj["metadata"]
                if not md.get("deletionTimestamp"):
                    client.delete(plural, namespace, md["name"], uid=md.get("uid"))
