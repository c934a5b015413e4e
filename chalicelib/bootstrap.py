"""The objects a cluster has from the start: the built-in namespaces.

Idempotent and cheap (a read per namespace); the API runs it once per process before the first
request, so a fresh table set becomes a working cluster without a separate setup step.
"""

from __future__ import annotations

import contextlib

from chalicelib.api import admission
from chalicelib.store import objects as store
from chalicelib.types import registry

BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_done = False


def ensure_builtin_objects() -> None:
    global _done
    if _done:
        return
    res = registry.NAMESPACES
    for name in BUILTIN_NAMESPACES:
        key = store.object_key(None, name)
        if store.get(res.key, key) is not None:
            continue
        obj = admission.prepare_create(res, {"metadata": {"name": name}}, None)
        with contextlib.suppress(store.StoreConflict):  # another process created it first
            store.create(res.key, key, obj)
    _done = True
