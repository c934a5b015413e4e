"""Validation of one container of a pod spec: ports, env, mounts, resources, probes and hooks.

Split from pod.py to keep both readable. The checks and messages follow validateContainerCommon and
its helpers in pkg/apis/core/validation; they run on defaulted objects, so a field defaulting always
fills (imagePullPolicy, probe thresholds, port protocol) is only checked when present.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from chalicelib.errors import Cause
from chalicelib.types import fields as f
from chalicelib.types.meta import validate_dns1123_label
from chalicelib.types.quantity import Format, QuantityError, format_quantity, parse_quantity_with_format

Obj = dict[str, Any]

PROTOCOLS = ("SCTP", "TCP", "UDP")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
ENV_FIELD_PATHS = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
)
RESOURCE_FIELD_REFS = (
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
)
HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
HOOK_HANDLERS = ("exec", "httpGet", "tcpSocket", "sleep")


def validate_container(
    c: Obj, path: str, volumes: set[str], errs: list[Cause], *, init: bool, pod: bool
) -> None:
    """Everything about one container except name uniqueness and host ports (checked across the pod)."""
    name = f.as_str(c.get("name"), f.child(path, "name"), errs)
    if name == "":
        errs.append(f.required(f.child(path, "name")))
    elif name:
        errs.extend(validate_dns1123_label(name, f.child(path, "name")))
    image = f.as_str(c.get("image"), f.child(path, "image"), errs)
    if image == "":
        errs.append(f.required(f.child(path, "image")))
    elif image and pod and image != image.strip():
        errs.append(f.invalid(f.child(path, "image"), image, "must not have leading or trailing whitespace"))
    for list_field in ("command", "args"):
        for i, item in enumerate(f.as_list(c.get(list_field), f.child(path, list_field), errs)):
            if not isinstance(item, str):
                errs.append(f.type_invalid(f.index(f.child(path, list_field), i), item, "string"))
    validate_ports(c.get("ports"), f.child(path, "ports"), errs)
    validate_env(c.get("env"), f.child(path, "env"), errs)
    validate_env_from(c.get("envFrom"), f.child(path, "envFrom"), errs)
    validate_volume_mounts(c.get("volumeMounts"), f.child(path, "volumeMounts"), volumes, errs)
    _enum(c, "imagePullPolicy", path, PULL_POLICIES, errs)
    _enum(c, "terminationMessagePolicy", path, TERMINATION_MESSAGE_POLICIES, errs)
    validate_resources(c.get("resources"), f.child(path, "resources"), errs)
    f.as_map(c.get("securityContext"), f.child(path, "securityContext"), errs)
    container_restart = f.as_str(c.get("restartPolicy"), f.child(path, "restartPolicy"), errs)
    sidecar = False
    if container_restart:
        if not init:
            errs.append(f.forbidden(f.child(path, "restartPolicy"), "may not be set for non-init containers"))
        elif container_restart != "Always":
            errs.append(f.not_supported(f.child(path, "restartPolicy"), container_restart, ["Always"]))
        else:
            sidecar = True
    lifecycle = f.as_map(c.get("lifecycle"), f.child(path, "lifecycle"), errs)
    probes = [p for p in ("livenessProbe", "readinessProbe", "startupProbe") if c.get(p) is not None]
    if init and not sidecar:
        if c.get("lifecycle") is not None:
            errs.append(
                f.forbidden(
                    f.child(path, "lifecycle"),
                    "may not be set for init containers without restartPolicy=Always",
                )
            )
        for p in probes:
            errs.append(
                f.forbidden(
                    f.child(path, p), "may not be set for init containers without restartPolicy=Always"
                )
            )
        return
    for hook in ("postStart", "preStop"):
        if lifecycle.get(hook) is not None:
            hpath = f.child(f.child(path, "lifecycle"), hook)
            validate_handler(f.as_map(lifecycle[hook], hpath, errs), hpath, HOOK_HANDLERS, errs)
    for p in probes:
        validate_probe(c[p], f.child(path, p), p, errs)


def _enum(obj: Obj, name: str, path: str, allowed: tuple[str, ...], errs: list[Cause]) -> None:
    value = f.as_str(obj.get(name), f.child(path, name), errs)
    if value and value not in allowed:
        errs.append(f.not_supported(f.child(path, name), value, list(allowed)))


def validate_ports(value: Any, path: str, errs: list[Cause]) -> None:
    names: set[str] = set()
    for _, ppath, port in f.maps_in(value, path, errs):
        name = f.as_str(port.get("name"), f.child(ppath, "name"), errs)
        if name:
            msgs = f.is_valid_port_name(name)
            if msgs:
                errs.extend(f.invalid(f.child(ppath, "name"), name, m) for m in msgs)
            elif name in names:
                errs.append(f.duplicate(f.child(ppath, "name"), name))
            else:
                names.add(name)
        container_port = f.as_int(port.get("containerPort"), f.child(ppath, "containerPort"), errs)
        if port.get("containerPort") is None or container_port == 0:
            errs.append(f.required(f.child(ppath, "containerPort")))
        elif container_port is not None:
            errs.extend(
                f.invalid(f.child(ppath, "containerPort"), container_port, m)
                for m in f.is_valid_port_num(container_port)
            )
        host_port = f.as_int(port.get("hostPort"), f.child(ppath, "hostPort"), errs)
        if host_port:
            errs.extend(
                f.invalid(f.child(ppath, "hostPort"), host_port, m) for m in f.is_valid_port_num(host_port)
            )
        protocol = f.as_str(port.get("protocol"), f.child(ppath, "protocol"), errs)
        if protocol and protocol not in PROTOCOLS:
            errs.append(f.not_supported(f.child(ppath, "protocol"), protocol, list(PROTOCOLS)))


def validate_env(value: Any, path: str, errs: list[Cause]) -> None:
    for _, epath, env in f.maps_in(value, path, errs):
        name = f.as_str(env.get("name"), f.child(epath, "name"), errs)
        if name is not None:
            if name == "":
                errs.append(f.required(f.child(epath, "name")))
            errs.extend(f.invalid(f.child(epath, "name"), name, m) for m in f.is_env_var_name(name))
        text = f.as_str(env.get("value"), f.child(epath, "value"), errs)
        if env.get("valueFrom") is not None:
            vpath = f.child(epath, "valueFrom")
            _validate_value_from(f.as_map(env["valueFrom"], vpath, errs), bool(text), vpath, errs)


def _validate_value_from(source: Obj, has_value: bool, path: str, errs: list[Cause]) -> None:
    kinds = [
        k
        for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
        if source.get(k) is not None
    ]
    if not kinds:
        errs.append(
            f.invalid(
                path,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, " "`configMapKeyRef` or `secretKeyRef`",
            )
        )
        return
    if has_value:
        errs.append(f.invalid(path, "", "may not be specified when `value` is not empty"))
    if len(kinds) > 1:
        errs.append(f.invalid(path, "", "may not have more than one field specified at a time"))
        return
    kind = kinds[0]
    kpath = f.child(path, kind)
    ref = f.as_map(source[kind], kpath, errs)
    if kind == "fieldRef":
        api_version = f.as_str(ref.get("apiVersion"), f.child(kpath, "apiVersion"), errs)
        field_path = f.as_str(ref.get("fieldPath"), f.child(kpath, "fieldPath"), errs)
        if api_version == "":
            errs.append(f.required(f.child(kpath, "apiVersion")))
        if field_path == "":
            errs.append(f.required(f.child(kpath, "fieldPath")))
        elif (
            field_path
            and field_path not in ENV_FIELD_PATHS
            and not (
                field_path.startswith(("metadata.labels['", "metadata.annotations['"))
                and field_path.endswith("']")
            )
        ):
            errs.append(f.not_supported(f.child(kpath, "fieldPath"), field_path, sorted(ENV_FIELD_PATHS)))
    elif kind == "resourceFieldRef":
        resource = f.as_str(ref.get("resource"), f.child(kpath, "resource"), errs)
        if resource == "":
            errs.append(f.required(f.child(kpath, "resource")))
        elif (
            resource
            and resource not in RESOURCE_FIELD_REFS
            and not resource.startswith(("limits.hugepages-", "requests.hugepages-"))
        ):
            errs.append(f.not_supported(f.child(kpath, "resource"), resource, list(RESOURCE_FIELD_REFS)))
    else:
        name = f.as_str(ref.get("name"), f.child(kpath, "name"), errs)
        key = f.as_str(ref.get("key"), f.child(kpath, "key"), errs)
        if name == "":
            errs.append(f.required(f.child(kpath, "name")))
        if key == "":
            errs.append(f.required(f.child(kpath, "key")))
        elif key:
            errs.extend(f.invalid(f.child(kpath, "key"), key, m) for m in f.is_config_map_key(key))


def validate_env_from(value: Any, path: str, errs: list[Cause]) -> None:
    for _, epath, source in f.maps_in(value, path, errs):
        kinds = [k for k in ("configMapRef", "secretRef") if source.get(k) is not None]
        if not kinds:
            errs.append(f.invalid(epath, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif len(kinds) > 1:
            errs.append(f.invalid(epath, "", "may not have more than one field specified at a time"))
        for kind in kinds:
            ref = f.as_map(source[kind], f.child(epath, kind), errs)
            if f.as_str(ref.get("name"), f.child(f.child(epath, kind), "name"), errs) == "":
                errs.append(f.required(f.child(f.child(epath, kind), "name")))


def validate_volume_mounts(value: Any, path: str, volumes: set[str], errs: list[Cause]) -> None:
    mount_points: set[str] = set()
    for _, mpath, mount in f.maps_in(value, path, errs):
        name = f.as_str(mount.get("name"), f.child(mpath, "name"), errs)
        if name is not None:
            if name == "":
                errs.append(f.required(f.child(mpath, "name")))
            if name not in volumes:
                errs.append(f.not_found(f.child(mpath, "name"), name))
        mount_path = f.as_str(mount.get("mountPath"), f.child(mpath, "mountPath"), errs)
        if mount_path == "":
            errs.append(f.required(f.child(mpath, "mountPath")))
        elif mount_path is not None:
            if mount_path in mount_points:
                errs.append(f.invalid(f.child(mpath, "mountPath"), mount_path, "must be unique"))
            mount_points.add(mount_path)
        sub_path = f.as_str(mount.get("subPath"), f.child(mpath, "subPath"), errs)
        if sub_path:
            validate_local_path(sub_path, f.child(mpath, "subPath"), errs)


def validate_local_path(value: str, path: str, errs: list[Cause]) -> None:
    """validateLocalDescendingPath: relative, without '..' elements."""
    if value.startswith("/"):
        errs.append(f.invalid(path, value, "must be a relative path"))
    if ".." in value.replace("\\", "/").split("/"):
        errs.append(f.invalid(path, value, "must not contain '..'"))


_STANDARD_RESOURCES = frozenset(
    {
        "cpu",
        "memory",
        "ephemeral-storage",
        "storage",
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "requests.cpu",
        "requests.memory",
        "requests.storage",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
    }
)


def _resource_name_errors(name: str, path: str) -> list[Cause]:
    """validateContainerResourceName."""
    errs = [f.invalid(path, name, m) for m in f.is_qualified_name(name)]
    if "/" not in name:
        if (
            not errs
            and name not in _STANDARD_RESOURCES
            and not name.startswith(("hugepages-", "requests.hugepages-", "limits.hugepages-"))
        ):
            errs.append(f.invalid(path, name, "must be a standard resource type or fully qualified"))
        if name not in STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            errs.append(f.invalid(path, name, "must be a standard resource for containers"))
    elif not _is_native(name) and (name.startswith("requests.") or f.is_qualified_name("requests." + name)):
        errs.append(f.invalid(path, name, "doesn't follow extended resource name standard"))
    return errs


def _is_native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _overcommit_allowed(name: str) -> bool:
    return _is_native(name) and not name.startswith("hugepages-")


def _quantities(value: Any, path: str, errs: list[Cause]) -> dict[str, tuple[Decimal, Format]]:
    """The parseable quantities of a resource list; names and values checked on the way."""
    parsed: dict[str, tuple[Decimal, Format]] = {}
    for name, raw in f.as_map(value, path, errs).items():
        rpath = f.key(path, name)
        errs.extend(_resource_name_errors(name, rpath))
        try:
            q, fmt = parse_quantity_with_format(raw)
        except QuantityError as e:
            errs.append(f.invalid(rpath, raw, e.detail))
            continue
        if q < 0:
            errs.append(f.invalid(rpath, format_quantity(q, fmt), f.IS_NEGATIVE))
        if not _is_native(name) and q != q.to_integral_value():
            errs.append(f.invalid(rpath, format_quantity(q, fmt), "must be an integer"))
        parsed[name] = (q, fmt)
    return parsed


def validate_resources(value: Any, path: str, errs: list[Cause]) -> None:
    """Names and quantities of limits and requests; requests within limits."""
    resources = f.as_map(value, path, errs)
    lim_path, req_path = f.child(path, "limits"), f.child(path, "requests")
    limits = _quantities(resources.get("limits"), lim_path, errs)
    requests = _quantities(resources.get("requests"), req_path, errs)
    raw_limits = f.dict_or_empty(resources.get("limits"))
    for name, (q, fmt) in requests.items():
        shown = format_quantity(q, fmt)
        if name in limits:
            limit = format_quantity(*limits[name])
            if q != limits[name][0] and not _overcommit_allowed(name):
                errs.append(f.invalid(req_path, shown, f"must be equal to {name} limit of {limit}"))
            elif q > limits[name][0]:
                errs.append(
                    f.invalid(req_path, shown, f"must be less than or equal to {name} limit of {limit}")
                )
        elif not _overcommit_allowed(name) and name not in raw_limits:
            errs.append(f.required(lim_path, "Limit must be set for non overcommitable resources"))


def validate_handler(handler: Obj, path: str, kinds: tuple[str, ...], errs: list[Cause]) -> None:
    """Exactly one handler type, then that handler's own fields."""
    present = [k for k in kinds if handler.get(k) is not None]
    if not present:
        errs.append(f.required(path, "must specify a handler type"))
        return
    for extra in present[1:]:
        errs.append(f.forbidden(f.child(path, extra), "may not specify more than 1 handler type"))
    kind = present[0]
    hpath = f.child(path, kind)
    action = f.as_map(handler[kind], hpath, errs)
    if kind == "exec":
        if not f.as_list(action.get("command"), f.child(hpath, "command"), errs):
            errs.append(f.required(f.child(hpath, "command")))
    elif kind == "httpGet":
        if f.as_str(action.get("path"), f.child(hpath, "path"), errs) == "":
            errs.append(f.required(f.child(hpath, "path")))
        f.port_num_or_name(action.get("port"), f.child(hpath, "port"), errs)
        scheme = f.as_str(action.get("scheme"), f.child(hpath, "scheme"), errs)
        if scheme and scheme not in ("HTTP", "HTTPS"):
            errs.append(f.not_supported(f.child(hpath, "scheme"), scheme, ["HTTP", "HTTPS"]))
        for _, hdr_path, header in f.maps_in(action.get("httpHeaders"), f.child(hpath, "httpHeaders"), errs):
            header_name = f.as_str(header.get("name"), f.child(hdr_path, "name"), errs)
            if header_name is not None:
                errs.extend(
                    f.invalid(f.child(hdr_path, "name"), header_name, m)
                    for m in f.is_http_header_name(header_name)
                )
    elif kind == "tcpSocket":
        f.port_num_or_name(action.get("port"), f.child(hpath, "port"), errs)
    elif kind == "grpc":
        port = f.as_int(action.get("port"), f.child(hpath, "port"), errs)
        errs.extend(f.invalid(f.child(hpath, "port"), port or 0, m) for m in f.is_valid_port_num(port or 0))
    elif kind == "sleep":
        seconds = f.as_int(action.get("seconds"), f.child(hpath, "seconds"), errs)
        if seconds is not None and seconds < 0:
            errs.append(f.invalid(f.child(hpath, "seconds"), seconds, f.IS_NEGATIVE))


def validate_probe(value: Any, path: str, kind: str, errs: list[Cause]) -> None:
    probe = f.as_map(value, path, errs)
    validate_handler(probe, path, HANDLERS, errs)
    for name in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        f.nonnegative(probe.get(name), f.child(path, name), errs)
    grace = f.as_int(
        probe.get("terminationGracePeriodSeconds"), f.child(path, "terminationGracePeriodSeconds"), errs
    )
    if grace is not None:
        if kind == "readinessProbe":
            errs.append(
                f.invalid(
                    f.child(path, "terminationGracePeriodSeconds"),
                    grace,
                    "must not be set for readinessProbes",
                )
            )
        elif grace <= 0:
            errs.append(
                f.invalid(f.child(path, "terminationGracePeriodSeconds"), grace, "must be greater than 0")
            )
    success = f.as_int(probe.get("successThreshold"), f.child(path, "successThreshold"), [])
    if kind in ("livenessProbe", "startupProbe") and success is not None and success != 1:
        errs.append(f.invalid(f.child(path, "successThreshold"), success, "must be 1"))
