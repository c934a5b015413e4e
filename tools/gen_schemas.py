"""Generate chalicelib/types/schemas.json: the OpenAPI v3 schemas of every type Skiff serves.

Why this exists: kubectl only uses server-side field validation (and `kubectl explain` only works)
when the server publishes OpenAPI v3 documents, and the server itself needs the same schemas to
reject unknown fields and mistyped values the way kube-apiserver does. Writing ~200 schemas by hand
is error-prone, so they are derived once, at development time, from the models of the official
`kubernetes` Python client (pydantic models carrying JSON names, descriptions and required-ness).
The output is committed; nothing here runs in the server.

Run by hand from the repository root after changing the registry or upgrading the client:

    .venv/bin/python tools/gen_schemas.py

What the Python client does not carry is restored from small tables below, each a fact of the
Kubernetes API: which string fields are really `resource.Quantity`, which timestamps are
`MicroTime`, which integers are int64, and the strategic-merge-patch keys of lists (kubectl builds
its apply patches from those extensions when the server advertises strategic merge patch).
"""

from __future__ import annotations

import datetime
import json
import re
import sys
import types
import typing
from collections import deque
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import kubernetes.client.models as client_models  # noqa: E402

from chalicelib.types import registry  # noqa: E402

OUTPUT = ROOT / "chalicelib" / "types" / "schemas.json"

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
TIME = f"{META}.Time"
MICRO_TIME = f"{META}.MicroTime"
FIELDS_V1 = f"{META}.FieldsV1"
RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"
PATCH = f"{META}.Patch"

Schema = dict[str, Any]

# Go packages of the API groups, keyed by the group name used in x-kubernetes-group-version-kind.
PACKAGES: dict[str, str] = {
    "meta": META,
    "": "io.k8s.api.core.v1",
    "apps": "io.k8s.api.apps.v1",
    "coordination.k8s.io": "io.k8s.api.coordination.v1",
    "autoscaling": "io.k8s.api.autoscaling.v1",
}

# Leaf types with their own JSON (un)marshalling. Descriptions are short summaries of upstream docs.
LEAF_SCHEMAS: dict[str, Schema] = {
    QUANTITY: {
        "description": "Quantity is a fixed-point representation of a number, serialized as a string "
                       "such as \"100m\", \"1.5Gi\" or \"2\" (a bare JSON number is accepted too): "
                       "<signedNumber><suffix>, where suffix is a binary SI suffix (Ki, Mi, Gi, Ti, "
                       "Pi, Ei), a decimal SI suffix (n, u, m, \"\", k, M, G, T, P, E) or a decimal "
                       "exponent (e3, E-3).",
        "oneOf": [{"type": "string"}, {"type": "number"}],
    },
    INT_OR_STRING: {
        "description": "IntOrString is a type that can hold an int32 or a string. When used in JSON or "
                       "YAML marshalling and unmarshalling, it produces or consumes the inner type.",
        "format": "int-or-string",
        "oneOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
    },
    TIME: {
        "description": "Time is a wrapper around time.Time which supports correct marshaling to YAML "
                       "and JSON, as an RFC 3339 timestamp in UTC with second precision.",
        "format": "date-time",
        "type": "string",
    },
    MICRO_TIME: {
        "description": "MicroTime is version of Time with microsecond level precision "
                       "(RFC 3339 with exactly six fractional digits).",
        "format": "date-time",
        "type": "string",
    },
    FIELDS_V1: {
        "description": "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON "
                       "format. Each key is either a '.' (the field itself) or a field, map key, list "
                       "value or list element key; the value is the sub-tree of fields under it.",
        "type": "object",
    },
    RAW_EXTENSION: {
        "description": "RawExtension holds an arbitrary, embedded JSON object (for a watch event, the "
                       "object that changed, or a Status for an ERROR event).",
        "type": "object",
    },
    PATCH: {
        "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH "
                       "request body.",
        "type": "object",
    },
}

# (definition short name, JSON field) typed as plain strings by the client but Quantity in Kubernetes.
QUANTITY_FIELDS: frozenset[tuple[str, str]] = frozenset({
    ("ResourceRequirements", "limits"), ("ResourceRequirements", "requests"),
    ("VolumeResourceRequirements", "limits"), ("VolumeResourceRequirements", "requests"),
    ("EmptyDirVolumeSource", "sizeLimit"), ("ResourceFieldSelector", "divisor"),
    ("NodeStatus", "capacity"), ("NodeStatus", "allocatable"),
    ("PodSpec", "overhead"), ("PodStatus", "allocatedResources"),
    ("ContainerStatus", "allocatedResources"),
    ("NodeAllocatableMappedResources", "quantity"),
    ("NodeAllocatableOverheadResources", "perContainer"),
    ("NodeAllocatableOverheadResources", "perPod"),
})

# Timestamps that are metav1.MicroTime rather than metav1.Time.
MICRO_TIME_FIELDS: frozenset[tuple[str, str]] = frozenset({
    ("Event", "eventTime"), ("EventSeries", "lastObservedTime"),
    ("LeaseSpec", "acquireTime"), ("LeaseSpec", "renewTime"),
})

# Free-form JSON objects (the client says Dict[str, Any]).
OBJECT_FIELDS: dict[tuple[str, str], str] = {
    ("ManagedFieldsEntry", "fieldsV1"): FIELDS_V1,
    ("WatchEvent", "object"): RAW_EXTENSION,
}

# Integer fields that are int64 in Go (every other integer is int32). Only integer-typed fields
# are looked up here, so a name such as "capacity" cannot clash with a map field.
INT64_FIELDS: frozenset[str] = frozenset({
    "generation", "observedGeneration", "deletionGracePeriodSeconds", "remainingItemCount",
    "terminationGracePeriodSeconds", "activeDeadlineSeconds", "gracePeriodSeconds",
    "runAsUser", "runAsGroup", "fsGroup", "supplementalGroups", "uid", "gid",
    "tolerationSeconds", "expirationSeconds", "sizeBytes", "seconds", "capacity",
})

# Strategic merge patch metadata of list and struct fields: (strategy, merge key).
PATCH_META: dict[tuple[str, str], tuple[str, str | None]] = {
    ("ObjectMeta", "finalizers"): ("merge", None),
    ("ObjectMeta", "ownerReferences"): ("merge", "uid"),
    ("PodSpec", "volumes"): ("merge,retainKeys", "name"),
    ("PodSpec", "initContainers"): ("merge", "name"),
    ("PodSpec", "containers"): ("merge", "name"),
    ("PodSpec", "ephemeralContainers"): ("merge", "name"),
    ("PodSpec", "imagePullSecrets"): ("merge", "name"),
    ("PodSpec", "hostAliases"): ("merge", "ip"),
    ("PodSpec", "topologySpreadConstraints"): ("merge", "topologyKey"),
    ("PodSpec", "resourceClaims"): ("merge,retainKeys", "name"),
    ("PodSpec", "schedulingGates"): ("merge", "name"),
    ("Container", "ports"): ("merge", "containerPort"),
    ("Container", "env"): ("merge", "name"),
    ("Container", "volumeMounts"): ("merge", "mountPath"),
    ("Container", "volumeDevices"): ("merge", "devicePath"),
    ("EphemeralContainer", "ports"): ("merge", "containerPort"),
    ("EphemeralContainer", "env"): ("merge", "name"),
    ("EphemeralContainer", "volumeMounts"): ("merge", "mountPath"),
    ("EphemeralContainer", "volumeDevices"): ("merge", "devicePath"),
    ("PodStatus", "conditions"): ("merge", "type"),
    ("PodStatus", "podIPs"): ("merge", "ip"),
    ("PodStatus", "hostIPs"): ("merge", "ip"),
    ("PodStatus", "resourceClaimStatuses"): ("merge,retainKeys", "name"),
    ("NodeSpec", "podCIDRs"): ("merge", None),
    ("NodeStatus", "conditions"): ("merge", "type"),
    ("NodeStatus", "addresses"): ("merge", "type"),
    ("NamespaceStatus", "conditions"): ("merge", "type"),
    ("ServiceSpec", "ports"): ("merge", "port"),
    ("ServiceStatus", "conditions"): ("merge", "type"),
    ("DeploymentSpec", "strategy"): ("retainKeys", None),
    ("DeploymentStatus", "conditions"): ("merge", "type"),
    ("ReplicaSetStatus", "conditions"): ("merge", "type"),
}

_CLASS_NAME = re.compile(r"^(?P<prefix>[A-Za-z]*?)(?P<version>V\d+(?:alpha\d+|beta\d+)?)(?P<kind>[A-Z]\w*)$")


def _kind_of(cls: type[BaseModel]) -> str:
    """`V1PodSpec` -> `PodSpec`, `CoreV1Event` -> `Event`."""
    match = _CLASS_NAME.match(cls.__name__)
    if not match:
        raise ValueError(f"unexpected client model name {cls.__name__}")
    return match.group("kind")


def _model(kind: str, group: str, version: str = "v1") -> type[BaseModel]:
    """The client model for a kind, trying the group-prefixed name the client uses on clashes."""
    prefix = {"": "Core", "meta": "Meta"}.get(group, group.split(".")[0].capitalize())
    ver = version.capitalize()
    for name in (f"{ver}{kind}", f"{prefix}{ver}{kind}"):
        cls = getattr(client_models, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            return cls
    raise LookupError(f"no client model for {group or 'core'}/{version} {kind}")


def _description(cls: type[BaseModel]) -> str:
    doc = (cls.__doc__ or "").split("Attributes:")[0]
    return " ".join(line.strip() for line in doc.strip().splitlines() if line.strip())


def _unwrap(annotation: Any) -> Any:
    """Strip Optional[...] and Annotated[..., Strict()] down to the Python type."""
    while True:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is typing.Annotated:
            annotation = args[0]
        elif origin in (typing.Union, types.UnionType) and type(None) in args:
            rest = [a for a in args if a is not type(None)]
            annotation = rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]  # noqa: UP007
        else:
            return annotation


class Generator:
    """Walks client models from the roots and emits one schema per definition."""

    def __init__(self) -> None:
        self.names: dict[type[BaseModel], str] = {}
        self.schemas: dict[str, Schema] = dict(LEAF_SCHEMAS)
        self.used: set[tuple[str, str]] = set()

    # -- naming ---------------------------------------------------------------------------------

    def classify(self, roots: list[tuple[str, type[BaseModel]]]) -> None:
        """Give every reachable model its canonical definition name.

        A nested model belongs to the package of the first root (in the given order) that reaches
        it: meta roots come first, then core, so core types used by apps (PodTemplateSpec) stay core.
        """
        for group, root in roots:
            queue: deque[type[BaseModel]] = deque([root])
            while queue:
                cls = queue.popleft()
                if cls in self.names:
                    continue
                self.names[cls] = f"{PACKAGES[group]}.{_kind_of(cls)}"
                queue.extend(self._children(cls))

    def _children(self, cls: type[BaseModel]) -> list[type[BaseModel]]:
        found: list[type[BaseModel]] = []

        def visit(annotation: Any) -> None:
            annotation = _unwrap(annotation)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                found.append(annotation)
            for arg in typing.get_args(annotation):
                visit(arg)

        for info in cls.model_fields.values():
            visit(info.annotation)
        return found

    # -- schemas --------------------------------------------------------------------------------

    def emit(self, cls: type[BaseModel]) -> str:
        name = self.names[cls]
        if name in self.schemas:
            return name
        owner = _kind_of(cls)
        properties: dict[str, Schema] = {}
        required: list[str] = []
        out: Schema = {"description": _description(cls), "type": "object", "properties": properties}
        self.schemas[name] = out
        for attr, info in cls.model_fields.items():
            json_name = info.serialization_alias or attr
            prop = self.field_schema(owner, json_name, info.annotation)
            if info.description:
                prop["description"] = info.description
            elif "$ref" in prop:
                # The client drops descriptions of fields typed by another model (spec, selector,
                # template, ...); the referenced type's own description is the next best text for
                # kubectl explain.
                target = self.schemas[prop["$ref"].removeprefix("#/components/schemas/")]
                if target.get("description"):
                    prop["description"] = target["description"]
            strategy = PATCH_META.get((owner, json_name))
            if strategy:
                prop["x-kubernetes-patch-strategy"] = strategy[0]
                if strategy[1]:
                    prop["x-kubernetes-patch-merge-key"] = strategy[1]
            properties[json_name] = prop
            if info.is_required():
                required.append(json_name)
        if required:
            out["required"] = sorted(required)
        if not out["description"]:
            del out["description"]
        return name

    def field_schema(self, owner: str, field: str, annotation: Any) -> Schema:
        key = (owner, field)
        self.used.add(key)
        if key in QUANTITY_FIELDS:
            return self._with_quantity(self.type_schema(owner, field, annotation))
        if key in OBJECT_FIELDS:
            return {"$ref": f"#/components/schemas/{OBJECT_FIELDS[key]}"}
        if key in MICRO_TIME_FIELDS:
            return {"$ref": f"#/components/schemas/{MICRO_TIME}"}
        return self.type_schema(owner, field, annotation)

    def _with_quantity(self, node: Schema) -> Schema:
        """Replace the string leaf of a (map of) string schema by a Quantity reference."""
        if node.get("type") == "string":
            return {"$ref": f"#/components/schemas/{QUANTITY}"}
        if node.get("type") == "object" and "additionalProperties" in node:
            return {**node, "additionalProperties": self._with_quantity(node["additionalProperties"])}
        raise TypeError(f"cannot make a Quantity of {node}")

    def type_schema(self, owner: str, field: str, annotation: Any) -> Schema:
        annotation = _unwrap(annotation)
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return {"$ref": f"#/components/schemas/{self.emit(annotation)}"}
        if annotation is bool:
            return {"type": "boolean"}
        if annotation is int:
            return {"type": "integer", "format": "int64" if field in INT64_FIELDS else "int32"}
        if annotation is float:
            return {"type": "number", "format": "double"}
        if annotation is str:
            return {"type": "string"}
        if annotation is bytes:
            return {"type": "string", "format": "byte"}
        if annotation is datetime.datetime:
            return {"$ref": f"#/components/schemas/{TIME}"}
        if origin in (typing.Union, types.UnionType):
            plain = {_unwrap(a) for a in args}
            if plain == {int, str}:
                return {"$ref": f"#/components/schemas/{INT_OR_STRING}"}
            if plain == {bytes, str}:
                return {"type": "string", "format": "byte"}
        if origin is list:
            return {"type": "array", "items": self.type_schema(owner, field, args[0])}
        if origin is dict and args[0] is str and args[1] is not Any:
            return {"type": "object", "additionalProperties": self.type_schema(owner, field, args[1])}
        raise TypeError(f"{owner}.{field}: no schema for annotation {annotation!r}")


def build() -> str:
    """The content of schemas.json, from the registry and the installed client."""
    # Skiff's own groups (skiff.io) are not in the client: their schemas are hand-written in
    # chalicelib/types/skiff_schemas.json, which chalicelib.types.schema merges in.
    served = [(r.group, r.version, r.kind, r.schema_name) for r in registry.RESOURCES if r.group in PACKAGES]
    # Classification order matters: meta first, then core (including PodTemplate, which is only
    # here so that PodTemplateSpec is recognised as core), then the other groups.
    ordered: list[tuple[str, type[BaseModel]]] = [
        ("meta", _model(kind, "meta")) for kind in (
            "ObjectMeta", "ListMeta", "Status", "DeleteOptions", "WatchEvent", "Condition",
            "APIResourceList", "LabelSelector")
    ]
    ordered.append(("", _model("PodTemplate", "")))
    ordered.append(("", _model("Binding", "")))
    groups = sorted({g for g, _, _, _ in served}, key=lambda g: (g != "", g))
    for group in groups:
        for g, version, kind, _ in served:
            if g == group:
                ordered.append((group, _model(kind, group, version)))
                ordered.append((group, _model(f"{kind}List", group, version)))
    ordered.append(("autoscaling", _model("Scale", "autoscaling")))

    gen = Generator()
    gen.classify(ordered)

    emitted: list[tuple[str, str, str, type[BaseModel]]] = []  # (group, version, kind, model)
    for group, version, kind, schema_name in served:
        for k in (kind, f"{kind}List"):
            cls = _model(k, group, version)
            if k == kind and gen.names[cls] != schema_name:
                raise SystemExit(f"registry says {schema_name}, client model maps to {gen.names[cls]}")
            emitted.append((group, version, k, cls))
    emitted.append(("", "v1", "Binding", _model("Binding", "")))
    emitted.append(("autoscaling", "v1", "Scale", _model("Scale", "autoscaling")))
    for group, version, kind, cls in emitted:
        name = gen.emit(cls)
        gen.schemas[name]["x-kubernetes-group-version-kind"] = [
            {"group": group, "kind": kind, "version": version}]

    # Meta kinds that every group serves (as Kubernetes lists them, under each group-version).
    everywhere = [{"group": g, "kind": "", "version": "v1"} for g in ["", *groups[1:], "autoscaling"]]
    for kind in ("Status", "DeleteOptions", "WatchEvent", "APIResourceList"):
        name = gen.emit(_model(kind, "meta"))
        gvks = [{**gvk, "kind": kind} for gvk in everywhere]
        if kind in ("Status", "APIResourceList"):
            gvks = gvks[:1]
        gen.schemas[name]["x-kubernetes-group-version-kind"] = gvks
    for kind in ("ObjectMeta", "ListMeta", "Condition", "LabelSelector"):
        gen.emit(_model(kind, "meta"))

    tables = [*QUANTITY_FIELDS, *MICRO_TIME_FIELDS, *OBJECT_FIELDS, *PATCH_META]
    unused = sorted(key for key in tables if key not in gen.used)
    if unused:
        raise SystemExit(f"table entries matching no field (typo, or the client changed): {unused}")

    return json.dumps(gen.schemas, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def main() -> None:
    text = build()
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}: {len(json.loads(text))} schemas, {len(text)} bytes")


if __name__ == "__main__":
    main()
