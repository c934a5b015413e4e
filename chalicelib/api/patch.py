"""Applying PATCH request bodies, one function for every patch type kube-apiserver accepts.

The PATCH handler hands over the stored object, the raw body and Content-Type; this module
decodes the body and returns the patched object, failing with the Status kube-apiserver returns
for the same request (see handlers/patch.go in k8s.io/apiserver):

  * application/json-patch+json           RFC 6902, via the pinned `jsonpatch` library
  * application/merge-patch+json          RFC 7386
  * application/strategic-merge-patch+json  Kubernetes strategic merge (strategic_merge.py)
  * application/apply-patch+yaml          server-side apply, simplified: see `_apply`

What happens after (validation, defaulting, storage) is the caller's business.
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import jsonpatch
import yaml

from chalicelib import errors
from chalicelib.api.strategic_merge import rejected, strategic_merge

Obj = dict[str, Any]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_CONTENT_TYPES: tuple[str, ...] = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)

# kube-apiserver's maxJSONPatchOperations: longer JSON patches are refused with 413.
MAX_JSON_PATCH_OPERATIONS = 10000


def apply_patch(original: Obj, body: bytes, content_type: str, *, kind: str) -> Obj:
    """The object `original` becomes under the PATCH `body`; `original` is left untouched.

    `content_type` is the raw header (parameters such as `; charset=utf-8` are ignored), `kind`
    the object's Kind, which picks the strategic merge keys. Raises errors.UnsupportedMediaType,
    errors.BadRequest (undecodable or ill-shaped body), errors.TooLarge, or a 422 Invalid Status
    for a JSON patch operation that fails, as kube-apiserver does. Server-side apply is a
    simplification (a strategic merge of the applied configuration, no field ownership): see
    `_apply`.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == JSON_PATCH:
        result = _json_patch(original, body)
    elif media_type == MERGE_PATCH:
        result = merge_patch(original, _decode_json(body))
    elif media_type == STRATEGIC_MERGE_PATCH:
        result = strategic_merge(original, _decode_object(body, "a strategic merge patch"), kind)
    elif media_type == APPLY_PATCH:
        result = _apply(original, body, kind)
    else:
        raise errors.UnsupportedMediaType(content_type)
    if not isinstance(result, dict):
        raise errors.BadRequest(f"the patched object must be a JSON object, got {_json_type(result)}")
    return result


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge, null deletes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _json_patch(original: Obj, body: bytes) -> Any:
    operations = _decode_json(body)
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise errors.BadRequest("error decoding patch: a JSON patch must be a JSON array of "
                                f"operation objects, got {_json_type(operations)}")
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise errors.TooLarge(f"The allowed maximum operations in a JSON patch is "
                              f"{MAX_JSON_PATCH_OPERATIONS}, got {len(operations)}")
    try:
        return jsonpatch.JsonPatch(operations).apply(copy.deepcopy(original), in_place=True)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException,
            TypeError, KeyError, IndexError, ValueError) as exc:
        # k8s.io/apiserver endpoints/handlers/patch.go (jsonPatcher.applyJSPatch) decodes the
        # operations first (400, above) and answers any failure while applying them (unknown op,
        # missing member, missing path, failed `test`) with NewGenericServerResponse(422, ...):
        # 422 Invalid with a generic message, the error text dropped. Its TestJSONPatch expects it.
        raise rejected() from exc


def _apply(original: Obj, body: bytes, kind: str) -> Obj:
    """Server-side apply, simplified: the applied configuration is merged into the live object
    like a strategic merge patch (same merge keys; null deletes), without field managers,
    ownership or conflicts. Fields the configuration omits are kept, not removed. On a
    missing object (`original` empty) the result is the applied object itself."""
    try:
        applied = _plain_json(yaml.load(body, Loader=_YAMLLoader))
    except yaml.YAMLError as exc:
        raise errors.BadRequest(f"error decoding YAML: {exc}") from exc
    except ValueError as exc:
        raise errors.BadRequest(f"error decoding YAML: {exc}") from exc
    if not isinstance(applied, dict):
        raise errors.BadRequest(f"error decoding YAML: the applied configuration must be an object, "
                                f"got {_json_type(applied)}")
    metadata = applied.get("metadata")
    if isinstance(metadata, dict) and metadata.get("managedFields") is not None:
        raise errors.BadRequest("metadata.managedFields must be nil")
    expected = original.get("apiVersion")
    if expected and applied.get("apiVersion") != expected:
        raise errors.BadRequest(f"Incorrect version specified in apply patch. Specified patch "
                                f"version: {applied.get('apiVersion', '')}, expected: {expected}")
    return strategic_merge(original, applied, kind)


class _YAMLLoader(yaml.SafeLoader):
    """YAML as sigs.k8s.io/yaml reads it for Kubernetes: timestamps stay strings."""


_YAMLLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _plain_json(value: Any) -> Any:
    """YAML data as JSON data: keys become strings (as Go's YAML-to-JSON does); values JSON
    cannot hold are refused with ValueError."""
    if isinstance(value, dict):
        return {_json_key(k): _plain_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not a valid JSON number")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError(f"unsupported value of type {type(value).__name__}")


def _json_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, str | int | float):
        return str(key)
    raise ValueError(f"unsupported map key of type {type(key).__name__}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _decode_json(body: bytes) -> Any:
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise errors.BadRequest(f"error decoding patch: {exc}") from exc


def _decode_object(body: bytes, what: str) -> Obj:
    patch = _decode_json(body)
    if not isinstance(patch, dict):
        raise errors.BadRequest(f"error decoding patch: {what} must be a JSON object, "
                                f"got {_json_type(patch)}")
    return patch


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string" if isinstance(value, str) else type(value).__name__
