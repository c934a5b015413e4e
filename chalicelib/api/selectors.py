"""List and watch filtering: label and field selectors.

`fieldSelector` parses and matches as in apimachinery's pkg/fields; which fields each kind can be
selected on, and the value each selects by, follow kube-apiserver's field label conversion
functions (pkg/apis/core/v1/conversion.go) and its registries' ToSelectableFields. Label
selectors live in label_selector.py and are re-exported here, so callers import both from one
place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib import errors
from chalicelib.api.label_selector import (
    LabelSelector,
    Requirement,
    format_label_selector,
    parse_label_selector,
    selector_from_label_selector,
)

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Requirement",
    "SELECTABLE_FIELDS",
    "selectable_summary",
    "format_label_selector",
    "parse_field_selector",
    "parse_label_selector",
    "selector_from_label_selector",
]

EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "=", "==", "!="
_OPERATORS = (NOT_EQUALS, DOUBLE_EQUALS, EQUALS)

Obj = Mapping[str, Any]
Getter = Callable[[Obj], str]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


def _at(*path: str) -> Getter:
    def get(obj: Obj) -> str:
        value: Any = obj
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        return _text(value)
    return get


def _flag(*path: str) -> Getter:
    return lambda obj: "true" if _at(*path)(obj) == "true" else "false"


def _pod_ip(obj: Obj) -> str:
    ips = (obj.get("status") or {}).get("podIPs") or []
    if ips and isinstance(ips[0], Mapping):
        return _text(ips[0].get("ip"))
    return _at("status", "podIP")(obj)


def _event_source(obj: Obj) -> str:
    return _at("source", "component")(obj) or _at("reportingComponent")(obj)


def _nothing_selectable(obj: Obj) -> str:
    return ""


_NAME: dict[str, Getter] = {"metadata.name": _at("metadata", "name")}
_META: dict[str, Getter] = {**_NAME, "metadata.namespace": _at("metadata", "namespace")}
_INVOLVED = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")

# Kinds with their own field label conversion upstream (pkg/apis/core/v1/conversion.go), and
# the value each field selects by. Node and Namespace are cluster-scoped: no metadata.namespace.
SELECTABLE_FIELDS: dict[str, dict[str, Getter]] = {
    "Pod": {
        **_META,
        "spec.nodeName": _at("spec", "nodeName"),
        "spec.restartPolicy": _at("spec", "restartPolicy"),
        "spec.schedulerName": _at("spec", "schedulerName"),
        "spec.serviceAccountName": _at("spec", "serviceAccountName"),
        "spec.hostNetwork": _flag("spec", "hostNetwork"),
        "status.phase": _at("status", "phase"),
        "status.podIP": _pod_ip,
        # Accepted by the conversion (it serves the downward API too) but not a selectable
        # field upstream, so it always compares as "".
        "status.podIPs": _nothing_selectable,
        "status.nominatedNodeName": _at("status", "nominatedNodeName"),
    },
    "Node": {**_NAME, "spec.unschedulable": _flag("spec", "unschedulable")},
    "Namespace": {**_NAME, "status.phase": _at("status", "phase")},
    "Event": {
        **_META,
        **{f"involvedObject.{f}": _at("involvedObject", f) for f in _INVOLVED},
        "reason": _at("reason"),
        "reportingComponent": _at("reportingComponent"),
        "source": _event_source,
        "type": _at("type"),
    },
    "Service": {**_META, "spec.clusterIP": _at("spec", "clusterIP"), "spec.type": _at("spec", "type")},
}
# Older clients' names, rewritten by the conversion.
_FIELD_ALIASES: dict[str, dict[str, str]] = {"Pod": {"spec.host": "spec.nodeName"}}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=", "==" or "!="
    value: str

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
        return f"{self.field}{'!=' if self.operator == NOT_EQUALS else '='}{escaped}"


class FieldSelector:
    """A parsed field selector for one kind: the AND of its requirements."""

    def __init__(self, kind: str, requirements: Sequence[FieldRequirement] = ()) -> None:
        self.kind = kind
        self.requirements = tuple(requirements)
        self._fields = SELECTABLE_FIELDS.get(kind, _META)

    @property
    def is_empty(self) -> bool:
        return not self.requirements

    def matches(self, obj: Obj) -> bool:
        for r in self.requirements:
            equal = self._fields[r.field](obj) == r.value  # a missing field is ""
            if equal == (r.operator == NOT_EQUALS):
                return False
        return True

    def matches_summary(self, summary: Obj) -> bool:
        """Like `matches`, on the field values kept by `selectable_summary` (an object's past state)."""
        fields = summary.get("fields") or {}
        for r in self.requirements:
            equal = fields.get(r.field, "") == r.value
            if equal == (r.operator == NOT_EQUALS):
                return False
        return True

    def equals(self, field: str) -> str | None:
        """The value the selector pins `field` to with `=`/`==`, so a store can narrow its query."""
        for r in self.requirements:
            if r.field == field and r.operator != NOT_EQUALS:
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return f"FieldSelector({self.kind!r}, {str(self)!r})"


def selectable_summary(kind: str, obj: Obj) -> dict[str, Any]:
    """What selectors can see of an object: its labels and selectable field values.

    The change log keeps this for an object's previous state, so a watch with a selector can tell
    an object that stopped matching (sent as DELETED) from one that started to (sent as ADDED).
    """
    labels = (obj.get("metadata") or {}).get("labels") or {}
    fields = {name: get(obj) for name, get in SELECTABLE_FIELDS.get(kind, _META).items()}
    return {"labels": dict(labels), "fields": fields}


def parse_field_selector(text: str, kind: str) -> FieldSelector:
    """Parse a `fieldSelector` for objects of `kind`: `field=value`, `field==value`,
    `field!=value`, comma-joined; `\\`, `,` and `=` in values are escaped with a backslash.

    The empty string selects everything. Bad syntax and fields `kind` cannot be selected on raise
    errors.BadRequest with upstream's message (e.g. `field label not supported: spec.foo`).
    """
    requirements: list[FieldRequirement] = []
    for term in sorted(_split_terms(text)):
        if not term:
            continue
        for i in range(len(term)):  # the first operator from the left; "!=" and "==" before "="
            operator = next((op for op in _OPERATORS if term.startswith(op, i)), None)
            if operator:
                field, value = term[:i], term[i + len(operator):]
                break
        else:
            raise errors.BadRequest(f"invalid selector: '{text}'; can't understand '{term}'")
        requirements.append(FieldRequirement(field, operator, _unescape(value)))
    return FieldSelector(kind, [_convert(kind, r) for r in requirements])


def _split_terms(text: str) -> list[str]:
    if not text:
        return []
    terms, start, escaped = [], 0, False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _unescape(value: str) -> str:
    out: list[str] = []
    escaped = False
    for char in value:
        if escaped:
            if char not in "\\,=":
                raise errors.BadRequest(f"invalid field selector: invalid escape sequence: \\{char}")
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            raise errors.BadRequest(f"invalid field selector: unescaped character in value: {ord(char)}")
        else:
            out.append(char)
    if escaped:
        raise errors.BadRequest("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _convert(kind: str, requirement: FieldRequirement) -> FieldRequirement:
    """The kind's field label conversion: rename aliases, refuse fields it cannot select on."""
    field = _FIELD_ALIASES.get(kind, {}).get(requirement.field, requirement.field)
    if kind in SELECTABLE_FIELDS:
        if field not in SELECTABLE_FIELDS[kind]:
            raise errors.BadRequest(f"field label not supported: {requirement.field}")
    elif field not in _META:  # runtime.DefaultMetaV1FieldSelectorConversion
        raise errors.BadRequest(f'"{requirement.field}" is not a known field selector: '
                                'only "metadata.name", "metadata.namespace"')
    return FieldRequirement(field, requirement.operator, requirement.value)
