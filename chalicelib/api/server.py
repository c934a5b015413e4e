"""The API's single entry point: a Request in, a Response out.

Routing is by path shape (chalicelib.api.paths), so app.py needs only a few catch-all routes and
tests can call `handle` directly. Every failure leaves as a Kubernetes Status; an unexpected one is
logged (never with the token) and answered 500.
"""

from __future__ import annotations

import logging

from chalicelib import bootstrap, errors
from chalicelib.api import collections, credentials, discovery, logs, openapi, subresources, verbs
from chalicelib.api.auth import Identity, authenticate
from chalicelib.api.http import Request, Response, error_response, ok
from chalicelib.api.paths import Target, parse
from chalicelib.types import registry

log = logging.getLogger("skiff.api")


def handle(req: Request) -> Response:
    try:
        return _route(req)
    except errors.APIError as e:
        return error_response(e)
    except Exception as e:  # noqa: BLE001 - the client gets a Status, the log gets the trace
        log.exception("unhandled error on %s %s", req.method, req.path)
        return error_response(errors.InternalError(type(e).__name__))


def _route(req: Request) -> Response:
    path = "/" + req.path.strip("/")
    public = _public(req, path)
    if public is not None:
        return public
    ident = authenticate(req.headers.get("authorization"))
    bootstrap.ensure_builtin_objects()
    if path == credentials.PATH and req.method == "POST":
        return credentials.exchange(req, ident)
    parts = path.strip("/").split("/")
    if req.method == "POST" and len(parts) == 5 and parts[:3] == ["api", "v1", "namespaces"] \
            and parts[4] == "bindings":
        return _legacy_binding(req, parts[3], ident)
    if len(parts) == 7 and parts[:3] == ["api", "v1", "namespaces"] and parts[4:7:2] == ["pods", "log"]:
        if req.method != "GET":  # pods/log is read-only and not in the registry's subresources
            raise errors.MethodNotAllowed(f"{req.method} is not supported on pods/log; use GET")
        return logs.pod_log(req, Target(registry.PODS, parts[3], parts[5], "log"), ident)
    target = parse(path)
    if target is None:
        raise errors.PathNotFound(path)
    return _dispatch(req, target, ident)


def _legacy_binding(req: Request, namespace: str, ident: Identity) -> Response:
    """POST /api/v1/namespaces/<ns>/bindings (the pod named in the body): the older binding path."""
    name = (req.parsed_body().get("metadata") or {}).get("name")
    if not name or not isinstance(name, str):
        raise errors.BadRequest("a Binding posted to bindings must name its pod in metadata.name")
    return subresources.bind(req, Target(registry.PODS, namespace, name, "binding"), ident)


def _public(req: Request, path: str) -> Response | None:
    """Discovery, OpenAPI and health: readable without a token, as kube-apiserver allows."""
    parts = [p for p in path.split("/") if p]
    if req.method != "GET":
        if parts[:1] in (["api"], ["apis"]) and len(parts) <= 3 and not (len(parts) == 3 and parts[0] == "api"):
            raise errors.MethodNotAllowed(f"{req.method} is not allowed on {path}")
        return None
    if path in ("/healthz", "/readyz", "/livez"):
        return Response(200, "ok", {"Content-Type": "text/plain"})
    if path == "/version":
        return ok(discovery.version())
    if path == "/api":
        return ok(discovery.core_versions())
    if path == "/apis":
        return ok(discovery.groups())
    if path == "/api/v1":
        return ok(discovery.resource_list("", "v1"))
    if len(parts) == 2 and parts[0] == "apis":
        found = discovery.group(parts[1])
        if found is None:
            raise errors.PathNotFound(path)
        return ok(found)
    if len(parts) == 3 and parts[0] == "apis":
        body = discovery.resource_list(parts[1], parts[2])
        if body is None:
            raise errors.PathNotFound(path)
        return ok(body)
    if path == "/openapi/v3":
        return ok(openapi.openapi_v3_index())
    if parts[:2] == ["openapi", "v3"]:
        rest = parts[2:]
        doc = None
        if rest == ["api", "v1"]:
            doc = openapi.openapi_v3_document("", "v1")
        elif len(rest) == 3 and rest[0] == "apis":
            doc = openapi.openapi_v3_document(rest[1], rest[2])
        if doc is None:
            raise errors.PathNotFound(path)
        return ok(doc)
    if path == "/openapi/v2":
        raise errors.PathNotFound(path)
    return None


def _dispatch(req: Request, target: Target, ident: Identity) -> Response:
    m = req.method
    sub = target.subresource
    if sub == "binding":
        if m != "POST":
            raise errors.MethodNotAllowed(f"{m} is not supported on pods/binding; use POST")
        return subresources.bind(req, target, ident)
    if sub == "scale":
        return subresources.scale(req, target, ident)
    if target.name is None:
        if m == "GET":
            return collections.list_objects(req, target, ident)
        if m == "POST":
            return verbs.create(req, target, ident)
        if m == "DELETE" and target.subresource is None:
            return collections.delete_collection(req, target, ident)
        raise errors.MethodNotAllowed(f"{m} is not supported on a collection")
    if m == "GET":
        if req.flag("watch"):
            raise errors.MethodNotAllowed("watch a collection with a fieldSelector on metadata.name instead")
        return verbs.get(req, target, ident)
    if m == "PUT":
        return verbs.update(req, target, ident)
    if m == "PATCH":
        return verbs.patch(req, target, ident)
    if m == "DELETE" and sub is None:
        return verbs.delete(req, target, ident)
    raise errors.MethodNotAllowed(f"{m} is not supported on {target.resource.plural}"
                                  f"{'/' + sub if sub else ''}")
