"""Turning a client's object into what gets stored: decoding checks, metadata, defaults, validation.

Create, update and patch all pass through here, so every write path applies the same rules:
the body must be the kind the path names, fields must decode (and, under fieldValidation=Strict,
be known), system metadata is the server's, status is kept apart from spec, defaults are applied
as Kubernetes applies them, and validation lists every bad field at once (422).
"""

from __future__ import annotations

import copy
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from chalicelib import errors
from chalicelib.types import meta, schema
from chalicelib.types.registry import ResourceInfo

Obj = dict[str, Any]

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATION_KINDS = frozenset({"apps/deployments", "apps/replicasets", "core/pods"})
FIELD_VALIDATION = ("Strict", "Warn", "Ignore")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_kind(res: ResourceInfo, obj: Obj, *, expect_kind: str | None = None,
               expect_api_version: str | None = None) -> None:
    """The body names the kind and apiVersion the path serves (or leaves them out)."""
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    want_kind = expect_kind or res.kind
    want_av = expect_api_version or res.api_version
    if kind not in (None, "") and kind != want_kind:
        raise errors.BadRequest(f"the kind in the body ({kind}) does not match the expected kind "
                                f"({want_kind}) for this path")
    if api_version not in (None, "") and api_version != want_av:
        raise errors.BadRequest(f"the API version in the data ({api_version}) does not match the expected "
                                f"API version ({want_av})")
    md = obj.get("metadata")
    if md is not None and not isinstance(md, dict):
        raise errors.BadRequest("metadata must be an object")


def check_fields(res: ResourceInfo, obj: Obj, field_validation: str | None) -> list[str]:
    """Decode errors are always 400; unknown fields are 400 under Strict, warnings under Warn."""
    mode = field_validation or "Warn"
    if mode not in FIELD_VALIDATION:
        raise errors.BadRequest(f'fieldValidation must be one of {", ".join(FIELD_VALIDATION)}, not "{mode}"')
    problems = schema.decode_errors(obj, res.schema_name)
    if problems:  # kube-apiserver stops at the first value it cannot decode
        raise errors.BadRequest(schema.decode_failure_message(res.kind, res.version, problems[0]))
    if mode == "Ignore":
        return []
    unknown = schema.unknown_fields(obj, res.schema_name)
    if unknown and mode == "Strict":
        raise errors.BadRequest(schema.decode_failure_message(res.kind, res.version,
                                                              schema.strict_error_detail(unknown)))
    return [f'unknown field "{u}"' for u in unknown]


def generate_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))


def prepare_create(res: ResourceInfo, obj: Obj, namespace: str | None) -> Obj:
    """A new object with server metadata set, status initialised, defaults applied; not yet validated."""
    obj = copy.deepcopy(obj)
    obj["kind"] = res.kind
    obj["apiVersion"] = res.api_version
    md = obj.setdefault("metadata", {})
    if res.namespaced:
        body_ns = md.get("namespace")
        if body_ns and namespace and body_ns != namespace:
            raise errors.BadRequest("the namespace of the provided object does not match the namespace "
                                    "sent on the request")
        md["namespace"] = namespace
    else:
        md.pop("namespace", None)
    if not md.get("name") and md.get("generateName"):
        md["name"] = generate_name(str(md["generateName"]))
    for system_field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                         "selfLink", "managedFields"):
        md.pop(system_field, None)
    md["uid"] = str(uuid.uuid4())
    md["creationTimestamp"] = now()
    if res.key in GENERATION_KINDS:
        md["generation"] = 1
    else:
        md.pop("generation", None)
    if res.status_subresource:
        obj.pop("status", None)
        if res.initial_status:
            obj["status"] = res.initial_status(obj)
    res.default(obj)
    return obj


def prepare_update(res: ResourceInfo, new: Obj, old: Obj, *, subresource: str | None) -> Obj:
    """The object to store when `new` replaces `old` through the main resource or /status."""
    new = copy.deepcopy(new)
    new["kind"] = res.kind
    new["apiVersion"] = res.api_version
    md = new.setdefault("metadata", {})
    old_md = old.get("metadata") or {}
    if not isinstance(md, dict):
        raise errors.BadRequest("metadata must be an object")
    for immutable in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                      "namespace", "generation"):
        if immutable in old_md:
            md[immutable] = old_md[immutable]
        else:
            md.pop(immutable, None)
    md.pop("selfLink", None)
    if subresource == "finalize":
        # namespaces/<name>/finalize changes spec.finalizers only (the namespace controller's last step).
        kept = copy.deepcopy(old)
        kept.setdefault("spec", {})["finalizers"] = list((new.get("spec") or {}).get("finalizers") or [])
        kept["metadata"]["resourceVersion"] = md.get("resourceVersion")
        return kept
    if subresource == "status":
        # /status ignores everything but status (labels and annotations included, as for pods).
        kept = copy.deepcopy(old)
        kept["status"] = new.get("status") or {}
        kept["metadata"]["resourceVersion"] = md.get("resourceVersion")
        return kept
    if res.status_subresource:
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    res.default(new)
    if res.key in GENERATION_KINDS and _spec_of(new) != _spec_of(old):
        md["generation"] = int(old_md.get("generation") or 1) + 1
    return new


def _spec_of(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


def validate(res: ResourceInfo, obj: Obj, old: Obj | None) -> None:
    """422 Invalid listing every bad field, or nothing."""
    md = obj.get("metadata") or {}
    causes = meta.validate_metadata(obj, namespaced=res.namespaced,
                                    name_is_label=res.plural in ("namespaces", "services"))
    if old is not None:
        for name in ("name",):
            if md.get(name) != (old.get("metadata") or {}).get(name):
                causes.append(errors.Cause(f"metadata.{name}", "field is immutable"))
    causes.extend(res.validate(obj, old))
    if causes:
        raise errors.Invalid(res.kind, str(md.get("name") or md.get("generateName") or ""), causes,
                             group=res.group)


def semantically_equal(a: Obj, b: Obj) -> bool:
    """True when two objects differ at most in resourceVersion (an update that changes nothing)."""
    def strip(o: Obj) -> Obj:
        c = dict(o)
        c["metadata"] = {k: v for k, v in (o.get("metadata") or {}).items() if k != "resourceVersion"}
        return c
    return strip(a) == strip(b)
