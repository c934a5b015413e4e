"""Kubernetes resource quantities ("500m", "1.5", "128Mi", "1G") as the agent needs them.

Why this exists: the agent turns a container's limits into Docker's cpu quota and memory limit. It is
its own package (it runs on the instance, not in Lambda), so it parses quantities itself instead of
importing the control plane's `chalicelib.types.quantity`; both follow the same Kubernetes grammar.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIXES = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def parse(value: str | int | float) -> Decimal:
    """The quantity's value in base units; ValueError for anything that is not a quantity."""
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise ValueError(f"quantities must match the regular expression {_QUANTITY.pattern!r}: {value!r}")
    try:
        return Decimal(match.group(1)) * _SUFFIXES[match.group(2) or ""]
    except InvalidOperation as e:
        raise ValueError(f"not a quantity: {value!r}") from e


def cpu_milli(value: str | int | float) -> int:
    """CPU in millicores, rounded up as Kubernetes does ("0.1" -> 100, "1" -> 1000)."""
    milli = parse(value) * 1000
    return int(milli.to_integral_value(rounding="ROUND_CEILING"))


def memory_bytes(value: str | int | float) -> int:
    """Memory in bytes, rounded up."""
    return int(parse(value).to_integral_value(rounding="ROUND_CEILING"))
