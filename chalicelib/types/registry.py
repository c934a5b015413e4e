"""The resources the API serves, in one table.

Everything that differs between kinds (path, scope, subresources, defaults, validation) is looked up
here, so the API handlers stay generic: one create/get/list/update/patch/delete/watch for all kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.errors import Cause
from chalicelib.types import apps, coordination, core, skiff

Obj = dict[str, Any]
Defaulter = Callable[[Obj], None]
Validator = Callable[[Obj, Obj | None], list[Cause]]


def _no_defaults(obj: Obj) -> None:
    return None


def _no_validation(obj: Obj, old: Obj | None) -> list[Cause]:
    return []


@dataclass(frozen=True)
class ResourceInfo:
    """One served resource type (a REST collection) and its rules."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    # The main resource ignores status on write and /status ignores everything else.
    status_subresource: bool = False
    default: Defaulter = _no_defaults
    validate: Validator = _no_validation
    # Set on create: fields of status a fresh object starts with (pod phase Pending, ...).
    initial_status: Callable[[Obj], Obj] | None = None
    schema_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """The store's name for this resource type (partition of objects, changelog and counter)."""
        return f"{self.group or 'core'}/{self.plural}"

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


RESOURCES: tuple[ResourceInfo, ...] = (
    ResourceInfo("", "v1", "Namespace", "namespaces", "namespace", False, ("ns",),
                 subresources=frozenset({"status", "finalize"}), status_subresource=True,
                 default=core.default_namespace, validate=core.validate_namespace,
                 initial_status=core.initial_namespace_status, schema_name="io.k8s.api.core.v1.Namespace"),
    ResourceInfo("", "v1", "Node", "nodes", "node", False, ("no",),
                 subresources=frozenset({"status"}), status_subresource=True,
                 default=core.default_node, validate=core.validate_node,
                 schema_name="io.k8s.api.core.v1.Node"),
    ResourceInfo("", "v1", "Pod", "pods", "pod", True, ("po",), ("all",),
                 subresources=frozenset({"status", "binding"}), status_subresource=True,
                 default=core.default_pod, validate=core.validate_pod,
                 initial_status=core.initial_pod_status, schema_name="io.k8s.api.core.v1.Pod"),
    ResourceInfo("", "v1", "Event", "events", "event", True, ("ev",),
                 default=core.default_event, validate=core.validate_event,
                 schema_name="io.k8s.api.core.v1.Event"),
    ResourceInfo("", "v1", "ConfigMap", "configmaps", "configmap", True, ("cm",),
                 validate=core.validate_configmap, schema_name="io.k8s.api.core.v1.ConfigMap"),
    ResourceInfo("", "v1", "Service", "services", "service", True, ("svc",), ("all",),
                 subresources=frozenset({"status"}), status_subresource=True,
                 default=core.default_service, validate=core.validate_service,
                 schema_name="io.k8s.api.core.v1.Service"),
    ResourceInfo("apps", "v1", "Deployment", "deployments", "deployment", True, ("deploy",), ("all",),
                 subresources=frozenset({"status", "scale"}), status_subresource=True,
                 default=apps.default_deployment, validate=apps.validate_deployment,
                 schema_name="io.k8s.api.apps.v1.Deployment"),
    ResourceInfo("apps", "v1", "ReplicaSet", "replicasets", "replicaset", True, ("rs",), ("all",),
                 subresources=frozenset({"status", "scale"}), status_subresource=True,
                 default=apps.default_replicaset, validate=apps.validate_replicaset,
                 schema_name="io.k8s.api.apps.v1.ReplicaSet"),
    ResourceInfo("coordination.k8s.io", "v1", "Lease", "leases", "lease", True,
                 validate=coordination.validate_lease, schema_name="io.k8s.api.coordination.v1.Lease"),
    # Skiff's own kinds: EC2 capacity for pods that fit nowhere (chalicelib/provisioner).
    ResourceInfo("skiff.io", "v1", "NodePool", "nodepools", "nodepool", False,
                 subresources=frozenset({"status"}), status_subresource=True,
                 default=skiff.default_nodepool, validate=skiff.validate_nodepool,
                 schema_name="io.skiff.v1.NodePool"),
    ResourceInfo("skiff.io", "v1", "NodeClaim", "nodeclaims", "nodeclaim", False,
                 subresources=frozenset({"status"}), status_subresource=True,
                 validate=skiff.validate_nodeclaim, initial_status=skiff.initial_nodeclaim_status,
                 schema_name="io.skiff.v1.NodeClaim"),
)

_BY_PATH: dict[tuple[str, str, str], ResourceInfo] = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KEY: dict[str, ResourceInfo] = {r.key: r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> ResourceInfo | None:
    """The resource served at /api(s)/<group>/<version>/<plural>, or None."""
    return _BY_PATH.get((group, version, plural))


def by_key(key: str) -> ResourceInfo:
    return _BY_KEY[key]


def group_versions() -> list[tuple[str, str]]:
    """Every (group, version) served, core first, in a stable order."""
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        if (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen


def resources_in(group: str, version: str) -> list[ResourceInfo]:
    return [r for r in RESOURCES if r.group == group and r.version == version]


NAMESPACES = _BY_PATH[("", "v1", "namespaces")]
NODES = _BY_PATH[("", "v1", "nodes")]
PODS = _BY_PATH[("", "v1", "pods")]
EVENTS = _BY_PATH[("", "v1", "events")]
LEASES = _BY_PATH[("coordination.k8s.io", "v1", "leases")]


def group_known(group: str, version: str) -> bool:
    return (group, version) in group_versions()
