"""ObjectMeta validation shared by every kind, plus the name/label/selector checks the kinds reuse.

The API layer calls `validate_metadata` for every write, then the kind's own validator for the rest,
so names, labels, annotations, owner references and finalizers are checked once, here, with the
messages of apimachinery's ValidateObjectMeta. Label selectors live here too: deployments, replica
sets and services all validate and match them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.errors import Cause
from chalicelib.types import fields as f

Obj = dict[str, Any]
NameCheck = Callable[[str], list[str]]

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_dns1123_label(value: str, field: str) -> list[Cause]:
    return [f.invalid(field, value, m) for m in f.is_dns1123_label(value)]


def validate_dns1123_subdomain(value: str, field: str) -> list[Cause]:
    return [f.invalid(field, value, m) for m in f.is_dns1123_subdomain(value)]


def validate_dns1035_label(value: str, field: str) -> list[Cause]:
    return [f.invalid(field, value, m) for m in f.is_dns1035_label(value)]


def validate_qualified_name(value: str, field: str) -> list[Cause]:
    return [f.invalid(field, value, m) for m in f.is_qualified_name(value)]


def validate_label_name(value: str, field: str) -> list[Cause]:
    return validate_qualified_name(value, field)


def validate_labels(value: Any, field: str) -> list[Cause]:
    """A label map: every key a qualified name, every value a label value (causes at the map's path)."""
    errs: list[Cause] = []
    for k, v in f.str_map(value, field, errs).items():
        errs.extend(validate_label_name(k, field))
        errs.extend(f.invalid(field, v, m) for m in f.is_label_value(v))
    return errs


def validate_annotations(value: Any, field: str) -> list[Cause]:
    errs: list[Cause] = []
    annotations = f.str_map(value, field, errs)
    for k in annotations:
        # Qualified names, except that case does not matter.
        errs.extend(f.invalid(field, k, m) for m in f.is_qualified_name(k.lower()))
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(f.too_long(field, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def validate_owner_references(value: Any, field: str) -> list[Cause]:
    errs: list[Cause] = []
    refs = f.as_list(value, field, errs)
    controller = ""
    for i, ref in enumerate(refs):
        if not isinstance(ref, dict):
            errs.append(f.type_invalid(f.index(field, i), ref, "object"))
            continue
        for name, message in (
            ("apiVersion", "version must not be empty"),
            ("kind", "kind must not be empty"),
            ("name", "name must not be empty"),
            ("uid", "uid must not be empty"),
        ):
            text = f.as_str(ref.get(name), f.child(field, name), errs)
            if text == "" or (name == "apiVersion" and text is not None and text.endswith("/")):
                errs.append(f.invalid(f.child(field, name), text, message))
        if ref.get("apiVersion") == "v1" and ref.get("kind") == "Event":
            errs.append(
                f.invalid(
                    field,
                    owner_references_for_display([ref])[0],
                    "/v1, Kind=Event is disallowed from being an owner",
                )
            )
        if f.as_bool(ref.get("controller"), f.child(field, "controller"), errs):
            current = f"{ref.get('kind')}/{ref.get('name')}"
            if controller:
                errs.append(
                    f.invalid(
                        field,
                        owner_references_for_display(refs),
                        "Only one reference can have Controller set to true. "
                        f'Found "true" in references for {controller} and {current}',
                    )
                )
            else:
                controller = current
    return errs


def validate_finalizers(value: Any, field: str) -> list[Cause]:
    errs: list[Cause] = []
    names: list[str] = []
    for i, item in enumerate(f.as_list(value, field, errs)):
        if not isinstance(item, str):
            errs.append(f.type_invalid(f.index(field, i), item, "string"))
            continue
        names.append(item)
        errs.extend(f.invalid(field, item, m) for m in f.is_qualified_name(item))
    if "orphan" in names and "foregroundDeletion" in names:
        errs.append(f.invalid(field, names, "finalizer orphan and foregroundDeletion cannot be both set"))
    return errs


def _name_check(obj: Obj, name_is_label: bool) -> NameCheck:
    # Services are DNS-1035 labels upstream (they become DNS names and env var prefixes).
    if obj.get("kind") == "Service" and obj.get("apiVersion") == "v1":
        return f.is_dns1035_label
    return f.is_dns1123_label if name_is_label else f.is_dns1123_subdomain


def _mask_trailing_dash(name: str) -> str:
    return name[:-1] + "a" if name.endswith("-") else name


def validate_metadata(
    obj: Obj, *, namespaced: bool, name_is_label: bool = False, path: str = "metadata"
) -> list[Cause]:
    """Every problem of `obj.metadata` (ValidateObjectMeta); name generation is assumed done."""
    errs: list[Cause] = []
    md = f.as_map(obj.get("metadata"), path, errs)
    check = _name_check(obj, name_is_label)
    generate_name = f.as_str(md.get("generateName"), f.child(path, "generateName"), errs)
    if generate_name:
        errs.extend(
            f.invalid(f.child(path, "generateName"), generate_name, m)
            for m in check(_mask_trailing_dash(generate_name))
        )
    name = f.as_str(md.get("name"), f.child(path, "name"), errs)
    if name == "" and not generate_name:
        errs.append(f.required(f.child(path, "name"), "name or generateName is required"))
    elif name:
        errs.extend(f.invalid(f.child(path, "name"), name, m) for m in check(name))
    namespace = f.as_str(md.get("namespace"), f.child(path, "namespace"), errs)
    if namespaced:
        if namespace == "":
            errs.append(f.required(f.child(path, "namespace")))
        elif namespace:
            errs.extend(
                f.invalid(f.child(path, "namespace"), namespace, m) for m in f.is_dns1123_label(namespace)
            )
    elif namespace:
        errs.append(f.forbidden(f.child(path, "namespace"), "not allowed on this type"))
    f.nonnegative(md.get("generation"), f.child(path, "generation"), errs)
    errs.extend(validate_labels(md.get("labels"), f.child(path, "labels")))
    errs.extend(validate_annotations(md.get("annotations"), f.child(path, "annotations")))
    errs.extend(validate_owner_references(md.get("ownerReferences"), f.child(path, "ownerReferences")))
    errs.extend(validate_finalizers(md.get("finalizers"), f.child(path, "finalizers")))
    return errs


# --- Label selectors (metav1.LabelSelector) ---


def validate_label_selector(value: Any, field: str) -> list[Cause]:
    """ValidateLabelSelector with label values checked strictly (as for workloads)."""
    errs: list[Cause] = []
    selector = f.as_map(value, field, errs)
    errs.extend(validate_labels(selector.get("matchLabels"), f.child(field, "matchLabels")))
    for _, path, req in f.maps_in(selector.get("matchExpressions"), f.child(field, "matchExpressions"), errs):
        operator = f.as_str(req.get("operator"), f.child(path, "operator"), errs)
        values = f.as_list(req.get("values"), f.child(path, "values"), errs)
        if operator in ("In", "NotIn"):
            if not values:
                errs.append(
                    f.required(
                        f.child(path, "values"), "must be specified when `operator` is 'In' or 'NotIn'"
                    )
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    f.forbidden(
                        f.child(path, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        elif operator is not None:
            errs.append(f.invalid(f.child(path, "operator"), operator, "not a valid selector operator"))
        k = f.as_str(req.get("key"), f.child(path, "key"), errs)
        if k is not None:
            errs.extend(validate_label_name(k, f.child(path, "key")))
        for i, v in enumerate(values):
            vpath = f.index(f.child(path, "values"), i)
            if isinstance(v, str):
                errs.extend(f.invalid(vpath, v, m) for m in f.is_label_value(v))
            else:
                errs.append(f.type_invalid(vpath, v, "string"))
    return errs


def selector_for_display(selector: Any) -> Any:
    """A selector as Go marshals a *metav1.LabelSelector: field order kept, empty parts omitted."""
    if not isinstance(selector, dict):
        return selector
    shown = f.GoStruct()
    if selector.get("matchLabels"):
        shown["matchLabels"] = selector["matchLabels"]
    if selector.get("matchExpressions"):
        shown["matchExpressions"] = [
            f.GoStruct((k, req[k]) for k in ("key", "operator", "values") if req.get(k))
            if isinstance(req, dict)
            else req
            for req in f.list_or_empty(selector["matchExpressions"])
        ]
    return shown


def owner_references_for_display(refs: list[Any]) -> list[Any]:
    order = ("apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion")
    return [
        f.GoStruct((k, r[k]) for k in order if r.get(k) is not None) if isinstance(r, dict) else r
        for r in refs
    ]


def selector_matches(selector: Any, labels: Any) -> bool:
    """Whether labels satisfy a (valid) selector; an absent selector matches nothing, `{}` everything."""
    if not isinstance(selector, dict):
        return False
    labels = labels if isinstance(labels, dict) else {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for req in selector.get("matchExpressions") or []:
        if not isinstance(req, dict):
            return False
        k, op, values = req.get("key"), req.get("operator"), req.get("values") or []
        present = k in labels
        if op == "In" and not (present and labels[k] in values):
            return False
        if op == "NotIn" and present and labels[k] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True
