"""The OpenAPI schemas of served types, and the two checks kube-apiserver makes while decoding.

Why this exists: kube-apiserver decodes a request body into Go structs. That decoding refuses
values of the wrong JSON type (a string `replicas`), and, when the client asks for
`fieldValidation=Strict` (kubectl's default), refuses fields the struct does not declare. Skiff
stores plain dicts, so it has to make the same two checks explicitly, from the same schemas it
publishes at /openapi/v3 (generated into schemas.json by tools/gen_schemas.py).

How kube-apiserver reports these, so the API layer can copy it:

* a type error: 400 BadRequest, message
  `Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string
  into Go struct field DeploymentSpec.spec.replicas of type int32` (only the first error is
  reported; see `decode_failure_message`);
* unknown fields under Strict, on create/update: 400 BadRequest, message
  `Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown
  field "spec.template.spec.containers[0].imagee", unknown field "spec.foo"` (see
  `strict_error_detail`); under Warn each path becomes a `Warning: 299 - "unknown field \\"...\\""`
  response header instead; under Ignore nothing happens.
"""

from __future__ import annotations

import calendar
import functools
import json
import re
from pathlib import Path
from typing import Any

Schema = dict[str, Any]

_SCHEMAS_FILE = Path(__file__).with_name("schemas.json")
# Skiff's own kinds (skiff.io) have no model in the Kubernetes client to generate from: their schemas
# are written by hand in a file of their own and merged in here.
_SKIFF_SCHEMAS_FILE = Path(__file__).with_name("skiff_schemas.json")
_REF = "#/components/schemas/"

QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
MICRO_TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


@functools.cache
def all_schemas() -> dict[str, Schema]:
    """Every schema by canonical definition name, loaded once per process. Do not mutate."""
    schemas: dict[str, Schema] = json.loads(_SCHEMAS_FILE.read_text(encoding="utf-8"))
    schemas.update(json.loads(_SKIFF_SCHEMAS_FILE.read_text(encoding="utf-8")))
    return schemas


def schema(name: str) -> Schema:
    """The schema of one definition, e.g. `io.k8s.api.core.v1.Pod`; KeyError if unknown."""
    try:
        return all_schemas()[name]
    except KeyError:
        raise KeyError(f"no OpenAPI schema named {name!r}") from None


def ref_name(node: Schema) -> str | None:
    """The definition a `$ref` node points at, or None."""
    ref = node.get("$ref")
    return ref[len(_REF):] if isinstance(ref, str) and ref.startswith(_REF) else None


# -- public checks ---------------------------------------------------------------------------------

def decode_errors(obj: dict[str, Any], schema_name: str) -> list[str]:
    """Values Kubernetes' JSON decoding would refuse, in document order, worded like Go's errors.

    kube-apiserver stops at (and reports) the first one; all are returned for callers that want
    more. Unknown fields are not looked at here (they are ignored by decoding; see unknown_fields).
    """
    errors: list[str] = []
    top = schema(schema_name)
    if not isinstance(obj, dict):
        return [f"json: cannot unmarshal {_json_type(obj)} into Go value of type {_go_ref(schema_name)}"]
    _Decoder(errors).fields(obj, top, _short(schema_name), [])
    return errors


def unknown_fields(obj: dict[str, Any], schema_name: str) -> list[str]:
    """Paths like `spec.containers[0].imagee` of fields the schema does not declare, in document order.

    Maps (labels, annotations, nodeSelector, ConfigMap data, resource lists) take any key; objects
    marked `x-kubernetes-preserve-unknown-fields` or declared as free-form objects (FieldsV1,
    RawExtension) are not looked into. Values of the wrong type are skipped (decode_errors reports them).
    """
    found: list[str] = []
    _unknown(obj, {"$ref": _REF + schema_name}, "", found)
    return found


def decode_failure_message(kind: str, version: str, detail: str) -> str:
    """kube-apiserver's 400 message for a body it cannot decode (type error or strict error)."""
    return f'{kind} in version "{version}" cannot be handled as a {kind}: {detail}'


def strict_error_detail(paths: list[str]) -> str:
    """`strict decoding error: unknown field "a", unknown field "b"`, as kube-apiserver words it."""
    return "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in paths)


# -- unknown fields ---------------------------------------------------------------------------------

def _resolve(node: Schema) -> tuple[str | None, Schema]:
    name = ref_name(node)
    if name is None:
        return None, node
    return name, schema(name)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _unknown(value: Any, node: Schema, path: str, found: list[str]) -> None:
    _, target = _resolve(node)
    if target.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        properties = target.get("properties")
        additional = target.get("additionalProperties")
        if properties is not None:
            for key, item in value.items():
                if key in properties:
                    _unknown(item, properties[key], _join(path, key), found)
                else:
                    found.append(_join(path, key))
        elif isinstance(additional, dict):
            for key, item in value.items():
                _unknown(item, additional, _join(path, key), found)
    elif isinstance(value, list) and target.get("type") == "array":
        items = target.get("items", {})
        for index, item in enumerate(value):
            _unknown(item, items, f"{path}[{index}]", found)


# -- type errors ------------------------------------------------------------------------------------

def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _go_ref(name: str) -> str:
    """Go's spelling of a definition: `v1.PodSpec`, `resource.Quantity`, `intstr.IntOrString`."""
    package, _, short = name.rpartition(".")
    return f"{package.rsplit('.', 1)[-1]}.{short}"


def _go_type(node: Schema) -> str:
    name = ref_name(node)
    if name is not None:
        return _go_ref(name)
    kind = node.get("type")
    if kind == "array":
        return "[]" + _go_type(node.get("items", {}))
    if kind == "object":
        additional = node.get("additionalProperties")
        return "map[string]" + (_go_type(additional) if isinstance(additional, dict) else "interface {}")
    if kind == "string":
        return "[]uint8" if node.get("format") == "byte" else "string"
    if kind == "integer":
        return "int64" if node.get("format") == "int64" else "int32"
    if kind == "boolean":
        return "bool"
    if kind == "number":
        return "float64"
    return "interface {}"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _number_literal(value: int | float) -> str:
    return json.dumps(value)


class _Decoder:
    """Mirrors encoding/json: (innermost struct, JSON path without indices) name each error."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors

    def mismatch(self, value: Any, struct: str, path: list[str], go_type: str, literal: bool = False) -> None:
        what = _json_type(value)
        if literal:
            what = f"number {_number_literal(value)}"
        self.errors.append(
            f"json: cannot unmarshal {what} into Go struct field {struct}.{'.'.join(path)} of type {go_type}")

    def fields(self, obj: dict[str, Any], target: Schema, struct: str, path: list[str]) -> None:
        properties: dict[str, Schema] = target.get("properties", {})
        for key, item in obj.items():
            if key in properties:
                self.value(item, properties[key], struct, [*path, key])

    def value(self, value: Any, node: Schema, struct: str, path: list[str]) -> None:
        if value is None:  # JSON null decodes to the zero value of anything
            return
        name = ref_name(node)
        if name is not None:
            special = _SPECIAL.get(name)
            if special is not None:
                message = special(value)
                if message:
                    self.errors.append(message)
                return
            target = schema(name)
            if "properties" not in target and "additionalProperties" not in target:
                return  # free-form JSON (RawExtension, FieldsV1): anything decodes
            if not isinstance(value, dict):
                self.mismatch(value, struct, path, _go_ref(name))
                return
            self.fields(value, target, _short(name), path)
            return
        kind = node.get("type")
        if kind == "string":
            if not isinstance(value, str):
                self.mismatch(value, struct, path, _go_type(node))
            elif node.get("format") == "byte":
                bad = _base64_error(value)
                if bad is not None:
                    self.errors.append(f"illegal base64 data at input byte {bad}")
        elif kind == "integer":
            go_type = _go_type(node)
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.mismatch(value, struct, path, go_type)
            else:
                low, high = _INT_RANGES[go_type]
                if isinstance(value, float) or not low <= value <= high:
                    self.mismatch(value, struct, path, go_type, literal=True)
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.mismatch(value, struct, path, _go_type(node))
        elif kind == "boolean":
            if not isinstance(value, bool):
                self.mismatch(value, struct, path, "bool")
        elif kind == "array":
            if not isinstance(value, list):
                self.mismatch(value, struct, path, _go_type(node))
                return
            items = node.get("items", {})
            for item in value:
                self.value(item, items, struct, path)
        elif kind == "object":
            additional = node.get("additionalProperties")
            if not isinstance(additional, dict):
                return
            if not isinstance(value, dict):
                self.mismatch(value, struct, path, _go_type(node))
                return
            for item in value.values():
                self.value(item, additional, struct, path)


# -- types with their own UnmarshalJSON ---------------------------------------------------------------

_QUANTITY_SHAPE = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_QUANTITY_RE = re.compile(_QUANTITY_SHAPE)
_QUANTITY_NUMBER = re.compile(r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)$")
_QUANTITY_SUFFIXES = frozenset({"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T",
                                "P", "E"})
_QUANTITY_EXPONENT = re.compile(r"^[eE][-+]?[0-9]+$")


def _quantity_error(value: Any) -> str | None:
    """resource.Quantity accepts a JSON string or number holding `<number><suffix>`."""
    text = value.strip() if isinstance(value, str) else json.dumps(value)
    format_wrong = f"quantities must match the regular expression '{_QUANTITY_SHAPE}'"
    match = _QUANTITY_RE.match(text)
    if not text or not match or not _QUANTITY_NUMBER.match(match.group(1)):
        return format_wrong
    suffix = match.group(2)
    if suffix not in _QUANTITY_SUFFIXES and not _QUANTITY_EXPONENT.match(suffix):
        return "unable to parse quantity's suffix"
    return None


def _int_or_string_error(value: Any) -> str | None:
    """intstr.IntOrString takes a string, else decodes the value as an int32."""
    if isinstance(value, str):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"json: cannot unmarshal {_json_type(value)} into Go value of type int32"
    low, high = _INT_RANGES["int32"]
    if isinstance(value, float) or not low <= value <= high:
        return f"json: cannot unmarshal number {_number_literal(value)} into Go value of type int32"
    return None


_RFC3339 = "2006-01-02T15:04:05Z07:00"
_RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"


def _time_error(value: Any, micro: bool) -> str | None:
    """metav1.Time / MicroTime: a JSON string parsed with Go's time.Parse(RFC3339[Micro], s)."""
    if not isinstance(value, str):
        return f"json: cannot unmarshal {_json_type(value)} into Go value of type string"
    layout = _RFC3339_MICRO if micro else _RFC3339
    return _parse_time(value, layout, micro)


def _parse_time(text: str, layout: str, micro: bool) -> str | None:
    """A small re-implementation of time.Parse for the two layouts, with Go's error wording."""
    rest = text

    def cannot(element: str) -> str:
        return f'parsing time "{text}" as "{layout}": cannot parse "{rest}" as "{element}"'

    def out_of_range(what: str) -> str:
        return f'parsing time "{text}": {what} out of range'

    numbers: dict[str, int] = {}
    elements: list[tuple[str, int, bool]] = [  # (layout element, digits, fixed width)
        ("2006", 4, True), ("-", 0, True), ("01", 2, True), ("-", 0, True), ("02", 2, True),
        ("T", 0, True), ("15", 2, False), (":", 0, True), ("04", 2, True), (":", 0, True),
        ("05", 2, True)]
    for element, digits, fixed in elements:
        if digits == 0:
            if not rest.startswith(element):
                return cannot(element)
            rest = rest[len(element):]
            continue
        taken = 0
        while taken < digits and taken < len(rest) and rest[taken].isdigit():
            taken += 1
        if taken == 0 or (fixed and taken < digits):
            return cannot(element)
        numbers[element] = int(rest[:taken])
        rest = rest[taken:]
        limits = {"01": ("month", 1, 12), "15": ("hour", 0, 23), "04": ("minute", 0, 59),
                  "05": ("second", 0, 59)}
        if element in limits:
            what, low, high = limits[element]
            if not low <= numbers[element] <= high:
                return out_of_range(what)
    if micro:
        fraction = rest[:7]
        if len(fraction) < 7 or fraction[0] not in ".," or not fraction[1:].isdigit():
            return cannot(".000000")
        rest = rest[7:]
    elif len(rest) >= 2 and rest[0] in ".," and rest[1].isdigit():
        end = 2
        while end < len(rest) and rest[end].isdigit():
            end += 1
        rest = rest[end:]
    if rest.startswith("Z"):
        rest = rest[1:]
    elif (len(rest) >= 6 and rest[0] in "+-" and rest[3] == ":" and rest[1:3].isdigit()
          and rest[4:6].isdigit()):
        rest = rest[6:]
    else:
        return cannot("Z07:00")
    if rest:
        return f'parsing time "{text}": extra text: "{rest}"'
    year, month = numbers["2006"], numbers["01"]
    if not 1 <= numbers["02"] <= calendar.monthrange(year, month)[1]:
        return out_of_range("day")
    return None


_SPECIAL = {
    QUANTITY: _quantity_error,
    INT_OR_STRING: _int_or_string_error,
    TIME: lambda value: _time_error(value, micro=False),
    MICRO_TIME: lambda value: _time_error(value, micro=True),
}


_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _base64_error(text: str) -> int | None:
    """Input offset of the first problem for Go's padded base64.StdEncoding ([]byte fields), or None.

    Newlines are skipped as Go does; `=` may only pad the last quantum; a missing pad is reported at
    the start of the incomplete quantum (an approximation of Go's offsets).
    """
    chars = [(offset, ch) for offset, ch in enumerate(text) if ch not in "\r\n"]
    for index, (offset, ch) in enumerate(chars):
        if ch == "=":
            tail_ok = all(c == "=" for _, c in chars[index:])
            if tail_ok and len(chars) % 4 == 0 and index % 4 >= 2 and index >= len(chars) - 2:
                return None
            return offset
        if ch not in _BASE64:
            return offset
    if len(chars) % 4:
        return chars[len(chars) - len(chars) % 4][0]
    return None
