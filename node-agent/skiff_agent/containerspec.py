"""From a pod's container spec to the arguments of Docker's container create.

Why this exists: this is where Kubernetes' container semantics meet Docker's: command and args
become entrypoint and cmd, env gets its values from configmaps and the downward API and expands
`$(VAR)` references, limits become a cpu quota and a memory limit, volume mounts become Docker
mounts, and every container joins its pod's sandbox network namespace so a pod has one IP and its
containers share localhost. Pure functions of the pod and what the agent looked up, so they are
tested without Docker; a problem with the spec is a ContainerConfigError, reported as kubelet's
CreateContainerConfigError.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from skiff_agent import quantity
from skiff_agent.labels import container_labels, container_name

Obj = dict[str, Any]
ConfigMapGetter = Callable[[str, str], Obj | None]  # (namespace, name) -> the ConfigMap, or None if absent
_VAR_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


class ContainerConfigError(Exception):
    """The spec cannot be turned into a container (kubelet: CreateContainerConfigError)."""


@dataclass(frozen=True)
class PodContext:
    """What the agent knows about the pod when it creates one of its containers."""

    pod: Obj
    node_name: str
    host_ip: str
    pod_ip: str
    sandbox_id: str
    volumes: Mapping[str, str] = field(default_factory=dict)  # volume name -> Docker volume or host path
    volume_kinds: Mapping[str, str] = field(default_factory=dict)  # volume name -> "volume" or "bind"

    @property
    def metadata(self) -> Obj:
        return self.pod.get("metadata") or {}


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: known variables are replaced, `$$` escapes, unknown ones stay."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return _VAR_REF.sub(one, text)


def _field_ref(ctx: PodContext, path: str) -> str:
    md = ctx.metadata
    simple = {"metadata.name": md.get("name"), "metadata.namespace": md.get("namespace"),
              "metadata.uid": md.get("uid"), "spec.nodeName": ctx.node_name,
              "spec.serviceAccountName": (ctx.pod.get("spec") or {}).get("serviceAccountName"),
              "status.podIP": ctx.pod_ip, "status.hostIP": ctx.host_ip, "status.podIPs": ctx.pod_ip,
              "status.hostIPs": ctx.host_ip}
    if path in simple:
        return str(simple[path] or "")
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
    if m:
        return str((md.get(m.group(1)) or {}).get(m.group(2)) or "")
    raise ContainerConfigError(f"unsupported fieldRef fieldPath {path!r}")


def _resource_ref(container: Obj, ref: Obj) -> str:
    resource = str(ref.get("resource") or "")
    kind, _, name = resource.partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(name)
    divisor = quantity.parse(ref.get("divisor") or "1")
    if value is None:
        return "0"
    amount = quantity.parse(value) / divisor
    return str(int(amount.to_integral_value(rounding="ROUND_CEILING")))


def environment(container: Obj, ctx: PodContext, configmaps: ConfigMapGetter) -> dict[str, str]:
    """The container's environment in Kubernetes' order: envFrom, then env (later wins, `$(VAR)` sees
    the earlier ones)."""
    namespace = str(ctx.metadata.get("namespace") or "default")
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef")
        if ref is None:
            raise ContainerConfigError("only configMapRef is supported in envFrom (this cluster has no Secrets)")
        cm = configmaps(namespace, str(ref.get("name") or ""))
        if cm is None:
            if ref.get("optional"):
                continue
            raise ContainerConfigError(f'configmap "{ref.get("name")}" not found')
        prefix = str(source.get("prefix") or "")
        for key, value in (cm.get("data") or {}).items():
            env[prefix + key] = str(value)
    for var in container.get("env") or []:
        name = str(var.get("name") or "")
        if "value" in var and var["value"] is not None:
            env[name] = expand(str(var["value"]), env)
            continue
        source = var.get("valueFrom")
        if not source:
            env[name] = ""
            continue
        if "fieldRef" in source:
            env[name] = _field_ref(ctx, str(source["fieldRef"].get("fieldPath") or ""))
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            cm = configmaps(namespace, str(ref.get("name") or ""))
            data = (cm or {}).get("data") or {}
            key = str(ref.get("key") or "")
            if cm is None or key not in data:
                if ref.get("optional"):
                    continue
                what = f'configmap "{ref.get("name")}" not found' if cm is None else \
                    f'couldn\'t find key {key} in ConfigMap {namespace}/{ref.get("name")}'
                raise ContainerConfigError(what)
            env[name] = str(data[key])
        elif "resourceFieldRef" in source:
            env[name] = _resource_ref(container, source["resourceFieldRef"])
        elif "secretKeyRef" in source:
            raise ContainerConfigError(f"env {name}: secretKeyRef is not supported (this cluster has no Secrets)")
        else:
            raise ContainerConfigError(f"env {name}: unsupported valueFrom {sorted(source)}")
    return env


def resource_limits(container: Obj) -> Obj:
    """Docker's cpu and memory settings from the container's requests and limits."""
    resources = container.get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    out: Obj = {}
    try:
        if "cpu" in limits:
            out["nano_cpus"] = quantity.cpu_milli(limits["cpu"]) * 1_000_000
        cpu_request = requests.get("cpu", limits.get("cpu"))
        if cpu_request is not None:
            out["cpu_shares"] = max(2, quantity.cpu_milli(cpu_request) * 1024 // 1000)
        if "memory" in limits:
            out["mem_limit"] = quantity.memory_bytes(limits["memory"])
            out["memswap_limit"] = out["mem_limit"]  # no swap beyond the limit, as kubelet
    except ValueError as e:
        raise ContainerConfigError(str(e)) from e
    return out


def mounts(container: Obj, ctx: PodContext) -> list[Obj]:
    """Docker mounts for the container's volumeMounts (each names a pod volume the agent prepared)."""
    from docker.types import Mount

    out = []
    for vm in container.get("volumeMounts") or []:
        name = str(vm.get("name") or "")
        if name not in ctx.volumes:
            raise ContainerConfigError(f"volume {name!r} is not a volume of the pod (or its type is not supported)")
        if vm.get("subPath") or vm.get("subPathExpr"):
            raise ContainerConfigError(f"volumeMount {name}: subPath is not supported")
        kind = ctx.volume_kinds.get(name, "volume")
        out.append(Mount(target=str(vm.get("mountPath")), source=ctx.volumes[name], type=kind,
                         read_only=bool(vm.get("readOnly"))))
    return out


def create_args(container: Obj, ctx: PodContext, configmaps: ConfigMapGetter, *, image: str, kind: str,
                attempt: int) -> Obj:
    """The keyword arguments of `docker_client.containers.create` for one attempt of one container."""
    md = ctx.metadata
    env = environment(container, ctx, configmaps)
    command = [expand(str(c), env) for c in container.get("command") or []]
    args = [expand(str(a), env) for a in container.get("args") or []]
    security = container.get("securityContext") or {}
    pod_security = (ctx.pod.get("spec") or {}).get("securityContext") or {}
    user = security.get("runAsUser", pod_security.get("runAsUser"))
    group = security.get("runAsGroup", pod_security.get("runAsGroup"))
    kwargs: Obj = {
        "image": image,
        "name": container_name(ctx.node_name, md, str(container.get("name")), attempt),
        "labels": container_labels(ctx.node_name, md, str(container.get("name")), kind, attempt,
                                   grace=_grace(ctx.pod)),
        "environment": env,
        "network_mode": f"container:{ctx.sandbox_id}",
        "ipc_mode": f"container:{ctx.sandbox_id}",
        "mounts": mounts(container, ctx),
        "detach": True,
        "stdin_open": bool(container.get("stdin")),
        "tty": bool(container.get("tty")),
        **resource_limits(container),
    }
    if command:
        kwargs["entrypoint"] = command
        kwargs["command"] = args
    elif args:
        kwargs["command"] = args
    if container.get("workingDir"):
        kwargs["working_dir"] = str(container["workingDir"])
    if user is not None:
        kwargs["user"] = f"{user}:{group}" if group is not None else str(user)
    if security.get("privileged"):
        kwargs["privileged"] = True
    return kwargs


def _grace(pod: Obj) -> int:
    spec = pod.get("spec") or {}
    value = spec.get("terminationGracePeriodSeconds")
    return 30 if value is None else int(value)


def host_ports(pod: Obj) -> dict[str, tuple[str, int] | int]:
    """Docker port bindings for the sandbox: every container port with a hostPort."""
    out: dict[str, Any] = {}
    for container in [*((pod.get("spec") or {}).get("initContainers") or []),
                      *((pod.get("spec") or {}).get("containers") or [])]:
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                proto = str(port.get("protocol") or "TCP").lower()
                out[f"{int(port['containerPort'])}/{proto}"] = int(port["hostPort"])
    return out
