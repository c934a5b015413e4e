"""Kubernetes resource quantities ("500m", "128Mi", "1e3") as exact numbers.

Requests, limits, node capacity and QoS classes compare and add quantities; floats would misorder
values such as 0.1 + 0.2 against 0.3 and lose precision at exa scale, so quantities are parsed into
`Decimal`s following k8s.io/apimachinery/pkg/api/resource: the same grammar, the same rounding (up,
to the nanounit), the same canonical form when printed back ("1.5" -> "1500m", "1536Mi").
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_CEILING, ROUND_UP, Decimal, InvalidOperation, localcontext
from typing import Literal

Format = Literal["DecimalSI", "BinarySI", "DecimalExponent"]
QuantityLike = str | int | float | Decimal

QUANTITY_REGEX = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT = f"quantities must match the regular expression '{QUANTITY_REGEX}'"
ERR_NUMERIC = "unable to parse numeric part of quantity"
ERR_SUFFIX = "unable to parse quantity's suffix"

_GRAMMAR = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?([eEinumkKMGTP]*)([-+]?[0-9]*)")
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_SI_BY_EXPONENT = {v: k for k, v in _DECIMAL_SUFFIXES.items()}
_BIN_BY_POWER = {0: "", **{v // 10: k for k, v in _BINARY_SUFFIXES.items()}}
_NANO = Decimal("1e-9")
_MAX_BINARY = Decimal(2**63 - 1)
_MAX_EXPONENT = 100_000


class QuantityError(ValueError):
    """A string that is not a quantity. `detail` is apimachinery's wording, without the input."""

    def __init__(self, text: str, detail: str) -> None:
        super().__init__(f"invalid quantity {text!r}: {detail}")
        self.text = text
        self.detail = detail


def _as_text(q: QuantityLike) -> str:
    if isinstance(q, bool):
        raise QuantityError(str(q), ERR_FORMAT)
    if isinstance(q, str):
        return q
    if isinstance(q, int):
        return str(q)
    if isinstance(q, float):
        if not math.isfinite(q):
            raise QuantityError(repr(q), ERR_NUMERIC)
        return repr(q)
    if isinstance(q, Decimal):
        return format(q, "f")
    raise QuantityError(repr(q), ERR_FORMAT)


def parse_quantity_with_format(q: QuantityLike) -> tuple[Decimal, Format]:
    """The exact value of a quantity and the format its suffix implies (kept when printing it)."""
    text = _as_text(q)
    m = _GRAMMAR.fullmatch(text)
    if not text or m is None:
        raise QuantityError(text, ERR_FORMAT)
    sign, whole, frac, letters, exp_digits = (g or "" for g in m.groups())
    if not whole and not frac:
        raise QuantityError(text, ERR_NUMERIC)
    suffix = letters + exp_digits
    fmt: Format
    if suffix in _BINARY_SUFFIXES:
        fmt, base, power = "BinarySI", 2, _BINARY_SUFFIXES[suffix]
    elif suffix in _DECIMAL_SUFFIXES:
        fmt, base, power = "DecimalSI", 10, _DECIMAL_SUFFIXES[suffix]
    elif len(suffix) > 1 and suffix[0] in "eE":
        try:
            power = int(suffix[1:])
        except ValueError:
            raise QuantityError(text, ERR_SUFFIX) from None
        if abs(power) > _MAX_EXPONENT:
            raise QuantityError(text, ERR_NUMERIC)
        fmt, base = "DecimalExponent", 10
    else:
        raise QuantityError(text, ERR_SUFFIX)
    digits = Decimal(f"{whole or '0'}.{frac or '0'}")
    with localcontext() as ctx:
        ctx.prec = 60 + len(whole) + len(frac) + abs(power)
        ctx.Emax, ctx.Emin = 10**9, -(10**9)
        value = digits * (Decimal(2) ** power) if base == 2 else digits.scaleb(power)
        if value != 0:
            value = value.quantize(_NANO, rounding=ROUND_UP)
        if fmt == "BinarySI" and value > _MAX_BINARY:
            value = _MAX_BINARY
        if sign == "-":
            value = -value
    return value.normalize() if value != 0 else Decimal(0), fmt


def parse_quantity(q: QuantityLike) -> Decimal:
    """The exact value of a quantity: "500m" -> 0.5, "1Ki" -> 1024. Raises QuantityError (a ValueError)."""
    return parse_quantity_with_format(q)[0]


def _ceil(value: Decimal) -> int:
    with localcontext() as ctx:
        ctx.prec = max(60, value.adjusted() + 20)
        return int(value.to_integral_value(rounding=ROUND_CEILING))


def millicores(q: QuantityLike) -> int:
    """A cpu quantity in millicores, rounded up as Quantity.MilliValue does ("1n" -> 1)."""
    value = q if isinstance(q, Decimal) else parse_quantity(q)
    return _ceil(value * 1000)


def to_bytes(q: QuantityLike) -> int:
    """A memory/storage quantity in bytes (whole units), rounded up as Quantity.Value does."""
    value = q if isinstance(q, Decimal) else parse_quantity(q)
    return _ceil(value)


def format_quantity(value: Decimal | int, fmt: Format = "DecimalSI") -> str:
    """The canonical text of a value, as Quantity.String prints it in the given format."""
    value = Decimal(value)
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mag = abs(value)
    if fmt == "BinarySI" and (mag < 1024 or mag != mag.to_integral_value()):
        fmt = "DecimalSI"
    if fmt == "BinarySI":
        number, power = int(mag), 0
        while power < 6 and number % 1024 == 0:
            number, power = number // 1024, power + 1
        return f"{sign}{number}{_BIN_BY_POWER[power]}"
    with localcontext() as ctx:
        ctx.prec = max(60, mag.adjusted() + 20)
        mag = mag.quantize(_NANO, rounding=ROUND_UP)
        coefficient, exponent = _integer_and_exponent(mag)
    exp3 = (exponent // 3) * 3
    if fmt == "DecimalSI":
        exp3 = min(exp3, 18)
    number = coefficient * 10 ** (exponent - exp3)
    if fmt == "DecimalSI":
        return f"{sign}{number}{_SI_BY_EXPONENT[exp3]}"
    return f"{sign}{number}{'e' + str(exp3) if exp3 else ''}"


def _integer_and_exponent(mag: Decimal) -> tuple[int, int]:
    """(n, e) with mag == n * 10**e and n not divisible by 10."""
    t = mag.normalize().as_tuple()
    assert isinstance(t.exponent, int)
    n = int("".join(map(str, t.digits)))
    return n, t.exponent


def canonical(q: QuantityLike) -> str:
    """A quantity re-printed the way the API server stores it: "1.5" -> "1500m", "2048Ki" -> "2Mi"."""
    value, fmt = parse_quantity_with_format(q)
    return format_quantity(value, fmt)


def is_quantity(q: object) -> bool:
    try:
        parse_quantity(q)  # type: ignore[arg-type]
    except (QuantityError, InvalidOperation):
        return False
    return True
