"""Parsing Kubernetes REST paths into what they address.

One parser for every path shape kube-apiserver serves, so routing is data, not a route per kind:
  /api/v1/<plural>[/<name>[/<sub>]]
  /api/v1/namespaces/<ns>/<plural>[/<name>[/<sub>]]
  /apis/<group>/<version>/... the same
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib import errors
from chalicelib.types import registry
from chalicelib.types.registry import ResourceInfo


@dataclass(frozen=True)
class Target:
    resource: ResourceInfo
    namespace: str | None  # None: cluster-scoped, or all namespaces for a namespaced list
    name: str | None = None
    subresource: str | None = None


def parse(path: str) -> Target | None:
    """The resource path's target; None for a path that is not a resource path (discovery etc.)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api" and parts[1] == "v1":
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not registry.group_known(group, version):
        raise errors.PathNotFound(path)
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and registry.lookup(group, version, rest[2]):
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        raise errors.PathNotFound(path)
    resource = registry.lookup(group, version, rest[0])
    if resource is None:
        raise errors.PathNotFound(path)
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if namespace is not None and not resource.namespaced:
        raise errors.PathNotFound(path)
    if resource.namespaced and namespace is None and name is not None:
        raise errors.PathNotFound(path)
    if sub is not None and sub not in resource.subresources:
        raise errors.PathNotFound(path)
    return Target(resource=resource, namespace=namespace, name=name, subresource=sub)
