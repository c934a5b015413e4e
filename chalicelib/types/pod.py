"""Pods: the registry hooks and pod-spec validation shared with workload templates.

ValidatePodSpec's rules (containers, volumes, scheduling fields, tolerations) and ValidatePodUpdate's
immutability live here so a Pod and a Deployment's `spec.template.spec` are judged by the same code,
only with different field paths. core.py re-exports the hooks the registry looks up.
"""

from __future__ import annotations

import copy
from typing import Any

from chalicelib.errors import Cause
from chalicelib.types import fields as f
from chalicelib.types.meta import validate_dns1123_label, validate_dns1123_subdomain, validate_labels
from chalicelib.types.pod_container import PROTOCOLS, validate_container
from chalicelib.types.pod_defaults import VOLUME_SOURCES, default_pod_spec, pod_qos_class
from chalicelib.types.quantity import QuantityError, parse_quantity

Obj = dict[str, Any]

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
HOST_PATH_TYPES = (
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
)
UPDATABLE_FIELDS = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)
FILE_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"


def default_pod(obj: Obj) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        default_pod_spec(spec, pod=True)


def initial_pod_status(obj: Obj) -> Obj:
    return {"phase": "Pending", "qosClass": pod_qos_class(obj)}


def validate_pod(obj: Obj, old: Obj | None) -> list[Cause]:
    errs: list[Cause] = []
    spec = f.as_map(obj.get("spec"), "spec", errs)
    if old is None:
        if obj.get("spec") is None:
            errs.append(f.required("spec"))
        validate_pod_spec(spec, "spec", errs, pod=True)
    else:
        old_spec = f.dict_or_empty(old.get("spec"))
        validate_pod_spec_update(spec, old_spec, errs)
    return errs


def validate_pod_spec(spec: Obj, path: str, errs: list[Cause], *, pod: bool) -> None:
    """ValidatePodSpec; `pod` is False for templates (no ephemeral containers, image whitespace kept)."""
    volumes = validate_volumes(spec.get("volumes"), f.child(path, "volumes"), errs)
    restart = f.as_str(spec.get("restartPolicy"), f.child(path, "restartPolicy"), errs) or ""
    names: set[str] = set()
    for kind in ("containers", "initContainers"):
        cpath = f.child(path, kind)
        items = list(f.maps_in(spec.get(kind), cpath, errs))
        if kind == "containers" and not items and not any(e.field.startswith(cpath) for e in errs):
            errs.append(f.required(cpath))
        for _, ipath, c in items:
            validate_container(c, ipath, volumes, errs, init=kind == "initContainers", pod=pod)
            name = c.get("name")
            if isinstance(name, str) and name:
                if name in names:
                    errs.append(f.duplicate(f.child(ipath, "name"), name))
                names.add(name)
        _host_port_conflicts(items, errs, each=kind == "initContainers")
    if spec.get("ephemeralContainers"):
        errs.append(
            f.forbidden(
                f.child(path, "ephemeralContainers"),
                "cannot be set on create" if pod else "ephemeral containers not allowed in pod template",
            )
        )
    if restart and restart not in RESTART_POLICIES:
        errs.append(f.not_supported(f.child(path, "restartPolicy"), restart, list(RESTART_POLICIES)))
    dns_policy = f.as_str(spec.get("dnsPolicy"), f.child(path, "dnsPolicy"), errs)
    if dns_policy and dns_policy not in DNS_POLICIES:
        errs.append(f.not_supported(f.child(path, "dnsPolicy"), dns_policy, list(DNS_POLICIES)))
    if dns_policy == "None" and spec.get("dnsConfig") is None:
        errs.append(f.required(f.child(path, "dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None"))
    f.as_map(spec.get("dnsConfig"), f.child(path, "dnsConfig"), errs)
    errs.extend(validate_labels(spec.get("nodeSelector"), f.child(path, "nodeSelector")))
    for name, check in (
        ("nodeName", validate_dns1123_subdomain),
        ("serviceAccountName", validate_dns1123_subdomain),
        ("priorityClassName", validate_dns1123_subdomain),
        ("schedulerName", validate_dns1123_subdomain),
        ("hostname", validate_dns1123_label),
        ("subdomain", validate_dns1123_label),
    ):
        value = f.as_str(spec.get(name), f.child(path, name), errs)
        if value:
            errs.extend(check(value, f.child(path, name)))
    deadline = f.as_int(spec.get("activeDeadlineSeconds"), f.child(path, "activeDeadlineSeconds"), errs)
    if deadline is not None and not 1 <= deadline <= f.MAX_INT32:
        errs.append(
            f.invalid(f.child(path, "activeDeadlineSeconds"), deadline, f.inclusive_range_error(1, f.MAX_INT32))
        )
    f.nonnegative(spec.get("terminationGracePeriodSeconds"), f.child(path, "terminationGracePeriodSeconds"), errs)
    for flag in ("hostNetwork", "hostPID", "hostIPC", "enableServiceLinks", "automountServiceAccountToken"):
        f.as_bool(spec.get(flag), f.child(path, flag), errs)
    if spec.get("hostNetwork") is True:
        _host_network_ports(spec, path, errs)
    for obj_field in ("securityContext", "affinity"):
        f.as_map(spec.get(obj_field), f.child(path, obj_field), errs)
    validate_tolerations(spec.get("tolerations"), f.child(path, "tolerations"), errs)


def _host_port_conflicts(items: list[tuple[int, str, Obj]], errs: list[Cause], *, each: bool) -> None:
    """No two ports claim the same hostIP/protocol/hostPort (init containers run one by one)."""
    seen: set[str] = set()
    for _, cpath, c in items:
        if each:
            seen = set()
        for _, ppath, port in f.maps_in(c.get("ports"), f.child(cpath, "ports"), []):
            host_port = port.get("hostPort")
            if not isinstance(host_port, int) or isinstance(host_port, bool) or host_port == 0:
                continue
            claim = f"{port.get('hostIP') or ''}/{port.get('protocol') or 'TCP'}/{host_port}"
            if claim in seen:
                errs.append(f.duplicate(f.child(ppath, "hostPort"), claim))
            seen.add(claim)


def _host_network_ports(spec: Obj, path: str, errs: list[Cause]) -> None:
    for kind in ("containers", "initContainers"):
        for _, cpath, c in f.maps_in(spec.get(kind), f.child(path, kind), []):
            for _, ppath, port in f.maps_in(c.get("ports"), f.child(cpath, "ports"), []):
                if port.get("hostPort") not in (None, 0) and port.get("hostPort") != port.get("containerPort"):
                    errs.append(
                        f.invalid(
                            f.child(ppath, "containerPort"),
                            port.get("containerPort"),
                            "must match `hostPort` when `hostNetwork` is true",
                        )
                    )


def validate_volumes(value: Any, path: str, errs: list[Cause]) -> set[str]:
    """ValidateVolumes; the names of the valid volumes, which volume mounts may refer to."""
    names: set[str] = set()
    for _, vpath, vol in f.maps_in(value, path, errs):
        errs_here: list[Cause] = []
        _validate_volume_source(vol, vpath, errs_here)
        name = f.as_str(vol.get("name"), f.child(vpath, "name"), errs_here)
        if name == "":
            errs_here.append(f.required(f.child(vpath, "name")))
        elif name:
            errs_here.extend(validate_dns1123_label(name, f.child(vpath, "name")))
        if name in names:
            errs_here.append(f.duplicate(f.child(vpath, "name"), name))
        if errs_here:
            errs.extend(errs_here)
        elif name:
            names.add(name)
    return names


def _validate_volume_source(vol: Obj, path: str, errs: list[Cause]) -> None:
    kinds = [k for k in VOLUME_SOURCES if vol.get(k) is not None]
    if not kinds:
        errs.append(f.required(path, "must specify a volume type"))
        return
    for extra in kinds[1:]:
        errs.append(f.forbidden(f.child(path, extra), "may not specify more than 1 volume type"))
    kind = kinds[0]
    spath = f.child(path, kind)
    source = f.as_map(vol[kind], spath, errs)
    required_name = {
        "secret": "secretName",
        "configMap": "name",
        "persistentVolumeClaim": "claimName",
        "hostPath": "path",
        "nfs": "path",
    }.get(kind)
    if required_name and f.as_str(source.get(required_name), f.child(spath, required_name), errs) == "":
        errs.append(f.required(f.child(spath, required_name)))
    if kind in ("secret", "configMap", "downwardAPI", "projected"):
        mode = f.as_int(source.get("defaultMode"), f.child(spath, "defaultMode"), errs)
        if mode is not None and not 0 <= mode <= 0o777:
            errs.append(f.invalid(f.child(spath, "defaultMode"), mode, FILE_MODE_ERROR))
    if kind == "hostPath":
        host_path_type = f.as_str(source.get("type"), f.child(spath, "type"), errs)
        if host_path_type is not None and host_path_type not in HOST_PATH_TYPES:
            errs.append(f.not_supported(f.child(spath, "type"), host_path_type, list(HOST_PATH_TYPES)))
    if kind == "emptyDir" and source.get("sizeLimit") is not None:
        try:
            if parse_quantity(source["sizeLimit"]) < 0:
                errs.append(f.invalid(f.child(spath, "sizeLimit"), source["sizeLimit"], f.IS_NEGATIVE))
        except QuantityError as e:
            errs.append(f.invalid(f.child(spath, "sizeLimit"), source["sizeLimit"], e.detail))


def validate_tolerations(value: Any, path: str, errs: list[Cause]) -> None:
    for _, tpath, t in f.maps_in(value, path, errs):
        key = f.as_str(t.get("key"), f.child(tpath, "key"), errs) or ""
        operator = f.as_str(t.get("operator"), f.child(tpath, "operator"), errs)
        value_ = f.as_str(t.get("value"), f.child(tpath, "value"), errs) or ""
        effect = f.as_str(t.get("effect"), f.child(tpath, "effect"), errs) or ""
        seconds = f.as_int(t.get("tolerationSeconds"), f.child(tpath, "tolerationSeconds"), errs)
        if key:
            errs.extend(f.invalid(f.child(tpath, "key"), key, m) for m in f.is_qualified_name(key))
        if not key and operator != "Exists":
            errs.append(
                f.invalid(
                    f.child(tpath, "operator"),
                    operator or "",
                    'operator must be Exists when `key` is empty, which means "match all values ' 'and all keys"',
                )
            )
        if seconds is not None and effect != "NoExecute":
            errs.append(
                f.invalid(
                    f.child(tpath, "effect"),
                    effect,
                    "effect must be 'NoExecute' when `tolerationSeconds` is set",
                )
            )
        if operator in ("Equal", ""):
            msgs = f.is_label_value(value_)
            if msgs:
                errs.append(f.invalid(f.child(tpath, "operator"), value_, ";".join(msgs)))
        elif operator == "Exists":
            if value_:
                errs.append(
                    f.invalid(
                        f.child(tpath, "operator"),
                        _toleration_for_display(t),
                        "value must be empty when `operator` is 'Exists'",
                    )
                )
        elif operator is not None:
            errs.append(f.not_supported(f.child(tpath, "operator"), operator, list(TOLERATION_OPERATORS)))
        if effect and effect not in TAINT_EFFECTS:
            errs.append(f.not_supported(f.child(tpath, "effect"), effect, list(TAINT_EFFECTS)))


def _toleration_for_display(t: Obj) -> f.GoStruct:
    """A toleration as the internal core.Toleration struct marshals (no JSON tags)."""
    return f.GoStruct(
        Key=t.get("key", ""),
        Operator=t.get("operator", ""),
        Value=t.get("value", ""),
        Effect=t.get("effect", ""),
        TolerationSeconds=t.get("tolerationSeconds"),
    )


def validate_pod_spec_update(new: Obj, old: Obj, errs: list[Cause]) -> None:
    """ValidatePodUpdate for the spec: only images, deadline, added tolerations and grace may change."""
    for kind in ("containers", "initContainers"):
        path = f.child("spec", kind)
        new_list, old_list = new.get(kind) or [], old.get(kind) or []
        if not isinstance(new_list, list) or len(new_list) != len(old_list if isinstance(old_list, list) else []):
            errs.append(f.forbidden(path, "pod updates may not add or remove containers"))
            return
        for _, cpath, c in f.maps_in(new_list, path, errs):
            image = f.as_str(c.get("image"), f.child(cpath, "image"), errs)
            if image == "":
                errs.append(f.required(f.child(cpath, "image")))
            elif image and image != image.strip():
                errs.append(f.invalid(f.child(cpath, "image"), image, "must not have leading or trailing whitespace"))
    dpath = "spec.activeDeadlineSeconds"
    new_deadline = f.as_int(new.get("activeDeadlineSeconds"), dpath, errs)
    old_deadline = old.get("activeDeadlineSeconds")
    if new_deadline is not None:
        if not 0 <= new_deadline <= f.MAX_INT32:
            errs.append(f.invalid(dpath, new_deadline, f.inclusive_range_error(0, f.MAX_INT32)))
        elif isinstance(old_deadline, int) and old_deadline < new_deadline:
            errs.append(f.invalid(dpath, new_deadline, "must be less than or equal to previous value"))
    elif old_deadline is not None:
        errs.append(f.invalid(dpath, None, "must not update from a positive integer to nil value"))
    _only_added_tolerations(new.get("tolerations"), old.get("tolerations"), errs)
    munged = copy.deepcopy(new)
    for kind in ("containers", "initContainers"):
        for c, o in zip(munged.get(kind) or [], old.get(kind) or [], strict=False):
            if isinstance(c, dict) and isinstance(o, dict):
                c["image"] = o.get("image")
    # Checked above on their own terms, so left out of the comparison.
    for name in ("activeDeadlineSeconds", "terminationGracePeriodSeconds", "tolerations"):
        _copy_field(munged, old, name)
    if not old.get("nodeName"):  # binding sets it once
        _copy_field(munged, old, "nodeName")
    gates = new.get("schedulingGates") or []
    old_gates = old.get("schedulingGates") or []
    if isinstance(gates, list) and isinstance(old_gates, list) and all(g in old_gates for g in gates):
        _copy_field(munged, old, "schedulingGates")
    if _normalized(munged) != _normalized(old):
        changed = ", ".join(_changed_paths(_normalized(old), _normalized(munged), "spec")[:10])
        errs.append(
            f.forbidden(
                "spec",
                "pod updates may not change fields other than "
                + ",".join(UPDATABLE_FIELDS)
                + f"\n(changed: {changed})",
            )
        )


def _copy_field(into: Obj, src: Obj, name: str) -> None:
    if name in src:
        into[name] = copy.deepcopy(src[name])
    else:
        into.pop(name, None)


def _normalized(value: Any) -> Any:
    """Drop nulls and empty collections, as Go's omitempty round trip would."""
    if isinstance(value, dict):
        out = {k: _normalized(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def _changed_paths(old: Any, new: Any, path: str) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new)):
            if old.get(k) != new.get(k):
                out.extend(_changed_paths(old.get(k), new.get(k), f.child(path, k)))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            p
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            if a != b
            for p in _changed_paths(a, b, f.index(path, i))
        ]
    return [path]


def _only_added_tolerations(new: Any, old: Any, errs: list[Cause]) -> None:
    """validateOnlyAddedTolerations: existing tolerations stay (but tolerationSeconds); the new list is valid."""
    path = "spec.tolerations"
    new_list = [t for t in new if isinstance(t, dict)] if isinstance(new, list) else []
    for o in old if isinstance(old, list) else []:
        if not isinstance(o, dict):
            continue
        if not any(
            {**o, "tolerationSeconds": n.get("tolerationSeconds")}
            == {**n, "tolerationSeconds": n.get("tolerationSeconds")}
            for n in new_list
        ):
            errs.append(f.forbidden(path, "existing toleration can not be modified except its tolerationSeconds"))
            return
    validate_tolerations(new, path, errs)


__all__ = ["PROTOCOLS", "default_pod", "initial_pod_status", "validate_pod", "validate_pod_spec"]
