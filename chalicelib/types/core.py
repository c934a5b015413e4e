"""core/v1 defaults and validation: Namespace, Node, Pod, Event, ConfigMap, Service.

The registry looks its hooks up here. Pod logic is large and shared with workload templates, so it
lives in pod.py, and Service's in service.py (both re-exported below); this module holds the smaller
kinds, each following pkg/apis/core/v1/defaults.go and pkg/apis/core/validation.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from typing import Any

from chalicelib.errors import Cause
from chalicelib.types import fields as f
from chalicelib.types.pod import default_pod, initial_pod_status, validate_pod
from chalicelib.types.quantity import QuantityError, format_quantity, parse_quantity_with_format
from chalicelib.types.service import default_service, validate_service

Obj = dict[str, Any]

__all__ = [
    "default_event",
    "default_namespace",
    "default_node",
    "default_pod",
    "default_service",
    "initial_namespace_status",
    "initial_pod_status",
    "validate_configmap",
    "validate_event",
    "validate_namespace",
    "validate_node",
    "validate_pod",
    "validate_service",
]

STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")
MAX_CONFIGMAP_BYTES = 1024 * 1024
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _spec(obj: Obj) -> Obj | None:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else None


# --- Namespace ---


def default_namespace(obj: Obj) -> None:
    md = obj.get("metadata")
    if isinstance(md, dict) and isinstance(md.get("name"), str) and md["name"]:
        labels = md.get("labels")
        if labels is None:
            labels = md["labels"] = {}
        if isinstance(labels, dict):
            labels["kubernetes.io/metadata.name"] = md["name"]
    if obj.get("spec") is None:
        obj["spec"] = {}
    spec = obj["spec"]
    # Only when absent: the finalize subresource removes "kubernetes" and must not see it come back.
    if isinstance(spec, dict) and "finalizers" not in spec:
        spec["finalizers"] = ["kubernetes"]
    status = obj.get("status")
    if isinstance(status, dict) and not status.get("phase"):
        status["phase"] = "Active"


def initial_namespace_status(obj: Obj) -> Obj:
    return {"phase": "Active"}


def validate_namespace(obj: Obj, old: Obj | None) -> list[Cause]:
    errs: list[Cause] = []
    spec = f.as_map(obj.get("spec"), "spec", errs)
    for i, name in enumerate(f.as_list(spec.get("finalizers"), "spec.finalizers", errs)):
        path = f.index("spec.finalizers", i)
        if not isinstance(name, str):
            errs.append(f.type_invalid(path, name, "string"))
            continue
        msgs = f.is_qualified_name(name)
        errs.extend(f.invalid("spec.finalizers", name, m) for m in msgs)
        if not msgs and "/" not in name and name not in STANDARD_FINALIZERS:
            errs.append(
                f.invalid(
                    "spec.finalizers",
                    name,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            )
    status = f.as_map(obj.get("status"), "status", errs)
    phase = f.as_str(status.get("phase"), "status.phase", errs)
    if phase and phase not in ("Active", "Terminating"):
        errs.append(f.not_supported("status.phase", phase, ["Active", "Terminating"]))
    return errs


# --- Node ---


def default_node(obj: Obj) -> None:
    spec = _spec(obj)
    if spec is not None and spec.get("podCIDR") and not spec.get("podCIDRs"):
        spec["podCIDRs"] = [spec["podCIDR"]]
    status = obj.get("status")
    if isinstance(status, dict) and isinstance(status.get("capacity"), dict) and status.get("allocatable") is None:
        status["allocatable"] = dict(status["capacity"])


def _valid_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


def validate_node(obj: Obj, old: Obj | None) -> list[Cause]:
    errs: list[Cause] = []
    spec = f.as_map(obj.get("spec"), "spec", errs)
    for i, cidr in enumerate(f.as_list(spec.get("podCIDRs"), "spec.podCIDRs", errs)):
        path = f.index("spec.podCIDRs", i)
        if not isinstance(cidr, str) or not _valid_cidr(cidr):
            errs.append(f.invalid(path, cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
    pod_cidr = f.as_str(spec.get("podCIDR"), "spec.podCIDR", errs)
    if pod_cidr and not _valid_cidr(pod_cidr):
        errs.append(
            f.invalid("spec.podCIDR", pod_cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
        )
    f.as_bool(spec.get("unschedulable"), "spec.unschedulable", errs)
    seen: set[tuple[str, str]] = set()
    for _, path, taint in f.maps_in(spec.get("taints"), "spec.taints", errs):
        key = f.as_str(taint.get("key"), f.child(path, "key"), errs) or ""
        errs.extend(f.invalid(f.child(path, "key"), key, m) for m in f.is_qualified_name(key))
        value = f.as_str(taint.get("value"), f.child(path, "value"), errs) or ""
        if f.is_label_value(value):
            errs.append(f.invalid(f.child(path, "value"), value, ";".join(f.is_label_value(value))))
        effect = f.as_str(taint.get("effect"), f.child(path, "effect"), errs)
        if effect == "":
            errs.append(f.required(f.child(path, "effect")))
        elif effect and effect not in TAINT_EFFECTS:
            errs.append(f.not_supported(f.child(path, "effect"), effect, list(TAINT_EFFECTS)))
        if (key, effect or "") in seen:
            errs.append(
                Cause(
                    path,
                    f"Duplicate value: {f.render(_taint_for_display(taint))}: "
                    "taints must be unique by key and effect pair",
                    f.DUPLICATE,
                )
            )
        seen.add((key, effect or ""))
    status = f.as_map(obj.get("status"), "status", errs)
    for section in ("capacity", "allocatable"):
        for name, raw in f.as_map(status.get(section), f.child("status", section), errs).items():
            path = f.child(f.child("status", section), name)
            try:
                q, fmt = parse_quantity_with_format(raw)
            except QuantityError as e:
                errs.append(f.invalid(path, raw, e.detail))
                continue
            if q < 0:
                errs.append(f.invalid(path, format_quantity(q, fmt), f.IS_NEGATIVE))
    if old is not None:
        old_spec = f.dict_or_empty(old.get("spec"))
        for name, message in (
            ("podCIDRs", 'node updates may not change podCIDR except from "" to valid'),
            ("providerID", 'node updates may not change providerID except from "" to valid'),
        ):
            if old_spec.get(name) and spec.get(name) != old_spec.get(name):
                errs.append(f.forbidden(f.child("spec", name), message))
    return errs


def _taint_for_display(taint: Obj) -> f.GoStruct:
    return f.GoStruct(
        Key=taint.get("key", ""),
        Value=taint.get("value", ""),
        Effect=taint.get("effect", ""),
        TimeAdded=taint.get("timeAdded"),
    )


# --- Event ---


def default_event(obj: Obj) -> None:
    """core/v1 defines no Event defaults: `type` and `count` are whatever the reporter sent."""
    return None


def validate_event(obj: Obj, old: Obj | None) -> list[Cause]:
    """legacyValidateEvent (core/v1 events): namespaces agree; new-style events need reporter fields."""
    errs: list[Cause] = []
    md = f.dict_or_empty(obj.get("metadata"))
    namespace = md.get("namespace") or ""
    involved = f.as_map(obj.get("involvedObject"), "involvedObject", errs)
    involved_ns = f.as_str(involved.get("namespace"), "involvedObject.namespace", errs) or ""
    for name in ("reason", "message", "type", "action", "reportingComponent", "reportingInstance"):
        f.as_str(obj.get(name), name, errs)
    f.as_int(obj.get("count"), "count", errs)
    if not obj.get("eventTime"):
        if involved_ns == "" and namespace not in ("", "default") or involved_ns and involved_ns != namespace:
            errs.append(f.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
        return errs
    if involved_ns == "" and namespace not in ("default", "kube-system"):
        errs.append(f.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    controller = f.str_or_empty(obj.get("reportingComponent"))
    if not controller:
        errs.append(f.required("reportingComponent"))
    errs.extend(f.invalid("reportingComponent", controller, m) for m in f.is_qualified_name(controller))
    for name, limit in (("reportingInstance", 128), ("action", 128), ("reason", 128), ("message", 1024)):
        text = f.str_or_empty(obj.get(name))
        if not text and name != "message":
            errs.append(f.required(name))
        if len(text) > limit:
            errs.append(f.invalid(name, "", f"can have at most {limit} characters"))
    return errs


# --- ConfigMap ---


def validate_configmap(obj: Obj, old: Obj | None) -> list[Cause]:
    errs: list[Cause] = []
    data = f.str_map(obj.get("data"), "data", errs)
    binary = f.str_map(obj.get("binaryData"), "binaryData", errs)
    size = 0
    for section, entries, other in (("data", data, binary), ("binaryData", binary, data)):
        for key, value in entries.items():
            path = f.key(section, key)
            errs.extend(f.invalid(path, key, m) for m in f.is_config_map_key(key))
            if key in other:
                errs.append(
                    f.invalid(
                        path,
                        key,
                        f"duplicate of key present in {'binaryData' if section == 'data' else 'data'}",
                    )
                )
            if section == "data":
                size += len(value.encode())
            else:
                try:
                    size += len(base64.b64decode(value, validate=True))
                except (binascii.Error, ValueError):
                    errs.append(f.invalid(path, key, "must be base64-encoded"))
    if size > MAX_CONFIGMAP_BYTES:
        errs.append(f.too_long("", MAX_CONFIGMAP_BYTES))
    f.as_bool(obj.get("immutable"), "immutable", errs)
    if old is not None and old.get("immutable") is True:
        message = "field is immutable when `immutable` is set"
        if obj.get("immutable") is not True:
            errs.append(f.forbidden("immutable", message))
        for section in ("data", "binaryData"):
            if (obj.get(section) or {}) != (old.get(section) or {}):
                errs.append(f.forbidden(section, message))
    return errs
