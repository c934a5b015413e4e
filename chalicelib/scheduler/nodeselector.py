"""Which nodes a pod's nodeSelector and node affinity accept, as component-helpers' nodeaffinity does.

`RequiredNodeAffinity` is GetRequiredNodeAffinity: spec.nodeSelector AND any of the required
nodeSelectorTerms. A term ANDs its matchExpressions (on labels: In, NotIn, Exists, DoesNotExist,
Gt, Lt) and matchFields (metadata.name, In/NotIn). An empty term, a term that does not parse and an
empty list of terms match nothing. `PreferredNodeAffinity` sums the weights of the preferred terms a
node matches. Requirements compile to closures once per pod, so matching a node is a few dict
lookups; NodeAffinity and PodTopologySpread (nodeAffinityPolicy Honor) both use them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Labels = Mapping[str, str]
LabelTest = Callable[[Labels], bool]
OBJECT_NAME_FIELD = "metadata.name"
_INT = re.compile(r"[+-]?[0-9]+")


def _int64(text: str) -> int | None:
    if not _INT.fullmatch(text):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def compile_expression(expr: Mapping[str, Any]) -> LabelTest | None:
    """A matchExpressions entry as a label test; None if it does not parse (it then matches nothing)."""
    key = expr.get("key") or ""
    operator = expr.get("operator")
    values = [str(v) for v in expr.get("values") or ()]
    if operator == "In" and values:
        allowed = frozenset(values)
        return lambda labels: labels.get(key) in allowed
    if operator == "NotIn" and values:
        denied = frozenset(values)
        return lambda labels: labels.get(key) not in denied
    if operator == "Exists" and not values:
        return lambda labels: key in labels
    if operator == "DoesNotExist" and not values:
        return lambda labels: key not in labels
    if operator in ("Gt", "Lt") and len(values) == 1:
        bound = _int64(values[0])
        if bound is None:
            return None
        greater = operator == "Gt"

        def compare(labels: Labels) -> bool:
            have = labels.get(key)
            number = _int64(have) if have is not None else None
            if number is None:
                return False
            return number > bound if greater else number < bound
        return compare
    return None


def _compile_field(expr: Mapping[str, Any]) -> Callable[[str], bool] | None:
    """A matchFields entry; only metadata.name with In/NotIn and one value is valid upstream."""
    values = [str(v) for v in expr.get("values") or ()]
    operator = expr.get("operator")
    if operator not in ("In", "NotIn") or len(values) != 1:
        return None
    is_name = expr.get("key") == OBJECT_NAME_FIELD
    wanted = values[0]
    if operator == "In":
        return lambda name: (name if is_name else "") == wanted
    return lambda name: (name if is_name else "") != wanted


class NodeSelectorTerm:
    """One nodeSelectorTerm: matchExpressions AND matchFields."""

    __slots__ = ("labels", "fields", "valid")

    def __init__(self, term: Mapping[str, Any]) -> None:
        expressions = [compile_expression(e) for e in term.get("matchExpressions") or ()]
        fields = [_compile_field(f) for f in term.get("matchFields") or ()]
        self.valid = bool(expressions or fields) and None not in expressions and None not in fields
        self.labels: list[LabelTest] = [e for e in expressions if e is not None]
        self.fields: list[Callable[[str], bool]] = [f for f in fields if f is not None]

    def matches(self, labels: Labels, name: str) -> bool:
        if not self.valid:
            return False
        for test in self.labels:
            if not test(labels):
                return False
        return all(test(name) for test in self.fields)


def _node_affinity(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    return (spec.get("affinity") or {}).get("nodeAffinity") or {}


class RequiredNodeAffinity:
    """spec.nodeSelector AND (any required nodeSelectorTerm), compiled once per pod."""

    __slots__ = ("selector", "terms")

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.selector: tuple[tuple[str, str], ...] = tuple(
            (k, str(v)) for k, v in (spec.get("nodeSelector") or {}).items())
        required = _node_affinity(spec).get("requiredDuringSchedulingIgnoredDuringExecution")
        self.terms: list[NodeSelectorTerm] | None = None
        if required is not None:
            self.terms = [NodeSelectorTerm(t) for t in required.get("nodeSelectorTerms") or ()]

    @property
    def is_empty(self) -> bool:
        """True when the pod constrains nothing (every node matches)."""
        return not self.selector and self.terms is None

    def matches(self, labels: Labels, name: str) -> bool:
        for key, value in self.selector:
            if labels.get(key) != value:
                return False
        if self.terms is None:
            return True
        return any(term.matches(labels, name) for term in self.terms)


def required_terms(spec: Mapping[str, Any]) -> Sequence[Mapping[str, Any]] | None:
    """The raw required nodeSelectorTerms, or None when the pod has no required node affinity."""
    required = _node_affinity(spec).get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return None
    return list(required.get("nodeSelectorTerms") or ())


class PreferredNodeAffinity:
    """preferredDuringSchedulingIgnoredDuringExecution: (weight, term) pairs; weight-0 terms dropped."""

    __slots__ = ("terms",)

    def __init__(self, spec: Mapping[str, Any]) -> None:
        preferred = _node_affinity(spec).get("preferredDuringSchedulingIgnoredDuringExecution") or ()
        self.terms = [(int(p.get("weight") or 0), NodeSelectorTerm(p.get("preference") or {}))
                      for p in preferred if p.get("weight")]

    def score(self, labels: Labels, name: str) -> int:
        return sum(weight for weight, term in self.terms if term.matches(labels, name))
