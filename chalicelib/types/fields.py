"""Field errors and string formats, worded exactly as kube-apiserver words them.

kubectl users read these messages (`spec.containers[0].image: Required value`), and clients match on
the `reason` of each cause, so every validator in this package builds its causes here rather than
formatting its own. The string-format checks (`is_*`) return upstream's message fragments; the
`as_*` readers turn a wrongly-typed JSON value into a cause instead of an exception, so validation
never crashes on input such as `containers: "abc"`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from chalicelib.errors import Cause

Obj = dict[str, Any]

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
TYPE_INVALID = "FieldValueTypeInvalid"
TOO_LONG = "FieldValueTooLong"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
NOT_FOUND = "FieldValueNotFound"

IS_NEGATIVE = "must be greater than or equal to 0"
IMMUTABLE = "field is immutable"
MAX_INT32 = 2**31 - 1


class GoStruct(dict[str, Any]):
    """A value printed like a Go struct: fields in declaration order, not sorted like a map's keys."""


def _json(value: Any) -> str:
    if isinstance(value, GoStruct):
        return "{" + ",".join(f"{json.dumps(k)}:{_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_json(value[k])}" for k in sorted(value, key=str)) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False, default=str)


def render(value: Any) -> str:
    """A bad value as field.Error prints it: Go %q for strings, %v for numbers, JSON otherwise."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return str(value)
    # Go's encoding/json sorts map keys and escapes HTML characters.
    return _json(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _with_detail(head: str, detail: str) -> str:
    return f"{head}: {detail}" if detail else head


def required(field: str, detail: str = "") -> Cause:
    return Cause(field, _with_detail("Required value", detail), REQUIRED)


def invalid(field: str, value: Any, detail: str) -> Cause:
    return Cause(field, _with_detail(f"Invalid value: {render(value)}", detail), INVALID)


def type_invalid(field: str, value: Any, expected: str) -> Cause:
    return Cause(field, f"Invalid value: {render(value)}: must be of type {expected}", TYPE_INVALID)


def not_supported(field: str, value: Any, valid: Sequence[str]) -> Cause:
    detail = "supported values: " + ", ".join(json.dumps(v) for v in valid) if valid else ""
    return Cause(field, _with_detail(f"Unsupported value: {render(value)}", detail), NOT_SUPPORTED)


def duplicate(field: str, value: Any) -> Cause:
    return Cause(field, f"Duplicate value: {render(value)}", DUPLICATE)


def forbidden(field: str, detail: str) -> Cause:
    return Cause(field, _with_detail("Forbidden", detail), FORBIDDEN)


def too_long(field: str, max_bytes: int) -> Cause:
    unit = "byte" if max_bytes == 1 else "bytes"
    return Cause(field, f"Too long: may not be more than {max_bytes} {unit}", TOO_LONG)


def not_found(field: str, value: Any) -> Cause:
    return Cause(field, f"Not found: {render(value)}", NOT_FOUND)


def child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


# --- Readers: a wrongly-typed value becomes a cause and reads as absent. ---


def dict_or_empty(value: Any) -> Obj:
    """The value if it is an object, else {} (for reading fields already validated elsewhere)."""
    return value if isinstance(value, dict) else {}


def list_or_empty(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def str_or_empty(value: Any) -> str:
    return value if isinstance(value, str) else ""


def int_or(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def as_map(value: Any, path: str, errs: list[Cause]) -> Obj:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    errs.append(type_invalid(path, value, "object"))
    return {}


def as_list(value: Any, path: str, errs: list[Cause]) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    errs.append(type_invalid(path, value, "array"))
    return []


def as_str(value: Any, path: str, errs: list[Cause]) -> str | None:
    """The string, "" when absent, None (cause recorded) when of another type."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    errs.append(type_invalid(path, value, "string"))
    return None


def as_int(value: Any, path: str, errs: list[Cause]) -> int | None:
    """The integer, or None when absent or (cause recorded) of another type."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    errs.append(type_invalid(path, value, "integer"))
    return None


def as_bool(value: Any, path: str, errs: list[Cause]) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    errs.append(type_invalid(path, value, "boolean"))
    return None


def maps_in(value: Any, path: str, errs: list[Cause]) -> Iterator[tuple[int, str, Obj]]:
    """(index, path, item) for each object of a list; other items are reported and skipped."""
    for i, item in enumerate(as_list(value, path, errs)):
        if isinstance(item, dict):
            yield i, index(path, i), item
        else:
            errs.append(type_invalid(index(path, i), item, "object"))


def str_map(value: Any, path: str, errs: list[Cause]) -> dict[str, str]:
    """A map of strings (labels, selectors, data); entries of another type are reported and skipped."""
    out: dict[str, str] = {}
    for k, v in as_map(value, path, errs).items():
        if isinstance(v, str):
            out[k] = v
        else:
            errs.append(type_invalid(key(path, k), v, "string"))
    return out


def nonnegative(value: Any, path: str, errs: list[Cause]) -> int | None:
    n = as_int(value, path, errs)
    if n is not None and n < 0:
        errs.append(invalid(path, n, IS_NEGATIVE))
    return n


# --- String formats (k8s.io/apimachinery/pkg/util/validation) ---


def max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = "(" + QUALIFIED_NAME_FMT + ")?"
CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+"
PERCENT_FMT = "[0-9]+%"
HTTP_HEADER_NAME_FMT = "[-A-Za-z0-9]+"

_DNS1123_LABEL = re.compile(f"^{DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN = re.compile(f"^{DNS1123_SUBDOMAIN_FMT}$")
_DNS1035_LABEL = re.compile(f"^{DNS1035_LABEL_FMT}$")
_QUALIFIED_NAME = re.compile(f"^{QUALIFIED_NAME_FMT}$")
_LABEL_VALUE = re.compile(f"^{LABEL_VALUE_FMT}$")
_CONFIG_MAP_KEY = re.compile(f"^{CONFIG_MAP_KEY_FMT}$")
_PERCENT = re.compile(f"^{PERCENT_FMT}$")
_HTTP_HEADER_NAME = re.compile(f"^{HTTP_HEADER_NAME_FMT}$")

_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character"
)
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character"
)


def _full(pattern: re.Pattern[str], value: str) -> bool:
    # `$` would also accept a trailing newline; Go's regexp does not.
    return pattern.fullmatch(value) is not None


def is_dns1123_label(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _full(_DNS1123_LABEL, value):
        if _full(_DNS1123_SUBDOMAIN, value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(_DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _full(_DNS1123_SUBDOMAIN, value):
        errs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _full(_DNS1035_LABEL, value):
        errs.append(regex_error(_DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(_QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _full(_QUALIFIED_NAME, name):
        errs.append(
            "name part "
            + regex_error(_QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def is_label_value(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _full(_LABEL_VALUE, value):
        errs.append(regex_error(_LABEL_VALUE_MSG, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_config_map_key(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _full(_CONFIG_MAP_KEY, value):
        errs.append(
            regex_error(
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                CONFIG_MAP_KEY_FMT,
                "key.name",
                "KEY_NAME",
                "key-name",
            )
        )
    return errs + _chdir_prefix(value)


def is_env_var_name(value: str) -> list[str]:
    """Kubernetes 1.32 default (RelaxedEnvironmentVariableValidation, beta): printable ASCII but '='."""
    errs = []
    if not value:
        errs.append("environment variable name must be non-empty")
    if any(ord(c) > 126 or ord(c) < 32 or c == "=" for c in value):
        errs.append(
            "a valid environment variable name must consist only of printable ASCII characters "
            "other than '='"
        )
    return errs


def is_valid_port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [inclusive_range_error(1, 65535)]


def is_valid_port_name(port: str) -> list[str]:
    errs = []
    if len(port) > 15:
        errs.append(max_len_error(15))
    if not re.fullmatch(r"[-a-z0-9]+", port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_valid_percent(value: str) -> list[str]:
    if _full(_PERCENT, value):
        return []
    return [
        regex_error(
            "a valid percent string must be a numeric string followed by an ending '%'",
            PERCENT_FMT,
            "1%",
            "93%",
        )
    ]


def is_http_header_name(value: str) -> list[str]:
    if _full(_HTTP_HEADER_NAME, value):
        return []
    return [
        regex_error(
            "a valid HTTP header must consist of alphanumeric characters or '-'",
            HTTP_HEADER_NAME_FMT,
            "X-Header-Name",
        )
    ]


def port_num_or_name(value: Any, path: str, errs: list[Cause]) -> None:
    """An IntOrString port: a number 1..65535 or an IANA service name."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        if value is None:
            errs.append(invalid(path, 0, inclusive_range_error(1, 65535)))
        else:
            errs.append(type_invalid(path, value, "integer or string"))
    elif isinstance(value, int):
        errs.extend(invalid(path, value, m) for m in is_valid_port_num(value))
    else:
        errs.extend(invalid(path, value, m) for m in is_valid_port_name(value))
