"""The OpenAPI v3 documents Skiff publishes at /openapi/v3 and /openapi/v3/api(s)/<group>/<version>.

Why this exists: kubectl (1.27+) decides per kind whether the server does field validation by
reading these documents. For `kubectl apply/create/replace` with its default `--validate=strict`
it fetches `/openapi/v3`, follows `paths["api/v1"].serverRelativeURL` (or `apis/<g>/<v>`) to the
group-version document, and looks for a PATCH operation whose `x-kubernetes-group-version-kind`
is the object's group/version/kind. If that operation lists a query parameter named
`fieldValidation`, kubectl sends `?fieldValidation=Strict` and leaves validation to the server;
if not (or the documents are missing), it falls back to client-side validation, which needs
/openapi/v2 and fails against a server without it. kubectl stops at the first PATCH operation it
finds for the kind, in map order, so every PATCH of a kind (main resource and /status) declares it.

The same documents serve `kubectl explain` (it finds the kind's schema through the array-valued
`x-kubernetes-group-version-kind` of `components.schemas`) and kubectl's client-side apply, which
builds strategic merge patches from them when the PATCH operation accepts
`application/strategic-merge-patch+json`.

Paths follow kube-apiserver's layout: collection, item, subresources, the all-namespaces list of
namespaced kinds and the group-version root; watching is `?watch=true` on list paths (the
deprecated /watch/ paths are not published). Each document is computed once per process.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import deque
from typing import Any

from chalicelib.types import registry
from chalicelib.types.registry import ResourceInfo
from chalicelib.types.schema import all_schemas, ref_name

Doc = dict[str, Any]

_REF = "#/components/schemas/"
STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
PATCH = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
DELETE_OPTIONS = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
API_RESOURCE_LIST = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList"
SCALE = "io.k8s.api.autoscaling.v1.Scale"
BINDING = "io.k8s.api.core.v1.Binding"

PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json",
               "application/merge-patch+json", "application/strategic-merge-patch+json")


def _param(name: str, kind: str, description: str, where: str = "query") -> Doc:
    param: Doc = {"name": name, "in": where, "description": description,
                  "schema": {"type": kind, "uniqueItems": True}}
    if where == "path":
        param["required"] = True
    return param


PARAMS: dict[str, Doc] = {p["name"]: p for p in (
    _param("name", "string", "name of the object", "path"),
    _param("namespace", "string", "object name and auth scope, such as for teams and projects", "path"),
    _param("pretty", "string", "If 'true', then the output is pretty printed."),
    _param("dryRun", "string", "When present, indicates that modifications should not be persisted. "
           "Valid values are: - All: all dry run stages will be processed"),
    _param("fieldManager", "string", "fieldManager is a name associated with the actor or entity that "
           "is making these changes. Required for apply requests (application/apply-patch)."),
    _param("fieldValidation", "string", "fieldValidation instructs the server on how to handle objects "
           "in the request containing unknown or duplicate fields. Valid values are: - Ignore: drop "
           "them silently. - Warn: drop them and send a warning for each (the default). - Strict: "
           "fail the request with a BadRequest error naming them."),
    _param("force", "boolean", "Force is going to \"force\" Apply requests: re-acquire conflicting "
           "fields owned by other managers. Must be unset for non-apply patch requests."),
    _param("gracePeriodSeconds", "integer", "The duration in seconds before the object should be "
           "deleted. Zero means delete immediately; unset means the default for the type."),
    _param("orphanDependents", "boolean", "Deprecated: use propagationPolicy. Should the dependent "
           "objects be orphaned."),
    _param("propagationPolicy", "string", "Whether and how garbage collection will be performed: "
           "'Orphan', 'Background' or 'Foreground'."),
    _param("labelSelector", "string", "A selector to restrict the list of returned objects by their "
           "labels. Defaults to everything."),
    _param("fieldSelector", "string", "A selector to restrict the list of returned objects by their "
           "fields. Defaults to everything."),
    _param("limit", "integer", "limit is a maximum number of responses to return for a list call; "
           "the server sets `continue` in the list metadata when more items exist."),
    _param("continue", "string", "The continue token from a previous list response with identical "
           "query parameters, to retrieve the next chunk."),
    _param("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions "
           "a request may be served from. Defaults to unset"),
    _param("resourceVersionMatch", "string", "resourceVersionMatch determines how resourceVersion is "
           "applied to list calls. Defaults to unset"),
    _param("timeoutSeconds", "integer", "Timeout for the list/watch call, regardless of activity."),
    _param("watch", "boolean", "Watch for changes to the described resources and return them as a "
           "stream of add, update, and remove notifications. Specify resourceVersion."),
    _param("allowWatchBookmarks", "boolean", "allowWatchBookmarks requests watch events with type "
           "\"BOOKMARK\". Servers may ignore it."),
    _param("sendInitialEvents", "boolean", "With watch=true, begin the stream with synthetic ADDED "
           "events for the current state, then a BOOKMARK."),
)}

LIST_PARAMS = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
               "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
DELETE_PARAMS = ("dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy")
COLLECTION_DELETE_PARAMS = (*DELETE_PARAMS, "continue", "fieldSelector", "labelSelector", "limit",
                            "resourceVersion", "resourceVersionMatch", "sendInitialEvents",
                            "timeoutSeconds")


def _ref(name: str) -> Doc:
    return {"$ref": _REF + name}


def _content(schema_name: str, *types: str) -> Doc:
    return {t: {"schema": _ref(schema_name)} for t in types or ("application/json",)}


def _responses(schema_name: str, *codes: str, stream: bool = False) -> Doc:
    types = ("application/json", "application/json;stream=watch") if stream else ("application/json",)
    words = {"200": "OK", "201": "Created", "202": "Accepted"}
    return {code: {"description": words[code], "content": _content(schema_name, *types)}
            for code in codes or ("200",)}


def _params(names: tuple[str, ...]) -> list[Doc]:
    return [PARAMS[n] for n in names]


def _camel_group(group: str) -> str:
    return "Core" if not group else "".join(p.capitalize() for p in group.split(".")[0].split("-"))


def _tag(group: str, version: str) -> str:
    return f"{(group or 'core').split('.')[0].replace('-', '_')}_{version}"


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "kind": kind, "version": version}


class _Builder:
    """Collects the paths of one group-version."""

    def __init__(self, group: str, version: str) -> None:
        self.group = group
        self.version = version
        self.prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
        self.paths: dict[str, Doc] = {}

    def op(self, path: str, method: str, *, action: str, op_id: str, description: str,
           gvk: dict[str, str] | None, params: tuple[str, ...] = (), body: Doc | None = None,
           responses: Doc) -> None:
        operation: Doc = {
            "description": description,
            "operationId": op_id,
            "parameters": _params(params),
            "responses": responses,
            "tags": [_tag(self.group, self.version)],
            "x-kubernetes-action": action,
        }
        if gvk is not None:
            operation["x-kubernetes-group-version-kind"] = gvk
        if body is not None:
            operation["requestBody"] = {"content": body, "required": True}
        if not operation["parameters"]:
            del operation["parameters"]
        self.paths.setdefault(path, {})[method] = operation

    def path_params(self, path: str, names: tuple[str, ...]) -> None:
        self.paths.setdefault(path, {})["parameters"] = _params(names)

    def resource(self, res: ResourceInfo) -> None:
        gv = _camel_group(self.group) + self.version.capitalize()
        scope = "Namespaced" if res.namespaced else ""
        kind, gvk = res.kind, _gvk(res.group, res.version, res.kind)
        base = f"{self.prefix}/namespaces/{{namespace}}/{res.plural}" if res.namespaced \
            else f"{self.prefix}/{res.plural}"
        item = base + "/{name}"
        scope_params: tuple[str, ...] = ("namespace",) if res.namespaced else ()

        self.path_params(base, (*scope_params, "pretty"))
        self.op(base, "get", action="list", op_id=f"list{gv}{scope}{kind}", gvk=gvk,
                description=f"list or watch objects of kind {kind}", params=LIST_PARAMS,
                responses=_responses(res.schema_name + "List", stream=True))
        self.op(base, "post", action="post", op_id=f"create{gv}{scope}{kind}", gvk=gvk,
                description=f"create a {kind}", params=WRITE_PARAMS,
                body=_content(res.schema_name, "*/*"),
                responses=_responses(res.schema_name, "200", "201", "202"))
        if res.plural != "namespaces":  # kube-apiserver has no deletecollection for namespaces
            self.op(base, "delete", action="deletecollection", op_id=f"delete{gv}Collection{scope}{kind}",
                    gvk=gvk, description=f"delete collection of {kind}", params=COLLECTION_DELETE_PARAMS,
                    body=_content(DELETE_OPTIONS, "*/*"), responses=_responses(STATUS))

        self.path_params(item, ("name", *scope_params, "pretty"))
        self.op(item, "get", action="get", op_id=f"read{gv}{scope}{kind}", gvk=gvk,
                description=f"read the specified {kind}", responses=_responses(res.schema_name))
        self.op(item, "put", action="put", op_id=f"replace{gv}{scope}{kind}", gvk=gvk,
                description=f"replace the specified {kind}", params=WRITE_PARAMS,
                body=_content(res.schema_name, "*/*"), responses=_responses(res.schema_name, "200", "201"))
        self.op(item, "patch", action="patch", op_id=f"patch{gv}{scope}{kind}", gvk=gvk,
                description=f"partially update the specified {kind}", params=(*WRITE_PARAMS, "force"),
                body=_content(PATCH, *PATCH_TYPES), responses=_responses(res.schema_name, "200", "201"))
        self.op(item, "delete", action="delete", op_id=f"delete{gv}{scope}{kind}", gvk=gvk,
                description=f"delete a {kind}", params=DELETE_PARAMS,
                body=_content(DELETE_OPTIONS, "*/*"), responses=_responses(STATUS, "200", "202"))

        for sub in sorted(res.subresources):
            self.subresource(res, sub, item, scope_params, gv, scope)

        if res.namespaced:
            everywhere = f"{self.prefix}/{res.plural}"
            self.path_params(everywhere, ("pretty",))
            self.op(everywhere, "get", action="list", op_id=f"list{gv}{kind}ForAllNamespaces", gvk=gvk,
                    description=f"list or watch objects of kind {kind}", params=LIST_PARAMS,
                    responses=_responses(res.schema_name + "List", stream=True))

    def subresource(self, res: ResourceInfo, sub: str, item: str, scope_params: tuple[str, ...],
                    gv: str, scope: str) -> None:
        path = f"{item}/{sub}"
        name = f"{res.kind}{sub.capitalize()}"
        self.path_params(path, ("name", *scope_params, "pretty"))
        if sub == "binding":  # POST-only; the body is a core/v1 Binding
            self.op(path, "post", action="post", op_id=f"create{gv}{scope}{name}",
                    gvk=_gvk("", "v1", "Binding"), description=f"create binding of a {res.kind}",
                    params=WRITE_PARAMS, body=_content(BINDING, "*/*"),
                    responses=_responses(BINDING, "200", "201", "202"))
            return
        if sub == "finalize":  # PUT-only
            self.op(path, "put", action="put", op_id=f"replace{gv}{scope}{name}",
                    gvk=_gvk(res.group, res.version, res.kind),
                    description=f"replace finalize of the specified {res.kind}", params=WRITE_PARAMS,
                    body=_content(res.schema_name, "*/*"),
                    responses=_responses(res.schema_name, "200", "201"))
            return
        if sub == "scale":
            schema_name, gvk = SCALE, _gvk("autoscaling", "v1", "Scale")
        else:
            schema_name, gvk = res.schema_name, _gvk(res.group, res.version, res.kind)
        self.op(path, "get", action="get", op_id=f"read{gv}{scope}{name}", gvk=gvk,
                description=f"read {sub} of the specified {res.kind}", responses=_responses(schema_name))
        self.op(path, "put", action="put", op_id=f"replace{gv}{scope}{name}", gvk=gvk,
                description=f"replace {sub} of the specified {res.kind}", params=WRITE_PARAMS,
                body=_content(schema_name, "*/*"), responses=_responses(schema_name, "200", "201"))
        self.op(path, "patch", action="patch", op_id=f"patch{gv}{scope}{name}", gvk=gvk,
                description=f"partially update {sub} of the specified {res.kind}",
                params=(*WRITE_PARAMS, "force"), body=_content(PATCH, *PATCH_TYPES),
                responses=_responses(schema_name, "200", "201"))

    def root(self) -> None:
        path = self.prefix + "/"
        self.op(path, "get", action="get", op_id=f"get{_camel_group(self.group)}"
                f"{self.version.capitalize()}APIResources", gvk=None, description="get available resources",
                responses=_responses(API_RESOURCE_LIST))


def _referenced(node: Any, into: set[str]) -> None:
    """Every definition name a JSON fragment points at with $ref (not transitively)."""
    if isinstance(node, dict):
        name = ref_name(node)
        if name is not None:
            into.add(name)
        for value in node.values():
            _referenced(value, into)
    elif isinstance(node, list):
        for value in node:
            _referenced(value, into)


def _closure(roots: set[str]) -> dict[str, Doc]:
    schemas = all_schemas()
    seen: dict[str, Doc] = {}
    queue = deque(sorted(roots))
    while queue:
        name = queue.popleft()
        if name in seen:
            continue
        seen[name] = schemas[name]
        found: set[str] = set()
        _referenced(schemas[name], found)
        queue.extend(sorted(found - seen.keys()))
    return dict(sorted(seen.items()))


def _gv_key(group: str, version: str) -> str:
    """The index key and URL suffix kubectl uses: `api/v1`, `apis/apps/v1`."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


@functools.cache
def _built(group: str, version: str) -> tuple[Doc, str] | None:
    resources = registry.resources_in(group, version)
    if not resources:
        return None
    builder = _Builder(group, version)
    builder.root()
    for res in resources:
        builder.resource(res)
    names: set[str] = set()
    _referenced(builder.paths, names)
    doc: Doc = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": dict(sorted(builder.paths.items())),
        "components": {"schemas": _closure(names)},
    }
    encoded = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return doc, hashlib.sha512(encoded).hexdigest().upper()


def openapi_v3_document(group: str, version: str) -> dict[str, Any] | None:
    """The OpenAPI 3.0 document of one served group-version (group "" is core), or None. Do not mutate."""
    built = _built(group, version)
    return built[0] if built else None


def openapi_v3_hash(group: str, version: str) -> str | None:
    """Content hash of a group-version document (uppercase hex SHA-512), usable as an ETag."""
    built = _built(group, version)
    return built[1] if built else None


@functools.cache
def openapi_v3_index() -> dict[str, Any]:
    """The /openapi/v3 discovery document: each served group-version and its hashed URL."""
    paths: dict[str, Doc] = {}
    for group, version in registry.group_versions():
        key = _gv_key(group, version)
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={openapi_v3_hash(group, version)}"}
    return {"paths": paths}
