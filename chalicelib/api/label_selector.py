"""Label selectors: which objects a `labelSelector` or a workload's selector picks.

The `labelSelector` query parameter and metav1.LabelSelector (`matchLabels`/`matchExpressions`)
parse, validate, match and print as in apimachinery (pkg/labels, LabelSelectorAsSelector), error
messages included, so kubectl and controllers see the answers kube-apiserver would give. Field
selectors, and the public entry points of both, are in selectors.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib import errors

# selection.Operator values, as upstream spells them.
EXISTS, DOES_NOT_EXIST = "exists", "!"
EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "=", "==", "!="
IN, NOT_IN, GREATER_THAN, LESS_THAN = "in", "notin", "gt", "lt"
_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)


@dataclass(frozen=True)
class Requirement:
    """One `key <operator> values` term; a selector is the AND of its requirements."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        if self.operator in (IN, EQUALS, DOUBLE_EQUALS):
            return has and labels[self.key] in self.values
        if self.operator in (NOT_IN, NOT_EQUALS):
            return not has or labels[self.key] not in self.values
        if self.operator == EXISTS:
            return has
        if self.operator == DOES_NOT_EXIST:
            return not has
        if self.operator in (GREATER_THAN, LESS_THAN) and has and len(self.values) == 1:
            have, want = _int64(labels[self.key]), _int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if self.operator == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        if self.operator == EXISTS:
            return self.key
        if self.operator == DOES_NOT_EXIST:
            return f"!{self.key}"
        values = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if self.operator in (IN, NOT_IN):
            return f"{self.key} {self.operator} ({values})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(self.operator, self.operator)
        return f"{self.key}{symbol}{values}"


class LabelSelector:
    """A parsed label selector. No requirements selects everything; `nothing()` selects nothing."""

    def __init__(self, requirements: Iterable[Requirement] = (), *, nothing: bool = False) -> None:
        # Stable sort by key, as upstream orders requirements for a deterministic String().
        self.requirements: tuple[Requirement, ...] = tuple(sorted(requirements, key=lambda r: r.key))
        self._nothing = nothing

    @classmethod
    def nothing(cls) -> LabelSelector:
        return cls(nothing=True)

    @property
    def is_empty(self) -> bool:
        """True if the selector restricts nothing (matches every object)."""
        return not self._nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self._nothing:
            return False
        present = labels or {}
        return all(r.matches(present) for r in self.requirements)

    def requires_exact_match(self, key: str) -> str | None:
        """The value `key` must have for a match (from `=`, `==` or a one-value `in`), if any."""
        for r in self.requirements:
            if r.key == key:
                exact = r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1
                return r.values[0] if exact else None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return "LabelSelector(<nothing>)" if self._nothing else f"LabelSelector({str(self)!r})"


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a `labelSelector` string (`a=b,c!=d,e in (f,g),h notin (i),j,!k`, also `l>1`, `m<2`).

    The empty string selects everything. Bad syntax, keys or values raise errors.BadRequest with
    upstream's message (`unable to parse requirement: ...`, `found 'x', expected: ...`).
    """
    try:
        return LabelSelector(_LabelParser(text).parse())
    except _SelectorError as exc:
        raise errors.BadRequest(str(exc)) from None


def selector_from_label_selector(selector: Mapping[str, Any] | None) -> LabelSelector:
    """The selector a metav1.LabelSelector (`matchLabels` + `matchExpressions`) stands for.

    As in Kubernetes, an empty selector (`{}`) matches everything and a missing one (None) matches
    nothing. An invalid one raises errors.BadRequest with upstream's message.
    """
    if selector is None:
        return LabelSelector.nothing()
    if not isinstance(selector, Mapping):
        raise errors.BadRequest(f"a label selector must be an object, got {json.dumps(selector)}")
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping) or not isinstance(expressions, list):
        raise errors.BadRequest("a label selector's matchLabels must be an object and its "
                                "matchExpressions a list")
    try:
        requirements = [_new_requirement(_as_str(k), EQUALS, [v])
                        for k, v in sorted(match_labels.items(), key=lambda kv: _as_str(kv[0]))]
        for expr in expressions:
            if not isinstance(expr, Mapping):
                raise _SelectorError(f"invalid label selector requirement: {json.dumps(expr)}")
            operator = _METAV1_OPERATORS.get(_as_str(expr.get("operator")))
            if operator is None:
                raise _SelectorError(f"{_go_quote(_as_str(expr.get('operator')))} is not a valid "
                                     "label selector operator")
            values = expr.get("values")
            if values is not None and not isinstance(values, list):
                raise _SelectorError(f"invalid label selector requirement: {json.dumps(expr)}")
            requirements.append(_new_requirement(_as_str(expr.get("key")), operator, values))
    except _SelectorError as exc:
        raise errors.BadRequest(str(exc)) from None
    return LabelSelector(requirements)


def format_label_selector(selector: Mapping[str, Any] | None) -> str:
    """The string form of a metav1.LabelSelector, as Kubernetes puts it in a Scale's
    `status.selector`: requirements sorted by key, set values sorted, e.g. `app=web,tier in (a,b)`.
    """
    return str(selector_from_label_selector(selector))


_METAV1_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


class _SelectorError(Exception):
    """A parse or validation failure, carrying upstream's message."""


def _new_requirement(key: str, operator: str, values: list[Any] | None) -> Requirement:
    """labels.NewRequirement: validate the key, the operator's arity and the values."""
    problems: list[str] = []
    key_error = _label_key_error(key)
    if key_error:
        problems.append(_invalid("key", _go_quote(key), key_error))
    strings = [_as_str(v) for v in values or []]
    shown = _go_strings(strings, nil=not strings)  # upstream copies values with append(nil, ...)
    if operator in (IN, NOT_IN) and not strings:
        problems.append(_invalid("values", shown, "for 'in', 'notin' operators, values set can't be empty"))
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS) and len(strings) != 1:
        problems.append(_invalid("values", shown, "exact-match compatibility requires one single value"))
    elif operator in (EXISTS, DOES_NOT_EXIST) and strings:
        problems.append(_invalid("values", shown, "values set must be empty for exists and does not exist"))
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(strings) != 1:
            problems.append(_invalid("values", shown,
                                     "for 'Gt', 'Lt' operators, exactly one value is required"))
        for i, value in enumerate(strings):
            if _int64(value) is None:
                problems.append(_invalid(f"values[{i}]", _go_quote(value),
                                         "for 'Gt', 'Lt' operators, the value must be an integer"))
    for i, value in enumerate(strings):
        value_error = _label_value_error(value)
        if value_error:
            problems.append(_invalid(f"values[{i}][{key}]", _go_quote(value), value_error))
    unique = list(dict.fromkeys(problems))  # upstream's aggregate drops repeated messages
    if unique:
        raise _SelectorError(unique[0] if len(unique) == 1 else f"[{', '.join(unique)}]")
    return Requirement(key, operator, tuple(strings))


def _as_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# Lexer tokens.
_ERROR, _END, _CLOSE, _COMMA, _NOT, _DEQ, _EQ, _GT, _IDENT, _IN, _LT, _NEQ, _NOTIN, _OPEN = range(14)
_LITERALS = {")": _CLOSE, ",": _COMMA, "!": _NOT, "==": _DEQ, "=": _EQ, ">": _GT, "in": _IN,
             "<": _LT, "!=": _NEQ, "notin": _NOTIN, "(": _OPEN}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_OPERATOR_TOKENS = {_IN: IN, _EQ: EQUALS, _DEQ: DOUBLE_EQUALS, _GT: GREATER_THAN, _LT: LESS_THAN,
                    _NOTIN: NOT_IN, _NEQ: NOT_EQUALS}


def _lex(text: str) -> list[tuple[int, str]]:
    """Tokens as apimachinery's label Lexer cuts them, ending with an _END token."""
    tokens: list[tuple[int, str]] = []
    pos, size = 0, len(text)
    while True:
        while pos < size and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= size:
            tokens.append((_END, ""))
            return tokens
        start = pos
        if text[pos] in _SPECIAL:
            best: tuple[int, str] | None = None
            while pos < size and text[pos] in _SPECIAL:
                candidate = text[start:pos + 1]
                if candidate in _LITERALS:
                    best, pos = (_LITERALS[candidate], candidate), pos + 1
                elif best is not None:
                    break
                else:
                    pos += 1
            tokens.append(best or (_ERROR, f"error expected: keyword found '{text[start:pos]}'"))
        else:
            while pos < size and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
                pos += 1
            word = text[start:pos]
            tokens.append((_LITERALS.get(word, _IDENT), word))


class _LabelParser:
    """apimachinery's recursive descent label selector parser, same grammar, same messages."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def peek(self, values: bool = True) -> tuple[int, str]:
        return self._as_context(self.tokens[self.pos], values)

    def take(self, values: bool = True) -> tuple[int, str]:
        self.pos += 1
        return self._as_context(self.tokens[self.pos - 1], values)

    @staticmethod
    def _as_context(token: tuple[int, str], values: bool) -> tuple[int, str]:
        # Where a value may stand, `in` and `notin` are plain identifiers.
        return (_IDENT, token[1]) if values and token[0] in (_IN, _NOTIN) else token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self.peek()
            if tok == _END:
                return requirements
            if tok not in (_IDENT, _NOT):
                raise _SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except _SelectorError as exc:
                raise _SelectorError(f"unable to parse requirement: {exc}") from None
            tok, lit = self.take()
            if tok == _END:
                return requirements
            if tok != _COMMA:
                raise _SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self.peek()
            if tok not in (_IDENT, _NOT):
                raise _SelectorError(f"found '{lit}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        tok, key = self.take()
        negated = tok == _NOT
        if negated:
            tok, key = self.take()
        if tok != _IDENT:
            raise _SelectorError(f"found '{key}', expected: identifier")
        key_error = _label_key_error(key)
        if key_error:
            raise _SelectorError(_invalid("<nil>", _go_quote(key), key_error))
        if negated:
            return _new_requirement(key, DOES_NOT_EXIST, [])
        if self.peek()[0] in (_END, _COMMA):
            return _new_requirement(key, EXISTS, [])
        tok, lit = self.take(values=False)
        operator = _OPERATOR_TOKENS.get(tok)
        if operator is None:
            raise _SelectorError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        values = self.set_values() if operator in (IN, NOT_IN) else self.exact_value()
        return _new_requirement(key, operator, sorted(set(values)))

    def set_values(self) -> list[str]:
        tok, lit = self.take()
        if tok != _OPEN:
            raise _SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.peek()
        if tok == _CLOSE:  # "()" is the set holding the empty string
            self.take()
            return [""]
        if tok not in (_IDENT, _COMMA):
            raise _SelectorError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self.identifiers()
        if self.take()[0] != _CLOSE:
            raise _SelectorError(f"found '{lit}', expected: ')'")
        return values

    def identifiers(self) -> list[str]:
        values: list[str] = []
        while True:
            tok, lit = self.take()
            if tok == _IDENT:
                values.append(lit)
                tok2, lit2 = self.peek()
                if tok2 == _CLOSE:
                    return values
                if tok2 != _COMMA:
                    raise _SelectorError(f"found '{lit2}', expected: ',' or ')'")
            elif tok == _COMMA:  # empty items: "(,a", "a,)", "a,,b" hold the empty string
                if not values:
                    values.append("")
                tok2, _ = self.peek()
                if tok2 == _CLOSE:
                    values.append("")
                    return values
                if tok2 == _COMMA:
                    self.take()
                    values.append("")
            else:
                raise _SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> list[str]:
        tok, _ = self.peek()
        if tok in (_END, _COMMA):
            return [""]
        tok, lit = self.take()
        if tok != _IDENT:
            raise _SelectorError(f"found '{lit}', expected: identifier")
        return [lit]


# ---- label key and value validation (k8s.io/apimachinery/pkg/util/validation) ----------------

_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
              "with an alphanumeric character")
_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                    "'-', '_' or '.', and must start and end with an alphanumeric character")
_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*"
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                          "characters, '-' or '.', and must start and end with an alphanumeric character")


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    shown = "".join(f"{' or ' if i else ''}'{e}', " for i, e in enumerate(examples))
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _label_key_error(key: str) -> str:
    """validation.IsQualifiedName's complaints, joined with "; " ("" for a valid key)."""
    problems: list[str] = []
    parts = key.split("/")
    if len(parts) > 2:
        return ("a qualified name " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            problems.append("prefix part must be non-empty")
        else:
            if len(prefix) > 253:
                problems.append("prefix part must be no more than 253 characters")
            if not re.fullmatch(_DNS1123_SUBDOMAIN_FMT, prefix):
                problems.append("prefix part " + _regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT,
                                                              "example.com"))
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    if not re.fullmatch(_QNAME_FMT, name):
        problems.append("name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return "; ".join(problems)


def _label_value_error(value: str) -> str:
    problems: list[str] = []
    if len(value) > 63:
        problems.append("must be no more than 63 characters")
    if not re.fullmatch(_LABEL_VALUE_FMT, value):
        problems.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return "; ".join(problems)


def _invalid(field: str, shown_value: str, detail: str) -> str:
    """field.Invalid(...).Error()."""
    return f"{field}: Invalid value: {shown_value}: {detail}"


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _go_strings(values: Sequence[str], *, nil: bool) -> str:
    """A []string as Go's %#v prints it."""
    if nil:
        return "[]string(nil)"
    return "[]string{" + ", ".join(_go_quote(v) for v in values) + "}"


def _int64(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64), None where Go would fail."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    number = int(text)
    return number if -(2 ** 63) <= number < 2 ** 63 else None
