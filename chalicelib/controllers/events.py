"""Events the controllers record, so `kubectl describe` and `kubectl get events` tell the story."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from chalicelib import errors
from chalicelib.api.admission import now
from chalicelib.controllers.client import Client

Obj = dict[str, Any]


def record(client: Client, obj: Obj, *, reason: str, message: str, component: str,
           type_: str = "Normal") -> None:
    """Create a core/v1 Event about `obj` in its namespace (default for cluster-scoped objects).

    A failure to record is never a failure of the sync that reported it.
    """
    md = obj.get("metadata") or {}
    namespace = md.get("namespace") or "default"
    stamp = now()
    event = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{md.get('name')}.{time.time_ns():x}", "namespace": namespace},
        "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": md.get("name"),
                           "namespace": md.get("namespace"), "uid": md.get("uid"),
                           "resourceVersion": md.get("resourceVersion")},
        "reason": reason, "message": message, "type": type_,
        "source": {"component": component}, "reportingComponent": component,
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
    }
    with contextlib.suppress(errors.APIError):
        client.create("events", namespace, event)
