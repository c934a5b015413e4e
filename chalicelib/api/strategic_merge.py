"""Kubernetes strategic merge patch, as kube-apiserver applies it.

kubectl (apply, edit, patch, scale, label, annotate, rollout ...) sends most of its writes as a
strategic merge patch: a JSON merge patch whose lists merge element by element when the API type
declares a merge key (`patchMergeKey`/`patchStrategy` Go struct tags), plus directives
(`$patch`, `$setElementOrder/...`, `$deleteFromPrimitiveList/...`, `$retainKeys`). Skiff has no Go
structs, so the tags live in `PATCH_STRATEGIES`; the merge rules follow apimachinery's
`pkg/util/strategicpatch` (server side: parallel lists merged, unmatched nulls ignored).

Deliberate differences from upstream, all on inputs kubectl never sends:
  * `$patch: merge` is accepted as "merge as usual" in maps and list elements (upstream rejects it
    with "unknown patch type" / "merging lists cannot yet be specified in the patch").
  * A value added where the original has nothing is cleaned as if merged into an empty value
    (nulls dropped, directives applied); upstream copies it verbatim and lets its typed decoding
    drop the leftovers, which Skiff, storing plain dicts, cannot rely on.
  * `$deleteFromPrimitiveList/x` for a missing `x` does nothing; upstream errors become 400 Bad
    Request instead of 500 when the request is at fault.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from chalicelib import errors

Obj = dict[str, Any]
# (patchStrategy, patchMergeKey), spelled exactly as the Go struct tags upstream.
PatchMeta = tuple[str, str]

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder"
DELETE_FROM_LIST = "$deleteFromPrimitiveList"

# kube-apiserver answers a list of lists, and a failing JSON patch operation, with
# NewGenericServerResponse(422, ...), which keeps only this generic message.
REJECTED_MESSAGE = "the server rejected our request due to an error in our request"


def rejected() -> errors.APIError:
    """The 422 Invalid Status kube-apiserver returns for a patch it cannot apply."""
    return errors.APIError(message=REJECTED_MESSAGE, code=422, reason="Invalid")


def _under(prefix: str, table: dict[str, PatchMeta]) -> dict[str, PatchMeta]:
    return {f"{prefix}.{path}": meta for path, meta in table.items()}


# Field paths (dotted, list elements add no segment) of every list or map with a patch strategy,
# checked against k8s.io/api core/v1 and apps/v1 types.go. Lists not named here (tolerations,
# node taints, podCIDR-less lists, containerStatuses, envFrom, resizePolicy, resources.claims,
# readinessGates, ...) carry no strategy upstream, so a patch replaces them whole.
_OBJECT_META: dict[str, PatchMeta] = {
    "ownerReferences": ("merge", "uid"),
    "finalizers": ("merge", ""),  # a list of strings: patch entries are unioned in
}
_CONTAINER: dict[str, PatchMeta] = {
    "ports": ("merge", "containerPort"),
    "env": ("merge", "name"),
    "volumeMounts": ("merge", "mountPath"),
    "volumeDevices": ("merge", "devicePath"),
}
_POD_SPEC: dict[str, PatchMeta] = {
    "volumes": ("merge,retainKeys", "name"),
    "initContainers": ("merge", "name"),
    "containers": ("merge", "name"),
    "ephemeralContainers": ("merge", "name"),
    **_under("initContainers", _CONTAINER),
    **_under("containers", _CONTAINER),
    **_under("ephemeralContainers", _CONTAINER),
    "imagePullSecrets": ("merge", "name"),
    "hostAliases": ("merge", "ip"),
    "topologySpreadConstraints": ("merge", "topologyKey"),
    "schedulingGates": ("merge", "name"),
    "resourceClaims": ("merge,retainKeys", "name"),
}
_POD_STATUS: dict[str, PatchMeta] = {
    "conditions": ("merge", "type"),
    "hostIPs": ("merge", "ip"),
    "podIPs": ("merge", "ip"),
    "resourceClaimStatuses": ("merge,retainKeys", "name"),
}
_POD_TEMPLATE: dict[str, PatchMeta] = {**_under("metadata", _OBJECT_META), **_under("spec", _POD_SPEC)}
_META = _under("metadata", _OBJECT_META)
_CONDITIONS: dict[str, PatchMeta] = {"status.conditions": ("merge", "type")}

PATCH_STRATEGIES: dict[str, dict[str, PatchMeta]] = {
    "Pod": {**_META, **_under("spec", _POD_SPEC), **_under("status", _POD_STATUS)},
    "Deployment": {**_META, "spec.strategy": ("retainKeys", ""),
                   **_under("spec.template", _POD_TEMPLATE), **_CONDITIONS},
    "ReplicaSet": {**_META, **_under("spec.template", _POD_TEMPLATE), **_CONDITIONS},
    "Node": {**_META, "spec.podCIDRs": ("merge", ""), **_CONDITIONS,
             "status.addresses": ("merge", "type")},
    "Service": {**_META, "spec.ports": ("merge", "port"), **_CONDITIONS},
    "Namespace": {**_META, **_CONDITIONS},
    "ConfigMap": _META,
    "Event": _META,
    "Lease": _META,
}

_ABSENT = object()


def strategic_merge(original: Obj, patch: Obj, kind: str) -> Obj:
    """Apply a strategic merge `patch` to `original` (neither is modified) for an object of `kind`.

    Kinds missing from PATCH_STRATEGIES have no merge keys: their maps merge and lists replace.
    Raises errors.BadRequest for a malformed patch and a 422 (see `rejected`) where upstream does.
    """
    merger = _Merger(PATCH_STRATEGIES.get(kind, {}))
    return merger.merge_map(copy.deepcopy(original), copy.deepcopy(patch), "")


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _bad(message: str) -> errors.BadRequest:
    return errors.BadRequest(f"error applying strategic merge patch: {message}")


def _same(a: Any, b: Any) -> bool:
    """Equality as Go compares decoded JSON values: 1, 1.0 and true are all different."""
    return type(a) is type(b) and bool(a == b)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _directive_key(key: str, prefix: str) -> str:
    """`x` from `<prefix>/x`; a key that only starts like a directive is an error, as upstream."""
    head, sep, field = key.partition("/")
    if head != prefix or not sep:
        what = "primitive list" if prefix == DELETE_FROM_LIST else "setElementOrder list"
        raise _bad(f"invalid patch format of {what}: {key!r}")
    return field


class _Merger:
    """One patch application; `table` is the kind's PATCH_STRATEGIES entry."""

    def __init__(self, table: dict[str, PatchMeta]) -> None:
        self.table = table

    def merge_rule(self, path: str) -> tuple[bool, str]:
        """(the list at `path` merges, its merge key or "" for a list of primitives)."""
        strategy, key = self.table.get(path, ("", ""))
        return "merge" in strategy.split(","), key

    # ---- maps -----------------------------------------------------------------------------

    def merge_map(self, original: Obj, patch: Obj, path: str) -> Obj:
        if DIRECTIVE in patch:
            directive = patch.pop(DIRECTIVE)
            if directive == "replace":
                return self.merge_map({}, patch, path)
            if directive == "delete":
                return {}
            if directive != "merge":
                raise _bad(f"unknown patch type: {directive} in map: {_show(patch)}")
        self._retain_keys(original, patch)
        self._set_element_order(original, patch, path)
        deletions: list[tuple[str, Any]] = []
        for key, value in patch.items():
            if key.startswith(DELETE_FROM_LIST):
                deletions.append((key, value))
                continue
            child = _join(path, key)
            current = original.get(key, _ABSENT)
            if value is None:
                original.pop(key, None)
            elif isinstance(current, dict) and isinstance(value, dict):
                original[key] = self.merge_map(current, value, child)
            elif isinstance(current, list) and isinstance(value, list):
                original[key] = self.merge_list(current, value, child)
            else:
                original[key] = self.fresh(value, child)
        for key, values in deletions:
            self._delete_from_list(original, _directive_key(key, DELETE_FROM_LIST), values)
        return original

    def _retain_keys(self, original: Obj, patch: Obj) -> None:
        if RETAIN_KEYS not in patch:
            return
        keep = patch.pop(RETAIN_KEYS)
        if not isinstance(keep, list):
            raise _bad(f"invalid patch format of retainKeys: {_show(keep)}")
        for key, value in patch.items():
            directive = key.startswith(DELETE_FROM_LIST) or key.startswith(SET_ORDER)
            if value is not None and not directive and key not in keep:
                raise _bad(f"invalid patch format of retainKeys: {key!r} is not in {_show(keep)}")
        for key in [k for k in original if k not in keep]:
            del original[key]

    def _set_element_order(self, original: Obj, patch: Obj, path: str) -> None:
        for key in [k for k in patch if k.startswith(SET_ORDER)]:
            order = patch.pop(key)
            field = _directive_key(key, SET_ORDER)
            if not isinstance(order, list):
                raise _bad(f"invalid patch format of setElementOrder list: {_show(order)}")
            child = _join(path, field)
            merges, merge_key = self.merge_rule(child)
            before = original.get(field)
            value = patch.get(field, _ABSENT)
            if not merges or value is None or not isinstance(before, list | None) \
                    or (value is not _ABSENT and not isinstance(value, list)):
                continue  # not an ordered merge list: the field is handled like any other key
            if isinstance(value, list):
                self._check_order(value, order, merge_key)
                del patch[field]
                merged = self.merge_list(before, value, child) if before is not None \
                    else self.fresh(value, child)
            elif before is not None:
                merged = before
            else:
                continue
            original[field] = self._ordered(merged, order, before or [], merge_key)

    def _check_order(self, patch_list: list[Any], order: list[Any], key: str) -> None:
        """Upstream's check: the patch's items appear in $setElementOrder, in the same order."""
        items = [el for el in patch_list if not (isinstance(el, dict) and DIRECTIVE in el)]
        i = j = 0
        while i < len(items) and j < len(order):
            if self._key_of(items[i], key) == self._key_of(order[j], key):
                i += 1
            j += 1
        if i < len(items):
            raise _bad(f"the order in patch list {_show(patch_list)} doesn't match "
                       f"{SET_ORDER} list {_show(order)}")

    def _key_of(self, item: Any, key: str) -> tuple[str, Any]:
        """What identifies a list item: its merge key's value, or the item itself."""
        if not key:
            return type(item).__name__, item
        if not isinstance(item, dict) or key not in item:
            raise _bad(f"map: {_show(item)} does not contain declared merge key: {key}")
        return type(item[key]).__name__, item[key]

    # ---- lists ----------------------------------------------------------------------------

    def merge_list(self, original: list[Any], patch: list[Any], path: str) -> list[Any]:
        merges, key = self.merge_rule(path)
        if not merges:
            return self.fresh(patch, path)
        if not original and not patch:
            return []
        if self._element_kind(original + patch, path) != "dict":
            merged: list[Any] = []
            for item in original + patch:
                if not any(_same(item, seen) for seen in merged):
                    merged.append(item)
            return self._ordered(merged, patch, original, "")
        if not key:
            raise _bad(f"cannot merge lists without merge key for {path}")
        original, kept, replace = self._special_elements(original, patch, key)
        if replace:
            return [self.fresh(el, path) for el in kept]
        merged = list(original)
        for el in kept:
            wanted = self._key_of(el, key)
            index = self._position(merged, wanted, key)
            if index >= 0:
                merged[index] = self.merge_map(merged[index], el, path)
            else:
                merged.append(self.fresh(el, path))
        return self._ordered(merged, kept, original, key)

    def _special_elements(self, original: list[Any], patch: list[Any],
                          key: str) -> tuple[list[Any], list[Obj], bool]:
        """Apply `$patch: delete` elements; return (original, the other elements, replace seen)."""
        kept: list[Obj] = []
        replace = False
        for el in patch:
            if DIRECTIVE not in el:
                kept.append(el)
                continue
            directive = el[DIRECTIVE]
            if directive == "delete":
                wanted = self._key_of(el, key)
                original = [o for o in original if self._identity(o, key) != wanted]
            elif directive == "replace":
                replace = True
            elif directive == "merge":
                kept.append({k: v for k, v in el.items() if k != DIRECTIVE})
            else:
                raise _bad(f"unknown patch type: {directive} in map: {_show(el)}")
        return original, kept, replace

    def _element_kind(self, items: list[Any], path: str) -> str:
        kinds = {type(item).__name__ for item in items}
        if "list" in kinds:
            raise rejected()  # upstream ErrNoListOfLists → 422
        if len(kinds) > 1:
            raise _bad(f"list element types are not identical in {path}: {_show(items)}")
        return kinds.pop()

    def _identity(self, item: Any, key: str) -> Any:
        if not key:
            return type(item).__name__, item
        if isinstance(item, dict) and key in item:
            return type(item[key]).__name__, item[key]
        return _ABSENT  # a stored element without its merge key matches nothing

    def _position(self, items: list[Any], wanted: Any, key: str) -> int:
        for index, item in enumerate(items):
            if self._identity(item, key) == wanted:
                return index
        return -1

    def _ordered(self, merged: list[Any], order: list[Any], server: list[Any], key: str) -> list[Any]:
        """Upstream's ordering: items named in `order` (the patch or $setElementOrder) keep that
        order; the others keep the live (`server`) order; the two are interleaved by live position,
        an item new to the live list going before the server-only items still pending."""
        order_ids = [self._identity(item, key) for item in order]
        server_ids = [self._identity(item, key) for item in server]

        def rank(ids: list[Any], item: Any) -> int:
            ident = self._identity(item, key)
            return ids.index(ident) if ident is not _ABSENT and ident in ids else len(ids)

        named = sorted((m for m in merged if rank(order_ids, m) < len(order_ids)),
                       key=lambda m: rank(order_ids, m))
        others = sorted((m for m in merged if rank(order_ids, m) == len(order_ids)),
                        key=lambda m: rank(server_ids, m))
        result: list[Any] = []
        while named or others:
            if others and named:
                left, right = rank(server_ids, others[0]), rank(server_ids, named[0])
                take_left = left < len(server_ids) and right < len(server_ids) and left < right
            else:
                take_left = bool(others)
            result.append(others.pop(0) if take_left else named.pop(0))
        return result

    def _delete_from_list(self, original: Obj, field: str, values: Any) -> None:
        if not isinstance(values, list):
            raise _bad(f"invalid patch format of primitive list: {_show(values)}")
        current = original.get(field)
        if not isinstance(current, list):
            return
        if any(isinstance(v, dict | list) for v in values + current):
            raise _bad(f"{DELETE_FROM_LIST}/{field} only applies to lists of primitive values")
        original[field] = [c for c in current if not any(_same(c, v) for v in values)]

    # ---- values with nothing to merge into --------------------------------------------------

    def fresh(self, value: Any, path: str) -> Any:
        """A patch value taken as is, cleaned of nulls in maps and of patch directives."""
        if isinstance(value, dict):
            return self.merge_map({}, value, path)
        if not isinstance(value, list):
            return value
        merges, key = self.merge_rule(path)
        items = value
        if merges and key and all(isinstance(el, dict) for el in value):
            items = [el for el in value if el.get(DIRECTIVE) not in ("delete", "replace")]
        return [self.fresh(el, path) for el in items]
