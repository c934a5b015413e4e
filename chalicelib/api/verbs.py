"""The write and single-object verbs: create, get, update (PUT), patch, delete.

Generic over every resource in the registry. Each verb reads what it needs, checks authorization
against the stored object, runs admission, and writes once through the store with the
resourceVersion it read, so a concurrent writer turns into 409 Conflict and nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from chalicelib import errors
from chalicelib.api import admission, tables
from chalicelib.api.auth import Identity, authorize
from chalicelib.api.http import Request, Response, ok
from chalicelib.api.patch import apply_patch
from chalicelib.api.paths import Target
from chalicelib.api.selectors import selectable_summary
from chalicelib.scheduler import reservations
from chalicelib.store import objects as store
from chalicelib.types import registry
from chalicelib.types.registry import ResourceInfo

Obj = dict[str, Any]
PATCH_RETRIES = 5
APPLY_PATCH = "application/apply-patch+yaml"


def key_of(target: Target, name: str | None = None) -> str:
    return store.object_key(target.namespace if target.resource.namespaced else None,
                            name or target.name or "")


def read(target: Target) -> Obj:
    """The stored object the target names, or 404."""
    obj = store.get(target.resource.key, key_of(target))
    if obj is None:
        raise errors.NotFound(target.resource.plural, target.name or "", target.resource.group)
    return obj


def write_ops(res: ResourceInfo, old: Obj, new: Obj | None) -> Sequence[store.ExtraOp]:
    """Extra conditional updates a write of this kind commits with it: a pod that finishes or goes
    gives its node reservation back in the same transaction."""
    if res.key == registry.PODS.key:
        return reservations.pod_write_ops(old, new)
    return ()


def summary(res: ResourceInfo, old: Obj) -> Obj:
    """What the change log keeps of the replaced state, so selector watches see objects leave."""
    return selectable_summary(res.kind, old)


def translate_store_errors(res: ResourceInfo, name: str, exc: Exception, *, creating: bool) -> errors.APIError:
    if isinstance(exc, store.StoreConflict):
        if creating:
            return errors.AlreadyExists(res.plural, name, res.group)
        return errors.Conflict(res.plural, name, res.group)
    if isinstance(exc, store.StoreNotFound):
        return errors.NotFound(res.plural, name, res.group)
    if isinstance(exc, store.StoreBusy):
        return errors.TooManyRequests(f"too many concurrent writes to {res.plural}; retry shortly")
    raise exc


def dry_run(req: Request) -> bool:
    values = req.query.get("dryRun") or []
    for v in values:
        if v != "All":
            raise errors.BadRequest(f'dryRun must be "All", not "{v}"')
    return bool(values)


def ensure_namespace_usable(target: Target) -> None:
    if not target.resource.namespaced:
        return
    ns = store.get(registry.NAMESPACES.key, store.object_key(None, target.namespace or ""))
    if ns is None:
        raise errors.NotFound("namespaces", target.namespace or "")
    if (ns.get("metadata") or {}).get("deletionTimestamp"):
        raise errors.Forbidden(f'{target.resource.plural} "{target.name or ""}" is forbidden: unable to create '
                               f"new content in namespace {target.namespace} because it is being terminated",
                               resource=target.resource.plural, group=target.resource.group)


def create(req: Request, target: Target, ident: Identity) -> Response:
    res = target.resource
    if target.name is not None:
        raise errors.MethodNotAllowed(f"POST is not supported on a single {res.singular}; use PUT or PATCH")
    body = req.parsed_body()
    admission.check_kind(res, body)
    warnings = admission.check_fields(res, body, req.arg("fieldValidation"))
    obj = admission.prepare_create(res, body, target.namespace)
    name = str(obj["metadata"].get("name") or "")
    named = Target(res, target.namespace, name or None)
    authorize(ident, "create", named)
    admission.validate(res, obj, None)
    ensure_namespace_usable(named)
    if dry_run(req):
        return ok(obj, 201, warnings)
    try:
        stored = store.create(res.key, key_of(named), obj)
    except Exception as e:  # noqa: BLE001 - translated or re-raised
        raise translate_store_errors(res, name, e, creating=True) from e
    return ok(stored, 201, warnings)


def get(req: Request, target: Target, ident: Identity) -> Response:
    authorize(ident, "get", target)
    obj = read(target)
    if tables.wants_table(req.headers.get("accept", "")):
        rv = (obj.get("metadata") or {}).get("resourceVersion", "")
        return ok(tables.render(target.resource, [obj], {"resourceVersion": rv}))
    return ok(obj)


def update(req: Request, target: Target, ident: Identity) -> Response:
    res = target.resource
    body = req.parsed_body()
    admission.check_kind(res, body)
    warnings = admission.check_fields(res, body, req.arg("fieldValidation"))
    md = body.get("metadata") or {}
    if md.get("name") not in (None, target.name):
        raise errors.BadRequest(f"the name of the object ({md.get('name')}) does not match the name on the "
                                f"URL ({target.name})")
    if res.namespaced and md.get("namespace") not in (None, "", target.namespace):
        raise errors.BadRequest("the namespace of the provided object does not match the namespace sent on "
                                "the request")
    body.setdefault("metadata", {})["name"] = target.name
    old = read(target)
    authorize(ident, "update", target, old)
    precondition = md.get("resourceVersion")
    return ok(replace_object(req, target, old, body, precondition), 200, warnings)


def patch(req: Request, target: Target, ident: Identity) -> Response:
    res = target.resource
    content_type = req.headers.get("content-type", "")
    for _attempt in range(PATCH_RETRIES):
        if content_type.startswith(APPLY_PATCH) and store.get(res.key, key_of(target)) is None:
            return _apply_create(req, target, ident)
        old = read(target)
        authorize(ident, "patch", target, old)
        patched = apply_patch(old, req.body, content_type, kind=res.kind)
        admission.check_kind(res, patched)
        warnings = admission.check_fields(res, patched, req.arg("fieldValidation"))
        md = patched.get("metadata") or {}
        if md.get("name") != target.name:
            raise errors.BadRequest("metadata.name cannot be changed by a patch")
        requested = md.get("resourceVersion")
        # A patch that names a resourceVersion is a precondition; one that does not is retried.
        precondition = requested if requested != (old.get("metadata") or {}).get("resourceVersion") else None
        try:
            return ok(replace_object(req, target, old, patched, precondition,
                               conflict_retry=precondition is None), 200, warnings)
        except _Retry:
            continue
    raise errors.Conflict(res.plural, target.name or "", res.group)


def _apply_create(req: Request, target: Target, ident: Identity) -> Response:
    """Server-side apply of an object that does not exist yet creates it (as kube-apiserver does)."""
    res = target.resource
    applied = apply_patch({}, req.body, req.headers.get("content-type", ""), kind=res.kind)
    admission.check_kind(res, applied)
    md: Obj = applied.get("metadata") or {}
    if md.get("name") not in (None, target.name):
        raise errors.BadRequest(f"the name of the object ({md.get('name')}) does not match the name on the "
                                f"URL ({target.name})")
    applied.setdefault("metadata", {})["name"] = target.name
    created = Request(method="POST", path=req.path, query=req.query,
                      headers={**req.headers, "content-type": "application/json"},
                      body=json.dumps(applied).encode())
    return create(created, Target(res, target.namespace), ident)


class _Retry(Exception):
    pass


def replace_object(req: Request, target: Target, old: Obj, new: Obj, precondition: Any,
             *, conflict_retry: bool = False) -> Obj:
    res = target.resource
    old_rv = str((old.get("metadata") or {}).get("resourceVersion"))
    if precondition not in (None, "") and str(precondition) != old_rv:
        raise errors.Conflict(res.plural, target.name or "", res.group)
    obj = admission.prepare_update(res, new, old, subresource=target.subresource)
    admission.validate(res, obj, old)
    if admission.semantically_equal(obj, old) or dry_run(req):
        return obj if dry_run(req) else old
    md = obj["metadata"]
    # The last finalizer removed from an object marked for deletion (with no grace left) deletes it;
    # for a namespace, its spec.finalizers must be empty too (the namespace controller empties them).
    old_md = old.get("metadata") or {}
    had_finalizers = bool(old_md.get("finalizers")) or (
        res.key == "core/namespaces" and bool((old.get("spec") or {}).get("finalizers")))
    finalizing = bool(md.get("deletionTimestamp")) and had_finalizers and not md.get("finalizers") \
        and not md.get("deletionGracePeriodSeconds") \
        and not (res.key == "core/namespaces" and (obj.get("spec") or {}).get("finalizers"))
    try:
        if finalizing:
            return store.delete(res.key, key_of(target), obj, int(old_rv), prev=summary(res, old),
                                extra=write_ops(res, old, None))
        return store.update(res.key, key_of(target), obj, int(old_rv), prev=summary(res, old),
                            extra=write_ops(res, old, obj))
    except store.StoreConflict as e:
        if conflict_retry:
            raise _Retry() from e
        raise errors.Conflict(res.plural, target.name or "", res.group) from e
    except Exception as e:  # noqa: BLE001
        raise translate_store_errors(res, target.name or "", e, creating=False) from e


def delete_options(req: Request) -> Obj:
    """DeleteOptions from the body (kubectl sends one) merged with the query parameters."""
    opts: Obj = {}
    if req.body.strip():
        opts = req.parsed_body()
    for name in ("propagationPolicy",):
        if req.arg(name):
            opts[name] = req.arg(name)
    grace = req.int_arg("gracePeriodSeconds")
    if grace is not None:
        opts["gracePeriodSeconds"] = grace
    policy = opts.get("propagationPolicy")
    if policy not in (None, "Background", "Foreground", "Orphan"):
        raise errors.BadRequest(f'propagationPolicy must be Background, Foreground or Orphan, not "{policy}"')
    if opts.get("orphanDependents") is True:
        opts["propagationPolicy"] = "Orphan"
    g = opts.get("gracePeriodSeconds")
    if g is not None and (not isinstance(g, int) or g < 0):
        raise errors.BadRequest("gracePeriodSeconds must be a non-negative integer")
    return opts


DELETE_ATTEMPTS = 5


def delete(req: Request, target: Target, ident: Identity) -> Response:
    """Delete or mark for deletion. Like kube-apiserver, a delete that names no resourceVersion is retried
    when the object changed between our read and our write (a node's status write, say): the client asked
    to delete whatever is there, not a particular version."""
    opts = delete_options(req)
    pinned = bool((opts.get("preconditions") or {}).get("resourceVersion"))
    for attempt in range(DELETE_ATTEMPTS):
        try:
            return _delete_once(req, target, ident, opts)
        except errors.Conflict as e:
            if pinned or attempt == DELETE_ATTEMPTS - 1 or not getattr(e, "stale_write", False):
                raise
    raise AssertionError("unreachable")


def _delete_once(req: Request, target: Target, ident: Identity, opts: Obj) -> Response:
    res = target.resource
    old = read(target)
    authorize(ident, "delete", target, old)
    md = dict(old.get("metadata") or {})
    pre = opts.get("preconditions") or {}
    if pre.get("uid") and pre["uid"] != md.get("uid"):
        raise errors.Conflict(res.plural, target.name or "", res.group,
                              message=f"Precondition failed: UID in precondition: {pre['uid']}, UID in object "
                                      f"meta: {md.get('uid')}")
    if pre.get("resourceVersion") and pre["resourceVersion"] != md.get("resourceVersion"):
        raise errors.Conflict(res.plural, target.name or "", res.group,
                              message=f"Precondition failed: ResourceVersion in precondition: "
                                      f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                      f"{md.get('resourceVersion')}")
    marked = _mark_for_deletion(res, old, opts)
    if dry_run(req):
        return ok(marked or old)
    rv = int(md.get("resourceVersion") or 0)
    try:
        if marked is None:
            return ok(store.delete(res.key, key_of(target), old, rv, prev=summary(res, old),
                                   extra=write_ops(res, old, None)))
        if admission.semantically_equal(marked, old):
            return ok(old, 202)
        return ok(store.update(res.key, key_of(target), marked, rv, prev=summary(res, old)), 202)
    except Exception as e:  # noqa: BLE001
        translated = translate_store_errors(res, target.name or "", e, creating=False)
        translated.stale_write = isinstance(e, store.StoreConflict)  # type: ignore[attr-defined]
        raise translated from e


def _mark_for_deletion(res: ResourceInfo, old: Obj, opts: Obj) -> Obj | None:
    """The object marked for deletion, or None when it can go at once.

    Finalizers keep an object until they are removed (Foreground and Orphan add theirs for the
    garbage collector); a pod bound to a node waits for its node to stop it within the grace period;
    a namespace waits for its contents to be deleted.
    """
    md = dict(old.get("metadata") or {})
    finalizers = list(md.get("finalizers") or [])
    policy = opts.get("propagationPolicy")
    if policy == "Foreground" and "foregroundDeletion" not in finalizers:
        finalizers.append("foregroundDeletion")
    if policy == "Orphan" and "orphan" not in finalizers:
        finalizers.append("orphan")
    spec = old.get("spec") or {}
    grace = opts.get("gracePeriodSeconds")
    if res.key == "core/pods":
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        graceful = bool(spec.get("nodeName")) and grace > 0 and \
            (old.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    else:
        graceful = False
    namespace_terminating = res.key == "core/namespaces" and bool(spec.get("finalizers"))
    if not finalizers and not graceful and not namespace_terminating:
        return None
    if md.get("deletionTimestamp"):
        # Already being deleted: a shorter grace period may still be requested.
        if graceful and grace is not None and grace < int(md.get("deletionGracePeriodSeconds") or grace):
            md["deletionGracePeriodSeconds"] = grace
        md["finalizers"] = finalizers
        return {**old, "metadata": md}
    md["deletionTimestamp"] = admission.now()
    md["deletionGracePeriodSeconds"] = grace if graceful else 0
    md["finalizers"] = finalizers
    if not finalizers:
        md.pop("finalizers")
    marked = {**old, "metadata": md}
    if namespace_terminating:
        marked["status"] = {**(old.get("status") or {}), "phase": "Terminating"}
    return marked
