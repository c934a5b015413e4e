"""The namespace controller: a namespace marked for deletion loses everything in it, then goes.

Every namespaced kind is deleted (pods with their grace period: a pod bound to a node waits for its
node); when nothing is left, the controller empties spec.finalizers through `/finalize` and the API
removes the namespace.
"""

from __future__ import annotations

import contextlib

from chalicelib import errors
from chalicelib.controllers.client import Client
from chalicelib.types import registry

NAMESPACED = tuple(r.plural for r in registry.RESOURCES if r.namespaced)


def sync(client: Client, name: str) -> bool:
    """Returns True while the namespace still waits for its contents to go."""
    ns = client.get("namespaces", None, name)
    if ns is None or not ns["metadata"].get("deletionTimestamp"):
        return False
    remaining = 0
    for plural in NAMESPACED:
        for obj in client.list_objects(plural, name):
            remaining += 1
            md = obj["metadata"]
            if not md.get("deletionTimestamp"):
                client.delete(plural, name, md["name"], propagation="Background", uid=md.get("uid"))
    if remaining:
        return True
    if (ns.get("spec") or {}).get("finalizers"):
        body = {**ns, "spec": {**(ns.get("spec") or {}), "finalizers": []}}
        with contextlib.suppress(errors.NotFound):  # already gone
            client.finalize_namespace(body)
    return False
