"""coordination.k8s.io/v1 types. (Being written: placeholder hooks.)"""
from __future__ import annotations

from typing import Any

from chalicelib.errors import Cause

Obj = dict[str, Any]


def validate_lease(obj: Obj, old: Obj | None) -> list[Cause]:
    return []
