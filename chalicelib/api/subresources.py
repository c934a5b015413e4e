"""The subresources with their own shapes: pods/binding and deployments|replicasets/scale.

/status needs nothing of its own: it is update and patch with the spec kept (see admission).
"""

from __future__ import annotations

from typing import Any

from chalicelib import errors
from chalicelib.api import admission, verbs
from chalicelib.api.auth import Identity, authorize
from chalicelib.api.http import Request, Response, ok
from chalicelib.api.patch import apply_patch
from chalicelib.api.paths import Target
from chalicelib.api.selectors import format_label_selector
from chalicelib.scheduler import reservations
from chalicelib.store import objects as store
from chalicelib.types import registry

Obj = dict[str, Any]


def bind(req: Request, target: Target, ident: Identity) -> Response:
    """POST pods/<name>/binding: set spec.nodeName once, as the scheduler does."""
    authorize(ident, "create", target)
    body = req.parsed_body()
    admission.check_kind(target.resource, body, expect_kind="Binding", expect_api_version="v1")
    node = ((body.get("target") or {}).get("name")) if isinstance(body.get("target"), dict) else None
    if not node or not isinstance(node, str):
        raise errors.Invalid("Binding", target.name or "",
                             [errors.Cause("target.name", "Required value", "FieldValueRequired")])
    pod = verbs.read(target)
    md = pod.get("metadata") or {}
    uid = (body.get("metadata") or {}).get("uid")
    if uid and uid != md.get("uid"):
        raise errors.Conflict("pods", target.name or "", message=f"Precondition failed: UID in precondition: "
                              f"{uid}, UID in object meta: {md.get('uid')}")
    if md.get("deletionTimestamp"):
        raise errors.Conflict("pods", target.name or "", message=f"pod {target.name} is being deleted, cannot "
                              "be assigned to a host")
    spec = dict(pod.get("spec") or {})
    if spec.get("nodeName"):
        raise errors.Conflict("pods", target.name or "", message=f"pod {target.name} is already assigned to "
                              f"node \"{spec['nodeName']}\"")
    node_obj = store.get(registry.NODES.key, store.object_key(None, node))
    if node_obj is None:
        raise errors.NotFound("nodes", node)
    try:
        reserve = reservations.reserve(pod, node_obj)
    except reservations.Insufficient as e:
        raise errors.Conflict("pods", target.name or "", message=f"pod {target.name} does not fit on node "
                              f"\"{node}\": Insufficient {e.args[0]}") from e
    spec["nodeName"] = node
    status = dict(pod.get("status") or {})
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
    conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                       "lastTransitionTime": admission.now()})
    status["conditions"] = conditions
    bound = {**pod, "spec": spec, "status": status}
    try:
        store.update(target.resource.key, verbs.key_of(target), bound, int(md.get("resourceVersion") or 0),
                     prev=verbs.summary(target.resource, pod), extra=[reserve])
    except store.StoreConflict as e:
        raise errors.Conflict("pods", target.name or "") from e
    except store.ExtraConditionFailed as e:
        raise errors.Conflict("pods", target.name or "", message=f"pod {target.name} does not fit on node "
                              f"\"{node}\": its capacity was taken by pods bound meanwhile") from e
    return ok({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)


def _scale_of(obj: Obj) -> Obj:
    md = obj.get("metadata") or {}
    selector = (obj.get("spec") or {}).get("selector") or {}
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in md},
        "spec": {"replicas": int((obj.get("spec") or {}).get("replicas") or 0)},
        "status": {"replicas": int((obj.get("status") or {}).get("replicas") or 0),
                   "selector": format_label_selector(selector)},
    }


def scale(req: Request, target: Target, ident: Identity) -> Response:
    """GET, PUT and PATCH of .../scale, as autoscaling/v1 Scale."""
    verb = {"GET": "get", "PUT": "update", "PATCH": "patch"}.get(req.method)
    if verb is None:
        raise errors.MethodNotAllowed(f"{req.method} is not supported on scale")
    obj = verbs.read(target)
    authorize(ident, verb, target, obj)
    current = _scale_of(obj)
    if verb == "get":
        return ok(current)
    if verb == "update":
        wanted = req.parsed_body()
        admission.check_kind(target.resource, wanted, expect_kind="Scale", expect_api_version="autoscaling/v1")
        precondition = (wanted.get("metadata") or {}).get("resourceVersion")
    else:
        wanted = apply_patch(current, req.body, req.headers.get("content-type", ""), kind="Scale")
        precondition = None
    replicas = (wanted.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise errors.Invalid("Scale", target.name or "",
                             [errors.Cause("spec.replicas", "must be greater than or equal to 0")],
                             group="autoscaling")
    rv = str((obj.get("metadata") or {}).get("resourceVersion"))
    if precondition not in (None, "") and str(precondition) != rv:
        raise errors.Conflict(target.resource.plural, target.name or "", target.resource.group)
    new = {**obj, "spec": {**(obj.get("spec") or {}), "replicas": replicas}}
    main = Target(target.resource, target.namespace, target.name)
    stored = verbs.replace_object(req, main, obj, new, rv)
    return ok(_scale_of(stored))
