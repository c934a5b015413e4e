"""The price table the planner ranks offerings by (prices.json beside this module).

Why a table and not the AWS Pricing API: the Pricing API is only served from two regions, answers
slowly and in pages of nested JSON, and a planner only needs the relative cost of a few dozen common
types, so the project keeps those figures with their source and date (see prices.json). The table is
also the list of instance types a NodePool may name: a type Skiff cannot price cannot be ranked.
Pure data, no AWS call, so the API types can validate against it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).with_name("prices.json")
CAPACITY_TYPES = ("on-demand", "spot")


@functools.cache
def table() -> dict[str, Any]:
    """The whole file, loaded once per process. Do not mutate."""
    doc: dict[str, Any] = json.loads(PRICES_FILE.read_text(encoding="utf-8"))
    return doc


def known_types() -> frozenset[str]:
    """Instance types with a price for every capacity type."""
    return frozenset(t for t, p in table()["prices"].items() if all(c in p for c in CAPACITY_TYPES))


def price(instance_type: str, capacity_type: str) -> float | None:
    """$/hour of one instance, or None when the table has no figure for it."""
    entry = table()["prices"].get(instance_type) or {}
    value = entry.get(capacity_type)
    return float(value) if isinstance(value, int | float) else None
