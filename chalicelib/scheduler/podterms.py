"""Which pods a pod affinity term or a topology spread constraint selects.

framework.AffinityTerm, in short: a label selector plus the namespaces it looks in (the term's
namespaces, or the owning pod's namespace when it names none and has no namespaceSelector), a
namespaceSelector (`{}` is every namespace, none is no extra namespace) and a topologyKey. A
`PodMatcher` is the selecting half, with a hashable `key`, so the snapshot can keep one running count
of matching pods per distinct matcher instead of re-matching every pod for every pod it schedules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from chalicelib import errors
from chalicelib.api.label_selector import DOUBLE_EQUALS, EQUALS, IN
from chalicelib.api.selectors import LabelSelector, selector_from_label_selector

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
Labels = Mapping[str, str]
NamespaceLabels = Callable[[str], Labels]


def label_selector(selector: Mapping[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None selects nothing, `{}` everything; an invalid one nothing."""
    try:
        return selector_from_label_selector(selector)
    except errors.BadRequest:
        return LabelSelector.nothing()


def selector_key(selector: LabelSelector | None) -> tuple[str, bool] | None:
    """A hashable identity for a selector (its canonical text does not tell nothing from everything)."""
    return None if selector is None else (str(selector), selector.is_empty)


def compile_selector(selector: LabelSelector) -> Callable[[Labels], bool]:
    """selector.matches as a closure; selectors of exact label values (matchLabels) become dict lookups."""
    if selector.is_empty:
        return lambda labels: True
    requirements = selector.requirements
    if not requirements:
        return lambda labels: False  # the selector that selects nothing
    if all(r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1 for r in requirements):
        pairs = tuple((r.key, r.values[0]) for r in requirements)
        if len(pairs) == 1:
            ((key, value),) = pairs
            return lambda labels: labels.get(key) == value
        return lambda labels: all(labels.get(k) == v for k, v in pairs)
    return selector.matches


class PodMatcher:
    """Namespaces plus a label selector: does a given pod belong to the set a term talks about?"""

    __slots__ = ("namespaces", "all_namespaces", "namespace_selector", "selector", "skip_terminating", "key",
                 "_labels_match")

    def __init__(self, *, namespaces: frozenset[str], selector: LabelSelector,
                 namespace_selector: LabelSelector | None = None, skip_terminating: bool = False) -> None:
        self.namespaces = namespaces
        self.all_namespaces = namespace_selector is not None and namespace_selector.is_empty
        # A non-empty namespaceSelector is kept and evaluated against namespace labels at match time.
        self.namespace_selector = (namespace_selector if namespace_selector is not None
                                   and not namespace_selector.is_empty else None)
        self.selector = selector
        self._labels_match = compile_selector(selector)
        self.skip_terminating = skip_terminating
        self.key = (tuple(sorted(namespaces)), self.all_namespaces, selector_key(self.namespace_selector),
                    selector_key(selector), skip_terminating)

    @property
    def any_namespace_possible(self) -> bool:
        """True when the matcher may select pods outside its explicit namespace list."""
        return self.all_namespaces or self.namespace_selector is not None

    def matches_namespace(self, namespace: str, namespace_labels: NamespaceLabels) -> bool:
        if namespace in self.namespaces or self.all_namespaces:
            return True
        return self.namespace_selector is not None and self.namespace_selector.matches(namespace_labels(namespace))

    def matches(self, namespace: str, labels: Labels, terminating: bool, namespace_labels: NamespaceLabels) -> bool:
        if terminating and self.skip_terminating:
            return False
        return self.matches_namespace(namespace, namespace_labels) and self._labels_match(labels)


class AffinityTerm(NamedTuple):
    """One pod (anti-)affinity term; `weight` is 0 for required terms."""

    matcher: PodMatcher
    topology_key: str
    weight: int

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.matcher.key, self.topology_key, self.weight)


class PodTerms(NamedTuple):
    """A pod's inter-pod affinity terms, parsed once."""

    required_affinity: tuple[AffinityTerm, ...]
    required_anti_affinity: tuple[AffinityTerm, ...]
    preferred_affinity: tuple[AffinityTerm, ...]
    preferred_anti_affinity: tuple[AffinityTerm, ...]

    @property
    def any(self) -> bool:
        return any(self)


NO_TERMS = PodTerms((), (), (), ())


def affinity_term(owner_namespace: str, term: Mapping[str, Any], weight: int = 0) -> AffinityTerm:
    """newAffinityTerm: the namespaces default to the owning pod's when the term names none."""
    names = term.get("namespaces") or ()
    raw_namespace_selector = term.get("namespaceSelector")
    namespaces = frozenset(names) if names or raw_namespace_selector is not None else frozenset({owner_namespace})
    namespace_selector = label_selector(raw_namespace_selector) if raw_namespace_selector is not None else None
    matcher = PodMatcher(namespaces=namespaces, selector=label_selector(term.get("labelSelector")),
                         namespace_selector=namespace_selector)
    return AffinityTerm(matcher, term.get("topologyKey") or "", weight)


def _required(namespace: str, terms: Sequence[Mapping[str, Any]] | None) -> tuple[AffinityTerm, ...]:
    return tuple(affinity_term(namespace, t) for t in terms or ())


def _preferred(namespace: str, terms: Sequence[Mapping[str, Any]] | None) -> tuple[AffinityTerm, ...]:
    return tuple(affinity_term(namespace, t.get("podAffinityTerm") or {}, int(t.get("weight") or 0))
                 for t in terms or ())


def pod_terms(namespace: str, spec: Mapping[str, Any]) -> PodTerms:
    """framework.PodInfo's Required/Preferred (Anti)AffinityTerms."""
    affinity = spec.get("affinity") or {}
    pod_affinity = affinity.get("podAffinity") or {}
    anti_affinity = affinity.get("podAntiAffinity") or {}
    if not pod_affinity and not anti_affinity:
        return NO_TERMS
    required, preferred = ("requiredDuringSchedulingIgnoredDuringExecution",
                           "preferredDuringSchedulingIgnoredDuringExecution")
    return PodTerms(_required(namespace, pod_affinity.get(required)),
                    _required(namespace, anti_affinity.get(required)),
                    _preferred(namespace, pod_affinity.get(preferred)),
                    _preferred(namespace, anti_affinity.get(preferred)))
